//! `!Send` tasks whose runnable ends up on another thread: that thread can
//! neither poll nor drop the future, so it sends the runnable back, and the
//! task's own thread cancels it (the future dropped there, the `Task`
//! resolved as cancelled) at its next wait, `run_pending`, or exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::Waker;
use std::thread;
use std::time::Duration;

#[path = "support/drops_elsewhere.rs"]
mod drops_elsewhere;

use dispatchers::{
    Budget, Dispatch, Dispatcher, HostEngine, LoopHost, Runnable, Task, block_on, timeout,
};
use drops_elsewhere::{DropProbe, DropsElsewhere, never_with_probe, spawn_dropped_elsewhere};

fn within_a_minute<T>(task: Task<T>) -> Result<T, dispatchers::JoinError> {
    block_on(timeout(Duration::from_secs(60), task))
        .expect("watchdog: the task sent back was never cancelled")
}

#[test]
fn a_runnable_dropped_on_another_thread_is_cancelled_back_on_its_own() {
    let (task, drops) = spawn_dropped_elsewhere();
    // Not dropped there: the future still exists.
    assert!(drops.try_recv().is_err());
    // This thread's `block_on` cancels what was sent back.
    assert!(within_a_minute(task).unwrap_err().is_cancelled());
    assert_eq!(drops.try_recv(), Ok(thread::current().id()));
}

#[test]
fn a_thread_that_exits_cancels_the_tasks_sent_back_to_it() {
    let home = thread::spawn(|| {
        // Exits without waiting: the mailbox is cancelled on the way out.
        spawn_dropped_elsewhere()
    });
    let home_id = home.thread().id();
    let (task, drops) = home.join().expect("the home thread");
    assert!(within_a_minute(task).unwrap_err().is_cancelled());
    assert_eq!(drops.try_recv(), Ok(home_id), "dropped on its own thread");
}

/// Keeps each runnable for the test to drop (later, elsewhere).
struct Keeps(Arc<Mutex<Vec<Runnable>>>);

impl Dispatch for Keeps {
    fn dispatch(&self, runnable: Runnable) {
        self.0.lock().unwrap().push(runnable);
    }

    fn is_current_thread(&self) -> bool {
        true
    }
}

#[test]
fn a_task_sent_back_after_its_thread_exited_is_leaked_not_dropped_elsewhere() {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let (probe, drops) = mpsc::channel();
    let task = {
        let kept = kept.clone();
        thread::spawn(move || {
            Dispatcher::new(Keeps(kept)).spawn_local(never_with_probe(DropProbe(probe)))
        })
        .join()
        .expect("the home thread")
    };
    // Its thread is gone: the runnable has nowhere to go.
    drop(kept.lock().unwrap().pop().expect("the task was dispatched"));
    assert!(drops.try_recv().is_err(), "never dropped off its thread");
    assert!(!task.is_finished());
}

/// Forwards to a loop's Main, so its tasks are not in the loop's live set:
/// the loop's shutdown does not cancel one that waits on something else.
struct ForwardsTo(Dispatcher);

impl Dispatch for ForwardsTo {
    fn dispatch(&self, runnable: Runnable) {
        self.0.as_dispatch().dispatch(runnable);
    }

    fn is_current_thread(&self) -> bool {
        self.0.is_current_thread()
    }
}

#[test]
fn a_task_woken_from_another_thread_after_its_loop_shut_down_is_cancelled_by_the_loop() {
    let host = LoopHost::new("orphans");
    let forwarding = Dispatcher::new(ForwardsTo(host.dispatcher().dispatcher().clone()));
    let (probe, drops) = mpsc::channel();
    let (waker_tx, waker) = mpsc::channel::<Waker>();
    let polled = Arc::new(AtomicBool::new(false));
    let task = forwarding.spawn_local({
        let polled = polled.clone();
        async move {
            let _probe = DropProbe(probe);
            let _not_send = std::rc::Rc::new(());
            std::future::poll_fn(|cx| {
                if !polled.swap(true, Ordering::SeqCst) {
                    let _ = waker_tx.send(cx.waker().clone());
                }
                std::task::Poll::<()>::Pending
            })
            .await;
        }
    });
    host.run_pending(Budget::unlimited());
    let waker = waker.recv_timeout(Duration::from_secs(60)).expect("polled");
    host.engine().shutdown();
    assert!(!task.is_finished(), "not the loop's: the shutdown left it");
    // Woken from another thread: the closed loop rejects it there, and that
    // thread, which cannot drop a `!Send` future, sends it back.
    thread::spawn(move || waker.wake())
        .join()
        .expect("the waking thread");
    assert!(
        drops.try_recv().is_err(),
        "not dropped on the waking thread"
    );
    host.run_pending(Budget::unlimited());
    assert!(task.is_finished(), "cancelled by the loop's run_pending");
    assert!(within_a_minute(task).unwrap_err().is_cancelled());
    assert_eq!(drops.try_recv(), Ok(thread::current().id()));
}

#[test]
fn a_task_sent_back_wakes_the_host_loop_of_its_thread() {
    // A host whose wake-up says so (a mio or calloop loop asleep in its poll
    // is not woken by an unpark).
    let (woken_tx, woken) = mpsc::channel();
    let engine = HostEngine::new("woken", move || {
        let _ = woken_tx.send(());
    });
    let (task, drops) = spawn_dropped_elsewhere();
    woken
        .recv_timeout(Duration::from_secs(60))
        .expect("the delivery woke the thread's host loop");
    // The loop's next `run_pending` cancels it.
    engine.run_pending(Budget::unlimited());
    assert!(task.is_finished());
    assert!(within_a_minute(task).unwrap_err().is_cancelled());
    assert_eq!(drops.try_recv(), Ok(thread::current().id()));
}

#[test]
fn a_dropped_host_engine_is_not_woken_by_a_delivery() {
    // The engine's shared part outlives it while a dispatcher of it lives
    // (here a clone; in the shutdown race, the task sent back itself): its
    // loop is gone, or serves something else under the same token, and a
    // wake-up would be a stray event there.
    let wakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let engine = HostEngine::new("dropped", {
        let wakes = wakes.clone();
        move || {
            wakes.fetch_add(1, Ordering::SeqCst);
        }
    });
    let kept = engine.dispatcher();
    drop(engine);
    let before = wakes.load(Ordering::SeqCst);
    let (task, drops) = spawn_dropped_elsewhere();
    assert_eq!(
        wakes.load(Ordering::SeqCst) - before,
        0,
        "the wake-up of a dropped engine's loop was called"
    );
    assert!(within_a_minute(task).unwrap_err().is_cancelled());
    assert_eq!(drops.try_recv(), Ok(thread::current().id()));
    drop(kept);
}

#[test]
fn a_host_engine_dropped_while_a_delivery_wakes_its_thread_is_not_woken() {
    // The delivering thread takes the thread's wake-ups from the mailbox,
    // then calls them one after the other: the first engine's wake-up holds
    // it while the second engine is dropped, whose wake-up comes next.
    let (entered_tx, entered) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let (entered_tx, go) = (Mutex::new(entered_tx), Mutex::new(go));
    let first = HostEngine::new("first", move || {
        let _ = entered_tx.lock().unwrap().send(());
        let _ = go.lock().unwrap().recv_timeout(Duration::from_secs(60));
    });
    let wakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let second = HostEngine::new("second", {
        let wakes = wakes.clone();
        move || {
            wakes.fetch_add(1, Ordering::SeqCst);
        }
    });
    let (dispatcher, dropped) = DropsElsewhere::start();
    let (probe, drops) = mpsc::channel();
    let task = dispatcher.spawn_local(never_with_probe(DropProbe(probe)));
    entered
        .recv_timeout(Duration::from_secs(60))
        .expect("the delivery woke the first engine's loop");
    drop(second);
    let before = wakes.load(Ordering::SeqCst);
    go_tx.send(()).expect("the first engine's wake-up waits");
    dropped
        .recv_timeout(Duration::from_secs(60))
        .expect("the other thread dropped the runnable");
    assert_eq!(
        wakes.load(Ordering::SeqCst) - before,
        0,
        "the wake-up of an engine dropped during the delivery was called"
    );
    first.run_pending(Budget::unlimited());
    assert!(within_a_minute(task).unwrap_err().is_cancelled());
    assert_eq!(drops.try_recv(), Ok(thread::current().id()));
}

#[cfg(feature = "test-util")]
#[test]
fn run_test_cancels_a_task_sent_back_to_the_test_thread() {
    use dispatchers::test_util::{TestConfig, run_test_with};

    let (dispatcher, _dropped) = DropsElsewhere::start();
    let (probe, drops) = mpsc::channel();
    let config = TestConfig::new().timeout(Duration::from_secs(20));
    let result = run_test_with(config, move |_scope| async move {
        dispatcher
            .spawn_local(never_with_probe(DropProbe(probe)))
            .await
    });
    assert!(result.unwrap_err().is_cancelled());
    assert_eq!(drops.try_recv(), Ok(thread::current().id()));
}
