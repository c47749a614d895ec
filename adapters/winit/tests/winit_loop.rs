//! The winit host's own behaviour on a real loop (X11; under Xvfb on CI):
//! selection as Main, user events kept, wake coalescing, `delay` on
//! `ControlFlow::WaitUntil`, no spinning while idle, input not starved by a
//! busy Main, `spawn_on_main_local`, shutdown on exit.
//!
//! One test runs every check in sequence: winit allows one event loop per
//! process.

#[path = "winit_loop/flow.rs"]
mod flow;
#[path = "winit_loop/harness.rs"]
mod harness;
#[path = "winit_loop/starvation.rs"]
mod starvation;
mod support;

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use dispatchers::{
    Dispatchers, LoopHost, block_on, delay, spawn_on_main, spawn_on_main_local, timeout,
};
use dispatchers_winit::DEFAULT_LOAD_PRIORITY;
use flow::{
    app_control_flow_is_kept, delay_uses_wait_until, idle_loop_sleeps,
    mains_timers_are_not_the_applications, the_applications_deadline_is_its_timer,
};
use harness::{Harness, PATIENCE, wait};
use starvation::{busy_main_does_not_starve_user_events, busy_main_does_not_starve_window_events};
use support::Ctl;

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
