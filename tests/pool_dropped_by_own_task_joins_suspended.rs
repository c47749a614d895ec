//! A single-thread pool dropped from one of its own tasks, while a `!Send`
//! task is queued whose destructor waits (with `block_on`) for another
//! `!Send` task of the pool that is *suspended* (not queued). Both are
//! cancelled by the shutdown, on the pool's thread: the wait in the first
//! destructor must see the second cancelled, as it does when the pool is
//! shut down from another thread, instead of blocking the pool's thread
//! forever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use dispatchers::{Dispatcher, ThreadPool};

#[path = "support/held_forever.rs"]
mod held_forever;
#[path = "support/joins_on_drop.rs"]
mod joins_on_drop;
use held_forever::spawn_local_holding;
use joins_on_drop::JoinsOnDrop;

const PATIENCE: Duration = Duration::from_secs(10);

/// Spawns, on the pool's thread, a `!Send` child that suspends for good;
/// returns once it has suspended.
fn suspended_child(pool: &ThreadPool) -> Arc<Mutex<Option<dispatchers::Task<()>>>> {
    let spawner: Dispatcher = pool.dispatcher();
    let slot = Arc::new(Mutex::new(None));
    let polled = Arc::new(AtomicBool::new(false));
    let (own, seen) = (slot.clone(), polled.clone());
    let (done_tx, done) = mpsc::channel::<()>();
    pool.spawn(async move {
        let child = spawner.spawn_local(async move {
            let _local = std::rc::Rc::new(());
            seen.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await
        });
        *own.lock().unwrap() = Some(child);
        done_tx.send(()).unwrap();
    })
    .detach();
    done.recv_timeout(PATIENCE).unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while !polled.load(Ordering::SeqCst) {
        assert!(std::time::Instant::now() < deadline, "the child never ran");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Polled: the pool's thread is past the child's first poll once it runs
    // the next task, which the caller queues.
    slot
}

#[test]
fn dropped_from_its_own_task_a_destructor_joining_a_suspended_local_task_returns() {
    let pool = ThreadPool::new_single_thread("join-suspended-self").unwrap();
    let child = suspended_child(&pool);
    let spawner = pool.dispatcher();
    let (done_tx, done) = mpsc::channel();
    let pool_slot = Arc::new(Mutex::new(Some(pool)));
    let own = pool_slot.clone();
    spawner
        .clone()
        .spawn(async move {
            // Queued behind this task: a parent that joins the suspended
            // child when it is dropped.
            let guard = JoinsOnDrop(child, done_tx);
            spawn_local_holding(&spawner, guard).detach();
            // The pool is dropped from its own task.
            drop(own.lock().unwrap().take());
        })
        .detach();
    assert_eq!(
        done.recv_timeout(PATIENCE),
        Ok(true),
        "the pool's thread blocked forever in the parent's destructor"
    );
}

#[test]
fn shut_down_from_another_thread_a_destructor_joining_a_suspended_local_task_returns() {
    let pool = ThreadPool::new_single_thread("join-suspended").unwrap();
    let child = suspended_child(&pool);
    let spawner = pool.dispatcher();
    let (done_tx, done) = mpsc::channel();
    let (queued_tx, queued) = mpsc::channel::<()>();
    let (release, blocked) = mpsc::channel::<()>();
    pool.spawn(async move {
        let guard = JoinsOnDrop(child, done_tx);
        spawn_local_holding(&spawner, guard).detach();
        queued_tx.send(()).unwrap();
        let _ = blocked.recv_timeout(PATIENCE * 6);
    })
    .detach();
    queued.recv_timeout(PATIENCE).unwrap();
    pool.shutdown_background();
    release.send(()).unwrap();
    assert_eq!(
        done.recv_timeout(PATIENCE),
        Ok(true),
        "the pool's thread blocked forever in the parent's destructor"
    );
}
