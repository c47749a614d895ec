//! A `delay` that a Main.immediate task starts in place on the loop thread
//! between two `pump_app_events` (the application's own code, outside the
//! loop's callbacks) wakes the next pump at its deadline: the control flow
//! the previous iteration left on the loop does not know about it. A test
//! binary of its own: winit allows one event loop per process.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dispatchers::delay;
use support::TestApp;
use winit::platform::pump_events::{EventLoopExtPumpEvents, PumpStatus};

/// How long one pump may block: far longer than the delay.
const PUMP_TIMEOUT: Duration = Duration::from_secs(20);
const NAP: Duration = Duration::from_millis(50);

#[test]
fn a_delay_started_between_two_pumps_wakes_the_next_one() {
    if !support::display_available("pump_delay_between_pumps") {
        return;
    }
    let _watchdog = support::watchdog("the pump test", Duration::from_secs(120));
    let (tx, rx) = mpsc::channel();
    let _running = support::start_loop(false, move |mut event_loop, host| {
        let main = host.dispatcher();
        let mut app = host.with_shutdown_on_exit(false).wrap(TestApp {
            on_window_event: None,
            on_new_events: None,
        });
        // The first pump runs the first iteration, then waits for nothing
        // (`ControlFlow::Wait`, no timer): it returns after its timeout.
        let status = event_loop.pump_app_events(Some(Duration::ZERO), &mut app);
        assert!(matches!(status, PumpStatus::Continue));
        // Between two pumps, the application's code starts a delay in place.
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        main.immediate()
            .spawn(async move {
                delay(NAP).await;
                flag.store(true, Ordering::SeqCst);
            })
            .detach();
        assert!(!done.load(Ordering::SeqCst));
        let start = Instant::now();
        while !done.load(Ordering::SeqCst) && start.elapsed() < 2 * PUMP_TIMEOUT {
            let status = event_loop.pump_app_events(Some(PUMP_TIMEOUT), &mut app);
            assert!(matches!(status, PumpStatus::Continue));
        }
        let _ = tx.send((done.load(Ordering::SeqCst), start.elapsed()));
    });
    let (done, took) = rx
        .recv_timeout(Duration::from_secs(100))
        .expect("the pumps ended");
    assert!(done, "the delay never completed");
    assert!(
        took < PUMP_TIMEOUT / 2,
        "a {NAP:?} delay completed after {took:?}: the pump slept on the flow of the \
         iteration before the delay was started"
    );
}
