//! The shared stress suite (`tests/stress/`) on a mio loop.
//!
//! Debug builds run reduced sizes; the full sizes need a release build:
//! `cargo test --release -p dispatchers-mio --test stress -- --nocapture`.

#[path = "../../../tests/stress/mod.rs"]
mod stress;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

use dispatchers::{Budget, MainDispatcher};
use dispatchers_mio::MioHost;
use mio::{Events, Poll, Token};

const WAKE: Token = Token(0);

/// A server-style mio loop on a thread of its own until `stop` is set; the
/// host (and its engine) is dropped on that thread when the loop ends.
fn run_loop(ready: mpsc::Sender<MainDispatcher>, stop: &AtomicBool) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let host = MioHost::with_name("mio-stress", poll.registry(), WAKE)?;
    let _ = ready.send(host.dispatcher());
    let mut events = Events::with_capacity(64);
    while !stop.load(Ordering::Acquire) {
        match poll.poll(&mut events, host.next_timeout()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        host.run_pending(Budget::unlimited());
    }
    drop(host);
    Ok(())
}

#[test]
fn stress() {
    let (ready_tx, ready_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let loop_stop = stop.clone();
    let handle = thread::Builder::new()
        .name("mio-loop".into())
        .spawn(move || run_loop(ready_tx, &loop_stop))
        .expect("cannot start the loop thread");
    let main = ready_rx.recv().expect("the mio loop failed to start");
    let waker = main.clone();
    let host = stress::StressHost::new(
        "mio",
        main,
        move || {
            stop.store(true, Ordering::Release);
            // Any dispatch wakes the loop so that it sees `stop`.
            waker.spawn(async {}).detach();
        },
        move || {
            handle
                .join()
                .expect("the mio loop panicked")
                .expect("the mio loop failed")
        },
    );
    stress::run_all(host);
}
