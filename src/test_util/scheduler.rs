//! The virtual clock and the event queue shared by the test dispatchers of one
//! test. Its submodules: [`clock`] makes it the clock of `delay` and
//! `timeout`, [`turns`] gives a task woken by a timer the timer's place,
//! [`cancel`] ends it, and [`report`] describes its queue for failure reports.
//!
//! # Ordering
//!
//! Every event has a key (virtual time, sequence number): a dispatched task is
//! queued at the current virtual time, a timer at its deadline, and the
//! sequence number grows with every event, so events due at the same time run
//! in the order they were queued. The clock only moves forward, to the time of
//! the event being run (or to the target of `advance_time_by`). A task woken
//! by a timer takes the timer's key: it runs right when its timer fires, as
//! kotlinx's test dispatchers resume a `delay` in place.
//!
//! # Threads
//!
//! Events run on the thread that created the scheduler (its *owner*), inside
//! `run_current` / `advance_*` / `run_test`. Any thread may dispatch: a task
//! dispatched from another thread is queued at the current virtual time and
//! wakes the owner if it is waiting in `run_test`.
//!
//! # Foreground and background
//!
//! Each event is foreground or background (work of `TestScope::background`):
//! "idle" means no foreground event is left, so an endless background ticker
//! doesn't keep `advance_until_idle` busy. A timer registered by a task of
//! one of this scheduler's dispatchers is background when that dispatcher
//! is a background one; otherwise (a task of another dispatcher) when it is
//! registered while background work runs on this thread (see
//! [`Attribution`]). So a foreground task that background work resumes in
//! place (the unconfined flavour) keeps foreground timers.

mod cancel;
mod clock;
mod report;
mod turns;

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Wake, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

pub(crate) use clock::{Attribution, ClockBinding};

use crate::block_on::ThreadWaker;
use crate::dispatch::{Dispatch, Dispatcher};
use crate::panic::wake_reporting_panics;
use crate::task::Runnable;
use crate::thread_id::current_thread_id;

/// (virtual time since the start, sequence number).
type EventKey = (Duration, u64);

/// The name of the virtual clock's timers in panic reports.
const TIMERS_NAME: &str = "TestDispatcher";

/// Where `advance_time_by` stops the virtual clock when the target is beyond
/// what an `Instant` (origin + time) can hold (2^40 s, about 34,800 years),
/// so that the clock as a `Duration` and as an `Instant` agree.
pub(crate) const LAST_TIME: Duration = Duration::from_secs(1 << 40);

/// Which events a call of [`Scheduler::run_next`] may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// Events due at the current virtual time or earlier (`run_current`).
    Current,
    /// Events due strictly before the given time (`advance_time_by`).
    Before(Duration),
    /// Any event, while a foreground event is left (`advance_until_idle`).
    Idle,
    /// Any event.
    Any,
}

enum Event {
    Task {
        runnable: Runnable,
        background: bool,
    },
    Timer {
        waker: Waker,
        background: bool,
        /// The task that registered the timer, for reports.
        owner: Option<Arc<str>>,
    },
}

impl Event {
    fn is_background(&self) -> bool {
        match self {
            Event::Task { background, .. } | Event::Timer { background, .. } => *background,
        }
    }
}

/// Why `State::firing` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// A timer is being fired.
    Timer,
    /// `reserve_turn` was called.
    Reserved,
}

/// Whether the scheduler still runs work.
enum Life {
    Open,
    /// `cancel_all` is running: dispatches made on the owner thread are kept
    /// here and cancelled in place.
    Cancelling(Vec<Runnable>),
    /// Every later dispatch is cancelled (the runnable dropped).
    Closed,
}

struct State {
    now: Duration,
    next_seq: u64,
    events: BTreeMap<EventKey, Event>,
    /// Waiting timers: sequence number -> deadline.
    timers: HashMap<u64, Duration>,
    /// How many events in `events` are foreground.
    foreground: usize,
    /// The key of the timer being fired: the first dispatch made on the owner
    /// thread while it fires (its task's) takes the timer's place. Also a
    /// turn reserved by `reserve_turn`.
    firing: Option<(EventKey, Turn)>,
    life: Life,
    /// The dispatchers on this scheduler, with whether each is a background
    /// one: a timer registered by one of their tasks is attributed by it
    /// (see the module docs). Weak, so that a dropped one's id is never
    /// reused while it is listed; pruned as dispatchers are added.
    flavours: Vec<(Weak<dyn Dispatch>, bool)>,
}

impl State {
    fn next_key(&mut self, time: Duration) -> EventKey {
        self.next_seq += 1;
        (time, self.next_seq)
    }

    fn insert(&mut self, key: EventKey, event: Event) {
        if !event.is_background() {
            self.foreground += 1;
        }
        self.events.insert(key, event);
    }

    fn remove(&mut self, key: &EventKey) -> Option<Event> {
        let event = self.events.remove(key)?;
        if !event.is_background() {
            self.foreground -= 1;
        }
        Some(event)
    }
}

/// The clock and queue of one test (see the module docs).
pub(crate) struct Scheduler {
    origin: Instant,
    owner: ThreadId,
    parker: Arc<ThreadWaker>,
    state: Mutex<State>,
}

impl Scheduler {
    /// A scheduler at virtual time zero, owned by the calling thread.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Scheduler {
            origin: Instant::now(),
            owner: current_thread_id(),
            parker: ThreadWaker::current(),
            state: Mutex::new(State {
                now: Duration::ZERO,
                next_seq: 0,
                events: BTreeMap::new(),
                timers: HashMap::new(),
                foreground: 0,
                firing: None,
                life: Life::Open,
                flavours: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the calling thread is the one that runs this scheduler's events.
    pub(crate) fn is_owner_thread(&self) -> bool {
        self.owner == current_thread_id()
    }

    /// Panics with a message naming `operation` when called off the owner thread.
    #[track_caller]
    pub(crate) fn assert_owner(&self, operation: &str) {
        assert!(
            self.is_owner_thread(),
            "TestDispatcher::{operation} must be called on the thread that created the \
             dispatcher (the test thread): its tasks run there"
        );
    }

    /// Virtual time since the start.
    pub(crate) fn current_time(&self) -> Duration {
        self.lock().now
    }

    /// Whether no foreground event is left.
    pub(crate) fn is_idle(&self) -> bool {
        self.lock().foreground == 0
    }

    /// How many timers are waiting.
    pub(crate) fn pending_timers(&self) -> usize {
        self.lock().timers.len()
    }

    /// Records that `dispatcher` dispatches onto this scheduler, as
    /// background work or not.
    pub(crate) fn add_flavour(&self, dispatcher: &Dispatcher, background: bool) {
        let mut state = self.lock();
        state.flavours.retain(|(weak, _)| weak.strong_count() > 0);
        state.flavours.push((dispatcher.downgrade(), background));
    }

    /// Whether the dispatcher `id` is one of this scheduler's background
    /// ones; `None` when it is none of this scheduler's.
    fn flavour(state: &State, id: usize) -> Option<bool> {
        state
            .flavours
            .iter()
            .find(|(weak, _)| weak.as_ptr().cast::<()>() as usize == id)
            .map(|&(_, background)| background)
    }

    /// Whether the scheduler rejects what is dispatched to it (its scope
    /// ended).
    pub(crate) fn is_closed(&self) -> bool {
        !matches!(self.lock().life, Life::Open)
    }

    /// Queues `runnable` (see the module docs).
    pub(crate) fn enqueue(&self, runnable: Runnable, background: bool) {
        let owner = self.is_owner_thread();
        let mut state = self.lock();
        match &mut state.life {
            Life::Open => {}
            Life::Cancelling(rejected) if owner => {
                rejected.push(runnable);
                return;
            }
            Life::Cancelling(_) | Life::Closed => {
                drop(state);
                drop(runnable);
                return;
            }
        }
        let firing = if owner { state.firing.take() } else { None };
        let key = match firing {
            Some((key, _)) => key,
            None => {
                let now = state.now;
                state.next_key(now)
            }
        };
        state.insert(
            key,
            Event::Task {
                runnable,
                background,
            },
        );
        drop(state);
        if !owner {
            self.parker.wake_by_ref();
        }
    }

    /// Runs the first event if `until` allows it; returns whether one ran.
    pub(crate) fn run_next(&self, until: Until) -> bool {
        let mut state = self.lock();
        let Some((&key, _)) = state.events.first_key_value() else {
            return false;
        };
        let eligible = match until {
            Until::Current => key.0 <= state.now,
            Until::Before(target) => key.0 < target,
            Until::Idle => state.foreground > 0,
            Until::Any => true,
        };
        if !eligible {
            return false;
        }
        let event = state.remove(&key).expect("the first event is queued");
        state.now = state.now.max(key.0);
        match event {
            Event::Task {
                runnable,
                background,
            } => {
                drop(state);
                let name = runnable.name().map(Arc::from);
                let _attribution = Attribution::enter(background, name);
                run_isolated(runnable);
            }
            Event::Timer {
                waker,
                background,
                owner,
            } => {
                state.timers.remove(&key.1);
                state.firing = Some((key, Turn::Timer));
                drop(state);
                {
                    let _attribution = Attribution::enter(background, owner);
                    // A hand-written waker may panic: reported, as the other
                    // timers do, rather than unwound into the test's driver
                    // with the clock stopped at this timer.
                    wake_reporting_panics(waker, TIMERS_NAME);
                }
                self.consume_firing();
            }
        }
        true
    }

    /// Moves the clock to `time` unless it is already later.
    /// `time`, or [`LAST_TIME`] (at least `now`) when the clock could not
    /// show `time` as an `Instant`.
    pub(crate) fn representable(&self, time: Duration) -> Duration {
        if self.origin.checked_add(time).is_some() {
            return time;
        }
        LAST_TIME.max(self.lock().now)
    }

    pub(crate) fn set_time_at_least(&self, time: Duration) {
        let mut state = self.lock();
        state.now = state.now.max(time);
    }

    /// Parks the owner thread until a task is dispatched from another thread,
    /// `deadline` passes, or a short while has passed.
    pub(crate) fn park_until(&self, deadline: Option<Instant>) {
        let mut wait = Duration::from_millis(100);
        if let Some(deadline) = deadline {
            wait = wait.min(deadline.saturating_duration_since(Instant::now()));
        }
        if !self.lock().events.is_empty() {
            return;
        }
        // `!Send` tasks of this thread sent back from another one (which
        // unparks it): cancelled here, as a loop's `run_pending` does.
        if crate::task::cancel_orphans() {
            return;
        }
        self.parker.park(Some(wait));
    }
}

/// Runs one task; a panic escaping it (a destructor's: the future's own
/// panics go to its `Task`) is reported, never unwound into the caller.
fn run_isolated(runnable: Runnable) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runnable.run())) {
        crate::panic::report_detached_panic(None, &*payload);
    }
}
