//! A waker that panics when a virtual timer wakes it: reported, and the
//! clock and the other timers go on. One test: the panic handler is
//! process-wide.
#![cfg(feature = "test-util")]

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use dispatchers::test_util::TestDispatcher;
use dispatchers::{PanicSource, delay, reset_panic_handler};

#[path = "support/panicky_waker.rs"]
mod panicky_waker;
use panicky_waker::{Panicky, record_panic_reports};

#[test]
fn a_panicking_waker_on_the_virtual_clock_is_reported_and_time_goes_on() {
    let reports = record_panic_reports();

    let test = TestDispatcher::new();
    let main = test.dispatcher();
    let panicky = main.spawn(async {
        let mut timer = Box::pin(delay(Duration::from_secs(1)));
        let waker = Waker::from(Arc::new(Panicky));
        assert!(
            timer
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        delay(Duration::from_secs(5)).await;
        drop(timer);
    });
    let good = main.spawn(async { delay(Duration::from_secs(2)).await });
    test.run_current();
    assert_eq!(test.pending_timers(), 3);

    let advanced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        test.advance_time_by(Duration::from_secs(3))
    }));
    reset_panic_handler();
    assert!(
        advanced.is_ok(),
        "advance_time_by unwound because of a waker"
    );
    assert_eq!(test.current_time(), Duration::from_secs(3));
    assert!(good.is_finished(), "the later timer woke its task");
    test.advance_until_idle();
    assert!(panicky.is_finished());
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].0, PanicSource::Waker);
    assert!(reports[0].1.contains("this waker panics"), "{reports:?}");
}
