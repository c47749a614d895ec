//! [`block_on`]: drive a future to completion on the calling thread.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

thread_local! {
    /// How many `block_on` calls are running on this thread.
    static BLOCKING: Cell<usize> = const { Cell::new(0) };
}

/// Whether the calling code runs inside a [`block_on`] on this thread: then
/// a host loop of this thread is blocked, and its timers would not fire.
pub(crate) fn is_blocking() -> bool {
    BLOCKING.get() > 0
}

/// Counts one `block_on` on this thread until dropped.
struct Blocking;

impl Blocking {
    fn enter() -> Self {
        BLOCKING.set(BLOCKING.get() + 1);
        Blocking
    }
}

impl Drop for Blocking {
    fn drop(&mut self) {
        BLOCKING.set(BLOCKING.get() - 1);
    }
}

/// Wakes a parked thread; remembers the wake so that none is lost between a
/// poll and the park.
pub(crate) struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
}

impl ThreadWaker {
    /// A waker for the calling thread.
    pub(crate) fn current() -> Arc<Self> {
        Arc::new(ThreadWaker {
            thread: thread::current(),
            woken: AtomicBool::new(false),
        })
    }

    /// Takes the pending wake-up, if any.
    pub(crate) fn take_woken(&self) -> bool {
        self.woken.swap(false, Ordering::AcqRel)
    }

    /// Parks until woken or `timeout` passes (`None`: no timeout).
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        if self.take_woken() {
            return;
        }
        match timeout {
            Some(timeout) => thread::park_timeout(timeout),
            None => thread::park(),
        }
        self.woken.store(false, Ordering::Release);
    }
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }
}

/// Runs `future` to completion on the calling thread, parking it while the
/// future waits.
///
/// Tasks of other dispatchers keep running meanwhile; but calling it on a host
/// loop's thread blocks that loop, so a future that waits for a task on Main
/// never completes there. Use it in `main`, tests, and threads of your own.
/// A `delay` polled inside it waits on the fallback timer thread, even on a
/// loop's thread (whose own timers cannot fire while it blocks). Called
/// inside an in-place run (an `Unconfined` or `Main.immediate` task), it
/// runs the in-place runs queued behind that one while it waits, as
/// kotlinx's `runBlocking` runs the thread's event loop.
///
/// ```
/// # use dispatchers::block_on;
/// assert_eq!(block_on(async { 1 + 1 }), 2);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let _blocking = Blocking::enter();
    let parker = ThreadWaker::current();
    let waker = Waker::from(parker.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        if run_queued_work() {
            // Check the future after each batch: it may be ready now, and a
            // queued task that yields forever must not keep it from being
            // polled.
            continue;
        }
        parker.park(None);
    }
}

/// Runs one batch of what waits behind the caller on this thread, before a
/// wait (`block_on`, `LoopHost`'s) parks it: inside an in-place run or a
/// cancellation (a destructor that blocks), what it waits for may be queued
/// behind it. That is the in-place runs queued behind the running one, the
/// cancellations queued behind the running one, and the `!Send` tasks sent
/// back to this thread. Returns whether anything ran: the caller then checks
/// what it waits for before it parks.
pub(crate) fn run_queued_work() -> bool {
    let ran_in_place = crate::unconfined::run_queued_in_place();
    let ran_cancellations = crate::task::run_queued_cancellations();
    ran_in_place || ran_cancellations
}
