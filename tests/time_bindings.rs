//! Several timers bound to one thread: a host engine created on a thread
//! whose `delay`s already had timers (a test's virtual clock, an outer
//! loop's) serves its own tasks and leaves the others where they were.
#![cfg(feature = "test-util")]

use std::time::Duration;

use dispatchers::test_util::{TestConfig, run_test_with};
use dispatchers::{Budget, HostEngine, LoopHost, delay};

#[path = "support/watchdog.rs"]
mod watchdog;
use watchdog::watchdog;

#[test]
fn a_loop_created_inside_run_test_leaves_the_test_on_virtual_time() {
    watchdog("loop in test", Duration::from_secs(30), || {
        run_test_with(
            TestConfig::new().timeout(Duration::from_secs(10)),
            |scope| async move {
                let host = LoopHost::new("in-test");
                // The body is no task of the loop: virtual time, no real wait.
                delay(Duration::from_secs(3600)).await;
                assert_eq!(scope.current_time(), Duration::from_secs(3600));
                // The loop's own tasks still use the loop's timers.
                let task = host
                    .dispatcher()
                    .spawn(async { delay(Duration::from_millis(1)).await });
                host.run_pending(Budget::unlimited());
                assert_eq!(host.engine().pending_timers(), 1);
                host.run_until(task).unwrap();
            },
        );
    });
}

#[test]
fn an_outer_loop_keeps_its_timers_while_an_inner_one_lives() {
    let outer = HostEngine::new("outer", || {});
    let inner = HostEngine::new("inner", || {});
    let task = outer
        .dispatcher()
        .spawn(async { delay(Duration::from_secs(3600)).await });
    outer.run_pending(Budget::unlimited());
    assert_eq!(
        (outer.pending_timers(), inner.pending_timers()),
        (1, 0),
        "the outer loop's task waits on the outer loop's timers"
    );
    drop(task);
    drop(inner);
}

#[test]
fn an_inner_loop_shut_down_first_gives_the_outer_one_its_timers_back_in_any_order() {
    let outer = HostEngine::new("outer", || {});
    let inner = HostEngine::new("inner", || {});
    // Shut down out of order: the outer loop first.
    outer.shutdown();
    let task = inner
        .dispatcher()
        .spawn(async { delay(Duration::from_secs(3600)).await });
    inner.run_pending(Budget::unlimited());
    assert_eq!(inner.pending_timers(), 1);
    drop(task);
    drop(inner);
}
