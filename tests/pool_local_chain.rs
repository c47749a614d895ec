//! `!Send` tasks queued on a single-thread pool at its shutdown are cancelled
//! on the pool's thread. When the destructor of one waits (with `block_on`)
//! for another of them, the other must still be cancelled: the thread must
//! not block forever in the first destructor.

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

/// On the pool's thread: queues a `!Send` parent whose destructor joins a
/// `!Send` child queued right behind it.
fn queue_parent_and_child(spawner: &Dispatcher, done_tx: mpsc::Sender<bool>) {
    let slot = Arc::new(Mutex::new(None));
    let guard = JoinsOnDrop(slot.clone(), done_tx);
    spawn_local_holding(spawner, guard).detach();
    let child = spawn_local_holding(spawner, ());
    *slot.lock().unwrap() = Some(child);
}

#[test]
fn shut_down_from_another_thread_a_destructor_joining_a_queued_local_task_returns() {
    let pool = ThreadPool::new_single_thread("local-join").unwrap();
    let spawner = pool.dispatcher();
    let (ready_tx, ready) = mpsc::channel::<()>();
    let (release, blocked) = mpsc::channel::<()>();
    let (done_tx, done) = mpsc::channel();
    pool.spawn(async move {
        queue_parent_and_child(&spawner, done_tx);
        ready_tx.send(()).unwrap();
        let _ = blocked.recv_timeout(PATIENCE * 6);
    })
    .detach();
    ready.recv_timeout(PATIENCE).unwrap();
    let closer = std::thread::spawn(move || pool.shutdown_background());
    closer.join().unwrap();
    release.send(()).unwrap();
    assert_eq!(
        done.recv_timeout(PATIENCE),
        Ok(true),
        "the pool's thread blocked forever in the parent's destructor"
    );
}

#[test]
fn dropped_from_its_own_task_a_destructor_joining_a_queued_local_task_returns() {
    let pool = ThreadPool::new_single_thread("local-join-self").unwrap();
    let spawner = pool.dispatcher();
    let slot = Arc::new(Mutex::new(Some(pool)));
    let (done_tx, done) = mpsc::channel();
    let (dropped_tx, dropped) = mpsc::channel::<()>();
    let own = slot.clone();
    spawner
        .clone()
        .spawn(async move {
            queue_parent_and_child(&spawner, done_tx);
            // The pool is dropped while both wait in its queue.
            drop(own.lock().unwrap().take());
            let _ = dropped_tx.send(());
        })
        .detach();
    assert_eq!(
        done.recv_timeout(PATIENCE),
        Ok(true),
        "the pool's thread blocked forever in the parent's destructor"
    );
    dropped.recv_timeout(PATIENCE).unwrap();
}
