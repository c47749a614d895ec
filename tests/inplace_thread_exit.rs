//! In-place runs while the thread's locals are destroyed: a destructor of a
//! thread-local that wakes an `Unconfined` task resumes it in place, as any
//! other wake-up on that thread would, rather than cancelling it.

#[path = "support/signal.rs"]
mod signal;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dispatchers::{Dispatchers, block_on};
use signal::Signal;
use watchdog::watchdog;

/// Sends its signal when dropped.
struct SendOnDrop(Signal);

impl Drop for SendOnDrop {
    fn drop(&mut self) {
        self.0.send();
    }
}

thread_local! {
    static SENDER: RefCell<Option<SendOnDrop>> = const { RefCell::new(None) };
}

#[test]
fn a_thread_local_destructor_that_wakes_an_unconfined_task_resumes_it() {
    watchdog("wake-at-thread-exit", Duration::from_secs(10), || {
        let resumed_on = Arc::new(AtomicUsize::new(0));
        let signal = Signal::default();
        let sender = signal.clone();
        let count = resumed_on.clone();
        let task = std::thread::spawn(move || {
            // First touched before the trampoline: destroyed after it.
            SENDER.with(|slot| *slot.borrow_mut() = Some(SendOnDrop(sender)));
            let unconfined = Dispatchers::unconfined();
            // Nested in-place runs: the trampoline queues one.
            let inner = unconfined.clone();
            block_on(unconfined.spawn(async move { inner.spawn(async {}).detach() })).unwrap();
            unconfined.spawn(async move {
                signal.await;
                count.fetch_add(1, Ordering::SeqCst);
                42
            })
        })
        .join()
        .unwrap();
        assert_eq!(block_on(task).unwrap(), 42, "resumed, not cancelled");
        assert_eq!(resumed_on.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_chain_of_resumes_at_thread_exit_runs_through_the_trampoline() {
    // The first resume happens in a thread-local's destructor; each resumed
    // task wakes the next: a chain of in-place runs at the thread's exit,
    // queued rather than nested (a small stack would overflow otherwise).
    watchdog("chain-at-thread-exit", Duration::from_secs(20), || {
        const DEPTH: usize = 100_000;
        let done = Signal::default();
        let last = done.clone();
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let first = Signal::default();
                SENDER.with(|slot| *slot.borrow_mut() = Some(SendOnDrop(first.clone())));
                let unconfined = Dispatchers::unconfined();
                let inner = unconfined.clone();
                block_on(unconfined.spawn(async move { inner.spawn(async {}).detach() })).unwrap();
                let mut previous = first;
                for _ in 0..DEPTH {
                    let next = Signal::default();
                    let (wait, send) = (previous, next.clone());
                    unconfined
                        .spawn(async move {
                            wait.await;
                            send.send();
                        })
                        .detach();
                    previous = next;
                }
                let end = previous;
                unconfined
                    .spawn(async move {
                        end.await;
                        last.send();
                    })
                    .detach();
            })
            .unwrap()
            .join()
            .unwrap();
        block_on(done);
    });
}
