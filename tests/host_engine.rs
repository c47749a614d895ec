//! The host engine: wake coalescing, budgets, panic isolation, shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dispatchers::{Budget, HostEngine, block_on, delay};

/// An engine whose host wake-up is a counter.
fn engine() -> (HostEngine, Arc<AtomicUsize>) {
    let wakes = Arc::new(AtomicUsize::new(0));
    let counter = wakes.clone();
    let engine = HostEngine::new("test-host", move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    (engine, wakes)
}

/// Counts drops of the future it is moved into.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_burst_of_dispatches_costs_one_host_wake() {
    let (engine, wakes) = engine();
    let main = engine.dispatcher();
    let tasks: Vec<_> = (0..100).map(|i| main.spawn(async move { i })).collect();
    assert_eq!(wakes.load(Ordering::SeqCst), 1);
    assert_eq!(engine.host_wakes(), 1);
    let report = engine.run_pending(Budget::unlimited());
    assert_eq!(report.ran, 100);
    assert!(!report.more_pending);
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(block_on(task).unwrap(), i);
    }
    // The next burst wakes the host again, once.
    let tasks: Vec<_> = (0..10).map(|_| main.spawn(async {})).collect();
    assert_eq!(wakes.load(Ordering::SeqCst), 2);
    engine.run_pending(Budget::unlimited());
    drop(tasks);
}

#[test]
fn bursts_from_other_threads_are_coalesced_too() {
    let (engine, wakes) = engine();
    let main = engine.dispatcher();
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let main = main.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    main.spawn(async {}).detach();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(
        wakes.load(Ordering::SeqCst),
        1,
        "4000 dispatches, no drain: one wake"
    );
    assert_eq!(engine.run_pending(Budget::unlimited()).ran, 4000);
}

#[test]
fn dispatches_made_while_draining_do_not_wake_the_host() {
    let (engine, wakes) = engine();
    let main = engine.dispatcher();
    let inner = main.clone();
    main.spawn(async move {
        for _ in 0..10 {
            inner.spawn(async {}).detach();
        }
    })
    .detach();
    assert_eq!(wakes.load(Ordering::SeqCst), 1);
    let report = engine.run_pending(Budget::unlimited());
    assert_eq!(
        report.ran, 11,
        "tasks spawned while draining run in the same call"
    );
    assert_eq!(wakes.load(Ordering::SeqCst), 1);
}

#[test]
fn task_budget_leaves_the_rest_and_rearms_the_wake() {
    let (engine, wakes) = engine();
    let main = engine.dispatcher();
    for _ in 0..10 {
        main.spawn(async {}).detach();
    }
    let report = engine.run_pending(Budget::unlimited().max_tasks(4));
    assert_eq!(report.ran, 4);
    assert!(report.more_pending);
    assert!(engine.has_pending());
    assert_eq!(engine.next_timeout(), Some(Duration::ZERO));
    assert_eq!(
        wakes.load(Ordering::SeqCst),
        2,
        "leftover work re-arms the host wake"
    );
    assert_eq!(engine.run_pending(Budget::unlimited()).ran, 6);
    assert!(!engine.has_pending());
}

#[test]
fn time_budget_stops_starting_tasks() {
    let (engine, _) = engine();
    let main = engine.dispatcher();
    for _ in 0..5 {
        main.spawn(async { std::thread::sleep(Duration::from_millis(20)) })
            .detach();
    }
    let report = engine.run_pending(Budget::unlimited().max_time(Duration::from_millis(1)));
    // Each task alone outlasts the budget, so only the first starts (the
    // first always does, however long the thread was descheduled).
    assert_eq!(report.ran, 1);
    assert!(report.more_pending);
    let rest = engine.run_pending(Budget::unlimited()).ran;
    assert_eq!(report.ran + rest, 5);
}

#[test]
fn a_zero_time_budget_still_runs_one_task_per_call() {
    let (engine, _) = engine();
    let main = engine.dispatcher();
    let tasks: Vec<_> = (0..3).map(|i| main.spawn(async move { i })).collect();
    let zero = Budget::unlimited().max_time(Duration::ZERO);
    assert!(!zero.allows_no_task());
    for left in [true, true, false] {
        let report = engine.run_pending(zero);
        assert_eq!(report.ran, 1, "every call makes progress");
        assert_eq!(report.more_pending, left);
    }
    assert!(tasks.iter().all(|task| task.is_finished()));
    // A task cap of zero is the one budget that runs nothing.
    let none = Budget::unlimited().max_tasks(0);
    assert!(none.allows_no_task());
    let task = main.spawn(async {});
    assert_eq!(engine.run_pending(none).ran, 0);
    assert_eq!(engine.run_pending(Budget::unlimited()).ran, 1);
    assert!(task.is_finished());
}

#[test]
fn a_panicking_task_does_not_unwind_through_run_pending() {
    let (engine, _) = engine();
    let main = engine.dispatcher();
    let bad = main.spawn(async { panic!("task panic") });
    let good = main.spawn(async { "still running" });
    let report = engine.run_pending(Budget::unlimited());
    assert_eq!(report.ran, 2);
    let err = block_on(bad).unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.to_string(), "task panicked: task panic");
    assert_eq!(block_on(good).unwrap(), "still running");
}

#[test]
fn shutdown_cancels_queued_tasks_and_drops_their_futures() {
    let (engine, _) = engine();
    let main = engine.dispatcher();
    let drops = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let guard = DropCounter(drops.clone());
            main.spawn(async move {
                let _guard = guard;
            })
        })
        .collect();
    engine.shutdown();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        3,
        "queued futures dropped on the loop thread"
    );
    for task in tasks {
        assert!(block_on(task).unwrap_err().is_cancelled());
    }
}

#[test]
fn dispatch_after_shutdown_is_rejected_from_any_thread() {
    let (engine, wakes) = engine();
    let main = engine.dispatcher();
    drop(engine);
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = DropCounter(drops.clone());
    let task = std::thread::spawn(move || {
        main.spawn(async move {
            let _guard = guard;
            unreachable!("a rejected task never runs");
        })
    })
    .join()
    .unwrap();
    let err = block_on(task).unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(err.to_string(), "task was cancelled");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the Send future was dropped"
    );
    assert_eq!(wakes.load(Ordering::SeqCst), 0);
}

#[test]
fn shutdown_cancels_tasks_waiting_on_the_engines_timers() {
    let (engine, _) = engine();
    let main = engine.dispatcher();
    let sleeper = main.spawn(async { delay(Duration::from_secs(3600)).await });
    engine.run_pending(Budget::unlimited());
    assert_eq!(engine.pending_timers(), 1);
    engine.shutdown();
    assert!(block_on(sleeper).unwrap_err().is_cancelled());
}

#[test]
fn dropping_a_task_cancels_it() {
    let (engine, _) = engine();
    let main = engine.dispatcher();
    let drops = Arc::new(AtomicUsize::new(0));
    let polled = Arc::new(AtomicUsize::new(0));
    let (guard, count) = (DropCounter(drops.clone()), polled.clone());
    let task = main.spawn(async move {
        let _guard = guard;
        count.fetch_add(1, Ordering::SeqCst);
    });
    drop(task);
    engine.run_pending(Budget::unlimited());
    assert_eq!(
        polled.load(Ordering::SeqCst),
        0,
        "a cancelled task is never polled"
    );
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn main_stays_fifo_across_the_loop_threads_and_other_threads_dispatches() {
    let (engine, _) = engine();
    let main = engine.dispatcher();
    let order = Arc::new(Mutex::new(Vec::new()));
    let record = |name: &'static str| {
        let order = order.clone();
        async move { order.lock().unwrap().push(name) }
    };
    let from_another_thread = |name: &'static str| {
        let (main, task) = (main.clone(), record(name));
        std::thread::spawn(move || main.spawn(task).detach())
            .join()
            .unwrap();
    };
    // The loop thread's first dispatches go to its local queue, the later
    // ones behind the other threads' (the shared queue is no longer empty).
    main.spawn(record("loop 1")).detach();
    main.spawn(record("loop 2")).detach();
    from_another_thread("other 1");
    main.spawn(record("loop 3")).detach();
    from_another_thread("other 2");
    // A task that dispatches while it runs: behind everything queued.
    let inner = record("spawned by loop 4");
    let spawner = main.clone();
    main.spawn(async move { spawner.spawn(inner).detach() })
        .detach();
    assert_eq!(engine.run_pending(Budget::unlimited()).ran, 7);
    assert_eq!(
        *order.lock().unwrap(),
        [
            "loop 1",
            "loop 2",
            "other 1",
            "loop 3",
            "other 2",
            "spawned by loop 4"
        ]
    );
}

#[test]
fn a_budget_that_stops_among_other_threads_dispatches_keeps_the_rest_in_order() {
    let (engine, _) = engine();
    let main = engine.dispatcher();
    let order = Arc::new(Mutex::new(Vec::new()));
    let record = |name: String| {
        let order = order.clone();
        async move { order.lock().unwrap().push(name) }
    };
    let tasks: Vec<_> = (0..10).map(|i| record(format!("other {i}"))).collect();
    let producer = main.clone();
    std::thread::spawn(move || {
        for task in tasks {
            producer.spawn(task).detach();
        }
    })
    .join()
    .unwrap();
    // The budget stops the loop after three of the ten.
    assert_eq!(engine.run_pending(Budget::unlimited().max_tasks(3)).ran, 3);
    assert!(engine.has_pending());
    // Behind the seven left: the loop's own dispatch, then another thread's.
    main.spawn(record("loop".into())).detach();
    let (late, task) = (main.clone(), record("other late".into()));
    std::thread::spawn(move || late.spawn(task).detach())
        .join()
        .unwrap();
    assert_eq!(engine.run_pending(Budget::unlimited()).ran, 9);
    let mut expected: Vec<String> = (0..10).map(|i| format!("other {i}")).collect();
    expected.extend(["loop".into(), "other late".into()]);
    assert_eq!(*order.lock().unwrap(), expected);
    assert!(!engine.has_pending());
}

#[test]
fn shutdown_cancels_what_a_budget_left_of_other_threads_dispatches() {
    let (engine, _) = engine();
    let main = engine.dispatcher();
    let drops = Arc::new(AtomicUsize::new(0));
    let producer = main.clone();
    let counter = drops.clone();
    let tasks = std::thread::spawn(move || {
        (0..5)
            .map(|_| {
                let guard = DropCounter(counter.clone());
                producer.spawn(async move {
                    let _guard = guard;
                })
            })
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    assert_eq!(engine.run_pending(Budget::unlimited().max_tasks(2)).ran, 2);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    engine.shutdown();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        5,
        "the three left dropped on the loop thread"
    );
    let cancelled = tasks
        .into_iter()
        .map(|task| block_on(task).map_err(|err| err.is_cancelled()))
        .filter(|result| *result == Err(true))
        .count();
    assert_eq!(cancelled, 3);
}
