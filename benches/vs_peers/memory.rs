//! Memory per pending task: spawn N trivial tasks (detached) onto a loop
//! that is not running, so that all N wait in its queue, and count the heap
//! bytes that are live afterwards with the bench's counting allocator
//! (requested sizes; malloc's own rounding is not included, for anyone).

use dispatchers::Budget;
use dispatchers_mio::MioHost;

use crate::alloc::measure_live_bytes;
use crate::harness::{Config, alternate, median, on_thread};
use crate::report::{Report, Row, Target, Unit};

const OURS: &str = "ours (Main, mio host)";
const EXECUTOR: &str = "async-executor";
const TOKIO: &str = "tokio current_thread";

pub fn run(config: &Config, report: &mut Report) {
    let n = config.size(1_000_000, 200_000, 2_000);
    let names = [OURS, EXECUTOR, TOKIO];
    let rounds = alternate(config.rounds, &names, |which, _| {
        on_thread(&format!("memory-{which}"), || match names[which] {
            OURS => ours(n),
            EXECUTOR => executor(n),
            _ => tokio(n),
        })
    });
    let bytes = |i: usize| median(&rounds[i]);
    let metric = format!("memory per pending task ({}k queued)", n / 1000);
    report.push(Row::vs(
        metric.clone(),
        Unit::Bytes,
        bytes(0),
        EXECUTOR,
        bytes(1),
        Target::RatioAtMost(1.0),
    ));
    report.push(Row::vs(
        metric,
        Unit::Bytes,
        bytes(0),
        TOKIO,
        bytes(2),
        Target::Info,
    ));
}

fn ours(n: usize) -> f64 {
    let poll = mio::Poll::new().expect("mio Poll");
    let host = MioHost::new(poll.registry(), mio::Token(0)).expect("mio host");
    let main = host.dispatcher();
    let ((), bytes) = measure_live_bytes(|| {
        for _ in 0..n {
            main.spawn(async {}).detach();
        }
    });
    assert!(host.engine().has_pending());
    host.run_pending(Budget::unlimited());
    bytes as f64 / n as f64
}

fn executor(n: usize) -> f64 {
    let ex = async_executor::Executor::new();
    let ((), bytes) = measure_live_bytes(|| {
        for _ in 0..n {
            ex.spawn(async {}).detach();
        }
    });
    while ex.try_tick() {}
    bytes as f64 / n as f64
}

fn tokio(n: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let handle = rt.handle().clone();
    let ((), bytes) = measure_live_bytes(|| {
        for _ in 0..n {
            drop(handle.spawn(async {}));
        }
    });
    drop(rt);
    bytes as f64 / n as f64
}
