//! The global handler for panics that have no `Task` to go to: panics of
//! detached tasks and panics of a [`Dispatch`](crate::Dispatch) implementation.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, RwLock};

type Handler = Arc<dyn Fn(&PanicReport<'_>) + Send + Sync + 'static>;

static HANDLER: RwLock<Option<Handler>> = RwLock::new(None);

/// Where a reported panic happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanicSource {
    /// The future of a detached task panicked.
    DetachedTask,
    /// A [`Dispatch`](crate::Dispatch) implementation panicked while a waker
    /// scheduled a task on it; the task was cancelled.
    Dispatch,
}

/// A panic handed to the global handler (see [`set_panic_handler`]).
pub struct PanicReport<'a> {
    source: PanicSource,
    name: Option<&'a str>,
    payload: &'a (dyn Any + Send),
}

impl<'a> PanicReport<'a> {
    /// Where the panic happened.
    pub fn source(&self) -> PanicSource {
        self.source
    }

    /// The task's name ([`PanicSource::DetachedTask`]) or the dispatcher's
    /// name ([`PanicSource::Dispatch`]), when known.
    pub fn name(&self) -> Option<&'a str> {
        self.name
    }

    /// The panic message, when the payload is a string (as with `panic!`).
    pub fn message(&self) -> Option<&'a str> {
        payload_message(self.payload)
    }

    /// The raw panic payload.
    pub fn payload(&self) -> &'a (dyn Any + Send) {
        self.payload
    }
}

impl fmt::Display for PanicReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.unwrap_or("<unnamed>");
        match self.source {
            PanicSource::DetachedTask => write!(f, "detached task '{name}' panicked")?,
            PanicSource::Dispatch => write!(f, "dispatcher '{name}' panicked in dispatch")?,
        }
        match self.message() {
            Some(msg) => write!(f, ": {msg}"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for PanicReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PanicReport")
            .field("source", &self.source)
            .field("name", &self.name)
            .field("message", &self.message())
            .finish()
    }
}

/// Replaces the global panic handler.
///
/// It receives every panic that has no [`Task`](crate::Task) to go to: each
/// panic of a detached task, once, and each panic of a `Dispatch`
/// implementation. The default prints the report to stderr. To abort on such
/// a panic, call `std::process::abort()` from the handler. A handler that
/// panics itself is caught and its panic printed.
pub fn set_panic_handler<F>(handler: F)
where
    F: Fn(&PanicReport<'_>) + Send + Sync + 'static,
{
    *HANDLER.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(handler));
}

/// Restores the default panic handler (print to stderr).
pub fn reset_panic_handler() {
    *HANDLER.write().unwrap_or_else(|e| e.into_inner()) = None;
}

pub(crate) fn report_detached_panic(name: Option<&str>, payload: &(dyn Any + Send)) {
    report(PanicReport {
        source: PanicSource::DetachedTask,
        name,
        payload,
    });
}

pub(crate) fn report_dispatch_panic(dispatcher: &str, payload: &(dyn Any + Send)) {
    report(PanicReport {
        source: PanicSource::Dispatch,
        name: Some(dispatcher),
        payload,
    });
}

fn report(report: PanicReport<'_>) {
    let handler = HANDLER.read().unwrap_or_else(|e| e.into_inner()).clone();
    match handler {
        None => eprintln!("dispatchers: {report}"),
        Some(handler) => {
            if catch_unwind(AssertUnwindSafe(|| handler(&report))).is_err() {
                eprintln!("dispatchers: the panic handler panicked while reporting: {report}");
            }
        }
    }
}

/// The message of a `panic!` payload.
pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}
