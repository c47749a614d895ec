//! What the shutdown tests share (`reliability_shutdown.rs`,
//! `reliability_shutdown_in_flight.rs`, which include it with
//! `#[path = "support/shutdown.rs"] mod shutdown;`): an engine driven by hand,
//! a record of where futures are dropped, and whether a task was cancelled.

use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};

use dispatchers::{Budget, HostEngine, JoinError};

/// An engine run by the test thread itself (its wake-ups do nothing).
pub fn engine() -> HostEngine {
    HostEngine::new("shutdown-test", || {})
}

/// Runs what `engine` has pending, with no budget.
pub fn run(engine: &HostEngine) {
    engine.run_pending(Budget::unlimited());
}

/// Records where (on which thread) the future it is moved into is dropped.
#[derive(Clone, Default)]
pub struct Drops(Arc<Mutex<Vec<ThreadId>>>);

/// Moved into a future: records in its [`Drops`] the thread it is dropped on.
pub struct DropGuard(Drops);

impl Drops {
    /// A guard to move into the future to watch.
    pub fn guard(&self) -> DropGuard {
        DropGuard(self.clone())
    }

    /// How many guards were dropped.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Whether every guard dropped so far was dropped on `thread`.
    pub fn all_on(&self, thread: ThreadId) -> bool {
        self.0.lock().unwrap().iter().all(|&t| t == thread)
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        (self.0).0.lock().unwrap().push(thread::current().id());
    }
}

/// Whether a task's outcome is its cancellation.
pub fn is_cancelled<T>(result: Result<T, JoinError>) -> bool {
    result.is_err_and(|e| e.is_cancelled())
}
