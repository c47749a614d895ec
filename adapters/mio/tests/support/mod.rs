//! A server-style mio loop on a thread of its own, for the shared suites
//! (`conformance.rs`, `stress.rs`).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use dispatchers::{Budget, MainDispatcher};
use dispatchers_mio::MioHost;
use mio::{Events, Poll, Token};

const WAKE: Token = Token(0);

/// A running loop: its Main, and how to end it.
pub struct MioLoop {
    pub main: MainDispatcher,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<io::Result<()>>,
}

/// Starts a loop whose host is named `name`.
pub fn start(name: &'static str) -> MioLoop {
    let (ready_tx, ready_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let loop_stop = stop.clone();
    let handle = thread::Builder::new()
        .name("mio-loop".into())
        .spawn(move || run_loop(name, ready_tx, &loop_stop))
        .expect("cannot start the loop thread");
    let main = match ready_rx.recv() {
        Ok(main) => main,
        Err(_) => panic!(
            "the mio loop failed to start: {:?}",
            handle.join().map_err(|_| "it panicked")
        ),
    };
    MioLoop { main, stop, handle }
}

impl MioLoop {
    /// Splits into the Main, a signal (callable from any thread, more than
    /// once) that makes the loop return, its host dropped on its thread, and
    /// a join that waits for that.
    pub fn into_parts(
        self,
    ) -> (
        MainDispatcher,
        impl Fn() + Send + Sync + 'static,
        impl FnOnce() + Send + 'static,
    ) {
        let MioLoop { main, stop, handle } = self;
        let waker = main.clone();
        let signal = move || {
            stop.store(true, Ordering::Release);
            // Any dispatch wakes the loop so that it sees `stop`.
            waker.spawn(async {}).detach();
        };
        let join = move || {
            handle
                .join()
                .expect("the mio loop panicked")
                .expect("the mio loop failed")
        };
        (main, signal, join)
    }
}

/// Polls until `stop` is set; the host (and its engine) is dropped on this
/// thread when the loop ends.
fn run_loop(
    name: &'static str,
    ready: mpsc::Sender<MainDispatcher>,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let host = MioHost::with_name(name, poll.registry(), WAKE)?;
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
