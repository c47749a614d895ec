//! The harness of `winit_loop.rs`: the loop under test, wrapped to record
//! what it does (iterations, wake-ups, control flow, window events).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dispatchers::{MainDispatcher, Task, block_on, timeout};
use dispatchers_winit::{DispatchersApp, HostEvent};
use winit::application::ApplicationHandler;
use winit::event::{DeviceEvent, DeviceId, StartCause, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow};
use winit::window::WindowId;

use crate::support::{self, Ctl, RunningLoop, TestApp};

/// A task that takes this long is hung, not slow.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// What the loop did, seen from outside [`DispatchersApp`].
#[derive(Default)]
pub(crate) struct Stats {
    /// Loop iterations (`new_events`).
    pub(crate) iterations: AtomicUsize,
    /// Iterations that ended (`about_to_wait`).
    pub(crate) ended: AtomicUsize,
    /// `HostEvent::Wake`s delivered.
    pub(crate) wakes: AtomicUsize,
    /// The control flow the loop was left with by the last `about_to_wait`.
    pub(crate) flow: Mutex<Option<ControlFlow>>,
    /// Timers pending on the engine at the last `about_to_wait`.
    pub(crate) pending_timers: AtomicUsize,
    /// `ResumeTimeReached` causes the application was given.
    pub(crate) app_timer_causes: AtomicUsize,
    /// When each iteration started, and whether the application was told
    /// its timer fired (`ResumeTimeReached`).
    pub(crate) app_causes: Mutex<Vec<(Instant, bool)>>,
}

/// Wraps the host's `DispatchersApp` to watch it.
struct Recorder {
    inner: DispatchersApp<TestApp, Ctl>,
    stats: Arc<Stats>,
}

impl ApplicationHandler<HostEvent<Ctl>> for Recorder {
    fn new_events(&mut self, event_loop: &ActiveEventLoop, cause: StartCause) {
        self.stats.iterations.fetch_add(1, Ordering::SeqCst);
        self.inner.new_events(event_loop, cause);
    }

    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        self.inner.resumed(event_loop);
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: HostEvent<Ctl>) {
        if let HostEvent::Wake = event {
            self.stats.wakes.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.user_event(event_loop, event);
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, id: WindowId, event: WindowEvent) {
        self.inner.window_event(event_loop, id, event);
    }

    fn device_event(&mut self, event_loop: &ActiveEventLoop, id: DeviceId, event: DeviceEvent) {
        self.inner.device_event(event_loop, id, event);
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        self.inner.about_to_wait(event_loop);
        let timers = self.inner.host().engine().pending_timers();
        self.stats.pending_timers.store(timers, Ordering::SeqCst);
        *self.stats.flow.lock().unwrap() = Some(event_loop.control_flow());
        self.stats.ended.fetch_add(1, Ordering::SeqCst);
    }

    fn exiting(&mut self, event_loop: &ActiveEventLoop) {
        self.inner.exiting(event_loop);
    }
}

/// The loop under test and what it records.
pub(crate) struct Harness {
    pub(crate) running: RunningLoop,
    pub(crate) stats: Arc<Stats>,
    /// Window events, as `(window, event name)`.
    pub(crate) window_events: Arc<Mutex<Vec<(WindowId, String)>>>,
}

impl Harness {
    pub(crate) fn start() -> Self {
        let stats = Arc::new(Stats::default());
        let window_events = Arc::new(Mutex::new(Vec::new()));
        let (loop_stats, loop_events) = (stats.clone(), window_events.clone());
        let cause_stats = stats.clone();
        let running = support::start_loop(true, move |event_loop, host| {
            let app = TestApp {
                on_window_event: Some(Box::new(move |id, event| {
                    let name = format!("{event:?}");
                    let name = name.split([' ', '(', '{']).next().unwrap_or("").to_owned();
                    loop_events.lock().unwrap().push((id, name));
                })),
                on_new_events: Some(Box::new(move |cause| {
                    let timer = matches!(cause, StartCause::ResumeTimeReached { .. });
                    if timer {
                        cause_stats.app_timer_causes.fetch_add(1, Ordering::SeqCst);
                    }
                    let mut causes = cause_stats.app_causes.lock().unwrap();
                    causes.push((Instant::now(), timer));
                })),
            };
            let mut recorder = Recorder {
                inner: host.wrap(app),
                stats: loop_stats,
            };
            event_loop
                .run_app(&mut recorder)
                .expect("the event loop failed");
        });
        Harness {
            running,
            stats,
            window_events,
        }
    }

    pub(crate) fn main(&self) -> &MainDispatcher {
        &self.running.main
    }

    /// Runs `f` in the application's `user_event`, and returns once the loop
    /// iteration that ran it has ended (so `stats` shows its outcome).
    pub(crate) fn on_loop<R: Send + 'static>(
        &self,
        f: impl FnOnce(&ActiveEventLoop) -> R + Send + 'static,
    ) -> R {
        let stats = self.stats.clone();
        let (value, ended_before) = self
            .running
            .on_loop(move |event_loop| (f(event_loop), stats.ended.load(Ordering::SeqCst)));
        self.wait_until("the loop iteration ends", || {
            self.stats.ended.load(Ordering::SeqCst) > ended_before
        });
        value
    }

    pub(crate) fn flow(&self) -> ControlFlow {
        self.stats
            .flow
            .lock()
            .unwrap()
            .expect("no iteration ended yet")
    }

    pub(crate) fn iterations(&self) -> usize {
        self.stats.iterations.load(Ordering::SeqCst)
    }

    pub(crate) fn wakes(&self) -> usize {
        self.stats.wakes.load(Ordering::SeqCst)
    }

    pub(crate) fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Awaits `task` from the test thread, failing instead of hanging.
pub(crate) fn wait<T>(task: Task<T>) -> T {
    block_on(timeout(PATIENCE, task))
        .expect("the task did not finish within 60 s")
        .expect("the task failed")
}
