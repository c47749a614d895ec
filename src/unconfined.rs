//! `Dispatchers::unconfined()` and the per-thread trampoline that every
//! in-place run goes through (Unconfined, and `Main.immediate` on the main
//! thread).
//!
//! # The trampoline
//!
//! Running a resumed task in place, inside the waker call, would nest one
//! stack frame per resume: a chain of a million tasks each waking the next
//! would overflow the stack. So the first in-place run on a thread becomes the
//! *trampoline*: it runs the task, then every task that was queued for an
//! in-place run meanwhile (FIFO), before returning. An in-place run requested
//! while the trampoline is active is queued behind it instead of nested. This
//! is kotlinx's per-thread event loop for `Unconfined` and `Main.immediate`.
//!
//! One exception, as in kotlinx's `runBlocking`: a run that blocks in
//! [`block_on`](crate::block_on) (or a `LoopHost`'s wait) runs the runs queued
//! behind it while it waits, a batch at a time, checking its own future in
//! between; those then run inside the blocked one (and any lock it holds).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::LazyLock;

use crate::dispatch::{Dispatch, Dispatcher};
use crate::error::ParallelismError;
use crate::task::Runnable;

/// The trampoline of a thread. No destructor, so that it stays usable while
/// the thread's other locals are destroyed: one of their destructors may
/// wake a task whose resume runs in place (it would otherwise be cancelled
/// instead of resumed). The queue's buffer is freed when the thread exits by
/// [`FreeQueueAtExit`], or, for one used after that, when its run ends.
struct Trampoline {
    active: Cell<bool>,
    /// Empty whenever `active` is false.
    queue: RefCell<ManuallyDrop<VecDeque<Runnable>>>,
    /// Set once [`FreeQueueAtExit`] ran: the thread is exiting.
    exiting: Cell<bool>,
}

thread_local! {
    static TRAMPOLINE: Trampoline = const {
        Trampoline {
            active: Cell::new(false),
            queue: RefCell::new(ManuallyDrop::new(VecDeque::new())),
            exiting: Cell::new(false),
        }
    };
    /// Registered (first touched) when the queue first allocates.
    static FREE_AT_EXIT: FreeQueueAtExit = const { FreeQueueAtExit };
}

/// Frees the trampoline's queue buffer when the thread exits (see
/// [`Trampoline`]).
struct FreeQueueAtExit;

impl Drop for FreeQueueAtExit {
    fn drop(&mut self) {
        TRAMPOLINE.with(|t| {
            t.exiting.set(true);
            if !t.active.get() {
                release_queue(t);
            }
        });
    }
}

/// Frees the (empty) queue's buffer.
fn release_queue(t: &Trampoline) {
    let queue = std::mem::take(&mut **t.queue.borrow_mut());
    drop(queue);
}

/// Queues `runnable` behind the active run.
fn push(t: &Trampoline, runnable: Runnable) {
    let mut queue = t.queue.borrow_mut();
    if queue.capacity() == 0 && !t.exiting.get() {
        // The buffer about to be allocated is freed at the thread's exit.
        let _ = FREE_AT_EXIT.try_with(|_| ());
    }
    queue.push_back(runnable);
}

/// Runs `runnable` on this thread now, or, inside an in-place run, right
/// after it (see the module docs).
pub(crate) fn run_in_place(runnable: Runnable) {
    // The trampoline has no destructor: it is there until the thread ends.
    let first = TRAMPOLINE.with(|t| {
        if t.active.get() {
            push(t, runnable);
            None
        } else {
            t.active.set(true);
            Some(runnable)
        }
    });
    if let Some(first) = first {
        drive(first);
    }
}

/// Inside an in-place run: runs the runs queued behind it when the call
/// starts (not those they queue, such as a task that yields), for a
/// `block_on` in it that may wait for one of them, as kotlinx's
/// `runBlocking` runs the thread's event loop one event at a time. Returns
/// whether any was queued: the caller then checks its own future again
/// before it parks (what it waits for may have completed meanwhile, and a
/// nested `block_on` may have taken its wake-up). Outside an in-place run,
/// does nothing.
pub(crate) fn run_queued_in_place() -> bool {
    let queued = TRAMPOLINE.try_with(|t| t.queue.borrow().len()).unwrap_or(0);
    let mut first_panic = None;
    for _ in 0..queued {
        let Some(runnable) = TRAMPOLINE
            .try_with(|t| t.queue.borrow_mut().pop_front())
            .ok()
            .flatten()
        else {
            break;
        };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runnable.run())) {
            first_panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = first_panic {
        resume_unwind(payload);
    }
    queued > 0
}

/// Runs `first` and then the trampoline's queue until it is empty.
fn drive(first: Runnable) {
    struct Deactivate;
    impl Drop for Deactivate {
        fn drop(&mut self) {
            TRAMPOLINE.with(|t| {
                t.active.set(false);
                if t.exiting.get() {
                    release_queue(t);
                }
            });
        }
    }
    let _deactivate = Deactivate;
    let mut first_panic = None;
    let mut next = Some(first);
    while let Some(runnable) = next {
        // `run` catches the future's panics; this catches a destructor's, so
        // that the tasks queued behind it still run.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runnable.run())) {
            first_panic.get_or_insert(payload);
        }
        next = TRAMPOLINE
            .try_with(|t| t.queue.borrow_mut().pop_front())
            .ok()
            .flatten();
    }
    if let Some(payload) = first_panic {
        resume_unwind(payload);
    }
}

/// The `Unconfined` dispatcher: runs a task in place on whatever thread starts
/// or resumes it.
#[derive(Debug)]
struct Unconfined;

impl Dispatch for Unconfined {
    fn dispatch(&self, runnable: Runnable) {
        run_in_place(runnable);
    }

    fn is_dispatch_needed(&self) -> bool {
        false
    }

    fn name(&self) -> &str {
        "Unconfined"
    }

    fn limited_parallelism(
        &self,
        _this: &Dispatcher,
        _n: NonZeroUsize,
    ) -> Result<Dispatcher, ParallelismError> {
        Err(ParallelismError::Unsupported {
            dispatcher: "Unconfined".to_owned(),
        })
    }
}

/// The one `Unconfined` dispatcher.
pub(crate) fn unconfined() -> Dispatcher {
    static UNCONFINED: LazyLock<Dispatcher> = LazyLock::new(|| Dispatcher::new(Unconfined));
    UNCONFINED.clone()
}
