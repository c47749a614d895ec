//! The shared conformance suite on a winit loop (X11; under Xvfb on CI).
//!
//! One test: winit allows one event loop per process.

#[path = "../../../tests/conformance/mod.rs"]
mod conformance;
mod support;

use std::time::Duration;

use support::TestApp;

#[test]
fn conformance() {
    if !support::display_available("conformance") {
        return;
    }
    let _watchdog = support::watchdog("the winit conformance suite", Duration::from_secs(180));
    let mut running = support::start_loop(false, |event_loop, host| {
        let app = TestApp {
            on_window_event: None,
        };
        host.run_app(event_loop, app)
            .expect("the event loop failed");
    });
    let main = running.main.clone();
    let host = conformance::HostUnderTest::new("winit", main, move || running.stop());
    conformance::run_suite(host);
}
