//! [`watchdog`], shared by the test files that include it with
//! `#[path = "support/watchdog.rs"] mod watchdog;`, and by the adapters'
//! with `#[path = "../../../tests/support/watchdog.rs"] mod watchdog;`.

use std::sync::mpsc;
use std::time::Duration;

/// Runs `test` on a thread named `name`; fails if it takes more than
/// `limit` (a loop that never wakes again, a deadlock: the thread is left
/// blocked, and the test fails instead of hanging), re-raises its panic
/// otherwise.
pub fn watchdog<T: Send + 'static>(
    name: &str,
    limit: Duration,
    test: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, result) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = done.send(test());
        })
        .unwrap();
    match result.recv_timeout(limit) {
        Ok(value) => {
            thread.join().unwrap();
            value
        }
        // The test panicked: re-raise its panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the test thread ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: '{name}' hung for {limit:?} (lost wake-up? deadlock?)")
        }
    }
}
