//! A waker that panics when a loop's timer wakes it: reported, and the other
//! due timers still wake their tasks. One test: the panic handler is
//! process-wide.

use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use dispatchers::{
    Budget, LoopHost, PanicSource, block_on, delay, delay_until, reset_panic_handler,
};

#[path = "support/panicky_waker.rs"]
mod panicky_waker;
use panicky_waker::{Panicky, record_panic_reports};

#[test]
fn a_panicking_waker_is_reported_and_the_other_timers_still_fire() {
    let reports = record_panic_reports();

    let host = LoopHost::new("waker-host");
    let main = host.dispatcher();
    let deadline = Instant::now() + Duration::from_millis(5);
    // Registers a loop timer with the panicking waker, then waits on another.
    let panicky = main.spawn(async move {
        let mut timer = Box::pin(delay_until(deadline));
        let waker = Waker::from(Arc::new(Panicky));
        let polled = timer.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(polled.is_pending());
        delay(Duration::from_millis(50)).await;
        drop(timer);
    });
    let good = main.spawn(async move { delay_until(deadline).await });
    host.run_pending(Budget::unlimited());
    assert_eq!(host.engine().pending_timers(), 3);
    // Both due now.
    std::thread::sleep(Duration::from_millis(10));

    let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        host.run_pending(Budget::unlimited())
    }))
    .expect("run_pending does not unwind because of a waker");
    assert_eq!(report.timers_fired, 2);
    assert!(good.is_finished(), "the other due timer woke its task");
    block_on(good).unwrap();

    // The loop still runs Main.immediate in place afterwards.
    let in_place = main.immediate().spawn(poll_fn(|_| Poll::Ready(3)));
    assert!(in_place.is_finished(), "immediate ran in place");
    block_on(in_place).unwrap();

    assert_eq!(host.run_until(panicky).map_err(|e| e.to_string()), Ok(()));
    reset_panic_handler();
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].0, PanicSource::Waker);
    assert_eq!(
        reports[0].1,
        "a waker woken by the timers of 'waker-host' panicked: this waker panics"
    );
}
