//! The loop thread's own run queue: what the loop's thread dispatches to its
//! Main (a task spawned or woken by another task of the loop, a timer's
//! task, a `yield_now`) is queued here, in a thread-local, with no atomic
//! operation, instead of on the shared MPSC queue.
//!
//! # Order
//!
//! Main is FIFO (the crate's ordering rule 1), across both queues. The loop
//! thread queues locally only while the shared queue is **empty**, and
//! `run_pending` takes the local queue first. So every task in the local
//! queue was dispatched before every task in the shared one: when it was
//! queued the shared queue was empty, so what is there now came later. A
//! dispatch from another thread that is still on its way when the loop
//! finds the shared queue empty is simply ordered after the loop's.
//!
//! # Lifetime
//!
//! The engine opens its queue on its loop thread and closes it at shutdown,
//! cancelling what is left; from then on the loop thread's dispatches take
//! the shared path, which rejects them. A queue is found only on its own
//! thread, so finding it is also the check that the caller is the loop.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::task::Runnable;

thread_local! {
    /// The local queues of the engines of this thread (usually one).
    static QUEUES: RefCell<Vec<Queue>> = const { RefCell::new(Vec::new()) };
}

/// Ids of queues, unique for the process's life.
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

struct Queue {
    id: usize,
    runnables: VecDeque<Runnable>,
}

/// An engine's handle on its local queue (see the module docs): `Sync`, but
/// only its loop thread finds the queue.
#[derive(Debug)]
pub(crate) struct LocalQueue {
    id: usize,
}

impl LocalQueue {
    /// Opens a queue on the calling (the loop's) thread.
    pub(crate) fn open() -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let _ = QUEUES.try_with(|queues| {
            queues.borrow_mut().push(Queue {
                id,
                runnables: VecDeque::new(),
            });
        });
        LocalQueue { id }
    }

    /// Closes the queue, on the loop's thread, and returns what it held.
    pub(crate) fn close(&self) -> VecDeque<Runnable> {
        QUEUES
            .try_with(|queues| {
                let mut queues = queues.borrow_mut();
                let index = queues.iter().position(|q| q.id == self.id)?;
                Some(queues.swap_remove(index).runnables)
            })
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Queues `runnable` when called on the loop's thread with the queue
    /// open; returns whether the queue was empty. Elsewhere hands it back.
    pub(crate) fn push(&self, runnable: Runnable) -> Result<bool, Runnable> {
        let mut runnable = Some(runnable);
        let pushed = self.with(|queue| {
            let was_empty = queue.is_empty();
            // `push_back`, not `extend` over the `Option`, whose generic
            // path was a third of this call's instructions.
            if let Some(runnable) = runnable.take() {
                queue.push_back(runnable);
            }
            was_empty
        });
        match (pushed, runnable) {
            (Some(was_empty), _) => Ok(was_empty),
            (None, Some(runnable)) => Err(runnable),
            (None, None) => unreachable!("a runnable is queued or handed back"),
        }
    }

    /// The next local runnable, on the loop's thread.
    pub(crate) fn pop(&self) -> Option<Runnable> {
        self.with(VecDeque::pop_front).flatten()
    }

    /// How many runnables wait locally (0 off the loop's thread).
    pub(crate) fn len(&self) -> usize {
        self.with(|queue| queue.len()).unwrap_or(0)
    }

    fn with<R>(&self, f: impl FnOnce(&mut VecDeque<Runnable>) -> R) -> Option<R> {
        QUEUES
            .try_with(|queues| {
                let mut queues = queues.borrow_mut();
                let queue = queues.iter_mut().find(|q| q.id == self.id)?;
                Some(f(&mut queue.runnables))
            })
            .ok()
            .flatten()
    }
}
