//! Creating tasks: the future wrapper that tracks the current dispatcher and
//! catches panics, and the one place this crate calls into `unsafe` code.
//!
//! # Safety invariants
//!
//! Tasks are created with `async_task::Builder::spawn_unchecked` (in
//! [`spawn_raw`], the one `unsafe` call) so that the
//! wrapper future may borrow the task's own metadata ([`TaskHeader`]), which
//! async-task keeps alive, pinned in the task allocation, for as long as the
//! future exists (`spawn_unchecked`'s `F: FnOnce(&'a M) -> Fut, Fut: 'a`).
//! The other conditions of `spawn_unchecked` are met as follows:
//!
//! - the schedule function is `Send + Sync + 'static` (it owns a `Dispatcher`);
//! - `Send` tasks: the future and its output are `Send + 'static`;
//! - `!Send` tasks: the header records the spawning thread, and
//!   [`Runnable::run`](super::Runnable::run) and the runnable's drop never poll
//!   or drop such a future on another thread (they leak it instead), so the
//!   future is only ever used and dropped on its own thread.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use async_task::{Builder, ScheduleInfo, WithInfo};

use super::header::{Failure, TaskHeader};
use super::join::Task;
use super::runnable::{RawRunnable, Runnable};
use crate::context;
use crate::dispatch::Dispatcher;
use crate::thread_id::current_thread_id;

/// Spawns a `Send` future on `dispatcher`.
pub(crate) fn spawn<F>(
    dispatcher: &Dispatcher,
    name: Option<Arc<str>>,
    future: F,
) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let header = TaskHeader::new(name, None);
    let (raw, task) = spawn_raw(dispatcher, header, future);
    first_schedule(dispatcher, raw);
    Task::new(task)
}

/// Spawns a `!Send` future on `dispatcher`, whose thread must be this one
/// (checked by the caller).
pub(crate) fn spawn_local<F>(
    dispatcher: &Dispatcher,
    name: Option<Arc<str>>,
    future: F,
) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let header = TaskHeader::new(name, Some(current_thread_id()));
    let (raw, task) = spawn_raw(dispatcher, header, future);
    first_schedule(dispatcher, raw);
    Task::new(task)
}

type RawTask<T> = async_task::Task<Result<T, Failure>, TaskHeader>;

/// Allocates the task. Callers uphold the module's invariants: `future` is
/// `Send` unless `header` names its home thread.
#[allow(unsafe_code)]
fn spawn_raw<'a, F>(
    dispatcher: &Dispatcher,
    header: TaskHeader,
    future: F,
) -> (RawRunnable, RawTask<F::Output>)
where
    F: Future + 'a,
{
    let id = dispatcher.id();
    let wrap = move |header: &'a TaskHeader| guarded(header, id, future);
    let builder = Builder::new().metadata(header);
    // SAFETY: the module docs: the future borrows only the task's metadata,
    // which async-task keeps alive and in place as long as the future; the
    // schedule function is Send + Sync + 'static; a `Send` task's future and
    // output are Send + 'static (`spawn`'s bounds), and a `!Send` task's
    // header pins it to its thread, which `Runnable` enforces.
    unsafe { builder.spawn_unchecked(wrap, schedule_fn(dispatcher)) }
}

/// The task's future: the user's future, polled with the current dispatcher
/// recorded and panics caught; a cancelled task completes unpolled.
async fn guarded<F: Future>(
    header: &TaskHeader,
    dispatcher_id: usize,
    future: F,
) -> Result<F::Output, Failure> {
    let mut future = pin!(future);
    poll_fn(|cx| {
        if header.is_cancelled() {
            return Poll::Ready(Err(Failure::Cancelled));
        }
        let _current = context::enter(dispatcher_id);
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(header.on_panic(payload))),
        }
    })
    .await
}

/// The schedule function of a task on `dispatcher`: used for every wake-up.
fn schedule_fn(
    dispatcher: &Dispatcher,
) -> impl async_task::Schedule<TaskHeader> + Send + Sync + 'static {
    let dispatcher = dispatcher.clone();
    WithInfo(move |raw: RawRunnable, info: ScheduleInfo| {
        let runnable = Runnable::from_raw(raw);
        // A Dispatch that panics must not unwind into whoever called the waker.
        let result = catch_unwind(AssertUnwindSafe(|| {
            schedule(&dispatcher, runnable, info.woken_while_running)
        }));
        if let Err(payload) = result {
            crate::panic::report_dispatch_panic(dispatcher.name(), &*payload);
        }
    })
}

/// The first schedule of a new task, on the spawning thread: a panicking
/// `Dispatch` (such as a missing Main) unwinds into the caller of `spawn`.
fn first_schedule(dispatcher: &Dispatcher, raw: RawRunnable) {
    schedule(dispatcher, Runnable::from_raw(raw), false);
}

/// Where a runnable goes: back of the queue on a yield, in place through the
/// trampoline when the dispatcher says no dispatch is needed, else dispatched.
fn schedule(dispatcher: &Dispatcher, runnable: Runnable, yielded: bool) {
    let inner = dispatcher.as_dispatch();
    if yielded {
        inner.dispatch_yield(runnable);
    } else if !inner.is_dispatch_needed() {
        crate::unconfined::run_in_place(runnable);
    } else {
        inner.dispatch(runnable);
    }
}
