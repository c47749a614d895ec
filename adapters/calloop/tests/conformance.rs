//! The shared conformance suite on a calloop loop running on a thread of its
//! own.

#[path = "../../../tests/conformance/mod.rs"]
mod conformance;

use std::sync::mpsc;

use calloop::EventLoop;
use dispatchers_calloop::CalloopHost;

#[test]
fn conformance() {
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
            // down here, on the loop's thread, before `stop` returns.
            drop(event_loop);
        })
        .unwrap();
    let (main, signal) = received.recv().unwrap();
    let host = conformance::HostUnderTest::new("calloop", main, move || {
        signal.stop();
        signal.wakeup();
        thread.join().unwrap();
    });
    conformance::run_suite(host);
}
