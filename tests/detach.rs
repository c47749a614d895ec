//! `Task::detach` on a task whose future is finishing a panic returns at once,
//! even when the future's destructor needs a lock the detaching thread holds:
//! the future is dropped before the panic is handed over, so `detach` never
//! waits on user code.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use dispatchers::{Dispatchers, Task, reset_panic_handler, set_panic_handler};

/// Panics when polled; its destructor takes the registry's lock.
struct PanicsThenDeregisters(Arc<Mutex<Vec<Task<()>>>>);

impl Future for PanicsThenDeregisters {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        std::thread::sleep(Duration::from_millis(50));
        panic!("worker failed")
    }
}

impl Drop for PanicsThenDeregisters {
    fn drop(&mut self) {
        let _registry = self.0.lock().unwrap_or_else(|e| e.into_inner());
    }
}

#[test]
fn detach_under_a_lock_the_destructor_needs_does_not_deadlock() {
    let (reported_tx, reported_rx) = mpsc::channel();
    let reported_tx = Mutex::new(reported_tx);
    set_panic_handler(move |report| {
        if report.message() == Some("worker failed") {
            let _ = reported_tx.lock().unwrap().send(());
        }
    });
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let registry = Arc::new(Mutex::new(Vec::new()));
        let task = Dispatchers::default().spawn(PanicsThenDeregisters(registry.clone()));
        registry.lock().unwrap().push(task);
        // Shut the subsystem down: detach everything, holding the lock while
        // the task panics and its destructor waits for that lock.
        let mut tasks = registry.lock().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        for task in tasks.drain(..) {
            task.detach();
        }
        done_tx.send(()).unwrap();
    });
    let detached = done_rx.recv_timeout(Duration::from_secs(60));
    let reported = reported_rx.recv_timeout(Duration::from_secs(60));
    reset_panic_handler();
    assert!(detached.is_ok(), "detach never returned (deadlock)");
    assert!(reported.is_ok(), "the panic was reported once detached");
}
