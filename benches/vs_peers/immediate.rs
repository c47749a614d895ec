//! `Main.immediate` on the main thread: a spawn, or a resume (a wake on the
//! loop's thread), must run the task in place: no queue push, no host
//! wake-up (checked with the engine's `has_pending` and `host_wakes`), and
//! cost at most twice a *direct poll*.
//!
//! "Direct poll" is read as the same task, from the same task crate
//! (async-task), polled right where it is spawned or woken, with no
//! dispatcher in between: `spawn` + `Runnable::run`, and a waker whose
//! schedule function runs the task at once. The bare `Future::poll` of the
//! task's future, with no task around it, is shown for scale.

use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use dispatchers_mio::MioHost;

use crate::harness::{Config, alternate, median, on_thread};
use crate::report::{Report, Row, Target, Unit};

const OURS_SPAWN: &str = "ours: immediate.spawn";
const DIRECT_SPAWN: &str = "async-task spawn + run (direct)";
const OURS_RESUME: &str = "ours: wake on immediate";
const DIRECT_RESUME: &str = "async-task wake → run (direct)";
const BARE_POLL: &str = "bare Future::poll";

/// One contender's result: ns per operation, and how many queue pushes or
/// host wake-ups it caused plus tasks it left unfinished (always 0 for the
/// baselines).
#[derive(Debug, Clone, Copy)]
struct Outcome {
    ns_per_op: f64,
    off_place: u64,
}

pub fn run(config: &Config, report: &mut Report) {
    let n = config.size(1_000_000, 200_000, 1_000);
    let names = [
        OURS_SPAWN,
        DIRECT_SPAWN,
        OURS_RESUME,
        DIRECT_RESUME,
        BARE_POLL,
    ];
    let rounds = alternate(config.rounds, &names, |which, _| {
        let name = names[which];
        // Each on a fresh thread: the thread that creates the host is its
        // main thread.
        on_thread(&format!("immediate-{which}"), || match name {
            OURS_SPAWN => ours_spawn(n),
            DIRECT_SPAWN => direct_spawn(n),
            OURS_RESUME => ours_resume(n),
            DIRECT_RESUME => direct_resume(n),
            _ => bare_poll(n),
        })
    });
    let ns = |i: usize| median(&rounds[i].iter().map(|o| o.ns_per_op).collect::<Vec<_>>());
    let off_place: u64 = rounds[0]
        .iter()
        .chain(&rounds[2])
        .map(|o| o.off_place)
        .sum();
    report.push(Row::alone(
        "immediate on the main thread: queue pushes + host wakes",
        Unit::Count,
        off_place as f64,
        Target::Check("0 (host_wakes, has_pending)".into(), off_place == 0),
    ));
    report.push(Row::vs(
        "immediate spawn on the main thread, per task",
        Unit::Nanos,
        ns(0),
        DIRECT_SPAWN,
        ns(1),
        Target::RatioAtMost(2.0),
    ));
    report.push(Row::vs(
        "immediate resume on the main thread, per wake",
        Unit::Nanos,
        ns(2),
        DIRECT_RESUME,
        ns(3),
        Target::RatioAtMost(2.0),
    ));
    report.push(Row::vs(
        "immediate resume on the main thread, per wake",
        Unit::Nanos,
        ns(2),
        BARE_POLL,
        ns(4),
        Target::Info,
    ));
}

/// A host on this thread, which becomes its main thread (never polled: an
/// immediate run must not need the loop).
fn host() -> (mio::Poll, MioHost) {
    let poll = mio::Poll::new().expect("mio Poll");
    let host = MioHost::new(poll.registry(), mio::Token(0)).expect("mio host");
    (poll, host)
}

/// Host wake-ups since `wakes_before`, plus one if anything is queued.
fn queue_traffic(host: &MioHost, wakes_before: u64) -> u64 {
    host.engine().host_wakes() - wakes_before + u64::from(host.engine().has_pending())
}

fn ours_spawn(n: usize) -> Outcome {
    let (_poll, host) = host();
    let immediate = host.dispatcher().immediate();
    let wakes = host.engine().host_wakes();
    let mut unfinished = 0;
    let start = Instant::now();
    for _ in 0..n {
        let task = immediate.spawn(async { black_box(1u64) });
        unfinished += u64::from(!task.is_finished());
        task.detach();
    }
    let ns_per_op = start.elapsed().as_nanos() as f64 / n as f64;
    Outcome {
        ns_per_op,
        off_place: unfinished + queue_traffic(&host, wakes),
    }
}

fn direct_spawn(n: usize) -> Outcome {
    let mut unfinished = 0;
    let start = Instant::now();
    for _ in 0..n {
        let (runnable, task) =
            async_task::spawn(async { black_box(1u64) }, |r: async_task::Runnable| drop(r));
        runnable.run();
        unfinished += u64::from(!task.is_finished());
        task.detach();
    }
    let ns_per_op = start.elapsed().as_nanos() as f64 / n as f64;
    assert_eq!(unfinished, 0);
    Outcome {
        ns_per_op,
        off_place: 0,
    }
}

/// The resumed task's future: counts its polls and hands out its waker once.
fn resumable(
    polls: Arc<AtomicU64>,
    waker_out: Arc<Mutex<Option<Waker>>>,
) -> impl Future<Output = ()> + Send + 'static {
    let mut handed_out = false;
    poll_fn(move |cx| {
        if !handed_out {
            handed_out = true;
            *waker_out.lock().expect("waker slot") = Some(cx.waker().clone());
        }
        polls.fetch_add(1, Ordering::Relaxed);
        Poll::Pending
    })
}

/// Wakes `waker` n times; ns per wake.
fn wake_n(waker: &Waker, n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        black_box(waker).wake_by_ref();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn ours_resume(n: usize) -> Outcome {
    let (_poll, host) = host();
    let immediate = host.dispatcher().immediate();
    let polls = Arc::new(AtomicU64::new(0));
    let slot = Arc::new(Mutex::new(None));
    let task = immediate.spawn(resumable(polls.clone(), slot.clone()));
    let waker = slot
        .lock()
        .expect("waker slot")
        .take()
        .expect("first poll ran in place");
    let wakes = host.engine().host_wakes();
    let ns_per_op = wake_n(&waker, n);
    let not_run_in_place = (n as u64 + 1).saturating_sub(polls.load(Ordering::Relaxed));
    let off_place = not_run_in_place + queue_traffic(&host, wakes);
    drop(task);
    Outcome {
        ns_per_op,
        off_place,
    }
}

fn direct_resume(n: usize) -> Outcome {
    let polls = Arc::new(AtomicU64::new(0));
    let slot = Arc::new(Mutex::new(None));
    let (runnable, task) = async_task::spawn(
        resumable(polls.clone(), slot.clone()),
        |r: async_task::Runnable| {
            r.run();
        },
    );
    runnable.run();
    let waker = slot
        .lock()
        .expect("waker slot")
        .take()
        .expect("first poll ran");
    let ns_per_op = wake_n(&waker, n);
    assert_eq!(polls.load(Ordering::Relaxed), n as u64 + 1);
    drop(task);
    Outcome {
        ns_per_op,
        off_place: 0,
    }
}

fn bare_poll(n: usize) -> Outcome {
    let polls = Arc::new(AtomicU64::new(0));
    let slot = Arc::new(Mutex::new(None));
    let mut future = pin!(resumable(polls.clone(), slot));
    let mut cx = Context::from_waker(Waker::noop());
    let _ = future.as_mut().poll(&mut cx);
    let start = Instant::now();
    for _ in 0..n {
        let _ = black_box(future.as_mut().poll(&mut cx));
    }
    let ns_per_op = start.elapsed().as_nanos() as f64 / n as f64;
    assert_eq!(polls.load(Ordering::Relaxed), n as u64 + 1);
    Outcome {
        ns_per_op,
        off_place: 0,
    }
}
