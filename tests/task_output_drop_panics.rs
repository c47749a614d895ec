//! An output that nobody takes (its `Task` was detached or dropped before
//! the task completed) is dropped where the task completes; a destructor of
//! it that panics is a detached task's panic: reported to the handler, and
//! the thread (a host loop's, a pool's) goes on. It never aborts the process.

#[path = "support/signal.rs"]
mod signal;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dispatchers::{Budget, Dispatchers, HostEngine, PanicSource, block_on, set_panic_handler};
use signal::Signal;
use watchdog::watchdog;

/// Panics when dropped.
struct PanicsOnDrop(&'static str);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

#[test]
fn an_output_or_payload_nobody_takes_that_panics_when_dropped_is_reported() {
    watchdog("output-drop", Duration::from_secs(10), || {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let seen = reports.clone();
        set_panic_handler(move |report| {
            if report.source() == PanicSource::DetachedTask {
                seen.lock()
                    .unwrap()
                    .push(report.message().map(str::to_owned));
            }
        });

        // Detached, on Unconfined: completes in place, inside `send`.
        let signal = Signal::default();
        let wait = signal.clone();
        Dispatchers::unconfined()
            .spawn(async move {
                wait.await;
                PanicsOnDrop("detached output")
            })
            .detach();
        signal.send();

        // On a loop's Main, its `Task` dropped while it runs: it completes
        // in `run_pending`, which must not abort, and the loop goes on.
        let engine = HostEngine::new("output-drop", || {});
        let main = engine.dispatcher();
        let slot: Arc<Mutex<Option<dispatchers::Task<PanicsOnDrop>>>> = Arc::default();
        let own = slot.clone();
        *slot.lock().unwrap() = Some(main.dispatcher().spawn(async move {
            drop(own.lock().unwrap().take());
            PanicsOnDrop("dropped task's output")
        }));
        engine.run_pending(Budget::unlimited());

        // A panic whose payload panics when dropped, its `Task` dropped the
        // same way.
        let slot: Arc<Mutex<Option<dispatchers::Task<()>>>> = Arc::default();
        let own = slot.clone();
        *slot.lock().unwrap() = Some(main.dispatcher().spawn(async move {
            drop(own.lock().unwrap().take());
            std::panic::panic_any(PanicsOnDrop("payload"));
        }));
        engine.run_pending(Budget::unlimited());

        let ran = Arc::new(AtomicUsize::new(0));
        let count = ran.clone();
        let after = main.dispatcher().spawn(async move {
            count.fetch_add(1, Ordering::SeqCst);
        });
        engine.run_pending(Budget::unlimited());
        block_on(after).unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the loop went on");
        let reports = reports.lock().unwrap();
        assert_eq!(
            *reports,
            [
                Some("detached output".to_owned()),
                Some("dropped task's output".to_owned()),
                Some("payload".to_owned()),
            ]
        );
    });
}
