//! The shutdown policy of a host engine (see `HostEngine::shutdown`), on an
//! engine driven by hand: what happens to the loop's own tasks, queued,
//! sleeping or suspended (`Send`, `!Send`, `Main.immediate`), and to the task
//! that shuts the loop down. Hops to and from pools and dispatches racing the
//! end: `reliability_shutdown_in_flight.rs`. The stress suite
//! (`tests/stress/`) checks the same on every host's real loop.

#[path = "support/shutdown.rs"]
mod shutdown;
#[path = "support/signal.rs"]
mod signal;

use std::future::pending;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use dispatchers::{Task, block_on, delay};
use shutdown::{Drops, engine, is_cancelled, run};
use signal::Signal;

/// The gap this policy closes: a task waiting on something that never wakes
/// it used to outlive its loop, its `Task` never resolving.
#[test]
fn a_task_waiting_on_a_signal_that_never_comes_is_cancelled_at_shutdown() {
    let engine = engine();
    let main = engine.dispatcher();
    let drops = Drops::default();
    let signal = Signal::default();
    let (g, s) = (drops.guard(), signal.clone());
    let task = main.spawn(async move {
        let _g = g;
        s.await;
    });
    run(&engine);
    assert!(signal.has_waiter());
    assert_eq!(engine.live_tasks(), 1);
    engine.shutdown();
    assert!(task.is_finished(), "resolved when shutdown returns");
    assert!(is_cancelled(block_on(task)));
    assert_eq!(drops.count(), 1);
    assert!(
        drops.all_on(thread::current().id()),
        "dropped on the loop thread"
    );
    // The signal's late wake-up finds nothing to do.
    signal.send();
    assert_eq!(drops.count(), 1);
}

#[test]
fn shutdown_cancels_every_kind_of_task_on_the_loop_thread() {
    let engine = engine();
    let main = engine.dispatcher();
    let loop_thread = thread::current().id();
    let drops = Drops::default();
    let mut tasks: Vec<(&str, Task<()>)> = Vec::new();

    let g = drops.guard();
    let suspended = main.spawn(async move {
        let _g = g;
        pending::<()>().await
    });
    tasks.push(("suspended", suspended));
    let g = drops.guard();
    main.spawn(async move {
        let _g = g;
        pending::<()>().await
    })
    .detach();
    let g = drops.guard();
    let local = main.spawn_local(async move {
        let _not_send = Rc::new(g);
        pending::<()>().await
    });
    tasks.push(("!Send", local));
    let g = drops.guard();
    let sleeping = main.spawn(async move {
        let _g = g;
        delay(Duration::from_secs(3600)).await
    });
    tasks.push(("asleep on a timer", sleeping));
    // On the loop thread, immediate runs in place up to the suspension.
    let g = drops.guard();
    let immediate = main.immediate().spawn(async move {
        let _g = g;
        pending::<()>().await
    });
    assert!(!immediate.is_finished());
    tasks.push(("Main.immediate", immediate));
    run(&engine);
    assert_eq!(engine.live_tasks(), 4 + 1, "the timer's task suspended too");
    assert_eq!(engine.pending_timers(), 1);
    // Queued, never run.
    let ran = Arc::new(AtomicBool::new(false));
    let (g, r) = (drops.guard(), ran.clone());
    let queued = main.spawn(async move {
        let _g = g;
        r.store(true, Ordering::SeqCst);
    });
    tasks.push(("queued", queued));

    engine.shutdown();

    for (kind, task) in tasks {
        assert!(task.is_finished(), "{kind}: resolved when shutdown returns");
        assert!(is_cancelled(block_on(task)), "{kind}: cancelled");
    }
    assert!(
        !ran.load(Ordering::SeqCst),
        "a queued task is cancelled, not run"
    );
    assert_eq!(
        drops.count(),
        6,
        "every future dropped, the detached one too"
    );
    assert!(drops.all_on(loop_thread));
    assert_eq!(engine.live_tasks(), 0);
    assert_eq!(engine.pending_timers(), 0);
    assert!(!engine.has_pending());
    assert_eq!(
        engine.next_timeout(),
        None,
        "a closed engine never asks to be run"
    );
}

#[test]
fn live_tasks_tracks_suspended_tasks_until_they_finish() {
    let engine = engine();
    let main = engine.dispatcher();
    // Finished in their first poll: never tracked.
    let quick: Vec<_> = (0..100).map(|i| main.spawn(async move { i })).collect();
    run(&engine);
    assert_eq!(engine.live_tasks(), 0);
    drop(quick);
    // Suspended once, then finished in the same run: tracked, then gone.
    let yielding: Vec<_> = (0..100)
        .map(|_| main.spawn(async { dispatchers::yield_now().await }))
        .collect();
    run(&engine);
    assert!(yielding.iter().all(Task::is_finished));
    assert_eq!(engine.live_tasks(), 0);
    // Waiting: tracked until their signal comes and they finish.
    let signals: Vec<Signal> = (0..10).map(|_| Signal::default()).collect();
    let waiting: Vec<_> = signals
        .iter()
        .map(|signal| main.spawn(signal.clone()))
        .collect();
    run(&engine);
    assert_eq!(engine.live_tasks(), 10);
    signals.iter().for_each(Signal::send);
    run(&engine);
    assert!(waiting.iter().all(Task::is_finished));
    assert_eq!(engine.live_tasks(), 0, "finished tasks leave the set");
    // Cancelled by dropping the Task while suspended.
    let forever: Vec<_> = (0..10).map(|_| main.spawn(pending::<()>())).collect();
    run(&engine);
    assert_eq!(engine.live_tasks(), 10);
    drop(forever);
    run(&engine);
    assert_eq!(engine.live_tasks(), 0, "cancelled tasks leave the set");
}

#[test]
fn a_not_send_task_woken_from_another_thread_after_shutdown_stays_home() {
    let engine = engine();
    let main = engine.dispatcher();
    let drops = Drops::default();
    let signal = Signal::default();
    let (g, s) = (drops.guard(), signal.clone());
    let local = main.spawn_local(async move {
        let _not_send = Rc::new(g);
        s.await
    });
    run(&engine);
    engine.shutdown();
    // The waker goes to another thread after the loop ended: nothing to do.
    thread::spawn(move || signal.send()).join().unwrap();
    assert!(local.is_finished());
    assert!(is_cancelled(block_on(local)));
    assert_eq!(drops.count(), 1);
    assert!(drops.all_on(thread::current().id()));
}

#[test]
fn shutdown_from_inside_a_task_cancels_the_others() {
    let engine = Rc::new(engine());
    let main = engine.dispatcher();
    let others: Vec<_> = (0..10).map(|_| main.spawn(pending::<()>())).collect();
    run(&engine);
    let queued: Vec<_> = (0..10).map(|i| main.spawn(async move { i })).collect();
    let inside = {
        let engine = engine.clone();
        main.spawn_local(async move {
            engine.shutdown();
            "finished its poll"
        })
    };
    // `inside` runs after the 10 queued tasks, which run first.
    run(&engine);
    assert!(inside.is_finished());
    assert_eq!(block_on(inside).unwrap(), "finished its poll");
    for task in queued {
        assert!(task.is_finished());
        assert!(block_on(task).is_ok(), "queued before it: ran");
    }
    for task in others {
        assert!(task.is_finished());
        assert!(is_cancelled(block_on(task)));
    }
    assert!(engine.is_shut_down());
}

#[test]
fn a_task_that_shuts_its_loop_down_and_then_suspends_is_cancelled() {
    let engine = Rc::new(engine());
    let main = engine.dispatcher();
    let drops = Drops::default();
    let task = {
        let (engine, g) = (engine.clone(), drops.guard());
        main.spawn_local(async move {
            let _g = g;
            engine.shutdown();
            // Nothing would ever wake it.
            pending::<()>().await
        })
    };
    run(&engine);
    assert!(task.is_finished(), "cancelled at the end of that poll");
    assert!(is_cancelled(block_on(task)));
    assert_eq!(drops.count(), 1);
}
