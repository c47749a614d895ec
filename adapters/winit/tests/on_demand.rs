//! A control flow the application sets on the event loop between two runs
//! (`run_app_on_demand`) is its own: the host does not put back the flow of
//! the previous run, even when it equals the flow the run left behind. A test binary of its own: winit allows one event loop
//! per process.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::Ctl;
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, ControlFlow};
use winit::platform::run_on_demand::EventLoopExtRunOnDemand;
use winit::window::WindowId;

/// Counts its loop iterations and exits when its time is up.
struct Counting {
    until: Instant,
    iterations: usize,
}

impl ApplicationHandler<Ctl> for Counting {
    fn resumed(&mut self, _event_loop: &ActiveEventLoop) {}

    fn window_event(&mut self, _: &ActiveEventLoop, _: WindowId, _: WindowEvent) {}

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        self.iterations += 1;
        if Instant::now() >= self.until {
            event_loop.exit();
        } else if event_loop.control_flow() == ControlFlow::Wait {
            // Come back when the time is up (and not before).
            event_loop.set_control_flow(ControlFlow::WaitUntil(self.until));
        }
    }
}

#[test]
fn a_flow_set_between_two_runs_is_kept() {
    if !support::display_available("on_demand") {
        return;
    }
    let _watchdog = support::watchdog("the on-demand runs", Duration::from_secs(120));
    let (tx, rx) = std::sync::mpsc::channel();
    let running = support::start_loop(false, move |mut event_loop, host| {
        let mut app = host.with_shutdown_on_exit(false).wrap(Counting {
            until: Instant::now(),
            iterations: 0,
        });
        // The first run leaves the application's flow at `Wait`.
        event_loop.set_control_flow(ControlFlow::Wait);
        event_loop.run_app_on_demand(&mut app).expect("first run");
        // Then it asks for `Poll` and runs again for 300 ms: the loop spins.
        event_loop.set_control_flow(ControlFlow::Poll);
        app.app_mut().until = Instant::now() + Duration::from_millis(300);
        app.app_mut().iterations = 0;
        event_loop.run_app_on_demand(&mut app).expect("second run");
        let second = app.app().iterations;

        // A third run ends while Main has work queued (a task that keeps
        // yielding), so the loop is left on `Poll`, Main's, not the
        // application's `Wait`.
        let stop = Arc::new(AtomicBool::new(false));
        let spinning = stop.clone();
        app.host()
            .dispatcher()
            .spawn(async move {
                while !spinning.load(Ordering::SeqCst) {
                    dispatchers::yield_now().await;
                }
            })
            .detach();
        event_loop.set_control_flow(ControlFlow::Wait);
        app.app_mut().until = Instant::now();
        event_loop.run_app_on_demand(&mut app).expect("third run");
        // The application now asks for `Poll` itself: the same value the
        // loop was left with, and still the application's.
        stop.store(true, Ordering::SeqCst);
        event_loop.set_control_flow(ControlFlow::Poll);
        app.app_mut().until = Instant::now() + Duration::from_millis(300);
        app.app_mut().iterations = 0;
        event_loop.run_app_on_demand(&mut app).expect("fourth run");
        let _ = tx.send((second, app.app().iterations));
    });
    let (second, fourth): (usize, usize) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the runs ended");
    drop(running);
    assert!(
        second > 50,
        "{second} iterations in 300 ms of Poll: the previous run's Wait was put back"
    );
    assert!(
        fourth > 50,
        "{fourth} iterations in 300 ms of Poll: the application's Poll, equal to the flow \
         Main left the loop with, was taken for Main's and replaced by the old Wait"
    );
}
