//! `Main.immediate`: Main, but run in place when already on the main thread.

use std::num::NonZeroUsize;

use crate::dispatch::{Dispatch, Dispatcher};
use crate::error::ParallelismError;
use crate::task::Runnable;

/// The `immediate` view of a main dispatcher: `is_dispatch_needed()` is
/// `!main.is_current_thread()`, so a task started or resumed on the main
/// thread runs in place (through the trampoline); from any other thread it is
/// dispatched to Main. A yield always goes to Main's queue.
pub(crate) struct Immediate {
    main: Dispatcher,
    name: String,
}

impl Immediate {
    pub(crate) fn new(main: Dispatcher) -> Self {
        let name = format!("{}.immediate", main.name());
        Immediate { main, name }
    }
}

impl Dispatch for Immediate {
    fn dispatch(&self, runnable: Runnable) {
        self.main.as_dispatch().dispatch(runnable);
    }

    fn is_dispatch_needed(&self) -> bool {
        // While its loop fires timers, a resumed task queues like any other,
        // so timer wake-ups stay within `run_pending`'s budget and order.
        !self.main.is_current_thread() || crate::host::is_firing_timers()
    }

    fn dispatch_yield(&self, runnable: Runnable) {
        self.main.as_dispatch().dispatch_yield(runnable);
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn is_current_thread(&self) -> bool {
        self.main.is_current_thread()
    }

    fn is_closed(&self) -> bool {
        self.main.is_closed()
    }

    fn limited_parallelism(
        &self,
        this: &Dispatcher,
        _n: NonZeroUsize,
    ) -> Result<Dispatcher, ParallelismError> {
        // Main runs one task at a time already: any n >= 1 is the view itself.
        Ok(this.clone())
    }
}
