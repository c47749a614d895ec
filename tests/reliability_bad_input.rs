//! `Dispatch` implementations that break their contract: the task layer
//! still never polls or drops a `!Send` future off its thread, and never
//! leaves a `Task` hanging when a runnable is dropped (a `!Send` one is sent
//! back to its thread and cancelled there; see `orphans.rs`). (The other bad inputs
//! have their tests next to the feature; RELIABILITY.md lists them all.)

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use dispatchers::{Dispatch, Dispatcher, Runnable, block_on, timeout};

/// Drops every runnable it is given.
struct BlackHole;

impl Dispatch for BlackHole {
    fn dispatch(&self, runnable: Runnable) {
        drop(runnable);
    }
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_dispatch_that_drops_every_runnable_cancels_each_task_once() {
    let black_hole = Dispatcher::new(BlackHole);
    let (drops, polls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (guard, polls) = (Counted(drops.clone()), polls.clone());
            black_hole.spawn(async move {
                let _guard = guard;
                polls.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for task in tasks {
        let result = block_on(timeout(Duration::from_secs(60), task))
            .expect("watchdog: a dropped runnable left its Task hanging");
        assert!(result.unwrap_err().is_cancelled());
    }
    assert_eq!(polls.load(Ordering::SeqCst), 0, "never polled");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        100,
        "each future dropped once"
    );
}

/// Claims to run on the caller's thread (so `spawn_local` accepts it), but
/// runs its tasks on a thread of its own.
struct Liar(Mutex<mpsc::Sender<Runnable>>);

impl Dispatch for Liar {
    fn dispatch(&self, runnable: Runnable) {
        let _ = self.0.lock().unwrap().send(runnable);
    }

    fn is_current_thread(&self) -> bool {
        true
    }
}

#[test]
fn a_not_send_task_sent_to_another_thread_is_cancelled_back_on_its_own() {
    let (tx, rx) = mpsc::channel::<Runnable>();
    let (report_tx, reports) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for runnable in rx {
            let outcome = catch_unwind(AssertUnwindSafe(|| runnable.run()));
            let message = match outcome {
                Ok(_) => "ran".to_owned(),
                Err(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default(),
            };
            let _ = report_tx.send(message);
        }
    });
    let liar = Dispatcher::new(Liar(Mutex::new(tx)));
    let polls = Rc::new(AtomicUsize::new(0));
    let counted = polls.clone();
    let task = liar.spawn_local(async move {
        counted.fetch_add(1, Ordering::SeqCst);
    });
    let message = reports
        .recv_timeout(Duration::from_secs(60))
        .expect("the worker never reported");
    assert!(
        message.contains("a !Send task was dispatched to another thread"),
        "{message}"
    );
    assert_eq!(
        polls.load(Ordering::SeqCst),
        0,
        "never polled off its thread"
    );
    // Not dropped there either: the future (and its Rc) still exists, sent
    // back to this thread, whose `block_on` cancels it.
    assert_eq!(Rc::strong_count(&polls), 2);
    let result = block_on(timeout(Duration::from_secs(60), task))
        .expect("watchdog: the task sent back was never cancelled");
    assert!(result.unwrap_err().is_cancelled());
    assert_eq!(Rc::strong_count(&polls), 1, "dropped here, on its thread");
}
