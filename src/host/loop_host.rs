//! [`LoopHost`]: a ready-to-use host for a hand-written loop (a game server's
//! `loop { tick(); ... }`), with no host library.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::budget::{Budget, RunReport};
use super::engine::HostEngine;
use crate::block_on::ThreadWaker;
use crate::error::RegisterError;
use crate::main_dispatcher::MainDispatcher;

/// A [`HostEngine`] whose wake-up unparks the loop thread: call
/// [`run_pending`](Self::run_pending) from your loop, and
/// [`wait`](Self::wait) where it would sleep.
///
/// ```
/// use dispatchers::{Budget, LoopHost, delay};
/// use std::time::Duration;
///
/// let host = LoopHost::new("tick-loop");
/// let main = host.dispatcher();
/// let ticks = main.spawn(async {
///     delay(Duration::from_millis(5)).await;
///     "done"
/// });
/// let answer = host.run_until(ticks);
/// assert_eq!(answer.unwrap(), "done");
///
/// // or a fixed-rate loop:
/// for _frame in 0..3 {
///     // update(); render(); ...
///     host.run_pending(Budget::unlimited().max_time(Duration::from_millis(2)));
///     host.wait(Some(Duration::from_millis(1)));
/// }
/// ```
pub struct LoopHost {
    engine: HostEngine,
    parker: Arc<ThreadWaker>,
}

impl LoopHost {
    /// A host for the calling thread's loop.
    pub fn new(name: impl Into<String>) -> Self {
        let parker = ThreadWaker::current();
        let wake = parker.clone();
        let engine = HostEngine::new(name, move || {
            use std::task::Wake;
            wake.wake_by_ref();
        });
        LoopHost { engine, parker }
    }

    /// The Main dispatcher of this loop.
    pub fn dispatcher(&self) -> MainDispatcher {
        self.engine.dispatcher()
    }

    /// The engine, for what this type does not forward.
    pub fn engine(&self) -> &HostEngine {
        &self.engine
    }

    /// Registers this loop as a source of `Dispatchers::main()`.
    ///
    /// # Errors
    ///
    /// [`RegisterError::AlreadySelected`] when Main was already selected.
    pub fn register_as_main(&self, priority: i32) -> Result<(), RegisterError> {
        self.engine.register_as_main(priority)
    }

    /// See [`HostEngine::run_pending`].
    pub fn run_pending(&self, budget: Budget) -> RunReport {
        self.engine.run_pending(budget)
    }

    /// Sleeps until a task is dispatched, the next `delay` is due, or
    /// `max` has passed (`None`: no limit). Returns at once when tasks are
    /// queued. Called inside an in-place run or a cancellation, it first runs
    /// what is queued behind that on this thread (as `block_on` does).
    pub fn wait(&self, max: Option<Duration>) {
        let timeout = match (self.engine.next_timeout(), max) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if timeout == Some(Duration::ZERO) {
            return;
        }
        // As `block_on`: what it waits for may be queued behind the in-place
        // run or the cancellation it is called from.
        if crate::block_on::run_queued_work() {
            // Back to the caller, which checks its future first: the batch
            // may have completed it, and a `block_on` in the batch may have
            // taken the thread's wake-up.
            return;
        }
        self.parker.park(timeout);
    }

    /// Sleeps until `deadline` (a fixed tick rate), running tasks and timers
    /// as they come due meanwhile; returns what ran, added up.
    pub fn run_until_instant(&self, deadline: Instant) -> RunReport {
        let mut total = RunReport::default();
        loop {
            let report = self.engine.run_pending(Budget::unlimited());
            total.ran += report.ran;
            total.timers_fired += report.timers_fired;
            let now = Instant::now();
            if now >= deadline {
                return total;
            }
            self.wait(Some(deadline - now));
        }
    }

    /// Runs the loop until `future` (polled on this thread) completes.
    pub fn run_until<F: Future>(&self, future: F) -> F::Output {
        let root = ThreadWaker::current();
        let waker = Waker::from(root.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        let mut poll_root = true;
        loop {
            if poll_root || root.take_woken() {
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return output;
                }
            }
            self.engine.run_pending(Budget::unlimited());
            poll_root = root.take_woken();
            if !poll_root && !self.engine.has_pending() {
                self.wait(None);
            }
        }
    }
}

impl fmt::Debug for LoopHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHost")
            .field("engine", &self.engine)
            .finish()
    }
}
