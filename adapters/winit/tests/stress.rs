//! The shared stress suite (`tests/stress/`) on a winit loop (X11; under
//! Xvfb on CI).
//!
//! One test: winit allows one event loop per process. Debug builds run
//! reduced sizes; the full sizes need a release build:
//! `xvfb-run -a cargo test --release -p dispatchers-winit --test stress -- --nocapture`.

#[path = "../../../tests/stress/mod.rs"]
mod stress;
mod support;

use std::sync::Mutex;
use std::time::Duration;

use support::Ctl;

#[test]
fn stress() {
    if !support::display_available("stress") {
        return;
    }
    // The suite's own watchdogs bound each phase; this one bounds the loop's
    // start and end too.
    let _watchdog = support::watchdog("the winit stress suite", Duration::from_secs(1800));
    let mut running = support::start_plain_loop();
    let main = running.main.clone();
    let proxy = Mutex::new(running.proxy.clone());
    let host = stress::StressHost::new(
        "winit",
        main,
        move || {
            // Fails only when the loop has ended already.
            let _ = proxy.lock().unwrap().send_event(Ctl::Exit);
        },
        move || running.stop(),
    );
    stress::run_all(host);
}
