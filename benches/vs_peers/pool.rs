//! The CPU pool: one outside thread spawns N small CPU-bound tasks (about a
//! hundred dependent multiply-xorshifts each, detached); the time runs from
//! the first spawn to the last task done. Ours: `Dispatchers::default()`.
//! Peers: a tokio multi_thread runtime with 2 workers, and async-executor
//! run by 2 threads (for context).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dispatchers::Dispatchers;

use crate::harness::{Config, Signal, alternate, median, small_cpu_job};
use crate::loops::ExecutorLoop;
use crate::report::{Report, Row, Target, Unit};

const OURS: &str = "ours (Default pool)";
const TOKIO: &str = "tokio multi_thread (2 workers)";
const EXECUTOR: &str = "async-executor (2 threads)";

static COUNT: AtomicUsize = AtomicUsize::new(0);
static TARGET: AtomicUsize = AtomicUsize::new(0);
static DONE: Signal = Signal::new();

async fn job(seed: u64) {
    small_cpu_job(seed);
    if COUNT.fetch_add(1, Ordering::Relaxed) + 1 == TARGET.load(Ordering::Relaxed) {
        DONE.set();
    }
}

pub fn run(config: &Config, report: &mut Report) {
    let n = config.size(1_000_000, 200_000, 2_000);
    let names = [OURS, TOKIO, EXECUTOR];
    let rounds = alternate(config.rounds, &names, |which, _| match names[which] {
        OURS => {
            let default = Dispatchers::default();
            measure(n, |i| default.spawn(job(i)).detach())
        }
        TOKIO => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .expect("tokio runtime");
            measure(n, |i| drop(rt.spawn(job(i))))
        }
        _ => {
            let ex = ExecutorLoop::start(2);
            let executor = ex.executor().clone();
            measure(n, |i| executor.spawn(job(i)).detach())
        }
    });
    let [ours, tokio, executor] = [0, 1, 2].map(|i| median(&rounds[i]));
    let metric = format!("CPU pool, {}k small tasks: throughput", n / 1000);
    report.push(Row::vs(
        metric.clone(),
        Unit::PerSecond,
        ours,
        TOKIO,
        tokio,
        Target::RatioAtLeast(1.0),
    ));
    report.push(Row::vs(
        metric,
        Unit::PerSecond,
        ours,
        EXECUTOR,
        executor,
        Target::Info,
    ));
}

/// Tasks per second: this thread calls `spawn(i)` for i in 0..n; the clock
/// stops when the last task ran.
fn measure(n: usize, spawn: impl Fn(u64)) -> f64 {
    COUNT.store(0, Ordering::SeqCst);
    TARGET.store(n, Ordering::SeqCst);
    DONE.reset();
    let start = Instant::now();
    for i in 0..n {
        spawn(i as u64);
    }
    DONE.wait_blocking(Duration::from_secs(120), "the CPU tasks");
    n as f64 / start.elapsed().as_secs_f64()
}
