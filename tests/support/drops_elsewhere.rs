//! A `Dispatch` that drops every runnable on a thread of its own, and a
//! probe that says on which thread a future was dropped: for the tests of
//! `!Send` tasks sent back to their own thread.

use std::sync::{Mutex, mpsc};
use std::thread::{self, ThreadId};
use std::time::Duration;

use dispatchers::{Dispatch, Dispatcher, Runnable, Task};

/// Hands each runnable to a thread of its own, which drops it (and says so).
/// It claims the caller's thread, so `spawn_local` accepts it.
pub struct DropsElsewhere(Mutex<mpsc::Sender<Runnable>>);

impl DropsElsewhere {
    /// The dispatcher, and a receiver of one message per dropped runnable.
    pub fn start() -> (Dispatcher, mpsc::Receiver<()>) {
        let (tx, runnables) = mpsc::channel::<Runnable>();
        let (dropped_tx, dropped) = mpsc::channel();
        thread::spawn(move || {
            for runnable in runnables {
                drop(runnable);
                let _ = dropped_tx.send(());
            }
        });
        (Dispatcher::new(DropsElsewhere(Mutex::new(tx))), dropped)
    }
}

impl Dispatch for DropsElsewhere {
    fn dispatch(&self, runnable: Runnable) {
        let _ = self.0.lock().unwrap().send(runnable);
    }

    fn is_current_thread(&self) -> bool {
        true
    }
}

/// Says on which thread the future that owns it was dropped.
pub struct DropProbe(pub mpsc::Sender<ThreadId>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        let _ = self.0.send(thread::current().id());
    }
}

/// A `!Send` future that never completes and reports where it is dropped.
#[allow(dead_code)]
pub async fn never_with_probe(probe: DropProbe) {
    let _not_send = std::rc::Rc::new(());
    let _probe = probe;
    std::future::pending::<()>().await;
}

/// Spawns a [`never_with_probe`] task, on this thread, whose runnable
/// another thread drops at once; returns once it has. The receiver says
/// where the future was dropped in the end.
#[allow(dead_code)]
pub fn spawn_dropped_elsewhere() -> (Task<()>, mpsc::Receiver<ThreadId>) {
    let (dispatcher, dropped) = DropsElsewhere::start();
    let (probe, drops) = mpsc::channel();
    let task = dispatcher.spawn_local(never_with_probe(DropProbe(probe)));
    dropped
        .recv_timeout(Duration::from_secs(60))
        .expect("the other thread dropped the runnable");
    (task, drops)
}
