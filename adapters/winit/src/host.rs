//! [`WinitHost`]: a host engine woken through the event loop's proxy.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dispatchers::{Budget, HostEngine, MainDispatcher, RegisterError};
use winit::application::ApplicationHandler;
use winit::error::EventLoopError;
use winit::event_loop::{ControlFlow, EventLoop, EventLoopBuilder, EventLoopProxy};

use crate::app::DispatchersApp;
use crate::error::WinitError;
use crate::event::{HostEvent, UserEventProxy};
use crate::factory::{self, DEFAULT_LOAD_PRIORITY, LiveToken, WinitFactory};

/// The work one loop iteration gives to Main unless told otherwise
/// ([`WinitHost::with_budget`]): 4 ms, a quarter of a 60 Hz frame.
pub const DEFAULT_BUDGET: Budget = Budget::unlimited().max_time(Duration::from_millis(4));

/// The Main dispatcher of a winit event loop: a [`HostEngine`] whose wake-up
/// sends [`HostEvent::Wake`] through the loop's `EventLoopProxy`.
///
/// Make it on the loop's thread from an `EventLoop<HostEvent<T>>` (with
/// [`build`](Self::build) or [`new`](Self::new)), register it as Main if
/// you like ([`register_as_main`](Self::register_as_main)), and run your
/// application through it ([`run_app`](Self::run_app) or
/// [`wrap`](Self::wrap)): [`DispatchersApp`] runs Main's tasks and timers at
/// the right points of each loop iteration.
///
/// Dropping the host (or the `DispatchersApp` that owns it) shuts its engine
/// down: queued tasks and tasks waiting on its timers are cancelled, later
/// dispatches to it are rejected (their `Task`s resolve to a cancelled
/// `JoinError`).
///
/// The host is `!Send`: it lives on the loop's thread, like the loop.
pub struct WinitHost<T: 'static = ()> {
    engine: HostEngine,
    proxy: EventLoopProxy<HostEvent<T>>,
    budget: Budget,
    load_priority: i32,
    shutdown_on_exit: bool,
    _alive: LiveToken,
}

impl<T: Send + 'static> WinitHost<T> {
    /// Builds the event loop with `builder` and makes its host: the one call
    /// a program needs, with every failure returned as a value (winit's own
    /// panic when the loop is built off the main thread is caught and
    /// returned as [`WinitError::EventLoopPanicked`]).
    ///
    /// A failure is also recorded for [`WinitFactory`], so that a factory
    /// registered earlier reports it (and its hint) when Main is selected.
    ///
    /// ```no_run
    /// use dispatchers_winit::WinitHost;
    /// use winit::event_loop::EventLoop;
    ///
    /// let (event_loop, host) = match WinitHost::<()>::build(&mut EventLoop::with_user_event()) {
    ///     Ok(built) => built,
    ///     Err(error) => {
    ///         eprintln!("error: {error}"); // says to set DISPLAY or use Xvfb
    ///         std::process::exit(1);
    ///     }
    /// };
    /// # drop((event_loop, host));
    /// ```
    ///
    /// # Errors
    ///
    /// [`WinitError::EventLoop`] when winit cannot build the loop (no
    /// display, second loop in the process), [`WinitError::EventLoopPanicked`]
    /// when winit panicked building it, [`WinitError::HostExists`] when a
    /// `WinitHost` is already alive.
    ///
    /// The panic behind `EventLoopPanicked` (winit refuses a loop off the
    /// main thread, for instance) is caught, but the process's panic hook
    /// has printed it to stderr by then; under `panic = "abort"` it cannot
    /// be caught at all and ends the process.
    pub fn build(
        builder: &mut EventLoopBuilder<HostEvent<T>>,
    ) -> Result<(EventLoop<HostEvent<T>>, Self), WinitError> {
        let built = match catch_unwind(AssertUnwindSafe(|| builder.build())) {
            Ok(Ok(event_loop)) => Ok(event_loop),
            Ok(Err(error)) => Err(WinitError::EventLoop(error)),
            Err(payload) => Err(WinitError::EventLoopPanicked(panic_message(&*payload))),
        };
        let event_loop = built.inspect_err(factory::record_failure)?;
        let host = WinitHost::new(&event_loop)?;
        Ok((event_loop, host))
    }

    /// The host of `event_loop`, made on the loop's thread (the thread that
    /// built it). `delay`s polled on this thread use the loop's timers from
    /// now on.
    ///
    /// # Errors
    ///
    /// [`WinitError::HostExists`] when a `WinitHost` is already alive in the
    /// process (winit allows one event loop per process, and a loop serves
    /// one host).
    pub fn new(event_loop: &EventLoop<HostEvent<T>>) -> Result<Self, WinitError> {
        let proxy = event_loop.create_proxy();
        // A lock makes the wake-up `Sync` on every platform; wake-ups are
        // coalesced, so it is taken about once per loop iteration at most.
        let waker = Mutex::new(proxy.clone());
        let (engine, alive) = factory::install(|| {
            let engine = HostEngine::new("winit", move || {
                let proxy = waker.lock().unwrap_or_else(|e| e.into_inner());
                // Fails only once the loop is gone; the engine shuts down
                // with its host, which cancels what is queued.
                let _ = proxy.send_event(HostEvent::Wake);
            });
            let main = engine.dispatcher();
            (engine, main)
        })?;
        Ok(WinitHost {
            engine,
            proxy,
            budget: DEFAULT_BUDGET,
            load_priority: DEFAULT_LOAD_PRIORITY,
            shutdown_on_exit: true,
            _alive: alive,
        })
    }
}

impl<T: 'static> WinitHost<T> {
    /// Sets how much work Main gets per loop iteration (default
    /// [`DEFAULT_BUDGET`], 4 ms). What is left runs in the next iteration,
    /// after the loop has delivered the window and device events that came
    /// in meanwhile.
    ///
    /// # Panics
    ///
    /// When `budget` lets no task run (`max_tasks(0)`): every iteration
    /// would find Main's work still queued and wake the loop again, without
    /// running it.
    pub fn with_budget(mut self, budget: Budget) -> Self {
        assert!(
            !budget.allows_no_task(),
            "WinitHost::with_budget: a budget of max_tasks(0) would never run Main's \
             tasks while waking the loop for them forever; give it at least one task"
        );
        self.budget = budget;
        self
    }

    /// Sets the `load_priority` that [`register_as_main`](Self::register_as_main)
    /// registers with (default [`DEFAULT_LOAD_PRIORITY`], 100).
    pub fn with_load_priority(mut self, load_priority: i32) -> Self {
        self.load_priority = load_priority;
        self
    }

    /// Whether the engine shuts down when the loop exits (the
    /// `ApplicationHandler::exiting` callback); default `true`, so that a
    /// task dispatched to Main after the loop ended is cancelled rather
    /// than queued forever. Set `false` to run the same host again with
    /// `run_app_on_demand` or `pump_app_events`.
    pub fn with_shutdown_on_exit(mut self, shutdown_on_exit: bool) -> Self {
        self.shutdown_on_exit = shutdown_on_exit;
        self
    }

    /// Registers this loop as the source of `Dispatchers::main()`, with
    /// load priority [`DEFAULT_LOAD_PRIORITY`] (100) unless changed with
    /// [`with_load_priority`](Self::with_load_priority). Call it at start-up,
    /// before the first use of Main.
    ///
    /// # Errors
    ///
    /// [`RegisterError::AlreadySelected`] when Main was already selected.
    pub fn register_as_main(&self) -> Result<(), RegisterError> {
        WinitFactory::new()
            .with_load_priority(self.load_priority)
            .register()
    }

    /// This loop's Main dispatcher (with its `immediate` view), usable from
    /// any thread.
    pub fn dispatcher(&self) -> MainDispatcher {
        self.engine.dispatcher()
    }

    /// A proxy that sends the application's own events to the loop.
    pub fn user_proxy(&self) -> UserEventProxy<T> {
        UserEventProxy::new(self.proxy.clone())
    }

    /// The engine, for what this type does not forward (`host_wakes`,
    /// `pending_timers`, ...).
    pub fn engine(&self) -> &HostEngine {
        &self.engine
    }

    /// The budget of one loop iteration.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Wraps `app` so that it runs with Main's tasks and timers; run the
    /// result with `event_loop.run_app(&mut wrapped)`.
    pub fn wrap<A: ApplicationHandler<T>>(self, app: A) -> DispatchersApp<A, T> {
        DispatchersApp::new(self, app)
    }

    /// Runs `event_loop` with `app` (pass `&mut app` to keep it), running
    /// Main's tasks and timers alongside; the host is dropped (its engine
    /// shut down) when the loop returns.
    ///
    /// # Errors
    ///
    /// What `EventLoop::run_app` returns.
    pub fn run_app<A: ApplicationHandler<T>>(
        self,
        event_loop: EventLoop<HostEvent<T>>,
        app: A,
    ) -> Result<(), EventLoopError> {
        let mut app = self.wrap(app);
        event_loop.run_app(&mut app)
    }

    /// Whether Main has work now: queued tasks or a due timer.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.engine.has_pending() || self.engine.next_deadline().is_some_and(|d| d <= now)
    }

    /// The control flow Main needs: wake at once while tasks are queued,
    /// at the next timer's deadline, or when woken.
    pub(crate) fn control_flow(&self) -> ControlFlow {
        if self.engine.has_pending() {
            ControlFlow::Poll
        } else {
            self.engine
                .next_deadline()
                .map_or(ControlFlow::Wait, ControlFlow::WaitUntil)
        }
    }

    pub(crate) fn shutdown_on_exit(&self) -> bool {
        self.shutdown_on_exit
    }
}

impl<T: 'static> fmt::Debug for WinitHost<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WinitHost")
            .field("engine", &self.engine)
            .field("budget", &self.budget)
            .field("load_priority", &self.load_priority)
            .field("shutdown_on_exit", &self.shutdown_on_exit)
            .finish_non_exhaustive()
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| String::from("<non-string panic payload>"))
}
