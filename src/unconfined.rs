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
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::LazyLock;

use crate::dispatch::{Dispatch, Dispatcher};
use crate::error::ParallelismError;
use crate::task::Runnable;

struct Trampoline {
    active: Cell<bool>,
    queue: RefCell<VecDeque<Runnable>>,
}

thread_local! {
    static TRAMPOLINE: Trampoline = const {
        Trampoline {
            active: Cell::new(false),
            queue: RefCell::new(VecDeque::new()),
        }
    };
}

/// Runs `runnable` on this thread now, or, inside an in-place run, right
/// after it (see the module docs).
pub(crate) fn run_in_place(runnable: Runnable) {
    let queued = TRAMPOLINE.try_with(|t| {
        if t.active.get() {
            t.queue.borrow_mut().push_back(runnable);
            None
        } else {
            t.active.set(true);
            Some(runnable)
        }
    });
    match queued {
        Ok(Some(first)) => drive(first),
        Ok(None) => {}
        // `try_with` fails only while the thread's locals are being destroyed;
        // the runnable was dropped with the closure that never ran, which
        // cancels the task.
        Err(_) => {}
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
            let _ = TRAMPOLINE.try_with(|t| t.active.set(false));
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
