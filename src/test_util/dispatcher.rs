//! [`TestDispatcher`]: a single-threaded dispatcher on a virtual clock, and
//! [`InstallGuard`], which makes it Main and the clock of `delay` on a thread.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::scheduler::{ClockBinding, Scheduler, Until};
use crate::dispatch::{Dispatch, Dispatcher};
use crate::error::ParallelismError;
use crate::main_dispatcher::{Dispatchers, MainDispatcher, ThreadMainGuard};
use crate::task::Runnable;

/// A dispatcher for tests: tasks run on the test thread, in a deterministic
/// order, and `delay` / `timeout` wait on a virtual clock that only moves
/// when the test says so.
///
/// Nothing runs on its own: [`run_current`](Self::run_current),
/// [`advance_time_by`](Self::advance_time_by) and
/// [`advance_until_idle`](Self::advance_until_idle) run the queued tasks and
/// timers on the calling thread, which must be the thread that created the
/// dispatcher (the *test thread*). [`run_test`](super::run_test) creates one
/// and drives it for you.
///
/// Two flavours, as in kotlinx-coroutines-test:
///
/// - [`TestDispatcher::new`] (kotlinx's `StandardTestDispatcher`): a spawned
///   or woken task is queued, FIFO, and runs when the test runs the queue;
/// - [`TestDispatcher::unconfined`] (`UnconfinedTestDispatcher`): on the test
///   thread a task starts, and resumes, in place (through the per-thread
///   trampoline), as `Dispatchers::unconfined()` does; a yield is queued, and
///   a task woken by its timer runs at the timer's turn. In place needs the
///   virtual clock on the thread (inside [`run_test`](super::run_test), under
///   [`install`](Self::install), or inside `run_current` / `advance_*`);
///   elsewhere the task is queued, so that its `delay`s stay virtual.
///
/// On both, a dispatch from another thread is queued at the current virtual
/// time and runs on the test thread at the next `run_current` / `advance_*`.
///
/// The handle is cheap to clone and `Send + Sync`. It is Main with
/// [`install`](Self::install) (for the calling thread) or with
/// `Dispatchers::set_main(dispatcher.clone())` (for the whole process).
///
/// ```
/// use dispatchers::test_util::TestDispatcher;
/// use dispatchers::delay;
/// use std::time::Duration;
///
/// let test = TestDispatcher::new();
/// let task = test.dispatcher().spawn(async {
///     delay(Duration::from_secs(3600)).await;
///     "an hour later"
/// });
/// test.advance_until_idle();
/// assert!(task.is_finished());
/// assert_eq!(test.current_time(), Duration::from_secs(3600));
/// ```
#[derive(Clone)]
pub struct TestDispatcher {
    scheduler: Arc<Scheduler>,
    main: MainDispatcher,
    background: Dispatcher,
    unconfined: bool,
}

impl TestDispatcher {
    /// A standard (queued, FIFO) test dispatcher with its own clock at zero;
    /// the calling thread is its test thread.
    pub fn new() -> Self {
        Self::on(Scheduler::new(), false)
    }

    /// An unconfined test dispatcher with its own clock at zero: on the test
    /// thread, tasks start and resume in place.
    pub fn unconfined() -> Self {
        Self::on(Scheduler::new(), true)
    }

    /// The standard flavour on the same clock and queue (kotlinx's
    /// `StandardTestDispatcher(testScheduler)`).
    pub fn to_standard(&self) -> Self {
        Self::on(self.scheduler.clone(), false)
    }

    /// The unconfined flavour on the same clock and queue (kotlinx's
    /// `UnconfinedTestDispatcher(testScheduler)`): handy to collect eagerly
    /// while the code under test runs on the standard one.
    pub fn to_unconfined(&self) -> Self {
        Self::on(self.scheduler.clone(), true)
    }

    fn on(scheduler: Arc<Scheduler>, unconfined: bool) -> Self {
        let dispatch = |background| -> Dispatcher {
            Dispatcher::new(TestDispatch {
                scheduler: scheduler.clone(),
                unconfined,
                background,
            })
        };
        let main = MainDispatcher::new(dispatch(false));
        let background = dispatch(true);
        scheduler.add_flavour(&main, false);
        scheduler.add_flavour(&main.immediate(), false);
        scheduler.add_flavour(&background, true);
        TestDispatcher {
            scheduler,
            main,
            background,
            unconfined,
        }
    }

    /// Whether this is the unconfined flavour.
    pub fn is_unconfined(&self) -> bool {
        self.unconfined
    }

    /// The dispatcher to spawn on (the same one Main is when this is
    /// installed).
    pub fn dispatcher(&self) -> Dispatcher {
        self.main.dispatcher().clone()
    }

    /// This dispatcher as Main, with its `immediate` view: on the test thread
    /// `immediate` runs in place and `spawn_local` is allowed. On the
    /// unconfined flavour Main itself runs in place there (as kotlinx's
    /// `Dispatchers.setMain(UnconfinedTestDispatcher())`).
    pub fn main(&self) -> MainDispatcher {
        self.main.clone()
    }

    /// The handle of [`dispatcher`](Self::dispatcher), borrowed.
    pub(crate) fn foreground_dispatcher(&self) -> &Dispatcher {
        self.main.dispatcher()
    }

    /// The dispatcher of background work: its tasks and timers don't keep
    /// the dispatcher from being idle.
    pub(crate) fn background_dispatcher(&self) -> &Dispatcher {
        &self.background
    }

    pub(crate) fn scheduler(&self) -> &Arc<Scheduler> {
        &self.scheduler
    }

    /// Virtual time elapsed since the dispatcher was created.
    pub fn current_time(&self) -> Duration {
        self.scheduler.current_time()
    }

    /// The virtual clock as an `Instant` (the one `delay` and `delay_until`
    /// use on the test thread): the real time at creation plus
    /// [`current_time`](Self::current_time).
    pub fn now(&self) -> Instant {
        self.scheduler.instant_at(self.current_time())
    }

    /// Runs the tasks and timers due at the current virtual time, including
    /// those they queue for the same time; the clock doesn't move.
    ///
    /// # Panics
    ///
    /// When called on another thread than the test thread.
    #[track_caller]
    pub fn run_current(&self) {
        self.scheduler.assert_owner("run_current");
        let _clock = self.scheduler.bind_clock();
        while self.scheduler.run_next(Until::Current) {}
    }

    /// Moves the clock forward by `duration`, running on the way every task
    /// and timer due *strictly before* the target, in (time, sequence) order;
    /// then sets the clock to the target. What is due exactly at the target
    /// has not run yet: [`run_current`](Self::run_current) runs it (as
    /// kotlinx's `advanceTimeBy`). Background work runs too. A target too
    /// far for an `Instant` (`Duration::MAX`, say) stops the clock at about
    /// 34,800 years.
    ///
    /// # Panics
    ///
    /// When called on another thread than the test thread.
    #[track_caller]
    pub fn advance_time_by(&self, duration: Duration) {
        self.scheduler.assert_owner("advance_time_by");
        let _clock = self.scheduler.bind_clock();
        let target = self
            .scheduler
            .representable(self.current_time().saturating_add(duration));
        while self.scheduler.run_next(Until::Before(target)) {}
        self.scheduler.set_time_at_least(target);
    }

    /// Runs tasks and timers in (time, sequence) order, moving the clock as
    /// it goes, until no foreground work is left (background work, from
    /// [`TestScope::background`](super::TestScope::background), doesn't
    /// count: an endless background ticker doesn't keep this running).
    ///
    /// A foreground loop that never ends (`loop { delay(..).await }`) keeps
    /// it running forever. [`run_test`](super::run_test)'s own driving is
    /// bounded by its timeout, but a call to this method from inside the test
    /// body is not (the timeout is checked between the driver's steps, and
    /// this call is one step), as with kotlinx's `advanceUntilIdle`.
    ///
    /// # Panics
    ///
    /// When called on another thread than the test thread.
    #[track_caller]
    pub fn advance_until_idle(&self) {
        self.scheduler.assert_owner("advance_until_idle");
        let _clock = self.scheduler.bind_clock();
        while self.scheduler.run_next(Until::Idle) {}
    }

    /// Whether no foreground task or timer is queued.
    pub fn is_idle(&self) -> bool {
        self.scheduler.is_idle()
    }

    /// How many timers (`delay`s, `timeout`s) are waiting on the virtual
    /// clock, background ones included.
    pub fn pending_timers(&self) -> usize {
        self.scheduler.pending_timers()
    }

    /// Makes this dispatcher Main for the calling thread
    /// ([`Dispatchers::set_thread_main`]) and its virtual clock the clock of
    /// `delay`s polled on this thread, until the guard is dropped (the
    /// previous Main and clock then come back). [`run_test`](super::run_test)
    /// does this for you.
    ///
    /// Other threads (pool threads, threads the test spawns) still see the
    /// process-wide Main and real time.
    pub fn install(&self) -> InstallGuard {
        InstallGuard {
            _main: Dispatchers::set_thread_main(self.main.clone()),
            _clock: self.scheduler.bind_clock(),
        }
    }

    /// Cancels every queued task and every task waiting on the virtual clock
    /// (their futures are dropped here, their `Task`s resolve as cancelled);
    /// later dispatches are cancelled too. [`run_test`](super::run_test)
    /// does this at the end of each test.
    ///
    /// # Panics
    ///
    /// When called on another thread than the test thread.
    #[track_caller]
    pub fn shutdown(&self) {
        self.scheduler.assert_owner("shutdown");
        self.scheduler.cancel_all(|| {});
    }
}

impl Default for TestDispatcher {
    fn default() -> Self {
        TestDispatcher::new()
    }
}

impl fmt::Debug for TestDispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDispatcher")
            .field("unconfined", &self.unconfined)
            .field("current_time", &self.current_time())
            .field("idle", &self.is_idle())
            .finish()
    }
}

/// A `TestDispatcher` is a [`Dispatch`] too: it forwards to
/// [`dispatcher()`](TestDispatcher::dispatcher), which is the handle to prefer
/// (wrapping a `TestDispatcher` in a new `Dispatcher` gives a handle that is
/// not equal to Main's).
impl Dispatch for TestDispatcher {
    fn dispatch(&self, runnable: Runnable) {
        self.main.as_dispatch().dispatch(runnable);
    }

    fn is_dispatch_needed(&self) -> bool {
        self.main.as_dispatch().is_dispatch_needed()
    }

    fn dispatch_yield(&self, runnable: Runnable) {
        self.main.as_dispatch().dispatch_yield(runnable);
    }

    fn name(&self) -> &str {
        self.main.name()
    }

    fn is_current_thread(&self) -> bool {
        self.main.as_dispatch().is_current_thread()
    }

    fn is_closed(&self) -> bool {
        self.main.as_dispatch().is_closed()
    }

    fn limited_parallelism(
        &self,
        this: &Dispatcher,
        n: NonZeroUsize,
    ) -> Result<Dispatcher, ParallelismError> {
        self.main.as_dispatch().limited_parallelism(this, n)
    }
}

impl From<TestDispatcher> for MainDispatcher {
    fn from(test: TestDispatcher) -> Self {
        test.main
    }
}

impl From<TestDispatcher> for Dispatcher {
    fn from(test: TestDispatcher) -> Self {
        test.dispatcher()
    }
}

/// Restores the previous Main of the thread and the previous clock of its
/// `delay`s when dropped (see [`TestDispatcher::install`]).
#[must_use = "the test dispatcher is Main only until the guard is dropped"]
pub struct InstallGuard {
    // Dropped in order: the clock binding first, then Main, the reverse of
    // installation.
    _clock: ClockBinding,
    _main: ThreadMainGuard,
}

impl fmt::Debug for InstallGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstallGuard").finish_non_exhaustive()
    }
}

/// The [`Dispatch`] behind a [`TestDispatcher`] (one per flavour, foreground
/// or background).
struct TestDispatch {
    scheduler: Arc<Scheduler>,
    unconfined: bool,
    background: bool,
}

impl Dispatch for TestDispatch {
    fn dispatch(&self, runnable: Runnable) {
        self.scheduler.enqueue(runnable, self.background);
    }

    fn is_dispatch_needed(&self) -> bool {
        !(self.unconfined && self.scheduler.may_run_in_place())
    }

    fn is_closed(&self) -> bool {
        self.scheduler.is_closed()
    }

    fn name(&self) -> &str {
        match (self.unconfined, self.background) {
            (false, false) => "TestDispatcher",
            (false, true) => "TestDispatcher.background",
            (true, false) => "UnconfinedTestDispatcher",
            (true, true) => "UnconfinedTestDispatcher.background",
        }
    }

    fn is_current_thread(&self) -> bool {
        self.scheduler.is_current_thread()
    }

    fn limited_parallelism(
        &self,
        this: &Dispatcher,
        _n: NonZeroUsize,
    ) -> Result<Dispatcher, ParallelismError> {
        // One task at a time already.
        Ok(this.clone())
    }
}
