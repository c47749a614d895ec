//! The shutdown policy of a host engine (see `HostEngine::shutdown`) for
//! work in flight between threads, on an engine driven by hand: a hop from
//! Main to a blocked pool task, a hop from a pool to Main, and dispatches
//! from other threads racing the end. The loop's own tasks:
//! `reliability_shutdown.rs`.

#[path = "support/shutdown.rs"]
mod shutdown;

use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use dispatchers::{Dispatchers, block_on, timeout, try_with_context, with_context};
use shutdown::{Drops, engine, is_cancelled, run};

/// A wait that means "hung", not "slow".
const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn a_hop_to_a_blocked_pool_task_does_not_hold_up_the_shutdown() {
    let engine = engine();
    let main = engine.dispatcher();
    let (started_tx, started) = mpsc::channel::<()>();
    let (release, blocked) = mpsc::channel::<()>();
    let inner_drops = Drops::default();
    let outer_drops = Drops::default();
    let (gi, go) = (inner_drops.guard(), outer_drops.guard());
    let caller = main.spawn(async move {
        let _go = go;
        with_context(&Dispatchers::io(), async move {
            let _gi = gi;
            started_tx.send(()).unwrap();
            // A blocking call that outlasts the loop.
            let _ = blocked.recv_timeout(PATIENCE);
        })
        .await
    });
    run(&engine);
    started
        .recv_timeout(PATIENCE)
        .expect("the hop never started");

    let start = Instant::now();
    engine.shutdown();
    let took = start.elapsed();
    assert!(
        caller.is_finished(),
        "the caller on Main is cancelled at once"
    );
    assert!(is_cancelled(block_on(caller)));
    assert_eq!(outer_drops.count(), 1);
    assert_eq!(
        inner_drops.count(),
        0,
        "the blocked inner task is still running: the shutdown did not wait ({took:?})"
    );
    // Released, the inner task finishes its poll and its pool drops it.
    release.send(()).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while inner_drops.count() == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(inner_drops.count(), 1);
    assert!(
        !inner_drops.all_on(thread::current().id()),
        "dropped by its pool"
    );
}

#[test]
fn a_hop_to_main_from_a_pool_resolves_as_cancelled() {
    let engine = engine();
    let main = engine.dispatcher();
    let (m1, m2) = (main.clone(), main.clone());
    let tried =
        Dispatchers::io().spawn(async move { try_with_context(&m1, pending::<()>()).await });
    let panicked = Dispatchers::io().spawn(async move { with_context(&m2, pending::<()>()).await });
    // Run the loop until both hops are suspended on Main.
    let deadline = Instant::now() + PATIENCE;
    while engine.live_tasks() < 2 && Instant::now() < deadline {
        run(&engine);
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(engine.live_tasks(), 2);
    engine.shutdown();
    let tried = block_on(timeout(PATIENCE, tried))
        .expect("watchdog")
        .expect("the IO task completes");
    assert!(
        is_cancelled(tried),
        "try_with_context returns the cancellation"
    );
    let error = block_on(timeout(PATIENCE, panicked))
        .expect("watchdog")
        .expect_err("with_context panics");
    let message = error.into_panic();
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("has shut down"), "{message}");
}

/// Producers racing the end: every `Task` resolves (run or cancelled), every
/// future is dropped once. Repeated to meet the race at different points.
#[test]
fn dispatches_racing_the_shutdown_all_resolve() {
    for round in 0..20 {
        let engine = engine();
        let main = engine.dispatcher();
        let dropped = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let go = Arc::new(AtomicBool::new(false));
        let producers: Vec<_> = (0..3)
            .map(|_| {
                let (main, dropped, ran, go) =
                    (main.clone(), dropped.clone(), ran.clone(), go.clone());
                thread::spawn(move || {
                    while !go.load(Ordering::Acquire) {
                        thread::yield_now();
                    }
                    (0..500)
                        .map(|_| {
                            let guard = Counted(dropped.clone());
                            let ran = ran.clone();
                            main.spawn(async move {
                                let _guard = guard;
                                ran.fetch_add(1, Ordering::SeqCst);
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        go.store(true, Ordering::Release);
        for _ in 0..round {
            run(&engine);
            thread::yield_now();
        }
        engine.shutdown();
        let mut cancelled = 0;
        for producer in producers {
            for task in producer.join().unwrap() {
                match block_on(timeout(PATIENCE, task)).expect("watchdog: a task never resolved") {
                    Ok(()) => {}
                    Err(e) => {
                        assert!(e.is_cancelled());
                        cancelled += 1;
                    }
                }
            }
        }
        assert_eq!(ran.load(Ordering::SeqCst) + cancelled, 1500);
        let deadline = Instant::now() + PATIENCE;
        while dropped.load(Ordering::SeqCst) < 1500 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 1500);
    }
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
