//! One suite of Main-dispatcher behaviour that every host runs (in the spirit
//! of kotlinx's `MainDispatcherTestBase`).
//!
//! A host's test file starts its loop on a thread of its own, wraps it in a
//! [`HostUnderTest`] and calls [`run_suite`]:
//!
//! ```ignore
//! #[path = "../../../tests/conformance/mod.rs"]
//! mod conformance;
//!
//! #[test]
//! fn conformance() {
//!     conformance::run_suite(start_my_host());
//! }
//! ```
//!
//! The cases share one host (winit allows one event loop per process) and run
//! in sequence; the last one stops the loop and checks rejection.

#![allow(dead_code)]

use dispatchers::MainDispatcher;

/// A running host loop: its Main dispatcher, and how to end the loop.
pub struct HostUnderTest {
    /// For messages.
    pub name: &'static str,
    /// The host's Main dispatcher (from its engine, not `Dispatchers::main()`).
    pub main: MainDispatcher,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl HostUnderTest {
    /// `stop` must make the loop return (its host engine shut down, e.g.
    /// dropped) and wait until it has.
    pub fn new(
        name: &'static str,
        main: MainDispatcher,
        stop: impl FnOnce() + Send + 'static,
    ) -> Self {
        HostUnderTest {
            name,
            main,
            stop: Some(Box::new(stop)),
        }
    }

    /// Ends the loop; idempotent.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// Runs every case against `host`, ending with the loop stopped.
pub fn run_suite(mut host: HostUnderTest) {
    cases::run_all(&mut host);
}

mod cases;
