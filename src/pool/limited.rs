//! [`LimitedView`]: the generic `limited_parallelism(n)` view of any
//! dispatcher.
//!
//! A view keeps its own queue ([`ViewQueue`]) and runs its tasks on the
//! dispatcher below it (`inner`) through at most `n` *workers*: a worker is a
//! task spawned on `inner` that holds one of the view's permits and runs the
//! view's tasks one after the other. After [`BATCH`] of them it yields (goes
//! to the back of `inner`'s queue, keeping its permit), so a busy view
//! cannot starve the other tasks of `inner`. A worker that finds the view's
//! queue empty gives its permit back and ends; the next dispatch starts a new
//! one. The permit hand-off is described (and loom-checked) in
//! [`permits`](super::permits).
//!
//! If `inner` cancels a worker (it rejected it: a fixed pool that was shut
//! down), the view closes: its queued tasks and every later dispatch are
//! cancelled, as `inner` would have done with them.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use super::permits::{MAX_LIMIT, Pushed, ViewQueue};
use super::workers::run_isolated;
use crate::context::yield_now;
use crate::dispatch::{Dispatch, Dispatcher};
use crate::error::ParallelismError;
use crate::task::{Runnable, TaskBuilder};

/// How many tasks a worker runs before it yields to the other tasks of the
/// dispatcher below.
pub(crate) const BATCH: usize = 32;

/// A view of `inner` that runs at most `limit` of its tasks at once.
pub(crate) struct LimitedView {
    core: Arc<ViewCore>,
    name: String,
    /// For `Dispatchers::io()`: `limited_parallelism` makes a new view of
    /// this dispatcher (elastic, independent of this view's limit) instead of
    /// a view of this view.
    elastic_base: Option<Dispatcher>,
}

struct ViewCore {
    queue: ViewQueue<Runnable>,
    inner: Dispatcher,
    limit: usize,
    /// The name of the worker tasks, for panic reports.
    worker_name: Arc<str>,
}

impl LimitedView {
    /// A view of `inner` named `name`, with at most `limit` tasks running
    /// (clamped to what the permit word can count).
    pub(crate) fn new(inner: Dispatcher, limit: NonZeroUsize, name: String) -> Self {
        let limit = limit.get().min(MAX_LIMIT);
        LimitedView {
            core: Arc::new(ViewCore {
                queue: ViewQueue::new(limit),
                worker_name: format!("{name} worker").into(),
                inner,
                limit,
            }),
            name,
            elastic_base: None,
        }
    }

    /// A view whose own `limited_parallelism(n)` views are new views of
    /// `inner` (see the field).
    pub(crate) fn elastic(inner: Dispatcher, limit: NonZeroUsize, name: String) -> Self {
        let mut view = LimitedView::new(inner.clone(), limit, name);
        view.elastic_base = Some(inner);
        view
    }
}

/// The generic view used by [`Dispatch::limited_parallelism`]'s default.
pub(crate) fn limited_view(inner: Dispatcher, n: NonZeroUsize) -> Dispatcher {
    let name = view_name(inner.name(), n);
    Dispatcher::new(LimitedView::new(inner, n, name))
}

/// `"{inner}.limited_parallelism({n})"`.
pub(crate) fn view_name(inner: &str, n: NonZeroUsize) -> String {
    format!("{inner}.limited_parallelism({n})")
}

impl Dispatch for LimitedView {
    fn dispatch(&self, runnable: Runnable) {
        match self.core.queue.push(runnable) {
            Pushed::StartWorker => start_worker(&self.core),
            Pushed::Queued => {}
            // Closed: dropping the runnable cancels the task.
            Pushed::Rejected(runnable) => drop(runnable),
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn is_closed(&self) -> bool {
        self.core.queue.is_closed() || self.core.inner.is_closed()
    }

    fn limited_parallelism(
        &self,
        this: &Dispatcher,
        n: NonZeroUsize,
    ) -> Result<Dispatcher, ParallelismError> {
        if let Some(base) = &self.elastic_base {
            let name = view_name(&self.name, n);
            return Ok(Dispatcher::new(LimitedView::new(base.clone(), n, name)));
        }
        if n.get() >= self.core.limit {
            // Already at most n at once.
            return Ok(this.clone());
        }
        Ok(limited_view(this.clone(), n))
    }
}

impl fmt::Debug for LimitedView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitedView")
            .field("name", &self.name)
            .field("limit", &self.core.limit)
            .field("running", &self.core.queue.running())
            .finish()
    }
}

/// One permit of a view, held by a worker; dropped while held, it means
/// `inner` cancelled the worker.
struct Permit {
    core: Arc<ViewCore>,
    held: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.held {
            self.core.on_worker_cancelled();
        }
    }
}

impl ViewCore {
    /// `inner` rejected a worker: close the view and cancel its tasks.
    fn on_worker_cancelled(&self) {
        self.queue.close();
        self.queue.release();
        while let Some(runnable) = self.queue.take_closed() {
            drop(runnable);
        }
    }
}

/// Starts a worker for a permit the caller took.
fn start_worker(core: &Arc<ViewCore>) {
    let permit = Permit {
        core: core.clone(),
        held: true,
    };
    TaskBuilder::new()
        .name(core.worker_name.clone())
        .spawn(&core.inner, run_worker(permit))
        .detach();
}

/// A worker: runs the view's tasks until the queue is empty, yielding to
/// `inner`'s other tasks after each batch. Once `inner` has shut down it
/// stops: dropping the permit it still holds closes the view and cancels
/// what is queued, as `inner` does with its own queued tasks.
async fn run_worker(mut permit: Permit) {
    loop {
        for _ in 0..BATCH {
            if permit.core.inner.is_closed() {
                return;
            }
            match permit.core.queue.next() {
                Some(runnable) => run_isolated(runnable),
                None => {
                    // `next` gave the permit back.
                    permit.held = false;
                    return;
                }
            }
        }
        yield_now().await;
    }
}
