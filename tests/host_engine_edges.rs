//! The host engine at its edges: a run after the shutdown, `block_on` inside
//! one of its tasks (also of a delay the task registered on the loop), a
//! delay cancelled from another thread, a budget with no real time limit.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::Poll;
use std::time::Duration;

use dispatchers::{Budget, HostEngine, LoopHost, block_on, delay};

#[test]
fn run_pending_after_the_shutdown_runs_nothing_another_thread_dispatches() {
    let engine = HostEngine::new("closed", || {});
    let main = engine.dispatcher();
    engine.shutdown();
    let polled = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (polled, stop) = (polled.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut spawned = 0;
            while !stop.load(Ordering::SeqCst) || spawned < 1_000 {
                let polled = polled.clone();
                main.spawn(async move {
                    polled.fetch_add(1, Ordering::SeqCst);
                })
                .detach();
                spawned += 1;
            }
        })
    };
    // Racing the producer's own rejection of what it pushes: the loop must
    // never be the one that takes (and runs) it.
    for _ in 0..1_000 {
        let report = engine.run_pending(Budget::unlimited().max_tasks(100));
        assert_eq!(report.ran, 0);
        assert!(!report.more_pending);
    }
    stop.store(true, Ordering::SeqCst);
    producer.join().unwrap();
    assert_eq!(engine.run_pending(Budget::unlimited()).ran, 0);
    assert_eq!(polled.load(Ordering::SeqCst), 0, "no future polled");
}

thread_local! {
    /// The engine of this thread's loop, for a task that shuts it down.
    static ENGINE: std::cell::RefCell<Option<std::rc::Rc<HostEngine>>> =
        const { std::cell::RefCell::new(None) };
}

#[test]
fn a_task_that_shuts_its_loop_down_ends_the_run_and_leaves_nothing_counted() {
    let engine = std::rc::Rc::new(HostEngine::new("self-closing", || {}));
    ENGINE.with(|e| *e.borrow_mut() = Some(engine.clone()));
    let main = engine.dispatcher();
    let polled = Arc::new(AtomicUsize::new(0));
    // From another thread, so that they go through the shared queue and the
    // wake gate's count.
    let tasks = {
        let (main, polled) = (main.clone(), polled.clone());
        std::thread::spawn(move || {
            let first = main.spawn(async {
                ENGINE.with(|e| e.borrow().as_ref().unwrap().shutdown());
            });
            let rest: Vec<_> = (0..10)
                .map(|_| {
                    let polled = polled.clone();
                    main.spawn(async move {
                        polled.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            (first, rest)
        })
        .join()
        .unwrap()
    };
    let report = engine.run_pending(Budget::unlimited());
    assert_eq!(report.ran, 1, "only the task that shut the loop down ran");
    assert!(!report.more_pending);
    assert_eq!(polled.load(Ordering::SeqCst), 0);
    assert!(format!("{engine:?}").contains("pending: 0"), "{engine:?}");
    block_on(tasks.0).unwrap();
    for task in tasks.1 {
        assert!(block_on(task).unwrap_err().is_cancelled());
    }
    ENGINE.with(|e| e.borrow_mut().take());
}

#[test]
fn block_on_a_delay_inside_a_loop_task_completes() {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let host = LoopHost::new("blocked");
        let task = host.dispatcher().spawn(async {
            // Blocks the loop: its own timers cannot fire, the fallback's do.
            block_on(delay(Duration::from_millis(10)));
            "done"
        });
        host.run_pending(Budget::unlimited());
        let _ = done_tx.send(block_on(task).unwrap());
    });
    let outcome = done_rx.recv_timeout(Duration::from_secs(30));
    assert_eq!(outcome, Ok("done"), "block_on(delay) inside a task hung");
}

#[test]
fn a_loop_delay_driven_on_by_block_on_inside_a_task_completes() {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let host = LoopHost::new("blocked-later");
        let task = host.dispatcher().spawn(async {
            let mut timer = Box::pin(delay(Duration::from_millis(10)));
            // Registered on the loop's timers by this first poll...
            let first = std::future::poll_fn(|cx| Poll::Ready(timer.as_mut().poll(cx))).await;
            assert!(first.is_pending());
            // ...then waited for while the loop is blocked: it moves to the
            // fallback timers with the same deadline.
            block_on(timer);
            "done"
        });
        host.run_pending(Budget::unlimited());
        let _ = done_tx.send(block_on(task).unwrap());
    });
    let outcome = done_rx.recv_timeout(Duration::from_secs(30));
    assert_eq!(
        outcome,
        Ok("done"),
        "block_on of a loop-registered delay hung"
    );
}

#[test]
fn a_delay_dropped_on_another_thread_no_longer_counts_as_pending() {
    let host = LoopHost::new("remote-cancel");
    let (timer_tx, timer_rx) = mpsc::channel();
    let task = host.dispatcher().spawn(async move {
        let mut timer = Box::pin(delay(Duration::from_secs(3600)));
        let first = std::future::poll_fn(|cx| Poll::Ready(timer.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        timer_tx.send(timer).unwrap();
    });
    host.run_until(task).unwrap();
    assert_eq!(host.engine().pending_timers(), 1);
    let timer = timer_rx.recv().unwrap();
    std::thread::spawn(move || drop(timer)).join().unwrap();
    assert_eq!(
        host.engine().pending_timers(),
        0,
        "the delay was cancelled on another thread"
    );
    assert_eq!(host.engine().next_deadline(), None);
}

#[test]
fn a_time_budget_too_large_for_an_instant_is_no_limit() {
    let engine = HostEngine::new("long-budget", || {});
    let main = engine.dispatcher();
    let task = main.spawn(async { 7 });
    let report = engine.run_pending(Budget::unlimited().max_time(Duration::MAX));
    assert_eq!(report.ran, 1);
    assert_eq!(block_on(task).unwrap(), 7);
}
