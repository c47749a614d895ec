//! A `!Send` task of a single-thread pool that is suspended when the pool
//! shuts down, and woken after the pool's thread has exited. The pool's docs
//! promise that a task of the pool that wakes up after the shutdown is
//! cancelled (its `Task` resolves); a `Send` task's does.

use std::future::poll_fn;
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Poll, Waker};
use std::time::Duration;

use dispatchers::{Task, ThreadPool, block_on, timeout};

const PATIENCE: Duration = Duration::from_secs(10);

/// A wake-up that another thread fires later.
#[derive(Clone, Default)]
struct Later(Arc<Mutex<(bool, Option<Waker>)>>);

impl Later {
    async fn wait(self) {
        poll_fn(|cx| {
            let mut state = self.0.lock().unwrap();
            if state.0 {
                return Poll::Ready(());
            }
            state.1 = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn fire(&self) {
        let waker = {
            let mut state = self.0.lock().unwrap();
            state.0 = true;
            state.1.take()
        };
        waker.unwrap().wake();
    }
}

fn suspended_task(local: bool) -> Task<u32> {
    let pool = ThreadPool::new_single_thread("wake-after-exit").unwrap();
    let spawner = pool.dispatcher();
    let later = Later::default();
    let (tx, rx) = mpsc::channel();
    let waiting = later.clone();
    pool.spawn(async move {
        let task = if local {
            spawner.spawn_local(async move {
                let state = std::rc::Rc::new(7);
                waiting.wait().await;
                *state
            })
        } else {
            spawner.spawn(async move {
                waiting.wait().await;
                7
            })
        };
        tx.send(task).unwrap();
    })
    .detach();
    let task = rx.recv_timeout(PATIENCE).unwrap();
    // Wait until the task is suspended.
    while later.0.lock().unwrap().1.is_none() {
        std::thread::yield_now();
    }
    // Joins the pool's thread.
    assert!(pool.shutdown_timeout(PATIENCE));
    later.fire();
    task
}

#[test]
fn a_send_task_woken_after_the_pool_exited_resolves_cancelled() {
    let task = suspended_task(false);
    let outcome = block_on(timeout(PATIENCE, task)).expect("the task must resolve");
    assert!(outcome.unwrap_err().is_cancelled());
}

#[test]
fn a_local_task_woken_after_the_pool_exited_resolves_cancelled() {
    let task = suspended_task(true);
    let outcome = block_on(timeout(PATIENCE, task))
        .expect("the !Send task's Task never resolved: it was leaked");
    assert!(outcome.unwrap_err().is_cancelled());
}
