//! A calloop loop with the host inserted, on a thread of its own, for the
//! shared suites (`conformance.rs`, `stress.rs`).

use std::sync::mpsc;
use std::thread::JoinHandle;

use calloop::{EventLoop, LoopSignal};
use dispatchers::MainDispatcher;
use dispatchers_calloop::CalloopHost;

/// Starts the loop; returns its Main, a signal (from any thread, more than
/// once) that makes `run` return, and a join that waits until the loop, and
/// with it the host's engine, has been dropped on its thread.
pub fn start() -> (
    MainDispatcher,
    impl Fn() + Send + Sync + 'static,
    impl FnOnce() + Send + 'static,
) {
    let (sent, received) = mpsc::channel();
    let thread: JoinHandle<()> = std::thread::Builder::new()
        .name("calloop-loop".into())
        .spawn(move || {
            let mut event_loop: EventLoop<()> = EventLoop::try_new().unwrap();
            let host = CalloopHost::insert(&event_loop.handle()).unwrap();
            sent.send((host.dispatcher(), event_loop.get_signal()))
                .unwrap();
            event_loop.run(None, &mut (), |_| {}).unwrap();
            // Dropping the loop drops the host's source: the engine shuts
            // down here, on the loop's thread.
            drop(event_loop);
        })
        .unwrap();
    let (main, signal): (MainDispatcher, LoopSignal) = received.recv().unwrap();
    let stop = move || {
        signal.stop();
        signal.wakeup();
    };
    let join = move || thread.join().expect("the calloop loop panicked");
    (main, stop, join)
}
