//! The scheduler as a clock: the crate-private [`TimerService`] that makes
//! `delay` and `timeout` wait in virtual time, its binding to a thread, and
//! the attribution of timers to foreground or background work.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::{Event, Life, Scheduler};
use crate::time::heap::TimerKey;
use crate::time::service::{self, TimerService};

impl Scheduler {
    /// The virtual clock as an `Instant`.
    pub(crate) fn instant_at(&self, time: Duration) -> Instant {
        self.origin
            .checked_add(time)
            .unwrap_or_else(|| self.origin + Duration::from_secs(86_400 * 365 * 30))
    }

    /// Makes this scheduler the clock of `delay`s polled on the calling
    /// thread until the binding is dropped.
    pub(crate) fn bind_clock(self: &Arc<Self>) -> ClockBinding {
        let service: Arc<dyn TimerService> = self.clone();
        service::bind(service.clone());
        ClockBinding {
            service,
            _not_send: PhantomData,
        }
    }

    /// Whether this scheduler is the clock of `delay`s on the calling thread.
    pub(super) fn is_clock_here(&self) -> bool {
        let current = service::current();
        std::ptr::addr_eq(Arc::as_ptr(&current), self as *const Self)
    }
}

impl TimerService for Scheduler {
    fn now(&self) -> Instant {
        let now = self.lock().now;
        self.instant_at(now)
    }

    /// A closed scheduler fires nothing more: a `Delay` on it moves its
    /// deadline to other timers instead of completing early.
    fn is_open(&self) -> bool {
        matches!(self.lock().life, Life::Open)
    }

    /// Virtual time: a deadline moved to or from these timers keeps its
    /// remaining time, not its `Instant`.
    fn is_real_time(&self) -> bool {
        false
    }

    /// Inside a `block_on` (which blocks the test thread, so virtual time
    /// cannot move) a `delay` waits on the real fallback timers.
    fn serves_current_poll(&self) -> bool {
        !crate::block_on::is_blocking()
    }

    fn insert(&self, deadline: Instant, waker: &Waker) -> Option<TimerKey> {
        let time = deadline.saturating_duration_since(self.origin);
        let (attributed, owner) = Attribution::current();
        // The dispatcher of the task being polled, when it is one of this
        // scheduler's, says whether the timer is background work; the run
        // being attributed may be another task's (an in-place resume on
        // the unconfined flavour).
        let current = crate::context::current_id();
        // Cloned before the lock: a waker's clone is user code, which may
        // drop another delay (and take the lock).
        let waker = waker.clone();
        let mut state = self.lock();
        let background = Scheduler::flavour(&state, current).unwrap_or(attributed);
        // Closed since the caller checked (on another thread, or by the
        // clone): nothing to register here, the caller moves the deadline.
        if !matches!(state.life, Life::Open) {
            drop(state);
            drop(waker);
            return None;
        }
        let key = state.next_key(time);
        state.timers.insert(key.1, time);
        state.insert(
            key,
            Event::Timer {
                waker,
                background,
                owner,
            },
        );
        Some(TimerKey::from_seq(key.1))
    }

    /// `None` once closed (it may have closed since the caller checked
    /// [`is_open`](TimerService::is_open), on another thread or in the
    /// waker's clone): its timers were dropped, not fired, and the caller
    /// moves the deadline elsewhere.
    fn poll(&self, key: TimerKey, waker: &Waker) -> Option<Poll<()>> {
        let stored = |state: &mut super::State| {
            let time = *state.timers.get(&key.seq())?;
            match state.events.get_mut(&(time, key.seq())) {
                Some(Event::Timer { waker: current, .. }) => Some(current.will_wake(waker)),
                _ => Some(true),
            }
        };
        let same = {
            let mut state = self.lock();
            if !matches!(state.life, Life::Open) {
                return None;
            }
            stored(&mut state)
        };
        let Some(same) = same else {
            return Some(Poll::Ready(()));
        };
        if same {
            return Some(Poll::Pending);
        }
        // Cloned outside the lock (user code, see `insert`); the timer may
        // have fired meanwhile, or the scheduler closed.
        let waker = waker.clone();
        let mut state = self.lock();
        if !matches!(state.life, Life::Open) {
            drop(state);
            drop(waker);
            return None;
        }
        let Some(&time) = state.timers.get(&key.seq()) else {
            drop(state);
            drop(waker);
            return Some(Poll::Ready(()));
        };
        let replaced = match state.events.get_mut(&(time, key.seq())) {
            Some(Event::Timer { waker: current, .. }) => Some(std::mem::replace(current, waker)),
            _ => None,
        };
        drop(state);
        // Dropping a task's last waker may schedule it: never under the lock.
        drop(replaced);
        Some(Poll::Pending)
    }

    fn cancel(&self, key: TimerKey) {
        let mut state = self.lock();
        let removed = match state.timers.remove(&key.seq()) {
            Some(time) => state.remove(&(time, key.seq())),
            None => None,
        };
        drop(state);
        drop(removed);
    }
}

/// Unbinds the clock of `delay`s from this thread when dropped.
pub(crate) struct ClockBinding {
    service: Arc<dyn TimerService>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for ClockBinding {
    fn drop(&mut self) {
        service::unbind(&self.service);
    }
}

thread_local! {
    /// Whether the work running on this thread is background work, and the
    /// name of its task.
    static ATTRIBUTION: RefCell<(bool, Option<Arc<str>>)> = const { RefCell::new((false, None)) };
}

/// Marks the work running on this thread as foreground or background (and
/// names its task) until dropped; timers registered meanwhile inherit it. Set
/// by the scheduler around each event and by scope tasks around each poll:
/// the innermost wins.
pub(crate) struct Attribution {
    previous: Option<(bool, Option<Arc<str>>)>,
}

impl Attribution {
    pub(crate) fn enter(background: bool, name: Option<Arc<str>>) -> Self {
        let previous = ATTRIBUTION.try_with(|a| a.replace((background, name))).ok();
        Attribution { previous }
    }

    fn current() -> (bool, Option<Arc<str>>) {
        ATTRIBUTION
            .try_with(|a| a.borrow().clone())
            .unwrap_or((false, None))
    }
}

impl Drop for Attribution {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            let _ = ATTRIBUTION.try_with(|a| *a.borrow_mut() = previous);
        }
    }
}
