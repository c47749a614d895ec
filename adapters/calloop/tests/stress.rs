//! The shared stress suite (`tests/stress/`) on a calloop loop running on a
//! thread of its own.
//!
//! Debug builds run reduced sizes; the full sizes need a release build:
//! `cargo test --release -p dispatchers-calloop --test stress -- --nocapture`.

#[path = "../../../tests/stress/mod.rs"]
mod stress;

use std::sync::mpsc;

use calloop::EventLoop;
use dispatchers_calloop::CalloopHost;

#[test]
fn stress() {
    let (sent, received) = mpsc::channel();
    let thread = std::thread::Builder::new()
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
    let (main, signal) = received.recv().unwrap();
    let host = stress::StressHost::new(
        "calloop",
        main,
        move || {
            signal.stop();
            signal.wakeup();
        },
        move || thread.join().expect("the calloop loop panicked"),
    );
    stress::run_all(host);
}
