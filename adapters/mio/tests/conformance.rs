//! The shared Main-dispatcher conformance suite, run against a mio loop.

#[path = "../../../tests/conformance/mod.rs"]
mod conformance;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

use dispatchers::{Budget, MainDispatcher};
use dispatchers_mio::MioHost;
use mio::{Events, Poll, Token};

const WAKE: Token = Token(0);

/// Runs a server-style mio loop on a thread of its own until `stop` is set;
/// the host (and its engine) is dropped on that thread when the loop ends.
fn run_loop(ready: mpsc::Sender<MainDispatcher>, stop: &AtomicBool) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let host = MioHost::with_name("mio-conformance", poll.registry(), WAKE)?;
    let _ = ready.send(host.dispatcher());
    let mut events = Events::with_capacity(64);
    while !stop.load(Ordering::Acquire) {
        match poll.poll(&mut events, host.next_timeout()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            assert!(host.is_wake_event(event), "no other source is registered");
        }
        host.run_pending(Budget::unlimited());
    }
    drop(host);
    Ok(())
}

fn start_mio_host() -> conformance::HostUnderTest {
    let (ready_tx, ready_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let loop_stop = stop.clone();
    let handle = thread::Builder::new()
        .name("mio-loop".into())
        .spawn(move || run_loop(ready_tx, &loop_stop))
        .expect("cannot start the loop thread");
    let main = match ready_rx.recv() {
        Ok(main) => main,
        Err(_) => panic!(
            "the mio loop failed to start: {:?}",
            handle.join().map_err(|_| "it panicked")
        ),
    };
    let waker = main.clone();
    conformance::HostUnderTest::new("mio", main, move || {
        stop.store(true, Ordering::Release);
        // Any dispatch wakes the loop so that it sees `stop`.
        waker.spawn(async {}).detach();
        handle
            .join()
            .expect("the mio loop panicked")
            .expect("the mio loop failed");
    })
}

#[test]
fn mio_host_passes_the_conformance_suite() {
    conformance::run_suite(start_mio_host());
}
