//! A winit window whose background work reports progress through Main.
//!
//! A job crunches numbers in ten steps on a CPU pool (`with_context`); after
//! each step it is back on Main, where it updates the window title
//! ("working… 40%"). Meanwhile a `delay`-driven animation spins in the title.
//! Both are local tasks (`spawn_on_main_local`) sharing `!Send` UI state
//! (`Rc<RefCell<Ui>>`) with no lock: they only ever run on the loop's thread.
//!
//! ```text
//! cargo run --example gui                      # click the window to run the job again
//! cargo run --example gui -- --exit-after-demo # run the job once, check, exit 0
//! xvfb-run -a cargo run --example gui -- --exit-after-demo   # without a display
//! ```

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use dispatchers::{Dispatcher, Dispatchers, delay, spawn_on_main_local, with_context};
use dispatchers_winit::{HostEvent, UserEventProxy, WinitHost};
use winit::application::ApplicationHandler;
use winit::event::{ElementState, WindowEvent};
use winit::event_loop::{ActiveEventLoop, EventLoop};
use winit::window::{Window, WindowId};

/// Steps of one job.
const STEPS: u64 = 10;
/// One frame of the title animation.
const FRAME: Duration = Duration::from_millis(80);
/// The scripted demo fails instead of running longer than this.
const DEMO_LIMIT: Duration = Duration::from_secs(60);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The example's own user events (kept alongside Main's wake-ups).
enum AppEvent {
    /// The scripted demo ended: exit with this outcome.
    DemoFinished(Result<String, String>),
}

/// UI state: `!Send`, touched only on the loop's thread.
struct Ui {
    window: Window,
    frame: usize,
    /// `Some(percent)` while a job runs.
    progress: Option<u64>,
    /// The last job's result.
    last_result: Option<u64>,
}

impl Ui {
    fn render(&self) {
        let spinner = SPINNER[self.frame % SPINNER.len()];
        let title = match (self.progress, self.last_result) {
            (Some(percent), _) => format!("{spinner} working… {percent}%"),
            (None, Some(result)) => format!("{spinner} done: {result:#x} (click to run again)"),
            (None, None) => format!("{spinner} dispatchers gui"),
        };
        self.window.set_title(&title);
    }
}

struct App {
    demo: bool,
    pool: Dispatcher,
    proxy: UserEventProxy<AppEvent>,
    ui: Option<Rc<RefCell<Ui>>>,
    exit: ExitCode,
}

impl ApplicationHandler<AppEvent> for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.ui.is_some() {
            return;
        }
        let attributes = Window::default_attributes()
            .with_title("dispatchers gui")
            .with_inner_size(winit::dpi::LogicalSize::new(480.0, 120.0));
        let window = match event_loop.create_window(attributes) {
            Ok(window) => window,
            Err(error) => {
                eprintln!("gui: cannot create the window: {error}");
                self.exit = ExitCode::FAILURE;
                event_loop.exit();
                return;
            }
        };
        let ui = Rc::new(RefCell::new(Ui {
            window,
            frame: 0,
            progress: None,
            last_result: None,
        }));
        spawn_on_main_local(animate(ui.clone())).detach();
        if self.demo {
            spawn_on_main_local(demo(ui.clone(), self.pool.clone(), self.proxy.clone())).detach();
        } else {
            start_job(&ui, &self.pool);
        }
        self.ui = Some(ui);
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: AppEvent) {
        match event {
            AppEvent::DemoFinished(Ok(summary)) => println!("demo: {summary}"),
            AppEvent::DemoFinished(Err(failure)) => {
                eprintln!("demo failed: {failure}");
                self.exit = ExitCode::FAILURE;
            }
        }
        event_loop.exit();
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested => event_loop.exit(),
            WindowEvent::MouseInput {
                state: ElementState::Pressed,
                ..
            } => {
                if let Some(ui) = &self.ui {
                    start_job(ui, &self.pool);
                }
            }
            _ => {}
        }
    }
}

/// Starts a job unless one is running.
fn start_job(ui: &Rc<RefCell<Ui>>, pool: &Dispatcher) {
    // Marked running now, not when the job first runs: a second press in
    // the same loop iteration must not start a second job.
    if ui.borrow().progress.is_none() {
        ui.borrow_mut().progress = Some(0);
        spawn_on_main_local(run_job(ui.clone(), pool.clone())).detach();
    }
}

/// The animation: one frame per `delay`, on the loop's own timing.
async fn animate(ui: Rc<RefCell<Ui>>) {
    loop {
        delay(FRAME).await;
        ui.borrow_mut().frame += 1;
        ui.borrow().render();
    }
}

/// The job: each step runs on the pool; between steps it is back on Main,
/// where it reports progress in the title.
async fn run_job(ui: Rc<RefCell<Ui>>, pool: Dispatcher) -> u64 {
    ui.borrow_mut().progress = Some(0);
    ui.borrow().render();
    let mut checksum = 0;
    for step in 0..STEPS {
        // Off the loop's thread: the window stays responsive meanwhile.
        let part = with_context(&pool, async move { crunch(step) }).await;
        // Back on Main: the UI state is ours to touch.
        checksum ^= part;
        let percent = (step + 1) * 100 / STEPS;
        ui.borrow_mut().progress = Some(percent);
        ui.borrow().render();
        println!("progress {percent}%");
    }
    let mut state = ui.borrow_mut();
    state.progress = None;
    state.last_result = Some(checksum);
    drop(state);
    ui.borrow().render();
    checksum
}

/// The scripted demo (`--exit-after-demo`): one job, a few animation frames,
/// checks, then a user event that ends the loop.
async fn demo(ui: Rc<RefCell<Ui>>, pool: Dispatcher, proxy: UserEventProxy<AppEvent>) {
    let start = Instant::now();
    let checksum = run_job(ui.clone(), pool.clone()).await;
    // The check crunches everything again: on the pool, not on the loop.
    let expected = with_context(&pool, async {
        (0..STEPS).map(crunch).fold(0, |a, b| a ^ b)
    })
    .await;
    // Let the animation show it runs by itself: wait for a few frames.
    while ui.borrow().frame < 5 {
        delay(FRAME).await;
    }
    let frames = ui.borrow().frame;
    let outcome = if checksum == expected {
        Ok(format!(
            "{STEPS} steps on the pool, checksum {checksum:#x}, {frames} animation frames, {:?}",
            start.elapsed()
        ))
    } else {
        Err(format!("checksum {checksum:#x}, expected {expected:#x}"))
    };
    let _ = proxy.send_event(AppEvent::DemoFinished(outcome));
}

/// CPU work for one step (a few tens of milliseconds).
fn crunch(step: u64) -> u64 {
    (0..2_000_000u64).fold(step.wrapping_mul(0x9e37_79b9_7f4a_7c15), |hash, x| {
        (hash ^ x).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn main() -> ExitCode {
    let demo = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--exit-after-demo") => true,
        Some(other) => {
            eprintln!("gui: unknown argument {other:?}; usage: gui [--exit-after-demo]");
            return ExitCode::from(2);
        }
    };
    let (event_loop, host) =
        match WinitHost::build(&mut EventLoop::<HostEvent<AppEvent>>::with_user_event()) {
            Ok(built) => built,
            Err(error) => {
                eprintln!("gui: {error}");
                return ExitCode::FAILURE;
            }
        };
    if let Err(error) = host.register_as_main() {
        eprintln!("gui: {error}");
        return ExitCode::FAILURE;
    }
    if demo {
        std::thread::spawn(|| {
            std::thread::sleep(DEMO_LIMIT);
            eprintln!("demo failed: not finished within {DEMO_LIMIT:?}");
            std::process::exit(1);
        });
    }
    let mut app = App {
        demo,
        pool: Dispatchers::default(),
        proxy: host.user_proxy(),
        ui: None,
        exit: ExitCode::SUCCESS,
    };
    if let Err(error) = host.run_app(event_loop, &mut app) {
        eprintln!("gui: the event loop failed: {error}");
        return ExitCode::FAILURE;
    }
    app.exit
}
