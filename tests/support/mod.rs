//! A hand-written tick loop ([`LoopHost`]) on a thread of its own, for the
//! shared suites (`conformance_loop_host.rs`, `stress_loop_host.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dispatchers::{Budget, LoopHost, MainDispatcher};

/// Starts the loop; returns its Main, a signal (from any thread, more than
/// once) that makes it return, and a join that waits until the host, and with
/// it its engine, has been dropped on the loop thread.
pub fn start_tick_loop() -> (
    MainDispatcher,
    impl Fn() + Send + Sync + 'static,
    impl FnOnce() + Send + 'static,
) {
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
        })
        .unwrap();
    let main = rx.recv().unwrap();
    let unpark = thread.thread().clone();
    let signal = move || {
        stop.store(true, Ordering::Release);
        unpark.unpark();
    };
    let join = move || thread.join().expect("the loop panicked");
    (main, signal, join)
}
