//! [`TaskBuilder`]: spawning with options (a name).

use std::future::Future;
use std::sync::Arc;

use super::join::Task;
use crate::dispatch::Dispatcher;
use crate::error::SpawnLocalError;

/// Spawns tasks with options; the name shows in panic reports,
/// [`JoinError`](crate::JoinError)'s message and test-leak reports.
///
/// ```
/// # use dispatchers::{Dispatchers, TaskBuilder, block_on};
/// let task = TaskBuilder::new()
///     .name("answer")
///     .spawn(&Dispatchers::unconfined(), async { 42 });
/// assert_eq!(task.name(), Some("answer"));
/// assert_eq!(block_on(task).unwrap(), 42);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TaskBuilder {
    name: Option<Arc<str>>,
}

impl TaskBuilder {
    /// A builder with no options set.
    pub fn new() -> Self {
        TaskBuilder::default()
    }

    /// Names the task.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Spawns a `Send` future on `dispatcher`.
    ///
    /// # Panics
    ///
    /// When `dispatcher` panics on dispatch (the missing Main dispatcher does,
    /// with a message that says how to install one).
    pub fn spawn<F>(self, dispatcher: &Dispatcher, future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        super::spawn::spawn(dispatcher, self.name, future)
    }

    /// Spawns a `!Send` future on `dispatcher`, which must run its tasks on
    /// the calling thread ([`Dispatcher::is_current_thread`]).
    pub fn try_spawn_local<F>(
        self,
        dispatcher: &Dispatcher,
        future: F,
    ) -> Result<Task<F::Output>, SpawnLocalError<F>>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if !dispatcher.is_current_thread() {
            return Err(SpawnLocalError::new(future, dispatcher.name()));
        }
        Ok(super::spawn::spawn_local(dispatcher, self.name, future))
    }

    /// Spawns a `!Send` future on `dispatcher` from its own thread.
    ///
    /// # Panics
    ///
    /// When called on another thread than the one `dispatcher` runs its tasks
    /// on; [`try_spawn_local`](Self::try_spawn_local) returns the future instead.
    pub fn spawn_local<F>(self, dispatcher: &Dispatcher, future: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.try_spawn_local(dispatcher, future)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}
