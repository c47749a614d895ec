//! The winit host's own behaviour on a real loop (X11; under Xvfb on CI):
//! selection as Main, user events kept, wake coalescing, `delay` on
//! `ControlFlow::WaitUntil`, no spinning while idle, input not starved by a
//! busy Main, `spawn_on_main_local`, shutdown on exit.
//!
//! One test runs every check in sequence: winit allows one event loop per
//! process.

#[path = "winit_loop/harness.rs"]
mod harness;
mod support;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use dispatchers::{
    Dispatchers, LoopHost, block_on, delay, spawn_on_main, spawn_on_main_local, timeout, yield_now,
};
use dispatchers_winit::DEFAULT_LOAD_PRIORITY;
use harness::{Harness, PATIENCE, wait};
use support::Ctl;
use winit::event_loop::ControlFlow;
use winit::window::Window;

#[test]
fn winit_loop() {
    if !support::display_available("winit_loop") {
        return;
    }
    let _watchdog = support::watchdog("the winit loop test", Duration::from_secs(120));
    let lower = register_a_lower_priority_host();
    let mut harness = Harness::start();

    type Check = fn(&Harness);
    let checks: &[(&str, Check)] = &[
        (
            "Main is the winit loop (priority 100 wins)",
            main_is_the_winit_loop,
        ),
        (
            "the application's user events still arrive",
            user_events_arrive,
        ),
        (
            "a burst of dispatches costs a few wakes",
            dispatches_are_coalesced,
        ),
        (
            "delay waits with WaitUntil, without spinning",
            delay_uses_wait_until,
        ),
        (
            "the application keeps its own control flow",
            app_control_flow_is_kept,
        ),
        (
            "Main's timers do not look like the application's",
            mains_timers_are_not_the_applications,
        ),
        (
            "the application's own deadline is its timer",
            the_applications_deadline_is_its_timer,
        ),
        ("an idle loop sleeps", idle_loop_sleeps),
        (
            "a busy Main does not starve user events",
            busy_main_does_not_starve_user_events,
        ),
        (
            "a busy Main does not starve window events",
            busy_main_does_not_starve_window_events,
        ),
        (
            "spawn_on_main_local keeps !Send state",
            spawn_on_main_local_works,
        ),
    ];
    for (name, check) in checks {
        eprintln!("winit_loop: {name}");
        check(&harness);
    }

    eprintln!("winit_loop: exit shuts the engine down");
    let main = harness.main().clone();
    let sleeping = main.spawn(async { delay(Duration::from_secs(3600)).await });
    assert_eq!(wait(main.spawn(async { 1 })), 1);
    harness.running.stop();
    let error = block_on(timeout(PATIENCE, sleeping))
        .expect("hung")
        .unwrap_err();
    assert!(error.is_cancelled(), "{error}");
    let error = block_on(timeout(PATIENCE, spawn_on_main(async { 2 })))
        .expect("hung")
        .unwrap_err();
    assert!(error.is_cancelled(), "{error}");
    drop(lower);
}

/// A plain loop host registered at 50 (where the mio and calloop adapters
/// register), on a thread of its own so that the test thread's `delay`s
/// don't use its timers; dropping it ends that thread.
struct LowerPriorityHost {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for LowerPriorityHost {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

fn register_a_lower_priority_host() -> LowerPriorityHost {
    let (registered_tx, registered) = mpsc::channel();
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = thread::spawn(move || {
        let host = LoopHost::new("lower-priority-loop");
        host.register_as_main(50).unwrap();
        registered_tx.send(()).unwrap();
        let _ = stopped.recv();
    });
    registered.recv().unwrap();
    LowerPriorityHost {
        stop: Some(stop),
        thread: Some(thread),
    }
}

fn main_is_the_winit_loop(harness: &Harness) {
    assert_eq!(DEFAULT_LOAD_PRIORITY, 100);
    let main = Dispatchers::main();
    assert!(!main.is_missing());
    assert_eq!(main.name(), harness.main().name());
    assert_eq!(main.name(), "winit");
    let (thread_name, on_main) = wait(spawn_on_main(async {
        let main = Dispatchers::main();
        (
            thread::current().name().map(str::to_owned),
            main.is_current_thread(),
        )
    }));
    assert_eq!(thread_name.as_deref(), Some("winit-loop"));
    assert!(on_main);
}

fn user_events_arrive(harness: &Harness) {
    let received = Arc::new(Mutex::new(Vec::new()));
    for i in 0..100 {
        let received = received.clone();
        harness.running.send(Ctl::Run(Box::new(move |_| {
            received.lock().unwrap().push(i)
        })));
    }
    // Events and tasks interleave freely; each kind keeps its order.
    let task = harness.main().spawn(async { 7 });
    assert_eq!(harness.on_loop(|_| 1), 1);
    assert_eq!(wait(task), 7);
    assert_eq!(*received.lock().unwrap(), (0..100).collect::<Vec<_>>());
}

fn dispatches_are_coalesced(harness: &Harness) {
    // Keep the loop inside a task while 1000 more are dispatched: each
    // dispatch finds a wake already pending.
    let (release, released) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel::<()>();
    let blocker = harness.main().spawn(async move {
        started_tx.send(()).unwrap();
        released.recv_timeout(PATIENCE).unwrap();
    });
    started.recv_timeout(PATIENCE).unwrap();
    let wakes_before = harness.wakes();
    let ran = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let ran = ran.clone();
            harness.main().spawn(async move {
                ran.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    release.send(()).unwrap();
    wait(blocker);
    for task in tasks {
        wait(task);
    }
    assert_eq!(ran.load(Ordering::SeqCst), 1000);
    let wakes = harness.wakes() - wakes_before;
    assert!(wakes <= 10, "1000 dispatches cost {wakes} wakes");
}

fn delay_uses_wait_until(harness: &Harness) {
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

fn app_control_flow_is_kept(harness: &Harness) {
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

fn mains_timers_are_not_the_applications(harness: &Harness) {
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

fn the_applications_deadline_is_its_timer(harness: &Harness) {
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

fn idle_loop_sleeps(harness: &Harness) {
    harness.on_loop(|_| ());
    let before = harness.iterations();
    thread::sleep(Duration::from_millis(500));
    let spent = harness.iterations() - before;
    assert!(spent <= 5, "{spent} loop iterations in 500 ms of idling");
}

fn busy_main_does_not_starve_user_events(harness: &Harness) {
    // Main always has work until a user event arrives: without a budget
    // per iteration, the event would never be delivered.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (busy_tx, busy) = mpsc::channel();
    let flood = harness.main().spawn(async move {
        let mut rounds = 0u64;
        while !flag.load(Ordering::SeqCst) {
            if rounds == 100 {
                busy_tx.send(()).unwrap();
            }
            rounds += 1;
            yield_now().await;
        }
        rounds
    });
    busy.recv_timeout(PATIENCE).unwrap();
    harness.on_loop(move |_| stop.store(true, Ordering::SeqCst));
    assert!(wait(flood) > 100);
}

fn busy_main_does_not_starve_window_events(harness: &Harness) {
    let window: Arc<Window> = harness.on_loop(|event_loop| {
        let attributes = Window::default_attributes()
            .with_title("dispatchers-winit test")
            .with_inner_size(winit::dpi::LogicalSize::new(64.0, 48.0));
        Arc::new(
            event_loop
                .create_window(attributes)
                .expect("create a window"),
        )
    });
    let id = window.id();
    let redraws = {
        let events = harness.window_events.clone();
        move || {
            events
                .lock()
                .unwrap()
                .iter()
                .filter(|(w, name)| *w == id && name == "RedrawRequested")
                .count()
        }
    };
    let before = redraws();
    let seen = Arc::new(AtomicBool::new(false));
    let (flag, count) = (seen.clone(), redraws.clone());
    let (asked_tx, asked) = mpsc::channel();
    let flood_window = window.clone();
    // The flood asks for a redraw and runs until the loop has delivered it.
    let flood = harness.main().spawn(async move {
        flood_window.request_redraw();
        asked_tx.send(()).unwrap();
        let mut rounds = 0u64;
        while count() == before {
            rounds += 1;
            yield_now().await;
        }
        flag.store(true, Ordering::SeqCst);
        rounds
    });
    asked.recv_timeout(PATIENCE).unwrap();
    wait(flood);
    assert!(seen.load(Ordering::SeqCst));
    harness.on_loop(move |_| drop(window));
}

fn spawn_on_main_local_works(harness: &Harness) {
    assert!(harness.main().try_spawn_local(async {}).is_err());
    let total = wait(spawn_on_main(async {
        // From the loop thread: the !Send state lives in local tasks only.
        let local = spawn_on_main_local(async {
            let state = Rc::new(std::cell::RefCell::new(Vec::new()));
            let tasks: Vec<_> = (0..3)
                .map(|i| {
                    let state = state.clone();
                    spawn_on_main_local(async move {
                        delay(Duration::from_millis(5 * i)).await;
                        state.borrow_mut().push(i);
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let total: u64 = state.borrow().iter().sum();
            total
        });
        local.await.unwrap()
    }));
    assert_eq!(total, 3);
}
