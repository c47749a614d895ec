//! A loop's shutdown cancels its tasks as one chain: a `!Send` task whose
//! destructor waits (`block_on`) for another task of the same loop that is
//! still queued, or suspended, behind it does not block the shutdown.

#[path = "support/held_forever.rs"]
mod held_forever;
#[path = "support/joins_on_drop.rs"]
mod joins_on_drop;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use dispatchers::{Budget, HostEngine};
use held_forever::spawn_local_holding;
use joins_on_drop::JoinsOnDrop;
use watchdog::watchdog;

/// Spawns, on `engine`'s loop thread (this one), a parent whose destructor
/// joins a child spawned right after it; returns whether the parent's
/// destructor saw the child cancelled.
fn parent_and_child(engine: &HostEngine, run_first: bool) -> mpsc::Receiver<bool> {
    let main = engine.dispatcher();
    let slot = Arc::new(Mutex::new(None));
    let (done_tx, done) = mpsc::channel();
    let guard = JoinsOnDrop(slot.clone(), done_tx);
    spawn_local_holding(&main, guard).detach();
    let child = spawn_local_holding(&main, ());
    *slot.lock().unwrap() = Some(child);
    if run_first {
        // Both suspend: they wait in the loop's live set.
        engine.run_pending(Budget::unlimited());
    }
    done
}

#[test]
fn a_destructor_joining_a_queued_task_of_the_loop_does_not_block_its_shutdown() {
    watchdog("queued", Duration::from_secs(10), || {
        let engine = HostEngine::new("queued-join", || {});
        let done = parent_and_child(&engine, false);
        engine.shutdown();
        assert_eq!(done.try_recv(), Ok(true));
    });
}

#[test]
fn a_destructor_joining_a_suspended_task_of_the_loop_does_not_block_its_shutdown() {
    watchdog("suspended", Duration::from_secs(10), || {
        let engine = HostEngine::new("suspended-join", || {});
        let done = parent_and_child(&engine, true);
        engine.shutdown();
        assert_eq!(done.try_recv(), Ok(true));
    });
}
