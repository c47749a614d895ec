//! Main's timers and the application's control flow: `delay` on
//! `ControlFlow::WaitUntil`, the application's own flow and deadline kept,
//! no spinning while idle.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use dispatchers::delay;
use winit::event_loop::ControlFlow;

use crate::harness::{Harness, PATIENCE, wait};

pub fn delay_uses_wait_until(harness: &Harness) {
    const NAP: Duration = Duration::from_millis(300);
    let (asleep_tx, asleep) = mpsc::channel();
    let start = Instant::now();
    let task = harness.main().spawn(async move {
        let start = Instant::now();
        let napping = delay(NAP);
        asleep_tx.send(start + NAP).unwrap();
        napping.await;
        start.elapsed()
    });
    let wake_at = asleep.recv_timeout(PATIENCE).unwrap();
    let iterations = harness.iterations();
    // The iteration that ran the task ended with the timer's deadline.
    harness.on_loop(|_| ());
    if start.elapsed() < NAP / 2 {
        assert_eq!(harness.stats.pending_timers.load(Ordering::SeqCst), 1);
        match harness.flow() {
            ControlFlow::WaitUntil(deadline) => {
                assert!(deadline >= wake_at, "{deadline:?} is before {wake_at:?}");
                assert!(deadline < wake_at + Duration::from_millis(100));
            }
            flow => panic!("a pending delay should leave WaitUntil, not {flow:?}"),
        }
    }
    let slept = wait(task);
    assert!(slept >= NAP, "woke early: {slept:?}");
    assert!(
        slept < Duration::from_secs(20),
        "woke far too late: {slept:?}"
    );
    let spent = harness.iterations() - iterations;
    assert!(spent <= 20, "{spent} loop iterations while one delay slept");
}

pub fn app_control_flow_is_kept(harness: &Harness) {
    let long = harness
        .main()
        .spawn(async { delay(Duration::from_secs(3600)).await });
    assert_eq!(wait(harness.main().spawn(async { 0 })), 0);

    // The application sets its own deadline, earlier than Main's.
    let soon = Instant::now() + Duration::from_secs(600);
    let seen = harness.on_loop(move |event_loop| {
        let seen = event_loop.control_flow();
        event_loop.set_control_flow(ControlFlow::WaitUntil(soon));
        seen
    });
    assert_eq!(seen, ControlFlow::Wait, "the application sees its own flow");
    assert_eq!(harness.flow(), ControlFlow::WaitUntil(soon));

    // It sees its own deadline again in the next iteration, not a mix.
    let seen = harness.on_loop(|event_loop| {
        let seen = event_loop.control_flow();
        event_loop.set_control_flow(ControlFlow::Wait);
        seen
    });
    assert_eq!(seen, ControlFlow::WaitUntil(soon));
    match harness.flow() {
        ControlFlow::WaitUntil(deadline) => {
            assert!(
                deadline > Instant::now() + Duration::from_secs(3000),
                "Main's delay"
            )
        }
        flow => panic!("expected Main's WaitUntil, got {flow:?}"),
    }

    // Poll set by the application stays Poll.
    harness.on_loop(|event_loop| event_loop.set_control_flow(ControlFlow::Poll));
    assert_eq!(harness.flow(), ControlFlow::Poll);
    harness.on_loop(|event_loop| event_loop.set_control_flow(ControlFlow::Wait));

    drop(long);
    // Cancelling the delay removes its timer.
    harness.wait_until("the cancelled delay's timer is gone", || {
        harness.on_loop(|_| ());
        harness.stats.pending_timers.load(Ordering::SeqCst) == 0
    });
    assert_eq!(harness.flow(), ControlFlow::Wait);
}

pub fn mains_timers_are_not_the_applications(harness: &Harness) {
    // The application waits for its own timer, far away; Main's delays wake
    // the loop many times meanwhile.
    let far = Instant::now() + Duration::from_secs(600);
    harness.on_loop(move |event_loop| event_loop.set_control_flow(ControlFlow::WaitUntil(far)));
    let before = harness.stats.app_timer_causes.load(Ordering::SeqCst);
    let iterations = harness.iterations();
    wait(harness.main().spawn(async {
        for _ in 0..5 {
            delay(Duration::from_millis(10)).await;
        }
    }));
    assert!(
        harness.iterations() - iterations >= 5,
        "the delays woke the loop"
    );
    assert_eq!(
        harness.stats.app_timer_causes.load(Ordering::SeqCst),
        before,
        "the application was told its timer fired"
    );
    harness.on_loop(|event_loop| event_loop.set_control_flow(ControlFlow::Wait));
}

pub fn the_applications_deadline_is_its_timer(harness: &Harness) {
    let soon = Instant::now() + Duration::from_millis(100);
    harness.on_loop(move |event_loop| event_loop.set_control_flow(ControlFlow::WaitUntil(soon)));
    // The first iteration at or after the deadline is the application's
    // timer (the wait it ends began before the deadline).
    let first = || {
        let causes = harness.stats.app_causes.lock().unwrap();
        causes
            .iter()
            .find(|&&(at, _)| at >= soon)
            .map(|&(_, timer)| timer)
    };
    harness.wait_until("an iteration after the application's deadline", || {
        first().is_some()
    });
    assert_eq!(
        first(),
        Some(true),
        "the application was not told its timer fired"
    );
    harness.on_loop(|event_loop| event_loop.set_control_flow(ControlFlow::Wait));
}

pub fn idle_loop_sleeps(harness: &Harness) {
    harness.on_loop(|_| ());
    let before = harness.iterations();
    thread::sleep(Duration::from_millis(500));
    let spent = harness.iterations() - before;
    assert!(spent <= 5, "{spent} loop iterations in 500 ms of idling");
}
