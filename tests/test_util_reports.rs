//! `run_test`'s failure reports: a leaked task, a stuck body or listener,
//! an endless foreground loop and a panic each fail the test with a message
//! that names the task and says why.
#![cfg(feature = "test-util")]

#[path = "support/held_waker.rs"]
mod held_waker;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use dispatchers::delay;
use dispatchers::test_util::{TestConfig, run_test, run_test_with};
use held_waker::HeldWaker;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The message of a panic caught by `catch_unwind`.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_leaked_task_fails_run_test_with_its_name_at_once() {
    let started = Instant::now();
    let failure = catch_unwind(AssertUnwindSafe(|| {
        run_test(|scope| async move {
            scope.spawn(delay(secs(1))).detach(); // completes: not a leak
            scope
                .spawn_named("leaky", std::future::pending::<()>())
                .detach();
        })
    }))
    .expect_err("run_test must fail");
    let message = panic_message(failure);
    assert!(
        message.contains("task 'leaky' (spawned at tests/"),
        "{message}"
    );
    assert!(message.contains("can never complete"), "{message}");
    assert!(
        !message.contains("did not complete within"),
        "not a timeout: {message}"
    );
    assert!(started.elapsed() < secs(30));
}

#[test]
#[should_panic(expected = "task 'stuck-listener'")]
fn a_task_still_waiting_on_a_held_waker_fails_at_the_timeout() {
    let held = HeldWaker::default();
    let waiting = held.clone();
    run_test_with(
        TestConfig::new().timeout(ms(200)),
        move |scope| async move {
            scope.spawn_named("stuck-listener", waiting).detach();
        },
    );
    drop(held);
}

#[test]
fn a_stuck_body_fails_at_the_timeout_instead_of_hanging() {
    let held = HeldWaker::default();
    let waiting = held.clone();
    let failure = catch_unwind(AssertUnwindSafe(|| {
        run_test_with(
            TestConfig::new().timeout(ms(200)),
            move |_scope| async move {
                waiting.await;
            },
        )
    }))
    .expect_err("run_test must fail");
    let message = panic_message(failure);
    assert!(
        message.contains("did not complete within 200ms"),
        "{message}"
    );
    assert!(
        message.contains("the test body did not complete"),
        "{message}"
    );
}

#[test]
fn an_endless_foreground_loop_fails_at_the_timeout() {
    let failure = catch_unwind(AssertUnwindSafe(|| {
        run_test_with(TestConfig::new().timeout(ms(200)), |scope| async move {
            scope
                .spawn_named("ticker", async {
                    loop {
                        delay(secs(1)).await;
                    }
                })
                .detach();
        })
    }))
    .expect_err("run_test must fail");
    let message = panic_message(failure);
    assert!(message.contains("task 'ticker'"), "{message}");
    assert!(message.contains("never went idle"), "{message}");
}

#[test]
fn a_panicking_child_fails_the_test_with_its_name_and_message() {
    let failure = catch_unwind(AssertUnwindSafe(|| {
        run_test(|scope| async move {
            scope
                .spawn_named("worker", async {
                    delay(secs(5)).await;
                    panic!("disk full");
                })
                .detach();
            // The body would wait forever: the panic ends the test first.
            HeldWaker::default().await;
        })
    }))
    .expect_err("run_test must fail");
    let message = panic_message(failure);
    assert!(message.contains("task 'worker'"), "{message}");
    assert!(message.contains("panicked: disk full"), "{message}");
}

#[test]
#[should_panic(expected = "the body's own assertion")]
fn a_panicking_body_fails_with_its_own_panic() {
    run_test(|_scope| async move {
        delay(secs(1)).await;
        panic!("the body's own assertion");
    });
}
