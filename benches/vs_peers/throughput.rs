//! Spawn throughput onto one loop thread: 1 or 2 producer threads spawn N
//! trivial tasks (detached) as fast as they can onto a loop that runs them;
//! the time runs from releasing the producers to the last task having run.
//! Ours: Main of a mio loop. Peers: async-executor run by one thread, and a
//! tokio current_thread runtime (spawning through its `Handle`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::harness::{Config, Signal, alternate, median};
use crate::loops::{ExecutorLoop, MioLoop, TokioLoop};
use crate::report::{Report, Row, Target, Unit};

const OURS: &str = "ours (mio host)";
const EXECUTOR: &str = "async-executor (1 thread)";
const TOKIO: &str = "tokio current_thread";

static COUNT: AtomicUsize = AtomicUsize::new(0);
static TARGET: AtomicUsize = AtomicUsize::new(0);
static DONE: Signal = Signal::new();

/// The trivial task: counts itself; the last one sets `DONE`.
pub async fn trivial() {
    if COUNT.fetch_add(1, Ordering::Relaxed) + 1 == TARGET.load(Ordering::Relaxed) {
        DONE.set();
    }
}

pub fn run(config: &Config, report: &mut Report) {
    let n = config.size(1_000_000, 200_000, 2_000);
    for producers in [1, 2] {
        let names = [OURS, EXECUTOR, TOKIO];
        let rounds = alternate(config.rounds, &names, |which, _| match names[which] {
            OURS => {
                let host = MioLoop::start();
                let main = host.main().clone();
                measure("ours", n, producers, move || main.spawn(trivial()).detach())
            }
            EXECUTOR => {
                let ex = ExecutorLoop::start(1);
                let executor = ex.executor().clone();
                measure("exec", n, producers, move || {
                    executor.spawn(trivial()).detach()
                })
            }
            _ => {
                let rt = TokioLoop::start();
                let handle = rt.handle().clone();
                measure("tokio", n, producers, move || drop(handle.spawn(trivial())))
            }
        });
        let [ours, executor, tokio] = [0, 1, 2].map(|i| median(&rounds[i]));
        let metric = format!("spawn throughput, {producers} producer(s) → loop");
        report.push(Row::vs(
            metric.clone(),
            Unit::PerSecond,
            ours,
            EXECUTOR,
            executor,
            Target::RatioAtLeast(1.3),
        ));
        report.push(Row::vs(
            metric,
            Unit::PerSecond,
            ours,
            TOKIO,
            tokio,
            Target::RatioAtLeast(2.0),
        ));
    }
}

/// Tasks per second: `producers` threads (named `{label}-producer-{i}`,
/// for profilers) each call `spawn` n / producers times; the clock stops
/// when the last task ran.
pub fn measure(
    label: &str,
    n: usize,
    producers: usize,
    spawn: impl Fn() + Send + Sync + 'static,
) -> f64 {
    let per_producer = n / producers;
    let n = per_producer * producers;
    COUNT.store(0, Ordering::SeqCst);
    TARGET.store(n, Ordering::SeqCst);
    DONE.reset();
    let spawn = Arc::new(spawn);
    let barrier = Arc::new(Barrier::new(producers + 1));
    let threads: Vec<_> = (0..producers)
        .map(|i| {
            let (spawn, barrier) = (spawn.clone(), barrier.clone());
            std::thread::Builder::new()
                .name(format!("{label}-producer-{i}"))
                .spawn(move || {
                    barrier.wait();
                    for _ in 0..per_producer {
                        spawn();
                    }
                })
                .expect("spawn a producer")
        })
        .collect();
    // The clock starts before the release: a producer may finish before
    // this thread returns from the barrier.
    let start = Instant::now();
    barrier.wait();
    DONE.wait_blocking(Duration::from_secs(120), "the spawned tasks");
    let elapsed = start.elapsed();
    for thread in threads {
        thread.join().expect("producer");
    }
    n as f64 / elapsed.as_secs_f64()
}
