//! A virtual `Delay` polled while its scheduler shuts down (here, by the
//! clone of the new waker it is polled with, the one window a test can pin
//! down; a pool thread polling while the test thread ends the test hits the
//! same one) never completes: no virtual time passed; one registered in that
//! window is registered elsewhere, and woken.
#![cfg(feature = "test-util")]
#![allow(unsafe_code)] // a `RawWaker` whose clone runs code (one `unsafe` block)

use std::future::Future;
use std::task::{Context, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

use dispatchers::delay;
use dispatchers::test_util::TestDispatcher;

thread_local! {
    static TO_SHUT_DOWN: std::cell::RefCell<Option<TestDispatcher>> = const { std::cell::RefCell::new(None) };
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_shutting_down, noop, noop, noop);

/// Its clone shuts the test dispatcher down (once).
fn clone_shutting_down(_: *const ()) -> RawWaker {
    if let Some(test) = TO_SHUT_DOWN.with(|t| t.borrow_mut().take()) {
        test.shutdown();
    }
    RawWaker::new(std::ptr::null(), &VTABLE)
}

fn noop(_: *const ()) {}

#[test]
fn a_virtual_delay_polled_while_its_scheduler_shuts_down_does_not_complete() {
    let test = TestDispatcher::new();
    let guard = test.install();
    let mut sleeper = Box::pin(delay(Duration::from_secs(3600)));
    assert!(
        sleeper
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending()
    );
    drop(guard);
    TO_SHUT_DOWN.with(|t| *t.borrow_mut() = Some(test.clone()));
    // SAFETY: the vtable's functions never read the data pointer (null
    // here); a clone returns a waker with the same vtable.
    let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
    let polled = sleeper.as_mut().poll(&mut Context::from_waker(&waker));
    assert_eq!(test.current_time(), Duration::ZERO);
    assert!(
        polled.is_pending(),
        "delay(1h) completed with no virtual time passed, its scheduler shut down"
    );
}

static WOKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

static WAKE_VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone_shutting_down_then_waking, wake, wake, noop);

/// Its clone shuts the test dispatcher down (once); waking it sets `WOKEN`.
fn clone_shutting_down_then_waking(_: *const ()) -> RawWaker {
    if let Some(test) = TO_SHUT_DOWN.with(|t| t.borrow_mut().take()) {
        test.shutdown();
    }
    RawWaker::new(std::ptr::null(), &WAKE_VTABLE)
}

fn wake(_: *const ()) {
    WOKEN.store(true, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn a_virtual_delay_registered_while_its_scheduler_shuts_down_is_still_woken() {
    let test = TestDispatcher::new();
    let guard = test.install();
    let mut sleeper = Box::pin(delay(Duration::from_millis(10)));
    TO_SHUT_DOWN.with(|t| *t.borrow_mut() = Some(test.clone()));
    // SAFETY: the vtable's functions never read the data pointer (null
    // here); a clone returns a waker with the same vtable.
    let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &WAKE_VTABLE)) };
    // The first poll registers the timer; the waker's clone, on the way,
    // shuts the scheduler down.
    let polled = sleeper.as_mut().poll(&mut Context::from_waker(&waker));
    drop(guard);
    assert!(polled.is_pending(), "no virtual time passed");
    // Registered on other timers, with the 10 ms it had left: they wake it.
    let patience = std::time::Instant::now() + Duration::from_secs(10);
    while !WOKEN.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < patience,
            "the delay was left registered nowhere: nothing will ever wake it"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        sleeper
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    );
}
