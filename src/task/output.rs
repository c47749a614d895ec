//! [`Output`]: a task's result as async-task keeps it for the `Task`.

use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::header::Failure;
use crate::panic::report_detached_panic;

/// A task's result, kept by async-task until the [`Task`](super::Task)
/// takes it.
///
/// When nobody takes it (the `Task` was detached, or dropped after the task
/// finished), async-task drops it, and would abort the process if its
/// destructor panicked. So the drop catches such a panic and reports it to
/// the handler, as a detached task's: nobody awaits it. (tokio does the same
/// for the output of a dropped `JoinHandle`.) The same size as the result.
pub(crate) struct Output<T>(ManuallyDrop<Result<T, Failure>>);

impl<T> Output<T> {
    pub(crate) fn new(result: Result<T, Failure>) -> Self {
        Output(ManuallyDrop::new(result))
    }

    /// The result, for the `Task` that takes it.
    #[allow(unsafe_code)]
    pub(crate) fn into_inner(self) -> Result<T, Failure> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so its result is taken out once,
        // here, and never dropped in place.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl<T> Drop for Output<T> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        let result = &mut self.0;
        // SAFETY: the result is dropped once, here: `into_inner` takes it
        // out of a wrapper that is then never dropped. A destructor that
        // panics still drops the rest of the value as it unwinds.
        let dropped = catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(result) }));
        if let Err(payload) = dropped {
            report_detached_panic(None, &*payload);
        }
    }
}
