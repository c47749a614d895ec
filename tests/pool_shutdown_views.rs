//! A `limited_parallelism` view of a pool that shuts down behaves as the
//! pool does with its own tasks: what is queued and not started, and every
//! later dispatch, is cancelled. `Dispatcher::is_closed` tells.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dispatchers::{Dispatcher, ThreadPool, block_on};

/// Waits (10 s at most) until `dispatcher` says it is closed.
fn wait_closed(dispatcher: &Dispatcher) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dispatcher.is_closed() {
        assert!(Instant::now() < deadline, "the pool never closed");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_view_cancels_its_queued_and_later_tasks_once_its_pool_shut_down() {
    let pool = ThreadPool::new_fixed(1, "closing").unwrap();
    let pool_dispatcher = pool.dispatcher();
    let view = pool.limited_parallelism(1).unwrap();
    assert!(!view.is_closed());

    // Holds the pool's only thread, inside the view's worker, until told.
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let running = view.spawn(async move {
        started_tx.send(()).unwrap();
        go_rx.recv().unwrap();
    });
    started_rx.recv().unwrap();

    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let queued = view.spawn(async move {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let shutdown = std::thread::spawn(move || pool.shutdown_timeout(Duration::from_secs(30)));
    wait_closed(&pool_dispatcher);
    assert!(view.is_closed(), "a view of a closed pool is closed");
    let counter = ran.clone();
    let later = view.spawn(async move {
        counter.fetch_add(10, Ordering::SeqCst);
    });

    go_tx.send(()).unwrap();
    assert!(
        shutdown.join().unwrap(),
        "the running task finished in time"
    );
    block_on(running).unwrap();
    assert!(block_on(queued).unwrap_err().is_cancelled());
    assert!(block_on(later).unwrap_err().is_cancelled());
    assert_eq!(ran.load(Ordering::SeqCst), 0, "neither ran");
}

#[test]
fn is_closed_follows_the_pool_and_its_views() {
    let pool = ThreadPool::new_fixed(2, "closed-flag").unwrap();
    let dispatcher = pool.dispatcher();
    let view = pool.limited_parallelism(1).unwrap();
    let nested = view.limited_parallelism(1).unwrap();
    assert!(!dispatcher.is_closed() && !view.is_closed() && !nested.is_closed());
    assert!(pool.shutdown_timeout(Duration::from_secs(30)));
    assert!(dispatcher.is_closed() && view.is_closed() && nested.is_closed());
    assert!(block_on(nested.spawn(async {})).unwrap_err().is_cancelled());
}
