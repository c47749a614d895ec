//! The stress suite on a hand-written loop ([`LoopHost`]).
//!
//! Debug builds run reduced sizes; the full sizes need a release build:
//! `cargo test --release -p dispatchers --test stress_loop_host -- --nocapture`.

mod stress;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dispatchers::{Budget, LoopHost};

#[test]
fn stress() {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let loop_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("tick-loop".into())
        .spawn(move || {
            let host = LoopHost::new("tick-loop");
            tx.send(host.dispatcher()).unwrap();
            while !loop_stop.load(Ordering::Acquire) {
                host.run_pending(Budget::unlimited().max_time(Duration::from_millis(2)));
                host.wait(Some(Duration::from_millis(16)));
            }
            // Dropping the host shuts its engine down, here on the loop thread.
        })
        .unwrap();
    let main = rx.recv().unwrap();
    let unpark = thread.thread().clone();
    let host = stress::StressHost::new(
        "tick-loop",
        main,
        move || {
            stop.store(true, Ordering::Release);
            unpark.unpark();
        },
        move || thread.join().expect("the loop panicked"),
    );
    stress::run_all(host);
}
