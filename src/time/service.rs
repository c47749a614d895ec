//! Which timers a `delay` uses: the host loop's own heap when polled on a host
//! loop's thread (or a test dispatcher's virtual clock), otherwise the shared
//! fallback timer thread.

use std::cell::RefCell;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Instant;

use super::heap::{TimerHeap, TimerKey, TimerPoll};
use crate::panic::wake_reporting_panics;

/// A clock with timers: implemented by host engines (see
/// [`LoopTimers`](super::loop_timers::LoopTimers)), the fallback thread and
/// the test dispatcher (virtual time).
pub(crate) trait TimerService: Send + Sync + 'static {
    /// The service's current time.
    fn now(&self) -> Instant;
    /// Registers a timer; `None` when it cannot be registered from here (the
    /// caller then uses the fallback timers).
    fn insert(&self, deadline: Instant, waker: &Waker) -> Option<TimerKey>;
    /// Registers a timer unless `deadline` has passed. Where the service
    /// keeps a recent time (a loop: when it last fired its timers) the
    /// deadline is compared with that, which costs no clock read; a deadline
    /// after it is registered, and fires at once if it turns out to have
    /// passed too.
    fn insert_until(&self, deadline: Instant, waker: &Waker) -> Until {
        if deadline <= self.now() {
            return Until::Passed;
        }
        self.insert(deadline, waker)
            .map_or(Until::Unreachable, Until::Waiting)
    }
    /// `Ready` once the timer fired; `None` when the timer cannot be reached
    /// from this thread (a loop's timers, polled off its thread): the caller
    /// cancels it and registers the same deadline on this thread's timers.
    fn poll(&self, key: TimerKey, waker: &Waker) -> Option<Poll<()>>;
    /// Forgets the timer (from any thread).
    fn cancel(&self, key: TimerKey);
    /// Whether timers registered now will still fire (a host that shut down
    /// answers `false`).
    fn is_open(&self) -> bool {
        true
    }
    /// Whether a `delay` polled now on the bound thread should use these
    /// timers (a host's serve only its own tasks and its `run_pending`).
    fn serves_current_poll(&self) -> bool {
        true
    }
    /// Whether these timers serve only some of the polls on their thread (a
    /// host's: its own tasks and its `run_pending`). Such timers, when they
    /// serve a poll, take it whatever was bound after them: a test clock
    /// bound later serves every poll, but does not take a loop's own tasks.
    fn serves_own_tasks_only(&self) -> bool {
        false
    }
    /// Whether [`now`](Self::now) is the real clock (`Instant::now()`); a
    /// test dispatcher's virtual clock is not. A deadline moved between two
    /// services keeps its `Instant` only when both are real.
    fn is_real_time(&self) -> bool {
        true
    }
}

/// What [`TimerService::insert_until`] did with a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// The deadline has passed: nothing was registered.
    Passed,
    /// The timer waits under this key.
    Waiting(TimerKey),
    /// The timers cannot be reached from here (see [`TimerService::insert`]).
    Unreachable,
}

thread_local! {
    /// The timers bound to this thread, innermost last: a host engine's for
    /// its life, a test dispatcher's clock while it is installed or runs.
    static THREAD_TIMERS: RefCell<Vec<Arc<dyn TimerService>>> = const { RefCell::new(Vec::new()) };
}

/// The timers for a `delay` polled on this thread: those of a host whose
/// own task (or `run_pending`) polls it, else the innermost bound ones that
/// are open and serve the current poll, else the fallback thread's. A
/// host's timers serve only its own tasks, so a `delay` of a test running a
/// loop of its own still waits on the test's clock, and the loop's tasks
/// wait on the loop's timers whether the loop was made before or after the
/// test's clock was bound.
pub(crate) fn current() -> Arc<dyn TimerService> {
    THREAD_TIMERS
        .try_with(|t| {
            let bound = t.borrow();
            let mut serving = None;
            for timers in bound.iter().rev() {
                if !(timers.serves_current_poll() && timers.is_open()) {
                    continue;
                }
                if timers.serves_own_tasks_only() {
                    return Some(timers.clone());
                }
                serving.get_or_insert(timers);
            }
            serving.cloned()
        })
        .ok()
        .flatten()
        .unwrap_or_else(fallback)
}

/// The shared fallback timers (the `dispatchers-timer` thread).
pub(crate) fn fallback() -> Arc<dyn TimerService> {
    FALLBACK.clone()
}

/// Binds `service` to this thread, innermost, until [`unbind`].
pub(crate) fn bind(service: Arc<dyn TimerService>) {
    let _ = THREAD_TIMERS.try_with(|t| t.borrow_mut().push(service));
}

/// Unbinds `service` from this thread (its innermost binding, wherever it
/// is: bindings need not end in the reverse order).
pub(crate) fn unbind(service: &Arc<dyn TimerService>) {
    let removed = THREAD_TIMERS
        .try_with(|t| {
            let mut bound = t.borrow_mut();
            let index = bound.iter().rposition(|b| same(b, service))?;
            Some(bound.remove(index))
        })
        .ok()
        .flatten();
    // Possibly the last handle: dropped outside the borrow.
    drop(removed);
}

fn same(a: &Arc<dyn TimerService>, b: &Arc<dyn TimerService>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

static FALLBACK: LazyLock<Arc<dyn TimerService>> =
    LazyLock::new(|| Arc::new(FallbackTimers::start()));

/// The name of the fallback timer thread, and of its timers in panic reports.
const FALLBACK_NAME: &str = "dispatchers-timer";

/// The shared `dispatchers-timer` thread, for delays polled off any host loop
/// (pool threads, `block_on`, Unconfined).
///
/// Wakers are user code (a hand-written waker's clone, wake and drop may do
/// anything, including touch these timers): none runs while the heap is
/// locked, and a panicking `wake` is reported and does not stop the thread.
struct FallbackTimers {
    shared: Arc<FallbackShared>,
}

struct FallbackShared {
    heap: Mutex<TimerHeap>,
    changed: Condvar,
}

impl FallbackTimers {
    fn start() -> Self {
        let shared = Arc::new(FallbackShared {
            heap: Mutex::new(TimerHeap::default()),
            changed: Condvar::new(),
        });
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name(FALLBACK_NAME.into())
            .spawn(move || thread_shared.run())
            .expect("dispatchers: cannot start the fallback timer thread");
        FallbackTimers { shared }
    }
}

impl FallbackShared {
    fn run(&self) {
        let mut wakers = Vec::new();
        let mut heap = self.lock();
        loop {
            heap.fire_due(Instant::now(), &mut wakers);
            if !wakers.is_empty() {
                drop(heap);
                for waker in wakers.drain(..) {
                    // A panic here would end the thread, and every fallback
                    // timer of the process with it.
                    wake_reporting_panics(waker, FALLBACK_NAME);
                }
                heap = self.lock();
                continue;
            }
            heap = match heap.next_deadline() {
                None => self.changed.wait(heap).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    self.changed
                        .wait_timeout(heap, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

impl TimerService for FallbackTimers {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn insert(&self, deadline: Instant, waker: &Waker) -> Option<TimerKey> {
        // Cloning may run user code that touches these timers: not under the
        // lock.
        let waker = waker.clone();
        let mut heap = self.shared.lock();
        let earlier = heap.next_deadline().is_none_or(|next| deadline < next);
        let key = heap.insert(deadline, waker);
        drop(heap);
        if earlier {
            self.shared.changed.notify_one();
        }
        Some(key)
    }

    fn poll(&self, key: TimerKey, waker: &Waker) -> Option<Poll<()>> {
        let polled = self.shared.lock().poll(key, waker);
        match polled {
            TimerPoll::Ready => Some(Poll::Ready(())),
            TimerPoll::Pending => Some(Poll::Pending),
            TimerPoll::NeedsWaker => {
                // Cloning may run user code that touches these timers: not
                // under the lock.
                let waker = waker.clone();
                let (poll, dropped) = self.shared.lock().set_waker(key, waker);
                // Dropping a task's last waker may schedule it: never under
                // the lock.
                drop(dropped);
                Some(poll)
            }
        }
    }

    fn cancel(&self, key: TimerKey) {
        let waker = self.shared.lock().cancel(key);
        drop(waker);
    }
}

impl FallbackShared {
    fn lock(&self) -> MutexGuard<'_, TimerHeap> {
        self.heap.lock().unwrap_or_else(|e| e.into_inner())
    }
}
