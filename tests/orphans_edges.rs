//! `!Send` runnables sent back to their thread (see `orphans.rs`): the
//! destructors that the home thread runs when it cancels them may block on,
//! or cause, other cancellations of that thread, at any of the places it
//! cancels them, its exit included.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError, mpsc};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use dispatchers::{Budget, Dispatch, Dispatcher, LoopHost, Runnable, Task, block_on};

/// How long a scenario may take before it counts as hung.
const WATCHDOG: Duration = Duration::from_secs(20);

/// Keeps each runnable for the test to drop elsewhere, in an order of its
/// choosing. It claims the caller's thread, so `spawn_local` accepts it.
#[derive(Clone, Default)]
struct Keeps(Arc<Mutex<Vec<Runnable>>>);

impl Keeps {
    fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(self.clone())
    }

    /// Drops the kept runnables on another thread, the last kept first, and
    /// returns once they are all dropped (sent back to their own thread).
    fn drop_elsewhere_last_first(&self) {
        let mut runnables = std::mem::take(&mut *self.0.lock().unwrap());
        thread::spawn(move || {
            while let Some(runnable) = runnables.pop() {
                drop(runnable);
            }
        })
        .join()
        .expect("the dropping thread");
    }
}

impl Dispatch for Keeps {
    fn dispatch(&self, runnable: Runnable) {
        self.0.lock().unwrap().push(runnable);
    }

    fn is_current_thread(&self) -> bool {
        true
    }
}

/// When dropped, blocks on its task, as a destructor that waits for a task
/// it owns to be cancelled does.
struct BlocksOnDrop(Option<Task<()>>, mpsc::Sender<&'static str>);

impl Drop for BlocksOnDrop {
    fn drop(&mut self) {
        let task = self.0.take().expect("the task");
        let cancelled = block_on(task).unwrap_err().is_cancelled();
        let _ = self.1.send(if cancelled { "cancelled" } else { "other" });
    }
}

/// Spawns, on `keeps`, a `!Send` task that never completes (`second`), then
/// one whose future blocks on `second` when dropped (`first`); returns
/// `first`'s `Task`. Dropped elsewhere last first, both are sent back to
/// this thread in the order `first`, `second`.
fn first_blocks_on_second(keeps: &Keeps, report: mpsc::Sender<&'static str>) -> Task<()> {
    let dispatcher = keeps.dispatcher();
    let second = dispatcher.spawn_local(async {
        let _not_send = std::rc::Rc::new(());
        std::future::pending::<()>().await;
    });
    let guard = BlocksOnDrop(Some(second), report);
    dispatcher.spawn_local(async move {
        let _guard = guard;
        let _not_send = std::rc::Rc::new(());
        std::future::pending::<()>().await;
    })
}

/// Says when the thread-locals of its thread have all been destroyed (the
/// first one made on a thread is the last one destroyed).
struct Ended(mpsc::Sender<()>);

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

thread_local! {
    static ENDED: Cell<Option<Ended>> = const { Cell::new(None) };
}

/// Runs `scenario` on a thread of its own and waits for that thread to end,
/// its thread-locals destroyed, failing after [`WATCHDOG`].
fn on_a_thread_that_must_end(what: &str, scenario: impl FnOnce() + Send + 'static) {
    let (ended, has_ended) = mpsc::channel();
    let thread = thread::spawn(move || {
        ENDED.set(Some(Ended(ended)));
        scenario();
    });
    if has_ended.recv_timeout(WATCHDOG).is_err() {
        panic!("watchdog: {what} hung");
    }
    thread.join().expect("the scenario's thread");
}

#[test]
fn a_destructor_that_blocks_on_a_task_sent_back_with_it_is_served_by_block_on() {
    let (report, reports) = mpsc::channel();
    on_a_thread_that_must_end("block_on cancelling the tasks sent back", move || {
        let keeps = Keeps::default();
        let first = first_blocks_on_second(&keeps, report);
        keeps.drop_elsewhere_last_first();
        // Cancels `first`, whose destructor blocks on `second`, sent back
        // with it: that `block_on` must cancel `second` too.
        assert!(block_on(first).unwrap_err().is_cancelled());
    });
    assert_eq!(reports.try_recv(), Ok("cancelled"));
}

#[test]
fn a_destructor_that_blocks_on_a_task_sent_back_with_it_is_served_in_run_pending() {
    let (report, reports) = mpsc::channel();
    on_a_thread_that_must_end("run_pending cancelling the tasks sent back", move || {
        let host = LoopHost::new("orphans-edges");
        let keeps = Keeps::default();
        let first = first_blocks_on_second(&keeps, report);
        keeps.drop_elsewhere_last_first();
        host.run_pending(Budget::unlimited());
        assert!(first.is_finished(), "cancelled by run_pending");
    });
    assert_eq!(reports.try_recv(), Ok("cancelled"));
}

#[test]
fn a_destructor_that_blocks_on_a_task_sent_back_with_it_is_served_at_thread_exit() {
    let (report, reports) = mpsc::channel();
    on_a_thread_that_must_end("the thread's exit", move || {
        let keeps = Keeps::default();
        let first = first_blocks_on_second(&keeps, report);
        keeps.drop_elsewhere_last_first();
        // Exits without waiting: its mailbox is cancelled on the way out.
        first.detach();
    });
    assert_eq!(reports.try_recv(), Ok("cancelled"));
}

/// Runs its first runnable in place, then, once closed, drops (rejects)
/// each one on the calling thread, as a loop that shut down does.
#[derive(Clone, Default)]
struct ClosesAfterFirst(Arc<AtomicBool>);

impl Dispatch for ClosesAfterFirst {
    fn dispatch(&self, runnable: Runnable) {
        if self.0.swap(true, Ordering::SeqCst) {
            drop(runnable);
        } else {
            runnable.run();
        }
    }

    fn is_current_thread(&self) -> bool {
        true
    }
}

/// Wakes a task when dropped, holding a lock meanwhile.
struct WakesUnderLock(Arc<Mutex<()>>, Waker);

impl Drop for WakesUnderLock {
    fn drop(&mut self) {
        let _held = self.0.lock().unwrap();
        self.1.wake_by_ref();
    }
}

/// Takes the lock when dropped; says whether it was held (by the destructor
/// that caused this one).
struct TakesLock(Arc<Mutex<()>>, mpsc::Sender<&'static str>);

impl Drop for TakesLock {
    fn drop(&mut self) {
        let outcome = match self.0.try_lock() {
            Ok(_) => "after",
            // With `lock()`, this thread would deadlock on itself.
            Err(TryLockError::WouldBlock) => "inside the destructor that holds the lock",
            Err(TryLockError::Poisoned(_)) => "poisoned",
        };
        let _ = self.1.send(outcome);
    }
}

#[test]
fn a_cancellation_caused_at_thread_exit_runs_after_the_destructor_that_caused_it() {
    let (report, reports) = mpsc::channel();
    on_a_thread_that_must_end("the thread's exit", move || {
        let lock = Arc::new(Mutex::new(()));
        // A task whose waker the other's destructor wakes; its dispatcher
        // rejects it by then, which cancels it on this thread.
        let waker = Rc::new(Cell::new(None::<Waker>));
        Dispatcher::new(ClosesAfterFirst::default())
            .spawn_local({
                let (guard, waker) = (TakesLock(lock.clone(), report), waker.clone());
                async move {
                    let _guard = guard;
                    std::future::poll_fn(|cx| {
                        waker.set(Some(cx.waker().clone()));
                        Poll::<()>::Pending
                    })
                    .await;
                }
            })
            .detach();
        let waker = waker.take().expect("polled in place");
        // Any `block_on` that waits: the thread's cancellation queue is now
        // in use, a thread-local made after the mailbox's.
        block_on(dispatchers::yield_now());
        // A task sent back, whose destructor wakes the first under the lock.
        let keeps = Keeps::default();
        keeps
            .dispatcher()
            .spawn_local({
                let guard = WakesUnderLock(lock, waker);
                async move {
                    let _guard = guard;
                    let _not_send = std::rc::Rc::new(());
                    std::future::pending::<()>().await;
                }
            })
            .detach();
        keeps.drop_elsewhere_last_first();
        // Exits: the mailbox is cancelled on the way out.
    });
    assert_eq!(reports.try_recv(), Ok("after"));
}
