//! The background pools: `Default`, `IO`, `limited_parallelism` views and
//! fixed pools. Every check counts (tasks, threads, drops); time appears only
//! in generous sanity bounds and in waits that fail instead of hanging.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use dispatchers::{
    Dispatcher, Dispatchers, LoopHost, ParallelismError, ThreadPool, ThreadPoolBuilder, block_on,
    with_context,
};

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(20);

/// A barrier whose wait gives up after a timeout (so a broken pool fails the
/// test instead of hanging it).
struct Gate {
    arrived: Mutex<usize>,
    all_in: Condvar,
    parties: usize,
}

impl Gate {
    fn new(parties: usize) -> Arc<Self> {
        Arc::new(Gate {
            arrived: Mutex::new(0),
            all_in: Condvar::new(),
            parties,
        })
    }

    /// Arrives and waits for every party; `false` on timeout.
    fn arrive_and_wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.all_in.notify_all();
        while *arrived < self.parties {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            arrived = self.all_in.wait_timeout(arrived, deadline - now).unwrap().0;
        }
        true
    }
}

/// Counts the tasks running at once and remembers the most.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Concurrency {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }

    fn exit(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

#[test]
fn pool_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ThreadPool>();
    send_sync::<ThreadPoolBuilder>();
}

#[test]
fn fifty_blocking_tasks_on_io_run_side_by_side() {
    let start = Instant::now();
    let running = Arc::new(Concurrency::default());
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let running = running.clone();
            Dispatchers::io().spawn(async move {
                running.enter();
                std::thread::sleep(Duration::from_millis(100));
                running.exit();
                thread_name()
            })
        })
        .collect();
    for task in tasks {
        assert!(block_on(task).unwrap().starts_with("dispatchers-io-"));
    }
    let elapsed = start.elapsed();
    // One after the other they would take 5 s.
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
    assert!(running.max() > 1, "at most {} at once", running.max());
}

#[test]
fn a_view_of_one_loses_no_update() {
    let view = Dispatchers::default().limited_parallelism(1).unwrap();
    // A load and a store, not a fetch_add: two tasks running at once, or one
    // not seeing the previous one's store, would lose an update. The view's
    // permit hand-off must order them.
    let counter = Arc::new(AtomicUsize::new(0));
    let spawners: Vec<_> = (0..4)
        .map(|_| {
            let (view, counter) = (view.clone(), counter.clone());
            std::thread::spawn(move || {
                (0..2_500)
                    .map(|_| {
                        let counter = counter.clone();
                        view.spawn(async move {
                            let seen = counter.load(Ordering::Relaxed);
                            counter.store(seen + 1, Ordering::Relaxed);
                        })
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for spawner in spawners {
        for task in spawner.join().unwrap() {
            block_on(task).unwrap();
        }
    }
    assert_eq!(counter.load(Ordering::Relaxed), 10_000);
}

#[test]
fn a_view_of_five_never_runs_more_than_five() {
    let pool = ThreadPool::new_fixed(8, "five").unwrap();
    let view = pool.limited_parallelism(5).unwrap();
    let running = Arc::new(Concurrency::default());
    // First, five tasks that can only finish together: the view does run five.
    let gate = Gate::new(5);
    let together: Vec<_> = (0..5)
        .map(|_| {
            let (gate, running) = (gate.clone(), running.clone());
            view.spawn(async move {
                running.enter();
                let met = gate.arrive_and_wait(PATIENCE);
                running.exit();
                met
            })
        })
        .collect();
    // Then a crowd, from two threads, racing for the permits.
    let crowd = |view: Dispatcher, running: Arc<Concurrency>| {
        (0..200)
            .map(|i| {
                let running = running.clone();
                view.spawn(async move {
                    // A yielding task goes back into the view's queue: not
                    // running meanwhile.
                    dispatchers::yield_now().await;
                    running.enter();
                    if i % 10 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    running.exit();
                })
            })
            .collect::<Vec<_>>()
    };
    let other = {
        let (view, running) = (view.clone(), running.clone());
        std::thread::spawn(move || crowd(view, running))
    };
    let mine = crowd(view.clone(), running.clone());
    for task in together {
        assert!(
            block_on(task).unwrap(),
            "five tasks of the view never ran at once"
        );
    }
    for task in mine.into_iter().chain(other.join().unwrap()) {
        block_on(task).unwrap();
    }
    assert_eq!(running.max(), 5);
}

#[test]
fn a_view_of_io_is_elastic() {
    // More than IO's own cap (64 by default) would allow, all at once.
    let view = Dispatchers::io().limited_parallelism(100).unwrap();
    let gate = Gate::new(100);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let gate = gate.clone();
            view.spawn(async move { (gate.arrive_and_wait(PATIENCE), thread_name()) })
        })
        .collect();
    for task in tasks {
        let (met, thread) = block_on(task).unwrap();
        assert!(
            met,
            "100 tasks of io().limited_parallelism(100) never ran at once"
        );
        assert!(thread.starts_with("dispatchers-io-"), "ran on {thread}");
    }
}

#[test]
fn limited_parallelism_zero_is_an_error_and_unconfined_refuses() {
    let pool = ThreadPool::new_single_thread("zero").unwrap();
    for dispatcher in [Dispatchers::default(), Dispatchers::io(), pool.dispatcher()] {
        assert_eq!(
            dispatcher.limited_parallelism(0).unwrap_err(),
            ParallelismError::Zero
        );
        assert_eq!(
            dispatcher
                .limited_parallelism(1)
                .unwrap()
                .limited_parallelism(0),
            Err(ParallelismError::Zero)
        );
    }
    assert!(matches!(
        Dispatchers::unconfined().limited_parallelism(1),
        Err(ParallelismError::Unsupported { .. })
    ));
}

#[test]
fn views_are_named_after_their_dispatcher() {
    assert_eq!(Dispatchers::default().name(), "Default");
    assert_eq!(Dispatchers::io().name(), "IO");
    let view = Dispatchers::io().limited_parallelism(3).unwrap();
    assert_eq!(view.name(), "IO.limited_parallelism(3)");
    let view = Dispatchers::default().limited_parallelism(2).unwrap();
    assert_eq!(view.name(), "Default.limited_parallelism(2)");
}

#[test]
fn main_is_its_own_view() {
    let host = LoopHost::new("views-of-main");
    let main = host.dispatcher();
    assert_eq!(main.limited_parallelism(4).unwrap(), *main);
}

#[test]
fn default_threads_are_named_and_capped() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let name = block_on(with_context(&Dispatchers::default(), async {
        thread_name()
    }));
    let index: usize = name
        .strip_prefix("dispatchers-default-")
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("Default ran on {name:?}"));
    if std::env::var_os("DISPATCHERS_DEFAULT_THREADS").is_none() {
        assert!((1..=cpus.max(2)).contains(&index), "{name}");
    }
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

#[test]
fn a_busy_view_yields_to_its_neighbours() {
    let pool = ThreadPool::new_single_thread("fair").unwrap();
    let view = pool.limited_parallelism(1).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let (open, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(Some(gate));
    let flood: Vec<_> = (0..1_000)
        .map(|i| {
            let done = done.clone();
            let gate = (i == 0).then(|| gate.lock().unwrap().take().unwrap());
            view.spawn(async move {
                if let Some(gate) = gate {
                    gate.recv_timeout(PATIENCE).unwrap();
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let neighbour = {
        let done = done.clone();
        pool.spawn(async move { done.load(Ordering::SeqCst) })
    };
    open.send(()).unwrap();
    // The view's worker ran one batch, then let the neighbour in.
    let ran_before = block_on(neighbour).unwrap();
    assert!(
        ran_before < 100,
        "the neighbour waited for {ran_before} tasks of the view"
    );
    for task in flood {
        block_on(task).unwrap();
    }
}

#[test]
fn a_view_of_a_shut_down_pool_cancels() {
    let pool = ThreadPool::new_fixed(2, "gone").unwrap();
    let view = pool.limited_parallelism(1).unwrap();
    assert_eq!(block_on(view.spawn(async { 5 })).unwrap(), 5);
    drop(pool);
    for _ in 0..3 {
        assert!(
            block_on(view.spawn(async { 5 }))
                .unwrap_err()
                .is_cancelled()
        );
    }
}

#[test]
fn with_context_io_from_main_comes_back_to_the_loop_thread() {
    let host = LoopHost::new("pool-hop");
    let main = host.dispatcher();
    let task = main.spawn(async {
        let before = std::thread::current().id();
        let on_io = with_context(&Dispatchers::io(), async { thread_name() }).await;
        let middle = std::thread::current().id();
        let on_default = with_context(&Dispatchers::default(), async { thread_name() }).await;
        let after = std::thread::current().id();
        (before, on_io, middle, on_default, after)
    });
    let (before, on_io, middle, on_default, after) = host.run_until(task).unwrap();
    let loop_thread = std::thread::current().id();
    assert_eq!(
        (before, middle, after),
        (loop_thread, loop_thread, loop_thread)
    );
    assert!(on_io.starts_with("dispatchers-io-"), "{on_io}");
    assert!(
        on_default.starts_with("dispatchers-default-"),
        "{on_default}"
    );
}

/// The numbers behind "Why `Default` and `IO` don't share threads" in the
/// `pool` module docs. Run with
/// `cargo test --release --test pools -- --ignored --nocapture measure`.
#[test]
#[ignore = "a measurement that prints numbers"]
fn measure_default_io_sharing() {
    const HOPS: u32 = 20_000;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // IO emulated on Default's threads: a view of Default with IO's cap.
    let shared_io = Dispatchers::default().limited_parallelism(64).unwrap();
    let separate_io = Dispatchers::io();

    let round_trip = |io: &Dispatcher| {
        let io = io.clone();
        let task = Dispatchers::default().spawn(async move {
            for _ in 0..100 {
                with_context(&io, async {}).await;
            }
            let start = Instant::now();
            for _ in 0..HOPS {
                with_context(&io, async {}).await;
            }
            start.elapsed() / HOPS
        });
        block_on(task).unwrap()
    };
    for round in 0..3 {
        println!(
            "round {round}: Default -> IO -> Default round trip: separate threads {:?}, \
             shared threads {:?}",
            round_trip(&separate_io),
            round_trip(&shared_io)
        );
    }

    let path = std::env::temp_dir().join(format!("dispatchers-measure-{}", std::process::id()));
    let data = vec![7u8; 4096];
    let start = Instant::now();
    for _ in 0..2_000 {
        std::fs::write(&path, &data).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 4096);
    }
    println!("4 KiB file write + read: {:?}", start.elapsed() / 2_000);
    let _ = std::fs::remove_file(&path);

    let default_wait = |io: &Dispatcher| {
        let sleepers: Vec<_> = (0..2 * cpus.max(2))
            .map(|_| io.spawn(async { std::thread::sleep(Duration::from_millis(50)) }))
            .collect();
        std::thread::sleep(Duration::from_millis(5));
        let spawned = Instant::now();
        let started = block_on(Dispatchers::default().spawn(async move { Instant::now() }));
        let waited = started.unwrap() - spawned;
        for sleeper in sleepers {
            block_on(sleeper).unwrap();
        }
        waited
    };
    for round in 0..3 {
        println!(
            "round {round}: a Default task's wait to start while IO is busy blocking: \
             separate threads {:?}, shared threads {:?}",
            default_wait(&separate_io),
            default_wait(&shared_io)
        );
    }
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
