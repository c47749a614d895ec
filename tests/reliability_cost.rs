//! What the host engine's bookkeeping costs on the hot path: a quick
//! throughput check of spawning on a loop, not a benchmark (those compare
//! peers, in `benches/`). Ignored by default; run it in release:
//!
//! ```text
//! cargo test --release -p dispatchers --test reliability_cost -- --ignored --nocapture
//! ```
//!
//! It prints the nanoseconds per task (best and median of 7 rounds of
//! 1,000,000 tasks) for tasks that finish in their first poll, and for tasks
//! that suspend once (`yield_now`), which is the case the live-task registry
//! pays for.

use std::time::{Duration, Instant};

use dispatchers::{Budget, LoopHost, yield_now};

const TASKS: usize = 1_000_000;
const BATCH: usize = 10_000;
const ROUNDS: usize = 7;

/// Spawns `TASKS` detached tasks on the loop from its own thread, in batches
/// of `BATCH`, running the loop after each batch; returns the time per task.
fn round<F, Fut>(make: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let host = LoopHost::new("cost");
    let main = host.dispatcher();
    let start = Instant::now();
    for _ in 0..TASKS / BATCH {
        for _ in 0..BATCH {
            main.spawn(make()).detach();
        }
        while host.run_pending(Budget::unlimited()).ran > 0 {}
    }
    let elapsed = start.elapsed();
    drop(host);
    elapsed / TASKS as u32
}

fn report(what: &str, f: impl Fn() -> Duration) {
    let mut times: Vec<Duration> = (0..ROUNDS).map(|_| f()).collect();
    times.sort();
    println!(
        "{what:<32} best {:>4} ns/task, median {:>4} ns/task",
        times[0].as_nanos(),
        times[ROUNDS / 2].as_nanos()
    );
}

#[test]
#[ignore = "a measurement that prints numbers; run in release with --ignored --nocapture"]
fn spawn_throughput_on_a_loop() {
    // Warm the allocator and the reaper-free paths once.
    round(|| async {});
    report("1M spawns, done in first poll", || round(|| async {}));
    report("1M spawns, each suspends once", || {
        round(|| async { yield_now().await })
    });
}
