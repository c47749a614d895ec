//! A `Send` task's destructor that waits (with `block_on`) for another task
//! cancelled by the same shutdown. Both are cancelled on the reaper thread,
//! one after the other: the wait must not keep the second from being
//! cancelled. Alone in its file: a failure leaves the reaper thread blocked.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use dispatchers::ThreadPool;

#[path = "support/joins_on_drop.rs"]
mod joins_on_drop;
use joins_on_drop::JoinsOnDrop;

const PATIENCE: Duration = Duration::from_secs(10);

#[test]
fn a_reaped_destructor_that_waits_for_a_task_reaped_after_it_returns() {
    let pool = ThreadPool::new_single_thread("reaped-join").unwrap();
    let (started_tx, started) = mpsc::channel::<()>();
    let (release, blocked) = mpsc::channel::<()>();
    pool.spawn(async move {
        started_tx.send(()).unwrap();
        let _ = blocked.recv_timeout(PATIENCE * 6);
    })
    .detach();
    started.recv_timeout(PATIENCE).unwrap();

    // Queued behind the blocker: the parent, then the child it joins on drop.
    let slot = Arc::new(Mutex::new(None));
    let (done_tx, done) = mpsc::channel();
    let guard = JoinsOnDrop(slot.clone(), done_tx);
    pool.spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await
    })
    .detach();
    *slot.lock().unwrap() = Some(pool.spawn(std::future::pending::<()>()));

    // Both are cancelled by the shutdown, on the reaper, parent first.
    pool.shutdown_background();
    release.send(()).unwrap();
    assert_eq!(
        done.recv_timeout(PATIENCE),
        Ok(true),
        "the parent's destructor never saw its child cancelled: the reaper is blocked"
    );
}
