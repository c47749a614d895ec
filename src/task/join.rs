//! [`Task`]: the handle of a spawned future, and [`JoinError`].

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::header::{Failure, Payload, TaskHeader};
use super::output::Output;
use crate::panic::report_detached_panic;

/// Never closed without an output: every cancellation path runs the task to a
/// `Failure::Cancelled` output (see `Runnable`), so polling it cannot hit
/// async-task's "polled after completion" case until the `Task` itself took
/// the output (a `Task` polled to the end through `&mut`, then detached:
/// `detach` polls the fallible form for that).
type RawTask<T> = async_task::Task<Output<T>, TaskHeader>;

/// A spawned future: await it for its output.
///
/// `Task<T>` resolves to `Ok(T)` when the future completes, or to a
/// [`JoinError`] when the task was cancelled (its dispatcher rejected it) or
/// its future panicked.
///
/// Dropping a `Task` cancels the future (it is dropped by its dispatcher and
/// will not be polled again); [`detach`](Task::detach) lets it run to the end
/// instead.
#[must_use = "dropping a Task cancels it; call .detach() to let it run in the background"]
pub struct Task<T> {
    raw: RawTask<T>,
}

impl<T> Task<T> {
    pub(crate) fn new(raw: RawTask<T>) -> Self {
        Task { raw }
    }

    /// Lets the task run to completion without a handle to await.
    ///
    /// If it panics, the panic goes to the global handler
    /// ([`set_panic_handler`](crate::set_panic_handler); by default printed
    /// to stderr with the task's name), once, whether it panicked before or
    /// after this call.
    pub fn detach(self) {
        let header = self.raw.metadata();
        if header.detach() {
            self.raw.detach();
            return;
        }
        // The future already panicked and is finishing its last poll: take the
        // payload it stored as its output and report it here.
        // A `Task` already polled to the end (through `&mut`) took the
        // payload: the fallible form then answers `None`.
        let name = header.name().cloned();
        let mut raw = self.raw.fallible();
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            match Pin::new(&mut raw)
                .poll(&mut cx)
                .map(|out| out.map(Output::into_inner))
            {
                Poll::Ready(Some(Err(Failure::Panicked(Some(payload))))) => {
                    report_detached_panic(name.as_deref(), &*payload);
                    return;
                }
                Poll::Ready(_) => return,
                Poll::Pending => std::thread::yield_now(),
            }
        }
    }

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.raw.is_finished()
    }

    /// The task's name, when it was spawned with one.
    pub fn name(&self) -> Option<&str> {
        self.raw.metadata().name().map(|n| &**n)
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = Pin::new(&mut self.raw).poll(cx).map(Output::into_inner);
        let name = || self.raw.metadata().name().cloned();
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(value)) => Poll::Ready(Ok(value)),
            Poll::Ready(Err(Failure::Panicked(Some(payload)))) => Poll::Ready(Err(JoinError {
                repr: Repr::Panic(Mutex::new(payload)),
                name: name(),
            })),
            // A payload already reported to the handler belongs to a detached
            // task, which has no `Task` to poll.
            Poll::Ready(Err(Failure::Panicked(None) | Failure::Cancelled)) => {
                Poll::Ready(Err(JoinError {
                    repr: Repr::Cancelled,
                    name: name(),
                }))
            }
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a [`Task`] did not produce its output.
pub struct JoinError {
    repr: Repr,
    name: Option<Arc<str>>,
}

enum Repr {
    Cancelled,
    /// In a mutex only so that `JoinError` is `Sync` (the payload is `Send`
    /// but not `Sync`); it is only ever taken out by value.
    Panic(Mutex<Payload>),
}

impl JoinError {
    pub(crate) fn from_panic(payload: Payload) -> Self {
        JoinError {
            repr: Repr::Panic(Mutex::new(payload)),
            name: None,
        }
    }

    /// The task was cancelled: its dispatcher rejected it (its host shut
    /// down), or its future was dropped before completing.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task's future panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload, to resume with `std::panic::resume_unwind`.
    ///
    /// # Panics
    ///
    /// When the error is not a panic ([`is_panic`](Self::is_panic) is false).
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .unwrap_or_else(|e| panic!("JoinError::into_panic called on {e}"))
    }

    /// The panic payload, or the error itself when it is not a panic.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload.into_inner().unwrap_or_else(|e| e.into_inner())),
            Repr::Cancelled => Err(self),
        }
    }

    /// The name of the task, when it was spawned with one.
    pub fn task_name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "task '{name}' ")?,
            None => f.write_str("task ")?,
        }
        match &self.repr {
            Repr::Cancelled => f.write_str("was cancelled"),
            Repr::Panic(payload) => {
                let payload = payload.lock().unwrap_or_else(|e| e.into_inner());
                match crate::panic::payload_message(&**payload) {
                    Some(msg) => write!(f, "panicked: {msg}"),
                    None => f.write_str("panicked"),
                }
            }
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinError({self})")
    }
}

impl std::error::Error for JoinError {}
