//! The end of a scheduler: [`Scheduler::cancel_all`] cancels what is queued,
//! what waits on its timers and what is dispatched meanwhile, then closes it.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Event, Life, Scheduler, TIMERS_NAME};
use crate::panic::wake_reporting_panics;
use crate::task::Runnable;

/// How many rounds of cancellation `cancel_all` runs before giving up on
/// destructors that keep scheduling new work.
const MAX_CANCEL_ROUNDS: usize = 10_000;

impl Scheduler {
    /// Cancels everything: queued tasks are cancelled in place, tasks waiting
    /// on timers are woken and cancelled, and so is every task dispatched
    /// meanwhile (`wake_more` wakes tasks waiting elsewhere). Later
    /// dispatches are cancelled. Must run on the owner thread.
    pub(crate) fn cancel_all(&self, wake_more: impl FnOnce()) {
        {
            let mut state = self.lock();
            if matches!(state.life, Life::Closed) {
                return;
            }
            state.life = Life::Cancelling(Vec::new());
        }
        wake_more();
        for _ in 0..MAX_CANCEL_ROUNDS {
            let (events, rejected) = {
                let mut state = self.lock();
                state.timers.clear();
                state.foreground = 0;
                state.firing = None;
                let events = std::mem::take(&mut state.events);
                let rejected = match &mut state.life {
                    Life::Cancelling(rejected) => std::mem::take(rejected),
                    _ => Vec::new(),
                };
                (events, rejected)
            };
            if events.is_empty() && rejected.is_empty() {
                break;
            }
            for event in events.into_values() {
                match event {
                    Event::Task { runnable, .. } => cancel_isolated(runnable),
                    Event::Timer { waker, .. } => wake_reporting_panics(waker, TIMERS_NAME),
                }
            }
            rejected.into_iter().for_each(cancel_isolated);
        }
        let leftover = {
            let mut state = self.lock();
            state.timers.clear();
            state.foreground = 0;
            let events = std::mem::take(&mut state.events);
            let life = std::mem::replace(&mut state.life, Life::Closed);
            (events, life)
        };
        drop(leftover);
    }
}

fn cancel_isolated(runnable: Runnable) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runnable.cancel_in_place())) {
        crate::panic::report_detached_panic(None, &*payload);
    }
}
