//! Which dispatcher the running task belongs to, and the two operations that
//! depend on it: [`with_context`] and [`yield_now`].

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::pin;
use std::task::Poll;

use crate::dispatch::Dispatcher;
use crate::task::JoinError;

thread_local! {
    /// The identity ([`Dispatcher::id`]) of the dispatcher of the task being
    /// polled on this thread; 0 outside tasks.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// Restores the previous current dispatcher when a poll ends.
pub(crate) struct Enter {
    previous: usize,
}

/// Marks `dispatcher_id` as current for the duration of one poll.
pub(crate) fn enter(dispatcher_id: usize) -> Enter {
    Enter {
        previous: CURRENT.replace(dispatcher_id),
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.set(self.previous);
    }
}

/// The identity of the dispatcher of the task being polled (0: none).
pub(crate) fn current_id() -> usize {
    CURRENT.get()
}

/// Whether the calling code runs inside a task of `dispatcher`.
pub(crate) fn is_current(dispatcher: &Dispatcher) -> bool {
    CURRENT.get() == dispatcher.id()
}

/// Runs `future` on `dispatcher` and returns its output to the caller, which
/// resumes on its own dispatcher.
///
/// - Already inside a task of `dispatcher`, the future runs as part of the
///   caller: no hop. On a dispatcher that needs no dispatch here
///   (`Main.immediate` on the main thread, `Unconfined`), it starts in place,
///   and resumes through that dispatcher after each suspension.
/// - Dropping the returned future cancels the inner task.
/// - A panic inside `future` resumes in the caller.
///
/// ```
/// # use dispatchers::{Dispatchers, with_context, block_on};
/// let sum = block_on(with_context(&Dispatchers::unconfined(), async { 2 + 2 }));
/// assert_eq!(sum, 4);
/// ```
///
/// # Panics
///
/// The caller panics with the inner panic's payload when `future` panicked,
/// and with a message saying so when `dispatcher` cancelled the task (its host
/// loop ended, or it is a pool that was shut down); [`try_with_context`]
/// returns both as a [`JoinError`] instead.
pub fn with_context<F>(
    dispatcher: &Dispatcher,
    future: F,
) -> impl Future<Output = F::Output> + Send + 'static
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let hop = try_with_context(dispatcher, future);
    let name = dispatcher.name().to_owned();
    async move {
        match hop.await {
            Ok(value) => value,
            Err(error) => match error.try_into_panic() {
                Ok(payload) => resume_unwind(payload),
                Err(error) => panic!(
                    "with_context: dispatcher '{name}' cancelled the task ({error}): \
                     it has shut down (a host loop that ended, or a pool that was \
                     shut down or dropped); try_with_context returns this as an error"
                ),
            },
        }
    }
}

/// [`with_context`], with a panic or a cancellation of the inner task
/// returned as a [`JoinError`].
pub fn try_with_context<F>(
    dispatcher: &Dispatcher,
    future: F,
) -> impl Future<Output = Result<F::Output, JoinError>> + Send + 'static
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let dispatcher = dispatcher.clone();
    async move {
        if is_current(&dispatcher) {
            let mut future = pin!(future);
            let polled =
                poll_fn(
                    |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                        Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
                        Ok(Poll::Pending) => Poll::Pending,
                        Err(payload) => Poll::Ready(Err(payload)),
                    },
                )
                .await;
            return polled.map_err(JoinError::from_panic);
        }
        // On a dispatcher that needs no dispatch here (immediate on its own
        // thread, Unconfined), the task starts in place: no hop. It is still a
        // task of that dispatcher, so it also *resumes* through it, never on
        // whatever thread resumes the caller.
        dispatcher.spawn(future).await
    }
}

/// Yields to the dispatcher: the task goes to the back of its dispatcher's
/// queue (always a dispatch, even on `Main.immediate`), so everything queued
/// before it runs first.
///
/// ```
/// # use dispatchers::{yield_now, block_on};
/// block_on(async { yield_now().await });
/// ```
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
