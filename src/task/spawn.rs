//! Creating tasks: the future wrapper that tracks the current dispatcher and
//! catches panics, and the one place this crate calls into `unsafe` code.
//!
//! # Safety invariants
//!
//! Tasks are created with `async_task::Builder::spawn_unchecked` (in
//! [`spawn_raw`]; the only other `unsafe` is the pin projection of
//! [`Guarded`]) so that the
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

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_task::{Builder, ScheduleInfo, WithInfo};

use super::header::{Failure, Payload, TaskHeader};
use super::join::Task;
use super::live::{Joined, Membership};
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
///
/// The user's future is dropped here, in the last poll, with a panic of its
/// destructor caught like a panic of its poll: it goes to the `Task` (or the
/// handler) and never unwinds into the dispatcher that ran the task.
///
/// The first time a poll returns `Pending`, the task joins the live set of
/// its host loop, if its dispatcher is a loop's Main (see [`live`](super::live));
/// the membership ends with this future.
///
/// A struct rather than an `async fn`: an `async fn` keeps its argument and
/// the pinned local it is moved into as two fields, which stored the user's
/// future twice in every task.
fn guarded<F: Future>(header: &TaskHeader, dispatcher_id: usize, future: F) -> Guarded<'_, F> {
    Guarded {
        header,
        dispatcher_id,
        membership: None,
        suspended_before: false,
        future: Some(future),
    }
}

/// The future of [`guarded`].
struct Guarded<'a, F> {
    header: &'a TaskHeader,
    dispatcher_id: usize,
    membership: Option<Membership>,
    suspended_before: bool,
    /// Structurally pinned: never moved while `Guarded` is pinned.
    future: Option<F>,
}

impl<F: Future> Future for Guarded<'_, F> {
    type Output = Result<F::Output, Failure>;

    #[allow(unsafe_code)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is pinned structurally and the other fields are
        // not: `Guarded` has no `Drop` impl, never moves `future` out (it is
        // dropped in place with `Pin::set`), and is `Unpin` only when `F` is
        // (the auto impl).
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above; `this.future` is not moved.
        let mut future = unsafe { Pin::new_unchecked(&mut this.future) };
        let header = this.header;
        if header.is_cancelled()
            || this
                .membership
                .as_ref()
                .is_some_and(Membership::is_cancelled)
        {
            return Poll::Ready(finish(header, future, Err(Failure::Cancelled)));
        }
        let _current = context::enter(this.dispatcher_id);
        let polled = catch_unwind(AssertUnwindSafe(|| match future.as_mut().as_pin_mut() {
            Some(future) => future.poll(cx),
            None => unreachable!("a finished task is not polled again"),
        }));
        match polled {
            Ok(Poll::Ready(value)) => Poll::Ready(finish(header, future, Ok(value))),
            Ok(Poll::Pending) => {
                if !this.suspended_before {
                    this.suspended_before = true;
                    match Membership::join(this.dispatcher_id, cx.waker()) {
                        Joined::Member(member) => this.membership = Some(member),
                        Joined::Untracked => {}
                        // Its loop shut down in this very poll: nothing
                        // will wake it.
                        Joined::Closed => {
                            return Poll::Ready(finish(header, future, Err(Failure::Cancelled)));
                        }
                    }
                }
                Poll::Pending
            }
            Err(payload) => {
                // A second panic, dropping a future that panicked, is dropped.
                let _ = drop_future(future);
                Poll::Ready(Err(header.on_panic(payload)))
            }
        }
    }
}

/// Drops the user's future, then returns `result`, or the panic of the
/// future's destructor instead.
fn finish<T, F>(
    header: &TaskHeader,
    future: Pin<&mut Option<F>>,
    result: Result<T, Failure>,
) -> Result<T, Failure> {
    match drop_future(future) {
        Ok(()) => result,
        Err(payload) => Err(header.on_panic(payload)),
    }
}

/// Drops the user's future in place, catching a panic of its destructor.
fn drop_future<F>(mut future: Pin<&mut Option<F>>) -> Result<(), Payload> {
    catch_unwind(AssertUnwindSafe(|| future.set(None)))
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
