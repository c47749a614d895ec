//! A loop that shuts down inside an in-place run (`Main.immediate`): the
//! tasks queued behind that run on the thread's trampoline are tasks of the
//! loop's Main like the ones in its queue, so they are cancelled, not run.

#[path = "support/watchdog.rs"]
mod watchdog;

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use dispatchers::{HostEngine, Task, block_on};
use watchdog::watchdog;

/// Counts its drops and the thread of the last one.
struct Tracked(Arc<(AtomicUsize, Mutex<Option<ThreadId>>)>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.0.fetch_add(1, Ordering::SeqCst);
        *self.0.1.lock().unwrap() = Some(std::thread::current().id());
    }
}

#[test]
fn a_task_queued_behind_the_in_place_run_that_shuts_the_loop_down_is_cancelled_not_run() {
    watchdog("queued-behind-shutdown", Duration::from_secs(10), || {
        let engine = Rc::new(HostEngine::new("queued-behind-shutdown", || {}));
        let immediate = engine.dispatcher().immediate();
        let ran = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new((AtomicUsize::new(0), Mutex::new(None)));
        let queued: Rc<Mutex<Option<Task<()>>>> = Rc::default();
        let (inner, shut, slot, count, tracked) = (
            immediate.clone(),
            engine.clone(),
            queued.clone(),
            ran.clone(),
            Tracked(dropped.clone()),
        );
        // Runs in place: the task it spawns on immediate is queued behind it
        // on the trampoline; then it shuts the loop down.
        let outer = immediate.spawn_local(async move {
            let task = inner.spawn(async move {
                let _tracked = tracked;
                count.fetch_add(1, Ordering::SeqCst);
            });
            *slot.lock().unwrap() = Some(task);
            shut.shutdown();
        });
        assert!(outer.is_finished());
        block_on(outer).unwrap();
        let task = queued.lock().unwrap().take().expect("spawned");
        let result = block_on(task);
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "polled after its loop shut down"
        );
        assert!(result.unwrap_err().is_cancelled());
        assert_eq!(dropped.0.load(Ordering::SeqCst), 1, "future dropped once");
        assert_eq!(
            *dropped.1.lock().unwrap(),
            Some(std::thread::current().id()),
            "dropped on the loop thread"
        );
    });
}

#[test]
fn an_unconfined_task_queued_behind_that_run_still_runs() {
    // An Unconfined task queued behind the same run is not a loop's task:
    // it still runs.
    watchdog(
        "unconfined-behind-shutdown",
        Duration::from_secs(10),
        || {
            let engine = Rc::new(HostEngine::new("unconfined-behind-shutdown", || {}));
            let immediate = engine.dispatcher().immediate();
            let shut = engine.clone();
            let outer = immediate.spawn_local(async move {
                let task = dispatchers::Dispatchers::unconfined().spawn(async { 5 });
                shut.shutdown();
                Some(task)
            });
            let task = block_on(outer).unwrap().expect("spawned");
            assert_eq!(block_on(task).unwrap(), 5);
        },
    );
}
