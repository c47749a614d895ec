//! `delay`, `delay_until` and `timeout`: host timers on the loop thread, the
//! fallback timer thread elsewhere, cancellation on drop.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use dispatchers::{Budget, HostEngine, LoopHost, block_on, delay, delay_until, timeout};

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
    let mut sleep = Box::pin(delay(Duration::from_secs(3600)));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(sleep.as_mut().poll(&mut cx).is_pending());
    assert_eq!(engine.pending_timers(), 1);
    assert!(engine.next_deadline().is_some());
    drop(sleep);
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
        let mut sleep = Box::pin(delay(Duration::from_secs(3600)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!((inner.pending_timers(), outer.pending_timers()), (1, 0));
    }
    let mut sleep = Box::pin(delay(Duration::from_secs(3600)));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(sleep.as_mut().poll(&mut cx).is_pending());
    assert_eq!(outer.pending_timers(), 1, "back on the outer loop's timers");
}
