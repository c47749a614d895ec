//! The machine's core-to-core round trip: two threads hand a cache line back
//! and forth. Every cross-thread metric pays for such hand-offs, and on a
//! virtual machine their cost is not fixed: this one's two CPUs have been
//! seen at 44–50 ns a round trip and, minutes later, at 400–470 ns (they
//! are then further apart on the host), with cross-thread spawn throughput
//! halving in step. So the bench measures it before and after each metric
//! family and prints it with the table (see `BENCHMARKS.md`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Nanoseconds per round trip, the median of five bursts of
/// `round_trips / 5` (a thread placement can change within a burst).
pub fn round_trip_ns(round_trips: u64) -> f64 {
    let mut bursts: Vec<f64> = (0..5).map(|_| burst_ns((round_trips / 5).max(1))).collect();
    bursts.sort_by(f64::total_cmp);
    bursts[2]
}

/// One burst: this thread writes an odd number, a second thread answers
/// with the next even one, `round_trips` times.
fn burst_ns(round_trips: u64) -> f64 {
    let turn = Arc::new(AtomicU64::new(0));
    let answering = turn.clone();
    let answerer = std::thread::Builder::new()
        .name("core-to-core".into())
        .spawn(move || {
            for i in 0..round_trips {
                wait_for(&answering, 2 * i + 1);
                answering.store(2 * i + 2, Ordering::Release);
            }
        })
        .expect("spawn the answering thread");
    // Both threads running before the clock starts.
    turn.store(1, Ordering::Release);
    wait_for(&turn, 2);
    let start = Instant::now();
    for i in 1..round_trips {
        turn.store(2 * i + 1, Ordering::Release);
        wait_for(&turn, 2 * i + 2);
    }
    let elapsed = start.elapsed();
    answerer.join().expect("the answering thread");
    elapsed.as_nanos() as f64 / (round_trips - 1).max(1) as f64
}

/// Spins until `turn` holds `value`; yields now and then, so that a machine
/// with one free CPU still makes progress.
fn wait_for(turn: &AtomicU64, value: u64) {
    let mut spins = 0u32;
    while turn.load(Ordering::Acquire) != value {
        spins += 1;
        if spins % 4096 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}
