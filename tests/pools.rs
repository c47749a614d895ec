//! The background pools `Default` and `IO`, and `limited_parallelism` views
//! (fixed pools: `fixed_pools.rs`). Every check counts (tasks, threads,
//! drops); time appears only in generous sanity bounds and in waits that fail
//! instead of hanging.

#[path = "support/gate.rs"]
mod gate;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use dispatchers::{
    Dispatcher, Dispatchers, LoopHost, ParallelismError, ThreadPool, block_on, with_context,
};
use gate::Gate;

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(20);

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
