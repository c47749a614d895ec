//! The conformance suite on the hand-written loop host ([`LoopHost`]).

mod conformance;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dispatchers::{Budget, LoopHost};

#[test]
fn conformance() {
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
    let host = conformance::HostUnderTest::new("tick-loop", main, move || {
        stop.store(true, Ordering::Release);
        thread.thread().unpark();
        thread.join().unwrap();
    });
    conformance::run_suite(host);
}
