//! Creating tasks: the future wrapper that tracks the current dispatcher and
//! catches panics. With `header_word.rs` (the task's metadata word), the
//! only place this crate uses `unsafe` code.
//!
//! # Safety invariants
//!
//! Tasks are created with `async_task::Builder::spawn_unchecked` (in
//! [`spawn_raw`]) so that the wrapper future may borrow the task's own
//! metadata ([`TaskHeader`]), which async-task keeps alive, pinned in the
//! task allocation, for as long as the future exists (`spawn_unchecked`'s
//! `F: FnOnce(&'a M) -> Fut, Fut: 'a`). The other conditions of
//! `spawn_unchecked` are met as follows:
//!
//! - the schedule function is `Send + Sync + 'static` (it owns a `Dispatcher`);
//! - `Send` tasks: the future and its output are `Send + 'static`;
//! - `!Send` tasks: the header records the spawning thread, and
//!   [`Runnable::run`](super::Runnable::run) and the runnable's drop never poll
//!   or drop such a future on another thread: they send the runnable back to
//!   its thread's mailbox, which only that thread empties, before it closes
//!   it at its exit (see `orphans.rs`), or leak it once the mailbox is
//!   closed. So the future is only ever used and dropped on its own thread.
//!
//! The other `unsafe` blocks here: the pin projection of [`Guarded`] and the
//! in-place drop of the user's future it holds (exactly once, recorded by
//! its live-set membership). `header_word.rs` has the boxed part of the
//! header's word, a pointer written once and freed only with the word.
//!
//! # What a task costs
//!
//! async-task allocates a task as one block: its own header (state, awaiter
//! and vtable, 32 bytes) with our metadata in it ([`TaskHeader`], one 8-byte
//! word, see `header.rs`) and its own `propagate_panic` flag (8 with
//! padding); the schedule function (16: the `Dispatcher`); then the future
//! and the output, which share their bytes. The future is [`Guarded`]: the
//! header reference (8), the dispatcher id (8), the live-set membership (4)
//! and the user's future, unwrapped; the output, `Result<T, Failure>` (in
//! an [`Output`], which catches a panic of its destructor) inside
//! async-task's own `Result<_, Payload>`, is 24 bytes for `T = ()`. So a
//! task of a future of N bytes costs 64 + max(20 + N, the output) bytes,
//! rounded up to the alignment: 88 for an empty `async {}`, N + 88 for a
//! future of 8 bytes or more aligned to 8, with a small output (pinned by
//! `a_pending_task_costs_88_bytes`, and measured by `tests/task_memory.rs`).
//! A named task, or a `!Send` one on a thread whose number does not fit the
//! word, has a second, 32-byte allocation for its name and home thread.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_task::{Builder, ScheduleInfo, WithInfo};

use super::header::{Failure, Home, Payload, TaskHeader};
use super::join::Task;
use super::live::Membership;
use super::output::Output;
use super::runnable::{RawRunnable, Runnable};
use crate::context;
use crate::dispatch::Dispatcher;

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
    // Where its runnable goes back to if it ends up on another thread.
    super::orphans::open_mailbox();
    let header = TaskHeader::new(name, Some(Home::current()));
    let (raw, task) = spawn_raw(dispatcher, header, future);
    first_schedule(dispatcher, raw);
    Task::new(task)
}

type RawTask<T> = async_task::Task<Output<T>, TaskHeader>;

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
/// the membership ends with the user's future.
///
/// A struct rather than an `async fn`: an `async fn` keeps its argument and
/// the pinned local it is moved into as two fields, which stored the user's
/// future twice in every task.
fn guarded<F: Future>(header: &TaskHeader, dispatcher_id: usize, future: F) -> Guarded<'_, F> {
    Guarded {
        header,
        dispatcher_id,
        membership: Membership::new(),
        future: ManuallyDrop::new(future),
    }
}

/// The future of [`guarded`]: the header reference, the dispatcher id, 4
/// bytes of live-set membership, and the user's future.
struct Guarded<'a, F> {
    header: &'a TaskHeader,
    /// [`Dispatcher::id`] of the task's dispatcher (which the schedule
    /// function owns, out of this future's reach).
    dispatcher_id: usize,
    /// Ends exactly when `future` is dropped, which it records: an
    /// `Option<F>` would cost a word more for most futures (a compiler
    /// generated future leaves no niche for its `None`).
    membership: Membership,
    /// Structurally pinned, never moved, and dropped in place exactly once:
    /// by the poll that completes the task, or else by `Guarded`'s drop.
    future: ManuallyDrop<F>,
}

impl<F> Guarded<'_, F> {
    /// Drops the user's future in place, catching a panic of its destructor,
    /// and ends the membership. Called at most once: the caller returns
    /// `Ready`, so async-task polls the task no more, and `poll` checks it
    /// too.
    #[allow(unsafe_code)]
    fn drop_future(&mut self) -> Result<(), Payload> {
        debug_assert!(!self.membership.has_ended());
        self.membership.end(self.dispatcher_id);
        // SAFETY: the future was not dropped before (the membership had not
        // ended) and will not be again (it has now, and `poll` and `drop`
        // check that); it is dropped in place, as its pinning requires.
        catch_unwind(AssertUnwindSafe(|| unsafe {
            ManuallyDrop::drop(&mut self.future)
        }))
    }

    /// Drops the user's future, then returns `result`, or the panic of the
    /// future's destructor instead.
    fn finish<T>(&mut self, result: Result<T, Failure>) -> Result<T, Failure> {
        match self.drop_future() {
            Ok(()) => result,
            Err(payload) => Err(self.header.on_panic(payload)),
        }
    }
}

impl<F> Drop for Guarded<'_, F> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // A completed task dropped the user's future in its last poll.
        if self.membership.has_ended() {
            return;
        }
        // Otherwise async-task is dropping an unfinished task: its `Task`
        // was dropped. A panic of the user's destructor must not escape
        // (async-task would abort the process); nobody awaits the task, so
        // it goes to the handler, as a detached task's.
        self.membership.end(self.dispatcher_id);
        let future = &mut self.future;
        // SAFETY: the future was not dropped before (the membership had not
        // ended); it is dropped in place, as its pinning requires, and
        // `Guarded` is not used again. A destructor that panics still drops
        // the rest of the future as it unwinds, so the future counts as
        // dropped either way.
        let dropped = catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(future) }));
        if let Err(payload) = dropped {
            let name = self.header.name().map(|name| &**name);
            crate::panic::report_detached_panic(name, &*payload);
        }
    }
}

impl<F: Future> Future for Guarded<'_, F> {
    type Output = Output<F::Output>;

    #[allow(unsafe_code)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is pinned structurally and the other fields are
        // not: `Guarded` never moves `future` (it drops it in place, here or
        // in its `Drop` impl), and it is `Unpin` only when `F` is (the auto
        // impl).
        let this = unsafe { self.get_unchecked_mut() };
        assert!(
            !this.membership.has_ended(),
            "a finished task is not polled again"
        );
        let header = this.header;
        if header.is_cancelled() || this.membership.is_cancelled(this.dispatcher_id) {
            return Poll::Ready(Output::new(this.finish(Err(Failure::Cancelled))));
        }
        let _current = context::enter(this.dispatcher_id);
        // SAFETY: as above, `this.future` is not moved; it has not been
        // dropped (checked above).
        let future = unsafe { Pin::new_unchecked(&mut *this.future) };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Output::new(this.finish(Ok(value)))),
            Ok(Poll::Pending) => {
                if this.membership.on_pending(this.dispatcher_id, cx.waker()) {
                    Poll::Pending
                } else {
                    // Its loop shut down in this very poll: nothing will
                    // wake it.
                    Poll::Ready(Output::new(this.finish(Err(Failure::Cancelled))))
                }
            }
            Err(payload) => {
                // A second panic, dropping a future that panicked, is dropped.
                let _ = this.drop_future();
                Poll::Ready(Output::new(Err(header.on_panic(payload))))
            }
        }
    }
}

/// The schedule function of a task on `dispatcher`: used for every wake-up.
///
/// It owns the task's `Dispatcher`, so it has a size, and async-task keeps
/// the task allocated (with its own reference, or the caller's waker) while
/// it runs: the dispatcher outlives the `dispatch` that may let the task
/// finish and be freed on another thread. A zero-sized schedule function
/// reading the dispatcher from the header would have to take that
/// reference itself, two atomic operations more on every wake-up by
/// reference.
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

#[cfg(all(test, not(loom)))]
mod tests {
    use std::alloc::Layout;
    use std::cell::UnsafeCell;
    use std::mem::size_of;
    use std::sync::atomic::AtomicUsize;
    use std::task::Waker;

    use super::super::header_word::HeaderWord;
    use super::*;

    /// async-task's own task header (`Header<M>` of async-task 4.7 with its
    /// `std` feature), with the task's metadata in it.
    #[allow(dead_code)]
    struct AsyncTaskHeader<M> {
        state: AtomicUsize,
        awaiter: UnsafeCell<Option<Waker>>,
        vtable: &'static (),
        metadata: M,
        propagate_panic: bool,
    }

    fn layout_of<T>(_: &T) -> Layout {
        Layout::new::<T>()
    }

    /// The allocation async-task makes for a task of `future`, by its rule:
    /// the header, then the schedule function, then a union of the future
    /// and the output.
    fn task_layout<F: Future>(_future: &F) -> Layout {
        let future = Layout::new::<Guarded<'static, F>>();
        let output = Layout::new::<Result<Output<F::Output>, Payload>>();
        let union = Layout::from_size_align(
            future.size().max(output.size()),
            future.align().max(output.align()),
        )
        .unwrap();
        let dispatcher = crate::Dispatchers::unconfined();
        let (layout, _) = Layout::new::<AsyncTaskHeader<TaskHeader>>()
            .extend(layout_of(&schedule_fn(&dispatcher)))
            .unwrap();
        layout.extend(union).unwrap().0
    }

    fn guarded_size<F: Future>(_future: &F) -> usize {
        size_of::<Guarded<'static, F>>()
    }

    #[test]
    fn a_pending_task_costs_88_bytes() {
        assert_eq!(size_of::<HeaderWord>(), 8);
        assert_eq!(size_of::<TaskHeader>(), 8, "one word");
        assert_eq!(size_of::<AsyncTaskHeader<TaskHeader>>(), 48);
        let dispatcher = crate::Dispatchers::unconfined();
        assert_eq!(layout_of(&schedule_fn(&dispatcher)).size(), 16);
        let empty = async {};
        assert_eq!(
            guarded_size(&empty),
            24,
            "header ref, id, membership, future"
        );
        assert_eq!(size_of::<Result<Output<()>, Payload>>(), 24);
        assert_eq!(task_layout(&empty).size(), 88);
        // A larger future costs its own size and 88 bytes more.
        let big = async {
            let buffer = [0u64; 16];
            std::future::ready(()).await;
            std::hint::black_box(buffer);
        };
        let extra = task_layout(&big).size() - size_of_val(&big);
        assert_eq!(extra, 88, "bytes on top of the future");
    }
}
