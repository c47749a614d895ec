//! Where the panics of tasks go: the [`PanicPolicy`], and the global handler
//! for panics that have no `Task` to go to (panics of detached tasks and of a
//! [`Dispatch`](crate::Dispatch) implementation).
//!
//! | policy | an awaited task's panic | a detached task's (or a `Dispatch`'s) panic |
//! |---|---|---|
//! | [`PanicPolicy::ToTask`] (default) | its `Task` resolves to `JoinError::is_panic` | the handler (default: printed to stderr); the loop goes on |
//! | [`PanicPolicy::AbortUnhandled`] | its `Task`, as above | the handler, then the process aborts |
//! | [`PanicPolicy::Abort`] | the handler, then the process aborts | the handler, then the process aborts |
//!
//! Under every policy a panic is caught where it happens and never unwinds
//! through a host loop: the abort, when there is one, is `std::process::abort`
//! right after the report.
//!
//! A panic in a future's *destructor* counts as a panic of the task when the
//! future is dropped by its last run: after it finished, or when its host
//! cancelled it (shutdown, rejection). When the task is cancelled by
//! dropping its [`Task`](crate::Task) while it is suspended, nobody awaits
//! it: the destructor's panic goes to the handler, as a detached task's
//! ([`PanicSource::DetachedTask`]). So does a panicking destructor of a
//! task's *output* that nobody takes (its task detached, or its `Task`
//! dropped after the task finished).

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

type Handler = Arc<dyn Fn(&PanicReport<'_>) + Send + Sync + 'static>;

static HANDLER: RwLock<Option<Handler>> = RwLock::new(None);

static POLICY: AtomicU8 = AtomicU8::new(PanicPolicy::ToTask as u8);

/// What happens when the future of a task panics (see the table in
/// [`set_panic_policy`]). Set once at start-up, like a runtime option.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PanicPolicy {
    /// The default. A panic goes to the task's [`Task`](crate::Task), which
    /// resolves to a [`JoinError`](crate::JoinError) with `is_panic()`; a
    /// panic with no `Task` to go to (a detached task's, a `Dispatch`'s) goes
    /// to the panic handler ([`set_panic_handler`]). The process goes on.
    #[default]
    ToTask = 0,
    /// Like [`ToTask`](Self::ToTask) for the tasks someone awaits; a panic
    /// that would reach the panic handler is reported by it, then the process
    /// aborts. For programs where a detached task must not fail silently.
    AbortUnhandled = 1,
    /// Every panic of a task, awaited or not, and of a `Dispatch`
    /// implementation is reported by the panic handler (an awaited task's
    /// with [`PanicSource::Task`]), then the process aborts: fail fast.
    Abort = 2,
}

/// Sets what happens when a task panics, for the whole process.
///
/// | policy | an awaited task's panic | a detached task's (or a `Dispatch`'s) panic |
/// |---|---|---|
/// | [`PanicPolicy::ToTask`] (default) | its `Task` resolves to `JoinError::is_panic` | the handler (default: printed to stderr); the loop goes on |
/// | [`PanicPolicy::AbortUnhandled`] | its `Task`, as above | the handler, then the process aborts |
/// | [`PanicPolicy::Abort`] | the handler, then the process aborts | the handler, then the process aborts |
///
/// ```no_run
/// use dispatchers::{PanicPolicy, set_panic_policy};
///
/// // A server where a panic is a bug: stop at the first one.
/// set_panic_policy(PanicPolicy::Abort);
/// ```
///
/// The abort is [`std::process::abort`] (`SIGABRT` on Unix), after the
/// report; `std`'s panic hook has printed the panic's location before that.
/// A policy applies to panics caught from the call on.
pub fn set_panic_policy(policy: PanicPolicy) {
    POLICY.store(policy as u8, Ordering::Release);
}

/// The current [`PanicPolicy`].
pub fn panic_policy() -> PanicPolicy {
    match POLICY.load(Ordering::Acquire) {
        1 => PanicPolicy::AbortUnhandled,
        2 => PanicPolicy::Abort,
        _ => PanicPolicy::ToTask,
    }
}

/// Where a reported panic happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanicSource {
    /// The future of a detached task panicked.
    DetachedTask,
    /// The future of a task that someone awaits panicked: reported only under
    /// [`PanicPolicy::Abort`], just before the process aborts.
    Task,
    /// A [`Dispatch`](crate::Dispatch) implementation panicked while a waker
    /// scheduled a task on it; the task was cancelled.
    Dispatch,
    /// A waker panicked when timers woke it (a hand-written waker's code);
    /// the other wakers were still woken. The name is the timers' (a host's
    /// name, `dispatchers-timer`, or `TestDispatcher` for a virtual clock).
    Waker,
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

    /// The task's name ([`PanicSource::DetachedTask`], [`PanicSource::Task`]),
    /// the dispatcher's name ([`PanicSource::Dispatch`]) or the timers'
    /// ([`PanicSource::Waker`]), when known.
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
            PanicSource::Task => write!(f, "task '{name}' panicked")?,
            PanicSource::Dispatch => write!(f, "dispatcher '{name}' panicked in dispatch")?,
            PanicSource::Waker => write!(f, "a waker woken by the timers of '{name}' panicked")?,
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
/// panic of a detached task, once, each panic of a `Dispatch`
/// implementation, and each panic of a waker woken by timers; under [`PanicPolicy::Abort`], the panics of awaited tasks
/// too. The default
/// prints the report to stderr. To abort after such a panic, set
/// [`PanicPolicy::AbortUnhandled`] (the handler still reports it first). A
/// handler that panics itself is caught and its panic printed. It may run on
/// any thread, the loop's included: keep it short.
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

pub(crate) fn report_waker_panic(timers: &str, payload: &(dyn Any + Send)) {
    report(PanicReport {
        source: PanicSource::Waker,
        name: Some(timers),
        payload,
    });
}

/// Wakes `waker`; a panic of its code is reported (as
/// [`PanicSource::Waker`], naming `timers`) instead of unwinding into the
/// caller, which has other wakers to wake.
pub(crate) fn wake_reporting_panics(waker: std::task::Waker, timers: &str) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake())) {
        report_waker_panic(timers, &*payload);
    }
}

/// Called for the panic of a task whose `Task` will receive it: under
/// [`PanicPolicy::Abort`], reports it and aborts; otherwise does nothing.
pub(crate) fn on_task_panic(name: Option<&str>, payload: &(dyn Any + Send)) {
    if panic_policy() == PanicPolicy::Abort {
        report(PanicReport {
            source: PanicSource::Task,
            name,
            payload,
        });
    }
}

/// Hands `report` to the handler, then aborts if the policy says so.
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
    let policy = panic_policy();
    if policy != PanicPolicy::ToTask {
        eprintln!("dispatchers: aborting the process (panic policy {policy:?})");
        std::process::abort();
    }
}

/// The message of a `panic!` payload.
pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}
