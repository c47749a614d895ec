//! Fixed pools (`ThreadPool::new_fixed`, `new_single_thread`): their
//! threads, their order, `!Send` tasks on them, and their shutdown. Every
//! check counts (tasks, threads, drops); time appears only in generous sanity
//! bounds and in waits that fail instead of hanging.

#[path = "support/gate.rs"]
mod gate;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use dispatchers::{ThreadPool, ThreadPoolBuilder, block_on};
use gate::Gate;

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(20);

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

#[test]
fn pool_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ThreadPool>();
    send_sync::<ThreadPoolBuilder>();
}

thread_local! {
    static EXIT_PROBE: RefCell<Option<ExitProbe>> = const { RefCell::new(None) };
}

/// Counts, when its thread ends, that it did.
struct ExitProbe(Arc<AtomicUsize>);

impl Drop for ExitProbe {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_a_fixed_pool_joins_its_threads() {
    let pool = ThreadPool::new_fixed(3, "joined").unwrap();
    assert_eq!(pool.threads(), 3);
    let exited = Arc::new(AtomicUsize::new(0));
    let gate = Gate::new(3);
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let (gate, exited) = (gate.clone(), exited.clone());
            pool.spawn(async move {
                EXIT_PROBE.with(|p| *p.borrow_mut() = Some(ExitProbe(exited)));
                assert!(gate.arrive_and_wait(PATIENCE));
                thread_name()
            })
        })
        .collect();
    let mut names: Vec<_> = tasks.into_iter().map(|t| block_on(t).unwrap()).collect();
    names.sort();
    assert_eq!(names, ["joined-1", "joined-2", "joined-3"]);
    let dispatcher = pool.dispatcher();
    assert_eq!(exited.load(Ordering::SeqCst), 0);
    drop(pool);
    // Joined: each thread has ended, thread-locals included.
    assert_eq!(exited.load(Ordering::SeqCst), 3);
    // The dispatcher outlives the pool and cancels what it is given.
    let late = block_on(dispatcher.spawn(async { 1 })).unwrap_err();
    assert!(late.is_cancelled());
}

#[test]
fn shutdown_cancels_queued_tasks_and_does_not_wait_forever() {
    let pool = ThreadPool::new_single_thread("stuck").unwrap();
    let (release, blocked) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel::<()>();
    let running = pool.spawn(async move {
        started_tx.send(()).unwrap();
        blocked.recv_timeout(PATIENCE).is_ok()
    });
    started.recv_timeout(PATIENCE).unwrap();
    let queued = pool.spawn(async { "never" });
    let start = Instant::now();
    // The running task is blocked: the shutdown gives up on it.
    assert!(!pool.shutdown_timeout(Duration::from_millis(50)));
    assert!(start.elapsed() < PATIENCE);
    assert!(block_on(queued).unwrap_err().is_cancelled());
    // The running task finishes its poll, and its thread exits.
    release.send(()).unwrap();
    assert!(block_on(running).unwrap());
}

#[test]
fn dropping_a_pool_from_its_own_task_does_not_deadlock() {
    let pool = ThreadPool::new_fixed(2, "self-drop").unwrap();
    let dispatcher = pool.dispatcher();
    let slot = Arc::new(Mutex::new(Some(pool)));
    let task = {
        let slot = slot.clone();
        dispatcher.spawn(async move {
            drop(slot.lock().unwrap().take());
            thread_name()
        })
    };
    assert!(block_on(task).unwrap().starts_with("self-drop-"));
    assert!(
        block_on(dispatcher.spawn(async {}))
            .unwrap_err()
            .is_cancelled()
    );
}

#[test]
fn a_single_thread_pool_runs_in_order_and_hosts_local_tasks() {
    let pool = ThreadPool::new_single_thread("ordered").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let seen = seen.clone();
            pool.spawn(async move { seen.lock().unwrap().push(i) })
        })
        .collect();
    for task in tasks {
        block_on(task).unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), (0..100).collect::<Vec<_>>());
    assert!(!pool.is_current_thread());
    let dispatcher = pool.dispatcher();
    let local = pool.spawn(async move {
        let rc = std::rc::Rc::new(7);
        let task = dispatcher.spawn_local(async move { *rc * 6 });
        task.await.unwrap()
    });
    assert_eq!(block_on(local).unwrap(), 42);
}

/// A `!Send` task queued on a single-thread pool is cancelled on the pool's
/// thread when the pool shuts down from another thread: its `Task` resolves.
#[test]
fn shutdown_cancels_queued_local_tasks_on_their_own_thread() {
    use std::rc::Rc;
    let pool = dispatchers::ThreadPool::new_single_thread("local-shutdown").unwrap();
    let dispatcher = pool.dispatcher();
    let (tx, rx) = std::sync::mpsc::channel();
    let inner = dispatcher.clone();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    dispatcher
        .spawn(async move {
            // Queue a !Send task behind this one, then block the thread until
            // the pool is closing.
            let queued = inner.spawn_local(async {
                let state = Rc::new(1);
                *state
            });
            tx.send(queued).unwrap();
            let _ = release_rx.recv_timeout(std::time::Duration::from_secs(60));
        })
        .detach();
    let queued = rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
    let closer = std::thread::spawn(move || pool.shutdown_background());
    closer.join().unwrap();
    release_tx.send(()).unwrap();
    let outcome = dispatchers::block_on(dispatchers::timeout(
        std::time::Duration::from_secs(60),
        queued,
    ))
    .expect("the queued !Send task must resolve, not leak");
    assert!(outcome.unwrap_err().is_cancelled());
}
