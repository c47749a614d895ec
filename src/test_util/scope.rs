//! [`TestScope`]: what a [`run_test`](super::run_test) body receives, modelled
//! on kotlinx's `TestScope`: spawn helpers whose tasks the test keeps track
//! of, the virtual clock, and a background scope.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::dispatcher::TestDispatcher;
use super::tracked::Registry;
use crate::dispatch::Dispatcher;
use crate::main_dispatcher::MainDispatcher;
use crate::task::{Task, TaskBuilder};

/// The scope of one [`run_test`](super::run_test): spawns tasks on the test
/// dispatcher (which is Main on the test thread) and controls its virtual
/// clock.
///
/// Tasks spawned through the scope are tracked: when the body returns,
/// `run_test` runs the dispatcher until idle and then fails the test if one
/// of them is still pending (it is named in the message, with the place it
/// was spawned), and a panic in one of them fails the test. Tasks spawned
/// through [`background`](Self::background) are cancelled at the end
/// instead. Tasks spawned on Main by the code under test (not through the
/// scope) run as well, but are not tracked: to check that a task panics, spawn
/// it on [`main`](Self::main) and look at its [`JoinError`](crate::JoinError).
///
/// The handle is cheap to clone and `Send + Sync`: a task can capture it to
/// read the clock or spawn siblings. Driving the clock
/// ([`run_current`](Self::run_current), `advance_*`) must happen on the test
/// thread.
#[derive(Clone)]
pub struct TestScope {
    dispatcher: TestDispatcher,
    registry: Arc<Registry>,
    background: bool,
}

impl TestScope {
    pub(crate) fn new(dispatcher: TestDispatcher) -> Self {
        TestScope {
            dispatcher,
            registry: Arc::new(Registry::default()),
            background: false,
        }
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The test dispatcher.
    pub fn test_dispatcher(&self) -> &TestDispatcher {
        &self.dispatcher
    }

    /// Main for this test (the test dispatcher).
    pub fn main(&self) -> MainDispatcher {
        self.dispatcher.main()
    }

    /// The view of this scope whose tasks are *background* work (kotlinx's
    /// `backgroundScope`): they run like the others, but their tasks and
    /// timers don't keep the dispatcher from being idle, and whatever is left
    /// of them when the test ends is cancelled instead of failing the test.
    /// For collectors, tickers, servers the test talks to. A panic in one
    /// still fails the test.
    pub fn background(&self) -> TestScope {
        TestScope {
            background: true,
            ..self.clone()
        }
    }

    /// Whether this is the [`background`](Self::background) view.
    pub fn is_background(&self) -> bool {
        self.background
    }

    fn target(&self) -> &Dispatcher {
        if self.background {
            self.dispatcher.background_dispatcher()
        } else {
            self.dispatcher.foreground_dispatcher()
        }
    }

    /// Spawns `future` on the test dispatcher (a tracked task: see the type
    /// docs).
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_tracked(None, Location::caller(), future)
    }

    /// Spawns `future` as a task named `name` (the name shows in failure
    /// reports, [`JoinError`](crate::JoinError)s and panic reports).
    #[track_caller]
    pub fn spawn_named<F>(&self, name: impl Into<Arc<str>>, future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_tracked(Some(name.into()), Location::caller(), future)
    }

    /// Spawns a `!Send` future (GUI state, `Rc`s) on the test dispatcher.
    ///
    /// # Panics
    ///
    /// When called on another thread than the test thread.
    #[track_caller]
    pub fn spawn_local<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_local_tracked(None, Location::caller(), future)
    }

    /// Spawns a `!Send` future as a task named `name`.
    ///
    /// # Panics
    ///
    /// When called on another thread than the test thread.
    #[track_caller]
    pub fn spawn_local_named<F>(&self, name: impl Into<Arc<str>>, future: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_local_tracked(Some(name.into()), Location::caller(), future)
    }

    fn spawn_tracked<F>(
        &self,
        name: Option<Arc<str>>,
        location: &'static Location<'static>,
        future: F,
    ) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let tracked = self
            .registry
            .track(name.clone(), location, self.background, future);
        builder(name).spawn(self.target(), tracked)
    }

    #[track_caller]
    fn spawn_local_tracked<F>(
        &self,
        name: Option<Arc<str>>,
        location: &'static Location<'static>,
        future: F,
    ) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        assert!(
            self.dispatcher.scheduler().is_owner_thread(),
            "TestScope::spawn_local must be called on the test thread (the future is !Send)"
        );
        let tracked = self
            .registry
            .track(name.clone(), location, self.background, future);
        builder(name).spawn_local(self.target(), tracked)
    }

    /// Virtual time elapsed since the test started.
    pub fn current_time(&self) -> Duration {
        self.dispatcher.current_time()
    }

    /// The virtual clock as an `Instant` (see [`TestDispatcher::now`]).
    pub fn now(&self) -> Instant {
        self.dispatcher.now()
    }

    /// See [`TestDispatcher::run_current`].
    ///
    /// # Panics
    ///
    /// When called on another thread than the test thread.
    #[track_caller]
    pub fn run_current(&self) {
        self.dispatcher.run_current();
    }

    /// See [`TestDispatcher::advance_time_by`]: runs what is due strictly
    /// before `now + duration`, then sets the clock there.
    ///
    /// # Panics
    ///
    /// When called on another thread than the test thread.
    #[track_caller]
    pub fn advance_time_by(&self, duration: Duration) {
        self.dispatcher.advance_time_by(duration);
    }

    /// See [`TestDispatcher::advance_until_idle`].
    ///
    /// # Panics
    ///
    /// When called on another thread than the test thread.
    #[track_caller]
    pub fn advance_until_idle(&self) {
        self.dispatcher.advance_until_idle();
    }
}

fn builder(name: Option<Arc<str>>) -> TaskBuilder {
    match name {
        Some(name) => TaskBuilder::new().name(name),
        None => TaskBuilder::new(),
    }
}

impl fmt::Debug for TestScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestScope")
            .field("dispatcher", &self.dispatcher)
            .field("background", &self.background)
            .finish()
    }
}
