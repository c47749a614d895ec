//! A host engine created on a thread *before* a test dispatcher's clock is
//! bound there: its own tasks' `delay`s still use the engine's timers, as
//! `HostEngine::new` documents ("from now on"), whatever was bound after.
#![cfg(feature = "test-util")]

use std::time::Duration;

use dispatchers::test_util::TestDispatcher;
use dispatchers::{Budget, LoopHost, delay};

#[test]
fn a_loop_created_before_the_test_clock_keeps_its_tasks_on_its_timers() {
    let host = LoopHost::new("before-clock");
    let test = TestDispatcher::new();
    let _guard = test.install();
    let task = host
        .dispatcher()
        .spawn(async { delay(Duration::from_millis(1)).await });
    host.run_pending(Budget::unlimited());
    assert_eq!(
        (host.engine().pending_timers(), test.pending_timers()),
        (1, 0),
        "the loop's task waits on the loop's timers, not on virtual time"
    );
    drop(task);
}
