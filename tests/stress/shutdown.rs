//! Phase 4 of the stress suite: what happens to every kind of task when the
//! loop ends.

use std::future::pending;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use dispatchers::{
    Dispatchers, JoinError, Task, block_on, delay, timeout, try_with_context, with_context,
};

use super::{DropCount, StressHost, WAIT_LIMIT, loop_thread, on_main, report, wait, wait_until};

// ---------------------------------------------------------------------------
// Phase 4: what happens to every kind of task when the loop ends.
// ---------------------------------------------------------------------------

/// Records the thread its future is dropped on.
struct DropWhere(Arc<Mutex<Vec<ThreadId>>>);

impl Drop for DropWhere {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(thread::current().id());
    }
}

/// How many tasks of each kind.
const EACH: usize = 200;
/// Tasks queued behind the one that ends the loop.
const QUEUED: usize = 10_000;

/// Ends the loop with tasks of every kind alive, and checks that each
/// resolves as the shutdown policy says.
pub fn shutdown_policy(host: &mut StressHost) {
    let main = host.main.clone();
    let name = host.name;
    let loop_thread = loop_thread(&main);
    let drops = Arc::new(Mutex::new(Vec::new()));
    let guard = || DropWhere(drops.clone());

    // Suspended forever: Send, attached and detached.
    let suspended: Vec<Task<()>> = (0..EACH)
        .map(|_| {
            let g = guard();
            main.spawn(async move {
                let _g = g;
                pending::<()>().await
            })
        })
        .collect();
    for _ in 0..EACH {
        let g = guard();
        main.spawn(async move {
            let _g = g;
            pending::<()>().await
        })
        .detach();
    }
    // Suspended forever: !Send (spawned on the loop thread) and
    // Main.immediate (run in place up to their suspension).
    let (local, immediate): (Vec<Task<()>>, Vec<Task<()>>) = {
        let (main2, drops2) = (main.clone(), drops.clone());
        wait(main.spawn(async move {
            let local = (0..EACH)
                .map(|_| {
                    let g = DropWhere(drops2.clone());
                    main2.spawn_local(async move {
                        let _not_send = Rc::new(g);
                        pending::<()>().await
                    })
                })
                .collect();
            let immediate = (0..EACH)
                .map(|_| {
                    let g = DropWhere(drops2.clone());
                    main2.immediate().spawn(async move {
                        let _g = g;
                        pending::<()>().await
                    })
                })
                .collect();
            (local, immediate)
        }))
    };
    // Asleep on the loop's timers.
    let sleeping: Vec<Task<()>> = (0..EACH)
        .map(|_| {
            let g = guard();
            main.spawn(async move {
                let _g = g;
                delay(Duration::from_secs(3600)).await
            })
        })
        .collect();
    // Hopping to IO, where the inner task blocks until released after the
    // loop ended: the shutdown must not wait for it.
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let (io_started, io_started_rx) = mpsc::channel::<()>();
    let inner_dropped = Arc::new(AtomicUsize::new(0));
    let hopping = {
        let (released, inner_dropped) = (released.clone(), inner_dropped.clone());
        let g = guard();
        main.spawn(async move {
            let _g = g;
            with_context(&Dispatchers::io(), async move {
                let _inner = DropCount(inner_dropped);
                io_started.send(()).unwrap();
                let _ = released.lock().unwrap().recv_timeout(WAIT_LIMIT);
            })
            .await
        })
    };
    // Awaited from IO: a hop from a pool task to Main that never finishes.
    let awaited_from_io = {
        let main = main.clone();
        Dispatchers::io()
            .spawn(async move { try_with_context(&main, async { pending::<()>().await }).await })
    };
    io_started_rx
        .recv_timeout(WAIT_LIMIT)
        .expect("the IO hop never started");
    // Every task above has been polled (Main is FIFO) and has suspended.
    on_main(&main, || ());

    // The last task on the loop queues QUEUED more behind it and asks the
    // loop to stop: how many of those run before the loop sees it depends
    // on the host's budget; the others are cancelled by the shutdown.
    let queued_ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<Task<()>> = {
        let (main2, drops2, ran) = (main.clone(), drops.clone(), queued_ran.clone());
        let stop = host.request_stop.clone();
        wait(main.spawn(async move {
            let queued = (0..QUEUED)
                .map(|_| {
                    let (g, ran) = (DropWhere(drops2.clone()), ran.clone());
                    main2.spawn(async move {
                        let _g = g;
                        ran.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            stop();
            queued
        }))
    };
    // Meanwhile another thread dispatches, before, during and after the
    // shutdown.
    let loop_ended = Arc::new(AtomicBool::new(false));
    let late_producer = {
        let (main, drops, loop_ended) = (main.clone(), drops.clone(), loop_ended.clone());
        thread::spawn(move || {
            let mut tasks = Vec::new();
            let mut after_the_end = 0;
            while after_the_end < 10 {
                if loop_ended.load(Ordering::Acquire) {
                    after_the_end += 1;
                }
                let g = DropWhere(drops.clone());
                tasks.push(main.spawn(async move {
                    let _g = g;
                }));
                thread::sleep(Duration::from_micros(50));
            }
            tasks
        })
    };
    host.join.take().expect("the loop is stopped once")();
    loop_ended.store(true, Ordering::Release);

    // Deterministic: the shutdown cancelled these on the loop thread before
    // the loop's thread ended.
    let must_be_finished = [
        ("suspended", &suspended),
        ("!Send", &local),
        ("Main.immediate", &immediate),
        ("asleep on a timer", &sleeping),
        ("queued", &queued),
    ];
    for (kind, tasks) in must_be_finished {
        let unfinished = tasks.iter().filter(|t| !t.is_finished()).count();
        assert_eq!(
            unfinished, 0,
            "{kind} tasks left unresolved by the shutdown"
        );
    }
    assert!(hopping.is_finished(), "the Main side of an IO hop");
    let cancelled = |tasks: Vec<Task<()>>| -> usize {
        tasks
            .into_iter()
            .map(block_on)
            .filter(|r| r.as_ref().is_err_and(JoinError::is_cancelled))
            .count()
    };
    let suspended_cancelled = cancelled(suspended);
    let local_cancelled = cancelled(local);
    let immediate_cancelled = cancelled(immediate);
    let sleeping_cancelled = cancelled(sleeping);
    let queued_total = queued.len();
    let queued_cancelled = cancelled(queued);
    let queued_ran = queued_ran.load(Ordering::Relaxed);
    let hop = block_on(hopping).expect_err("the hop's caller was cancelled");
    assert!(hop.is_cancelled());

    // The hop to Main awaited from IO resolves as cancelled too.
    let from_io = block_on(timeout(WAIT_LIMIT, awaited_from_io))
        .expect("watchdog: the IO task awaiting Main never resolved")
        .expect("the IO task itself completes");
    assert!(from_io.is_err_and(|e| e.is_cancelled()));

    // The late producer's tasks all resolve.
    let late: Vec<Task<()>> = late_producer.join().expect("the late producer panicked");
    let late_total = late.len();
    let late_resolved = late
        .into_iter()
        .map(|t| block_on(timeout(WAIT_LIMIT, t)).expect("watchdog: a late task never resolved"))
        .filter(|r| r.as_ref().is_ok() || r.as_ref().is_err_and(JoinError::is_cancelled))
        .count();

    // And a dispatch now is rejected at once.
    let after = block_on(timeout(WAIT_LIMIT, main.spawn(async { 1 })))
        .expect("watchdog: a dispatch after the loop ended never resolved");
    assert!(after.is_err_and(|e| e.is_cancelled()));

    // The IO task is still blocked: release it; its future is dropped then.
    assert_eq!(inner_dropped.load(Ordering::SeqCst), 0, "released only now");
    release.send(()).unwrap();
    wait_until(|| inner_dropped.load(Ordering::SeqCst) == 1);

    // Every future was dropped; the !Send ones (and all those cancelled by
    // the shutdown) on the loop thread.
    let expected_drops = 5 * EACH + 1 + queued_total + late_total;
    wait_until(|| drops.lock().unwrap().len() >= expected_drops);
    let drops = drops.lock().unwrap();
    let on_loop = drops.iter().filter(|&&t| t == loop_thread).count();
    report(
        name,
        &format!(
            "shutdown: cancelled {suspended_cancelled}/{EACH} suspended (+{EACH} detached), \
             {local_cancelled}/{EACH} !Send, {immediate_cancelled}/{EACH} Main.immediate, \
             {sleeping_cancelled}/{EACH} asleep on timers, the IO hop's caller, the IO task \
             awaiting Main; of {queued_total} queued: {queued_ran} ran, {queued_cancelled} \
             cancelled; {late_total} dispatched from another thread during the shutdown, all \
             resolved; futures dropped: {} of {expected_drops} ({on_loop} on the loop thread); \
             the shutdown did not wait for the blocked IO task",
            drops.len()
        ),
    );
    assert_eq!(
        (
            suspended_cancelled,
            local_cancelled,
            immediate_cancelled,
            sleeping_cancelled
        ),
        (EACH, EACH, EACH, EACH)
    );
    assert_eq!(queued_ran + queued_cancelled, queued_total);
    assert_eq!(late_resolved, late_total);
    assert_eq!(
        drops.len(),
        expected_drops,
        "each future dropped exactly once"
    );
    assert!(
        on_loop >= 5 * EACH + 1 + queued_total,
        "the loop's own tasks are dropped on the loop thread ({on_loop})"
    );
}
