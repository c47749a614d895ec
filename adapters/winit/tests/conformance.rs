//! The shared conformance suite on a winit loop (X11; under Xvfb on CI).
//!
//! One test: winit allows one event loop per process.

#[path = "../../../tests/conformance/mod.rs"]
mod conformance;
mod support;

use std::time::Duration;

#[test]
fn conformance() {
    if !support::display_available("conformance") {
        return;
    }
    let _watchdog = support::watchdog("the winit conformance suite", Duration::from_secs(180));
    let mut running = support::start_plain_loop();
    let main = running.main.clone();
    let host = conformance::HostUnderTest::new("winit", main, move || running.stop());
    conformance::run_suite(host);
}
