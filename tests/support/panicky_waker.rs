//! A hand-written waker whose `wake` panics, and a panic handler that
//! records what it is given: for the tests of timers that wake it.

use std::sync::{Arc, Mutex};
use std::task::Wake;

use dispatchers::{PanicSource, set_panic_handler};

/// A waker whose `wake` panics with "this waker panics".
pub struct Panicky;

impl Wake for Panicky {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics");
    }
}

/// Installs a process-wide panic handler that records each report's source
/// and text.
pub fn record_panic_reports() -> Arc<Mutex<Vec<(PanicSource, String)>>> {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    set_panic_handler(move |report| {
        sink.lock()
            .unwrap()
            .push((report.source(), report.to_string()));
    });
    reports
}
