//! [`Budget`]: how much work one `run_pending` call may do, and [`RunReport`]:
//! what it did.

use std::time::Duration;

/// Caps the work of one [`run_pending`](crate::HostEngine::run_pending) call,
/// so the host's own events are never starved: a game can give the dispatcher
/// 2 ms of a 16 ms frame. Work left over re-arms the host's wake-up.
///
/// ```
/// # use dispatchers::Budget;
/// # use std::time::Duration;
/// let frame = Budget::unlimited().max_time(Duration::from_millis(2)).max_tasks(10_000);
/// # let _ = frame;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    max_tasks: Option<usize>,
    max_time: Option<Duration>,
}

impl Budget {
    /// No cap: runs until the queue is empty.
    pub const fn unlimited() -> Self {
        Budget {
            max_tasks: None,
            max_time: None,
        }
    }

    /// Runs at most `n` tasks. `max_tasks(0)` runs none: a hand-written
    /// loop may skip Main for a frame with it, but a host that runs Main
    /// with one fixed budget refuses it (its loop would spin, never running
    /// Main).
    pub const fn max_tasks(mut self, n: usize) -> Self {
        self.max_tasks = Some(n);
        self
    }

    /// Starts no task once `d` has passed since the call began (a task that
    /// is running is not interrupted). The first task of a call always
    /// starts, so that every call makes progress: even with a zero `d`, or
    /// when firing the due timers took all of it.
    pub const fn max_time(mut self, d: Duration) -> Self {
        self.max_time = Some(d);
        self
    }

    /// The cap on tasks per call, if any.
    pub const fn task_limit(&self) -> Option<usize> {
        self.max_tasks
    }

    /// The cap on time per call, if any.
    pub const fn time_limit(&self) -> Option<Duration> {
        self.max_time
    }

    /// Whether a call with this budget may run no task at all
    /// (`max_tasks(0)`).
    pub const fn allows_no_task(&self) -> bool {
        matches!(self.max_tasks, Some(0))
    }
}

/// What one [`run_pending`](crate::HostEngine::run_pending) call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// Runnables run (task polls).
    pub ran: usize,
    /// Timers that fired.
    pub timers_fired: usize,
    /// The budget ran out with work still queued; the host's wake-up was
    /// re-armed, so the loop comes back to it after its own events.
    pub more_pending: bool,
}
