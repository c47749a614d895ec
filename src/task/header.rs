//! The per-task metadata stored inside every task allocation: its name, the
//! thread that owns it when it is `!Send`, and the attach/detach/panic state
//! that routes a panic either to the `Task` or to the global handler.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread::ThreadId;

use crate::panic::{on_task_panic, report_detached_panic};

/// A panic payload, as produced by `catch_unwind`.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// The `Task` handle still exists and will receive a panic as its output.
const ATTACHED: u8 = 0;
/// `Task::detach` ran first: a later panic goes to the global handler.
const DETACHED: u8 = 1;
/// The future panicked first: the payload is (being) stored as the output and
/// `Task::detach` must fetch it and report it.
const PANICKED: u8 = 2;

/// Why a task's future produced no value.
pub(crate) enum Failure {
    /// It panicked: the payload when a `Task` will receive it, `None` when it
    /// was already reported to the global handler.
    Panicked(Option<Payload>),
    /// It was cancelled before completing (its dispatcher rejected it).
    Cancelled,
}

/// Metadata of one task.
#[derive(Debug)]
pub(crate) struct TaskHeader {
    name: Option<Arc<str>>,
    /// `Some` for `!Send` tasks: the only thread allowed to poll or drop them.
    home: Option<ThreadId>,
    panic_state: AtomicU8,
    /// Set before a rejected task's runnable is run one last time: the future
    /// is then dropped without being polled and the task completes as
    /// cancelled, so its `Task` always resolves.
    cancelled: AtomicBool,
}

impl TaskHeader {
    pub(crate) fn new(name: Option<Arc<str>>, home: Option<ThreadId>) -> Self {
        TaskHeader {
            name,
            home,
            panic_state: AtomicU8::new(ATTACHED),
            cancelled: AtomicBool::new(false),
        }
    }

    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    pub(crate) fn home(&self) -> Option<ThreadId> {
        self.home
    }

    /// Marks the task cancelled (see the field).
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Called by the task's future after catching a panic.
    pub(crate) fn on_panic(&self, payload: Payload) -> Failure {
        match self.panic_state.compare_exchange(
            ATTACHED,
            PANICKED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                on_task_panic(self.name.as_deref(), &*payload);
                Failure::Panicked(Some(payload))
            }
            Err(_) => {
                report_detached_panic(self.name.as_deref(), &*payload);
                Failure::Panicked(None)
            }
        }
    }

    /// Called by `Task::detach`; `false` means the task already panicked and
    /// its output holds the payload, which the caller must report.
    pub(crate) fn detach(&self) -> bool {
        self.panic_state
            .compare_exchange(ATTACHED, DETACHED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}
