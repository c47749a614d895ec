//! What the display tests share: the display check (skip locally, fail on
//! CI), a watchdog, and a winit loop started on a thread of its own (winit
//! allows one event loop per process, so each test binary starts one).

#![allow(dead_code)]

use std::io::Write as _;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use dispatchers::MainDispatcher;
use dispatchers_winit::{HostEvent, UserEventProxy, WinitHost};
use winit::application::ApplicationHandler;
use winit::event::{StartCause, WindowEvent};
use winit::event_loop::{ActiveEventLoop, EventLoop};
use winit::platform::x11::EventLoopBuilderExtX11;
use winit::window::WindowId;

/// Whether an X display is there. Without one: on CI (`CI=true`) this
/// fails the test; elsewhere it prints why the test is skipped.
pub fn display_available(test: &str) -> bool {
    if std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty()) {
        return true;
    }
    let why = "no DISPLAY; run under `xvfb-run -a cargo test -p dispatchers-winit` or set DISPLAY";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why} (CI=true: display tests must run, not skip)");
    }
    // Straight to stderr: the test harness captures `eprintln!`, and a skip
    // should show in a plain `cargo test` run.
    let _ = writeln!(
        std::io::stderr(),
        "skipping {test}: {why} (with CI=true this is a failure)"
    );
    false
}

/// Ends the process with a failure if dropped later than `limit` after
/// creation: a hung loop must fail the run, not stall it.
#[must_use = "the watchdog stops when dropped"]
pub struct Watchdog {
    _disarm: mpsc::Sender<()>,
}

pub fn watchdog(what: &'static str, limit: Duration) -> Watchdog {
    let (disarm, armed) = mpsc::channel::<()>();
    thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            if armed.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                eprintln!("watchdog: {what} did not finish within {limit:?}; failing");
                std::process::exit(1);
            }
        })
        .expect("cannot start the watchdog thread");
    Watchdog { _disarm: disarm }
}

/// Code to run in the application's `user_event`, on the loop thread.
pub type OnLoop = Box<dyn FnOnce(&ActiveEventLoop) + Send>;

/// The test application's own events.
pub enum Ctl {
    /// Run this in `user_event`.
    Run(OnLoop),
    /// `event_loop.exit()`.
    Exit,
}

/// Watches window events, on the loop thread.
pub type OnWindowEvent = Box<dyn FnMut(WindowId, &WindowEvent)>;

/// Watches the start causes the application is given, on the loop thread.
pub type OnNewEvents = Box<dyn FnMut(&StartCause)>;

/// A plain application: runs `Ctl` events, hands window events to
/// `on_window_event` and start causes to `on_new_events`.
pub struct TestApp {
    pub on_window_event: Option<OnWindowEvent>,
    pub on_new_events: Option<OnNewEvents>,
}

impl ApplicationHandler<Ctl> for TestApp {
    fn new_events(&mut self, _event_loop: &ActiveEventLoop, cause: StartCause) {
        if let Some(on_new_events) = &mut self.on_new_events {
            on_new_events(&cause);
        }
    }

    fn resumed(&mut self, _event_loop: &ActiveEventLoop) {}

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: Ctl) {
        match event {
            Ctl::Run(f) => f(event_loop),
            Ctl::Exit => event_loop.exit(),
        }
    }

    fn window_event(&mut self, _: &ActiveEventLoop, id: WindowId, event: WindowEvent) {
        if let Some(on_window_event) = &mut self.on_window_event {
            on_window_event(id, &event);
        }
    }
}

/// A winit loop running on its own thread.
pub struct RunningLoop {
    pub main: MainDispatcher,
    pub proxy: UserEventProxy<Ctl>,
    thread: Option<JoinHandle<()>>,
}

/// Builds the loop on a new thread named `winit-loop` (with
/// `with_any_thread(true)`), makes its host (registered as Main first if
/// `register_as_main`), and hands both to `run`, which runs the loop.
/// Panics (failing the test) when the loop cannot be built.
pub fn start_loop(
    register_as_main: bool,
    run: impl FnOnce(EventLoop<HostEvent<Ctl>>, WinitHost<Ctl>) + Send + 'static,
) -> RunningLoop {
    let (tx, rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name("winit-loop".into())
        .spawn(move || {
            let mut builder = EventLoop::<HostEvent<Ctl>>::with_user_event();
            builder.with_any_thread(true);
            match WinitHost::build(&mut builder) {
                Ok((event_loop, host)) => {
                    if register_as_main {
                        host.register_as_main()
                            .expect("register before Main is used");
                    }
                    tx.send(Ok((host.dispatcher(), host.user_proxy()))).unwrap();
                    run(event_loop, host);
                }
                Err(error) => tx.send(Err(error.to_string())).unwrap(),
            }
        })
        .expect("cannot start the loop thread");
    let (main, proxy) = rx
        .recv()
        .expect("the loop thread died")
        .unwrap_or_else(|error| panic!("cannot start the winit loop: {error}"));
    RunningLoop {
        main,
        proxy,
        thread: Some(thread),
    }
}

/// [`start_loop`] with a plain [`TestApp`] and no registration as Main: the
/// loop the shared suites run on.
pub fn start_plain_loop() -> RunningLoop {
    start_loop(false, |event_loop, host| {
        let app = TestApp {
            on_window_event: None,
            on_new_events: None,
        };
        host.run_app(event_loop, app)
            .expect("the event loop failed");
    })
}

impl RunningLoop {
    /// Runs `f` in the application's `user_event` and returns its result.
    pub fn on_loop<R: Send + 'static>(
        &self,
        f: impl FnOnce(&ActiveEventLoop) -> R + Send + 'static,
    ) -> R {
        let (tx, rx) = mpsc::channel();
        self.send(Ctl::Run(Box::new(move |event_loop| {
            let _ = tx.send(f(event_loop));
        })));
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the loop did not run a user event within 60 s")
    }

    pub fn send(&self, event: Ctl) {
        if self.proxy.send_event(event).is_err() {
            panic!("the event loop is closed");
        }
    }

    /// Makes the loop exit and waits for its thread: the host is dropped
    /// there, which shuts its engine down.
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.proxy.send_event(Ctl::Exit);
            thread.join().expect("the loop thread panicked");
        }
    }
}
