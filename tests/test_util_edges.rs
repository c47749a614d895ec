//! The virtual clock at its edges: `block_on` on the test thread, a closed
//! scheduler, the far end of time, `Duration::MAX` as "never", and which
//! timers count as background work, a timeout around a hop to a real pool.
#![cfg(feature = "test-util")]

use std::future::pending;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use dispatchers::test_util::{TestConfig, TestDispatcher, run_test, run_test_with};

#[path = "support/signal.rs"]
mod signal;
use dispatchers::{Dispatchers, block_on, delay, spawn_on_main, timeout, with_context};
use signal::Signal;

/// Runs `f` on a thread of its own and fails if it does not finish within
/// 30 s (a hang is the failure these tests look for).
fn finishes(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(outcome.is_ok());
    });
    let finished = rx.recv_timeout(Duration::from_secs(30));
    assert_eq!(finished, Ok(true), "hung or panicked");
}

#[test]
fn block_on_a_delay_on_the_test_thread_waits_in_real_time() {
    finishes(|| {
        run_test_with(
            TestConfig::new().timeout(Duration::from_secs(20)),
            |_scope| async {
                // Virtual time cannot move while block_on blocks the thread.
                block_on(delay(Duration::from_millis(10)));
            },
        );
    });
    finishes(|| {
        let test = TestDispatcher::new();
        let _guard = test.install();
        let outcome = block_on(timeout(Duration::from_millis(10), pending::<()>()));
        assert!(outcome.is_err());
        assert_eq!(test.current_time(), Duration::ZERO);
    });
}

#[test]
fn the_clock_stops_where_it_still_agrees_with_itself() {
    run_test(|scope| async move {
        scope.advance_time_by(Duration::MAX);
        let far = scope.current_time();
        assert!(far >= Duration::from_secs(1 << 40), "{far:?}");
        let task = spawn_on_main(async { delay(Duration::from_secs(3600)).await });
        scope.run_current();
        assert!(!task.is_finished(), "no virtual time passed");
        scope.advance_time_by(Duration::from_secs(3600));
        scope.run_current();
        assert!(task.is_finished());
    });
}

#[test]
fn duration_max_is_never() {
    run_test(|scope| async move {
        let forever = spawn_on_main(async { delay(Duration::MAX).await });
        let no_timeout = spawn_on_main(timeout(Duration::MAX, async {
            delay(Duration::from_secs(5)).await;
            7
        }));
        scope.advance_until_idle();
        assert_eq!(no_timeout.await.unwrap(), Ok(7));
        assert!(!forever.is_finished(), "at {:?}", scope.current_time());
        assert_eq!(scope.current_time(), Duration::from_secs(5));
        drop(forever);
    });
    // The same on real timers: never registered, never ready.
    let mut never = Box::pin(delay(Duration::MAX));
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(never.as_mut().poll(&mut cx).is_pending());
    assert!(never.as_mut().poll(&mut cx).is_pending());
    assert_eq!(
        block_on(timeout(Duration::MAX, async { 3 })),
        Ok(3),
        "a ready future beats no timeout"
    );
}

/// On both flavours: a foreground task (spawned by the code under test, not
/// through the scope) woken by background work, on the unconfined flavour
/// resumed in place inside that background run, still registers foreground
/// timers, so `advance_until_idle` waits for them.
#[test]
fn a_foreground_task_resumed_by_background_work_keeps_foreground_timers() {
    for unconfined in [false, true] {
        let dispatcher = if unconfined {
            TestDispatcher::unconfined()
        } else {
            TestDispatcher::new()
        };
        run_test_with(
            TestConfig::new().dispatcher(dispatcher),
            |scope| async move {
                let signal = Signal::default();
                let waiter = signal.clone();
                let worker = spawn_on_main(async move {
                    waiter.await;
                    delay(Duration::from_secs(10)).await;
                });
                scope
                    .background()
                    .spawn(async move {
                        delay(Duration::from_secs(1)).await;
                        signal.send();
                        pending::<()>().await;
                    })
                    .detach();
                // Foreground work that takes the clock past the background
                // delay (alone, background work does not move it).
                let _keeper = spawn_on_main(delay(Duration::from_secs(5)));
                scope.advance_until_idle();
                assert!(
                    worker.is_finished(),
                    "advance_until_idle returned at {:?} with foreground work pending",
                    scope.current_time()
                );
                assert_eq!(scope.current_time(), Duration::from_secs(11));
            },
        );
    }
}

/// A flavour made and dropped before another: the new one's timers are not
/// taken for the old one's (whose dispatcher's address it may get).
#[test]
fn a_new_flavour_keeps_its_own_attribution() {
    let test = TestDispatcher::new();
    for _ in 0..100 {
        drop(test.to_standard());
        let other = test.to_standard();
        let task = other.dispatcher().spawn(async {
            delay(Duration::from_secs(10)).await;
        });
        test.advance_until_idle();
        assert!(
            task.is_finished(),
            "left behind at {:?}",
            test.current_time()
        );
    }
}

#[test]
fn a_timeout_around_a_hop_to_a_real_pool_elapses_in_virtual_time() {
    finishes(|| {
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let (elapsed, waited) = run_test(|scope| async move {
            // The IO task waits for the test to release it: it cannot finish
            // before the virtual clock moves on.
            let hop = with_context(&Dispatchers::io(), async move {
                let _ = released.lock().unwrap().recv();
            });
            let elapsed = timeout(Duration::from_secs(1), hop).await.is_err();
            release.send(()).unwrap();
            (elapsed, scope.current_time())
        });
        assert!(elapsed, "the timeout did not elapse");
        assert_eq!(waited, Duration::from_secs(1));
    });
}
