//! `delay`, `delay_until` and `timeout`: host timers on the loop thread, the
//! fallback timer thread elsewhere, cancellation on drop.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use dispatchers::{
    Budget, Delay, HostEngine, LoopHost, MainDispatcher, block_on, delay, delay_until, timeout,
};

#[test]
fn a_delay_on_the_loop_uses_the_hosts_timers_and_resumes_in_the_same_call() {
    let host = LoopHost::new("time-test");
    let main = host.dispatcher();
    let task = main.spawn(async {
        delay(Duration::from_millis(30)).await;
        std::thread::current().id()
    });
    host.run_pending(Budget::unlimited());
    assert_eq!(
        host.engine().pending_timers(),
        1,
        "registered on the loop's heap"
    );
    let deadline = host
        .engine()
        .next_deadline()
        .expect("a deadline to sleep until");
    assert!(deadline > Instant::now() - Duration::from_millis(30));
    while Instant::now() < deadline {
        std::thread::sleep(deadline - Instant::now());
    }
    let wakes_before = host.engine().host_wakes();
    let report = host.run_pending(Budget::unlimited());
    assert_eq!(report.timers_fired, 1);
    assert_eq!(
        report.ran, 1,
        "the woken task ran in the same run_pending call"
    );
    assert_eq!(
        host.engine().host_wakes(),
        wakes_before,
        "no extra host wake"
    );
    assert!(task.is_finished());
    assert_eq!(block_on(task).unwrap(), std::thread::current().id());
}

#[test]
fn dropping_a_delay_cancels_its_timer() {
    let engine = HostEngine::new("time-test", || {});
    let main = engine.dispatcher();
    let sleeper = main.spawn(async { delay(Duration::from_secs(3600)).await });
    engine.run_pending(Budget::unlimited());
    assert_eq!(engine.pending_timers(), 1);
    assert!(engine.next_deadline().is_some());
    drop(sleeper); // cancels the task: the loop drops its future, and the delay
    engine.run_pending(Budget::unlimited());
    assert_eq!(engine.pending_timers(), 0);
    assert_eq!(engine.next_deadline(), None);
    assert_eq!(engine.next_timeout(), None, "nothing to wake up for");
}

#[test]
fn a_timeout_cancels_the_inner_timer_and_the_future() {
    let engine = HostEngine::new("time-test", || {});
    let main = engine.dispatcher();
    let task = main
        .spawn(async { timeout(Duration::from_millis(5), delay(Duration::from_secs(3600))).await });
    engine.run_pending(Budget::unlimited());
    assert_eq!(
        engine.pending_timers(),
        2,
        "the 5 ms timeout and the 1 h delay"
    );
    std::thread::sleep(Duration::from_millis(10));
    engine.run_pending(Budget::unlimited());
    assert!(block_on(task).unwrap().is_err());
    assert_eq!(engine.pending_timers(), 0, "the losing delay was cancelled");
}

#[test]
fn zero_and_past_delays_complete_without_suspending() {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(pin!(delay(Duration::ZERO)).poll(&mut cx).is_ready());
    assert!(
        pin!(delay_until(Instant::now() - Duration::from_secs(1)))
            .poll(&mut cx)
            .is_ready()
    );
    let ready = pin!(timeout(Duration::ZERO, async { 3 })).poll(&mut cx);
    assert_eq!(
        ready,
        std::task::Poll::Ready(Ok(3)),
        "a ready future beats a zero timeout"
    );
}

#[test]
fn a_past_deadline_on_the_loop_completes_without_a_timer() {
    let host = LoopHost::new("time-test");
    let main = host.dispatcher();
    host.run_pending(Budget::unlimited());
    let task = main.spawn(async {
        delay_until(Instant::now() - Duration::from_secs(1)).await;
        delay(Duration::ZERO).await;
    });
    let report = host.run_pending(Budget::unlimited());
    assert!(task.is_finished(), "completed in its first poll");
    assert_eq!(report.timers_fired, 0);
    assert_eq!(host.engine().pending_timers(), 0, "nothing was registered");
    block_on(task).unwrap();
}

#[test]
fn off_the_loop_a_delay_uses_the_fallback_timer_thread() {
    let start = Instant::now();
    block_on(delay(Duration::from_millis(20)));
    assert!(start.elapsed() >= Duration::from_millis(20));
    let elapsed = block_on(timeout(
        Duration::from_millis(20),
        delay(Duration::from_secs(3600)),
    ));
    assert!(elapsed.is_err());
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn delays_fire_in_deadline_order() {
    let host = LoopHost::new("time-test");
    let main = host.dispatcher();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    // Spread wide enough that no scheduling hiccup reorders them.
    let tasks: Vec<_> = [300u64, 100, 200, 100]
        .into_iter()
        .enumerate()
        .map(|(i, ms)| {
            let log = log.clone();
            main.spawn(async move {
                delay(Duration::from_millis(ms)).await;
                log.lock().unwrap().push(i);
            })
        })
        .collect();
    host.run_until(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert_eq!(
        *log.lock().unwrap(),
        [1, 3, 2, 0],
        "by deadline, ties by registration"
    );
}

#[test]
fn a_nested_engine_gives_the_thread_its_timers_back() {
    let outer = HostEngine::new("outer", || {});
    {
        let inner = HostEngine::new("inner", || {});
        let task = inner
            .dispatcher()
            .spawn(async { delay(Duration::from_secs(3600)).await });
        inner.run_pending(Budget::unlimited());
        assert_eq!((inner.pending_timers(), outer.pending_timers()), (1, 0));
        drop(task);
    }
    let task = outer
        .dispatcher()
        .spawn(async { delay(Duration::from_secs(3600)).await });
    outer.run_pending(Budget::unlimited());
    assert_eq!(outer.pending_timers(), 1, "back on the outer loop's timers");
    drop(task);
}

#[test]
fn a_host_shutting_down_never_completes_a_delay_early() {
    // A delay first polled by a loop task (so on the loop's timers), then
    // moved out of it, outlives the loop: the same deadline moves to the
    // fallback timers; it neither completes early nor hangs.
    let host = LoopHost::new("time-test");
    let (tx, rx) = std::sync::mpsc::channel();
    let long = host.dispatcher().spawn(async move {
        let mut moved = Box::pin(delay(Duration::from_secs(3600)));
        let mut short = Box::pin(delay(Duration::from_millis(20)));
        std::future::poll_fn(|cx| {
            assert!(moved.as_mut().poll(cx).is_pending());
            assert!(short.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        tx.send((moved, short)).unwrap();
    });
    host.run_pending(Budget::unlimited());
    host.run_until(long).unwrap();
    assert_eq!(host.engine().pending_timers(), 2);
    let (moved, short) = rx.recv().unwrap();
    drop(host);
    let unfinished = block_on(timeout(Duration::from_millis(50), moved));
    assert!(unfinished.is_err(), "the hour has not passed");
    block_on(timeout(Duration::from_secs(60), short)).expect("moved to the fallback timers");
}

#[test]
fn block_on_a_delay_on_a_loop_thread_before_the_loop_runs_completes() {
    let _host = LoopHost::new("not-running-yet");
    let start = Instant::now();
    block_on(timeout(
        Duration::from_secs(60),
        delay(Duration::from_millis(10)),
    ))
    .expect("a delay outside the loop's tasks uses the fallback timers");
    assert!(start.elapsed() >= Duration::from_millis(10));
}

#[test]
fn immediate_tasks_woken_by_timers_respect_the_budget() {
    let host = LoopHost::new("budget");
    let immediate = host.dispatcher().immediate();
    let resumed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..20 {
        let resumed = resumed.clone();
        // Started in place from a Main task so that the delay is the loop's.
        let immediate = immediate.clone();
        host.dispatcher()
            .spawn(async move {
                immediate
                    .spawn(async move {
                        delay(Duration::from_millis(1)).await;
                        resumed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    })
                    .detach();
            })
            .detach();
    }
    host.run_pending(Budget::unlimited());
    assert_eq!(host.engine().pending_timers(), 20);
    std::thread::sleep(Duration::from_millis(5));
    let report = host.run_pending(Budget::unlimited().max_tasks(5));
    assert_eq!(report.timers_fired, 20);
    assert_eq!(
        report.ran, 5,
        "timer wake-ups queue and count against the budget"
    );
    assert_eq!(resumed.load(std::sync::atomic::Ordering::SeqCst), 5);
    assert!(report.more_pending);
    host.run_pending(Budget::unlimited());
    assert_eq!(resumed.load(std::sync::atomic::Ordering::SeqCst), 20);
}

/// Spawns a task on `main` that polls a `delay(duration)` once, registering
/// it on the loop's timers, and hands the pending `Delay` out.
fn registered_delay(main: &MainDispatcher, duration: Duration) -> mpsc::Receiver<Pin<Box<Delay>>> {
    let (sender, receiver) = mpsc::channel();
    main.spawn(async move {
        let mut sleeper = Box::pin(delay(duration));
        poll_fn(|cx| {
            assert!(sleeper.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        sender.send(sleeper).unwrap();
    })
    .detach();
    receiver
}

#[test]
fn a_delay_dropped_on_another_thread_is_forgotten_by_its_loop() {
    let engine = HostEngine::new("time-test", || {});
    let handed_out = registered_delay(&engine.dispatcher(), Duration::from_secs(3600));
    engine.run_pending(Budget::unlimited());
    let sleeper = handed_out.recv().unwrap();
    assert_eq!(engine.pending_timers(), 1);
    std::thread::spawn(move || drop(sleeper)).join().unwrap();
    assert_eq!(engine.next_deadline(), None, "the loop applied the cancel");
    assert_eq!(engine.pending_timers(), 0);
}

#[test]
fn a_delay_polled_off_its_loop_thread_moves_there_with_its_deadline() {
    let engine = HostEngine::new("time-test", || {});
    let before = Instant::now();
    let handed_out = registered_delay(&engine.dispatcher(), Duration::from_millis(40));
    engine.run_pending(Budget::unlimited());
    let sleeper = handed_out.recv().unwrap();
    // Awaited on another thread, without the loop ever running again: the
    // fallback timers take over the same deadline, never an earlier one.
    let done = std::thread::spawn(move || {
        block_on(sleeper);
        Instant::now()
    })
    .join()
    .unwrap();
    assert!(done >= before + Duration::from_millis(40), "not early");
    assert_eq!(
        engine.next_deadline(),
        None,
        "the loop's timer was cancelled"
    );
}

#[test]
fn a_deadline_that_passed_since_the_loop_last_fired_completes_on_its_next_run() {
    let host = LoopHost::new("time-test");
    let main = host.dispatcher();
    host.run_pending(Budget::unlimited());
    // Later than the loop's last firing, so compared without a clock read it
    // may register; then the loop must not sleep past it.
    let task = main.spawn(async { delay_until(Instant::now()).await });
    host.run_pending(Budget::unlimited());
    if !task.is_finished() {
        assert_eq!(host.engine().next_timeout(), Some(Duration::ZERO));
        let report = host.run_pending(Budget::unlimited());
        assert_eq!(report.timers_fired, 1);
    }
    assert!(task.is_finished());
    block_on(task).unwrap();
}

#[test]
fn a_stream_of_tasks_does_not_hold_back_a_due_timer() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Each link runs 50 µs and queues the next: the queue is never empty.
    fn chain(main: MainDispatcher, left: usize, done: Arc<AtomicUsize>) {
        let next = main.clone();
        main.spawn(async move {
            std::thread::sleep(Duration::from_micros(50));
            done.fetch_add(1, Ordering::SeqCst);
            if left > 1 {
                chain(next, left - 1, done);
            }
        })
        .detach();
    }

    let engine = HostEngine::new("time-test", || {});
    let main = engine.dispatcher();
    let links_done = Arc::new(AtomicUsize::new(0));
    let progress = links_done.clone();
    let sleeper = main.spawn(async move {
        delay(Duration::from_millis(5)).await;
        progress.load(Ordering::SeqCst)
    });
    engine.run_pending(Budget::unlimited());
    chain(main, 1000, links_done.clone());
    // One call: at least 50 ms of links, while the 5 ms delay comes due.
    engine.run_pending(Budget::unlimited());
    assert_eq!(links_done.load(Ordering::SeqCst), 1000);
    if !sleeper.is_finished() {
        engine.run_pending(Budget::unlimited());
    }
    let links_before_the_timer = block_on(sleeper).unwrap();
    assert!(
        links_before_the_timer < 1000,
        "the timer waited for the whole stream"
    );
}
