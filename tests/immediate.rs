//! `Main.immediate` and `Unconfined`: in place vs dispatched, and the
//! trampoline that keeps deep resume chains off the stack.

#[path = "support/signal.rs"]
mod signal;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use dispatchers::{Budget, Dispatchers, HostEngine, block_on, yield_now};
use signal::Signal;

fn engine() -> HostEngine {
    HostEngine::new("immediate-test", || {})
}

#[test]
fn immediate_runs_in_place_on_the_loop_thread_and_pushes_nothing() {
    let engine = engine();
    let immediate = engine.dispatcher().immediate();
    assert!(!immediate.is_dispatch_needed());
    let task = immediate.spawn(async { 1 });
    assert!(task.is_finished(), "ran before spawn returned");
    assert!(!engine.has_pending(), "no queue push");
    assert_eq!(engine.host_wakes(), 0);
    assert_eq!(block_on(task).unwrap(), 1);
}

#[test]
fn immediate_dispatches_from_other_threads() {
    let engine = engine();
    let immediate = engine.dispatcher().immediate();
    let task = std::thread::spawn(move || {
        assert!(immediate.is_dispatch_needed());
        immediate.spawn(async { std::thread::current().id() })
    })
    .join()
    .unwrap();
    assert!(!task.is_finished());
    assert!(engine.has_pending());
    engine.run_pending(Budget::unlimited());
    assert_eq!(block_on(task).unwrap(), std::thread::current().id());
}

#[test]
fn a_resume_on_the_loop_thread_runs_in_place() {
    let engine = engine();
    let immediate = engine.dispatcher().immediate();
    let signal = Signal::default();
    let resumed = Arc::new(AtomicUsize::new(0));
    let (wait, count) = (signal.clone(), resumed.clone());
    immediate
        .spawn(async move {
            wait.await;
            count.fetch_add(1, Ordering::SeqCst);
        })
        .detach();
    assert_eq!(resumed.load(Ordering::SeqCst), 0);
    signal.send();
    assert_eq!(resumed.load(Ordering::SeqCst), 1, "resumed inside send()");
    assert!(!engine.has_pending());
}

#[test]
fn yield_on_immediate_always_dispatches() {
    let engine = engine();
    let immediate = engine.dispatcher().immediate();
    let log = Arc::new(Mutex::new(Vec::new()));
    let inner = log.clone();
    let task = immediate.spawn(async move {
        inner.lock().unwrap().push("before");
        yield_now().await;
        inner.lock().unwrap().push("after");
    });
    assert_eq!(*log.lock().unwrap(), ["before"]);
    assert!(engine.has_pending(), "the yield went to Main's queue");
    engine.run_pending(Budget::unlimited());
    assert_eq!(*log.lock().unwrap(), ["before", "after"]);
    assert!(task.is_finished());
}

/// A chain of tasks, each resumed in place by the previous one's wake-up.
fn resume_chain(spawn: impl Fn(Signal, Signal)) -> usize {
    const DEPTH: usize = 1_000_000;
    let first = Signal::default();
    let mut previous = first.clone();
    for _ in 0..DEPTH {
        let next = Signal::default();
        spawn(previous, next.clone());
        previous = next;
    }
    let last = previous;
    first.send();
    block_on(last);
    DEPTH
}

#[test]
fn a_million_nested_immediate_resumes_do_not_overflow_the_stack() {
    // Run on a thread with a small stack: nesting would overflow it quickly.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let engine = engine();
            let immediate = engine.dispatcher().immediate();
            let depth = resume_chain(|wait, next| {
                immediate
                    .spawn(async move {
                        wait.await;
                        next.send();
                    })
                    .detach();
            });
            assert_eq!(depth, 1_000_000);
            assert!(!engine.has_pending(), "all in place, nothing queued");
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_million_nested_unconfined_resumes_do_not_overflow_the_stack() {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let unconfined = Dispatchers::unconfined();
            resume_chain(|wait, next| {
                unconfined
                    .spawn(async move {
                        wait.await;
                        next.send();
                    })
                    .detach();
            });
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn unconfined_cannot_be_limited_and_zero_is_an_error() {
    let unconfined = Dispatchers::unconfined();
    assert!(!unconfined.is_dispatch_needed());
    let err = unconfined.limited_parallelism(2).unwrap_err();
    assert!(err.to_string().contains("Unconfined"), "{err}");
    let engine = engine();
    let main = engine.dispatcher();
    assert_eq!(
        main.limited_parallelism(0).unwrap_err(),
        dispatchers::ParallelismError::Zero
    );
    let limited = main.limited_parallelism(3).unwrap();
    assert_eq!(limited, *main.dispatcher(), "Main limited is Main itself");
}

#[test]
fn immediate_on_a_shut_down_loop_is_rejected_not_run() {
    let engine = engine();
    let immediate = engine.dispatcher().immediate();
    engine.shutdown();
    let ran = Arc::new(AtomicUsize::new(0));
    let count = ran.clone();
    let task = immediate.spawn(async move {
        count.fetch_add(1, Ordering::SeqCst);
    });
    assert!(block_on(task).unwrap_err().is_cancelled());
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn block_on_in_an_in_place_run_runs_the_runs_queued_behind_it() {
    // The inner task is queued on the trampoline behind the outer one, which
    // blocks on it: block_on runs it, as kotlinx's runBlocking runs the
    // thread's event loop.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let unconfined = Dispatchers::unconfined();
        let inner = unconfined.clone();
        let outer = unconfined.spawn(async move { block_on(inner.spawn(async { 7 })).unwrap() });
        let _ = tx.send(block_on(outer).unwrap());
    });
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(30)),
        Ok(7),
        "block_on inside an in-place run deadlocked"
    );
}

#[test]
fn a_loop_host_waiting_in_an_in_place_run_runs_the_runs_queued_behind_it() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let host = std::rc::Rc::new(dispatchers::LoopHost::new("waits-in-place"));
        let immediate = host.dispatcher().immediate();
        let (inner, waiting) = (immediate.clone(), host.clone());
        // Runs in place; the inner task is queued on the trampoline behind
        // it, and the loop's wait must run it.
        let outer = immediate
            .spawn_local(async move { waiting.run_until(inner.spawn(async { 7 })).unwrap() });
        let _ = tx.send(host.run_until(outer).unwrap());
    });
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(30)),
        Ok(7),
        "LoopHost::run_until inside an in-place run deadlocked"
    );
}

#[test]
fn block_on_in_an_in_place_run_checks_its_future_between_queued_runs() {
    // A run queued behind the blocked one yields until that one goes on:
    // block_on must see its own future ready in between, not run the queue
    // for ever.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let unconfined = Dispatchers::unconfined();
        let queued_on = unconfined.clone();
        let outer = unconfined.spawn(async move {
            let went_on = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let seen = went_on.clone();
            let yielding = queued_on.spawn(async move {
                while !seen.load(Ordering::SeqCst) {
                    yield_now().await;
                }
            });
            let ready = Signal::default();
            let sender = ready.clone();
            std::thread::spawn(move || sender.send());
            block_on(ready);
            went_on.store(true, Ordering::SeqCst);
            yielding.await.unwrap();
        });
        block_on(outer).unwrap();
        let _ = tx.send(());
    });
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(30)),
        Ok(()),
        "block_on never polled its ready future again"
    );
}

#[test]
fn a_loop_host_wait_that_ran_queued_work_does_not_sleep_through_its_wake_up() {
    // The first queued run completes what run_until waits for (waking it);
    // the second blocks, and its park takes the thread's pending wake-up.
    // The wait that ran them must not then sleep with nothing to wake it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let host = std::rc::Rc::new(dispatchers::LoopHost::new("lost-wake"));
        let immediate = host.dispatcher().immediate();
        let (inner, waiting) = (immediate.clone(), host.clone());
        let outer = immediate.spawn_local(async move {
            let awaited = inner.spawn(async { 7 });
            inner
                .spawn(async {
                    let later = Signal::default();
                    let sender = later.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        sender.send();
                    });
                    block_on(later);
                })
                .detach();
            waiting.run_until(awaited).unwrap()
        });
        let _ = tx.send(host.run_until(outer).unwrap());
    });
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(30)),
        Ok(7),
        "LoopHost::run_until slept through its wake-up"
    );
}
