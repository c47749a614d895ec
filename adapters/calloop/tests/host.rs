//! The calloop host: wake-ups, coalescing, timers, budget, shutdown.
//!
//! Each test runs its loop on a thread of its own under a watchdog, so a lost
//! wake-up fails the test instead of hanging it. Bounds on time are generous;
//! the assertions that matter are counts.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

#[path = "../../../tests/support/watchdog.rs"]
mod watchdog;

use calloop::EventLoop;
use calloop::ping::make_ping;
use calloop::timer::{TimeoutAction, Timer};
use dispatchers::{Budget, block_on, delay, delay_until};
use dispatchers_calloop::{CalloopHost, DEFAULT_BUDGET, DEFAULT_LOAD_PRIORITY, HostSource};

/// [`watchdog::watchdog`] for this file's loops: 30 s.
fn watchdog<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog::watchdog("calloop-test-loop", Duration::from_secs(30), test)
}

/// A source whose iterations have no time budget: tests that check the
/// effect of one iteration don't depend on the thread not being descheduled.
fn untimed(name: &str) -> HostSource {
    HostSource::new(name).with_budget(Budget::unlimited())
}

/// A loop with a host, after its first iteration (the one that runs the
/// timer armed at registration).
fn loop_with_host(source: HostSource) -> (EventLoop<'static, ()>, CalloopHost) {
    let mut event_loop = EventLoop::try_new().unwrap();
    let host = CalloopHost::insert_source(&event_loop.handle(), source).unwrap();
    event_loop.dispatch(Duration::ZERO, &mut ()).unwrap();
    (event_loop, host)
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CalloopHost>();
    assert_eq!(DEFAULT_LOAD_PRIORITY, 50);
    assert_eq!(HostSource::new("x").budget(), DEFAULT_BUDGET);
}

#[test]
fn a_dispatch_from_another_thread_wakes_a_blocked_dispatch() {
    watchdog(|| {
        let (mut event_loop, host) = loop_with_host(untimed("wake"));
        let main = host.dispatcher();
        let loop_thread = std::thread::current().id();
        let ran_on: Arc<Mutex<Option<ThreadId>>> = Arc::default();
        let record = ran_on.clone();
        let other = std::thread::spawn(move || {
            // Give the loop time to block (it is woken either way).
            std::thread::sleep(Duration::from_millis(50));
            main.spawn(async move {
                *record.lock().unwrap() = Some(std::thread::current().id());
            })
            .detach();
        });
        // Blocks until pinged: nothing else can end this call.
        event_loop.dispatch(None, &mut ()).unwrap();
        assert_eq!(*ran_on.lock().unwrap(), Some(loop_thread));
        assert_eq!(host.host_wakes(), 1);
        other.join().unwrap();
    });
}

#[test]
fn a_burst_of_dispatches_costs_one_ping() {
    watchdog(|| {
        let (mut event_loop, host) = loop_with_host(untimed("burst"));
        let ran = Arc::new(AtomicUsize::new(0));
        for round in 1..=2 {
            let main = host.dispatcher();
            let counter = ran.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    let counter = counter.clone();
                    main.spawn(async move {
                        counter.fetch_add(1, Ordering::Relaxed);
                    })
                    .detach();
                }
            })
            .join()
            .unwrap();
            assert_eq!(host.host_wakes(), round, "1000 dispatches, one ping");
            event_loop.dispatch(None, &mut ()).unwrap();
            assert_eq!(ran.load(Ordering::Relaxed), 1000 * round as usize);
            assert_eq!(host.host_wakes(), round);
        }
    });
}

#[test]
fn tasks_dispatched_before_the_source_is_inserted_run_on_the_first_iteration() {
    watchdog(|| {
        let source = untimed("early");
        let task = source.dispatcher().spawn(async { 7 });
        let mut event_loop: EventLoop<()> = EventLoop::try_new().unwrap();
        let _host = CalloopHost::insert_source(&event_loop.handle(), source).unwrap();
        event_loop.dispatch(None, &mut ()).unwrap();
        assert_eq!(block_on(task).unwrap(), 7);
    });
}

#[test]
fn delays_resume_on_the_loop_thread_after_their_deadline() {
    const TASKS: usize = 200;
    watchdog(|| {
        let (mut event_loop, host) = loop_with_host(HostSource::new("delays"));
        let main = host.dispatcher();
        let loop_thread = std::thread::current().id();
        let lateness: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let done = Arc::new(AtomicUsize::new(0));
        for i in 0..TASKS {
            let (lateness, done) = (lateness.clone(), done.clone());
            main.spawn(async move {
                let deadline = Instant::now() + Duration::from_millis(5 + (i as u64 * 7) % 45);
                delay_until(deadline).await;
                let resumed = Instant::now();
                assert!(resumed >= deadline, "resumed early");
                assert_eq!(std::thread::current().id(), loop_thread);
                lateness.lock().unwrap().push(resumed - deadline);
                done.fetch_add(1, Ordering::Relaxed);
            })
            .detach();
        }
        let mut iterations = 0;
        while done.load(Ordering::Relaxed) < TASKS {
            event_loop.dispatch(None, &mut ()).unwrap();
            iterations += 1;
        }
        let lateness = lateness.lock().unwrap();
        let worst = lateness.iter().max().unwrap();
        assert!(
            *worst < Duration::from_millis(500),
            "worst lateness {worst:?}"
        );
        // The loop sleeps until the next deadline: at most a few iterations
        // per timer (the 45 distinct deadlines), never a spin.
        assert!(iterations < 10 * 45, "{iterations} iterations");
    });
}

#[test]
fn a_delay_started_outside_the_sources_callback_still_wakes_the_loop() {
    watchdog(|| {
        let (mut event_loop, host) = loop_with_host(untimed("outside"));
        let immediate = host.dispatcher().immediate();
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        // Another source's callback starts a task on Main.immediate: it runs
        // in place and registers its delay without going through the queue.
        event_loop
            .handle()
            .insert_source(Timer::immediate(), move |_, _, _| {
                let flag = flag.clone();
                immediate
                    .spawn(async move {
                        delay(Duration::from_millis(30)).await;
                        flag.store(true, Ordering::Relaxed);
                    })
                    .detach();
                TimeoutAction::Drop
            })
            .unwrap();
        let start = Instant::now();
        let mut iterations = 0;
        while !done.load(Ordering::Relaxed) {
            // Nothing but the host's timer can end these calls.
            event_loop.dispatch(None, &mut ()).unwrap();
            iterations += 1;
        }
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(iterations < 10, "{iterations} iterations");
    });
}

#[test]
fn a_budget_that_runs_no_task_is_refused() {
    let refused = std::panic::catch_unwind(|| {
        HostSource::new("no-task").with_budget(Budget::unlimited().max_tasks(0))
    });
    let payload = refused.expect_err("max_tasks(0) would leave the loop spinning");
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or_default();
    assert!(message.contains("max_tasks(0)"), "{message}");
    assert!(message.contains("at least one task"), "{message}");
}

#[test]
fn the_budget_leaves_room_for_other_sources() {
    watchdog(|| {
        let source = HostSource::new("budget").with_budget(Budget::unlimited().max_tasks(10));
        let (mut event_loop, host) = loop_with_host(source);
        let main = host.dispatcher();
        let (user_ping, user_source) = make_ping().unwrap();
        let user_events = Arc::new(AtomicUsize::new(0));
        let counter = user_events.clone();
        event_loop
            .handle()
            .insert_source(user_source, move |(), _, _| {
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let ran = ran.clone();
            main.spawn(async move {
                ran.fetch_add(1, Ordering::Relaxed);
            })
            .detach();
        }
        for iteration in 1..=10 {
            user_ping.ping();
            event_loop
                .dispatch(Duration::from_secs(5), &mut ())
                .unwrap();
            assert_eq!(ran.load(Ordering::Relaxed), 10 * iteration);
            assert_eq!(user_events.load(Ordering::Relaxed), iteration);
        }
        // One ping for the burst, one re-arm per exhausted budget.
        assert_eq!(host.host_wakes(), 10);
    });
}

#[test]
fn the_default_budget_caps_an_iteration() {
    watchdog(|| {
        let (mut event_loop, host) = loop_with_host(HostSource::new("default-budget"));
        let main = host.dispatcher();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..3000 {
            let ran = ran.clone();
            main.spawn(async move {
                ran.fetch_add(1, Ordering::Relaxed);
            })
            .detach();
        }
        event_loop.dispatch(Duration::ZERO, &mut ()).unwrap();
        let first = ran.load(Ordering::Relaxed);
        assert!(first <= 1024, "{first} tasks in one iteration");
        while ran.load(Ordering::Relaxed) < 3000 {
            event_loop
                .dispatch(Duration::from_secs(5), &mut ())
                .unwrap();
        }
    });
}

#[test]
fn a_panicking_task_does_not_unwind_through_the_loop() {
    watchdog(|| {
        let (mut event_loop, host) = loop_with_host(HostSource::new("panic"));
        let main = host.dispatcher();
        let boom = main.spawn(async { panic!("boom (expected by the test)") });
        let fine = main.spawn(async { "still running" });
        // The panic may use up the iteration's time budget (capturing a
        // backtrace is slow): `fine` then runs in a later iteration.
        while !(boom.is_finished() && fine.is_finished()) {
            event_loop
                .dispatch(Duration::from_secs(5), &mut ())
                .unwrap();
        }
        assert!(block_on(boom).unwrap_err().is_panic());
        assert_eq!(block_on(fine).unwrap(), "still running");
    });
}

#[test]
fn removing_the_source_shuts_the_engine_down() {
    watchdog(|| {
        let (event_loop, host) = loop_with_host(HostSource::new("removed"));
        let main = host.dispatcher();
        let queued = main.spawn(async { 1 });
        host.remove(&event_loop.handle());
        assert!(block_on(queued).unwrap_err().is_cancelled());
        let later = main.spawn(async { 2 });
        assert!(block_on(later).unwrap_err().is_cancelled());
        let from_elsewhere = std::thread::spawn(move || block_on(main.spawn(async { 3 })))
            .join()
            .unwrap();
        assert!(from_elsewhere.unwrap_err().is_cancelled());
    });
}

#[test]
fn dropping_the_loop_cancels_tasks_waiting_on_its_timers() {
    watchdog(|| {
        let (mut event_loop, host) = loop_with_host(untimed("dropped"));
        let main = host.dispatcher();
        let waiting = main.spawn(async {
            delay(Duration::from_secs(3600)).await;
            "never"
        });
        event_loop.dispatch(Duration::ZERO, &mut ()).unwrap();
        drop(event_loop);
        assert!(block_on(waiting).unwrap_err().is_cancelled());
        assert!(block_on(main.spawn(async {})).unwrap_err().is_cancelled());
    });
}

#[test]
fn a_source_inserted_by_hand_reports_each_run_to_its_callback() {
    watchdog(|| {
        let source = untimed("by-hand");
        let main = source.dispatcher();
        let mut event_loop: EventLoop<Vec<usize>> = EventLoop::try_new().unwrap();
        event_loop
            .handle()
            .insert_source(source, |report, &mut (), runs| runs.push(report.ran))
            .unwrap();
        let mut runs = Vec::new();
        // The first iteration runs the engine once, with nothing queued.
        event_loop.dispatch(Duration::ZERO, &mut runs).unwrap();
        assert_eq!(runs, [0]);
        let tasks: Vec<_> = (0..3).map(|i| main.spawn(async move { i })).collect();
        event_loop.dispatch(None, &mut runs).unwrap();
        assert_eq!(runs, [0, 3]);
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(block_on(task).unwrap(), i);
        }
    });
}

#[test]
fn a_disabled_source_keeps_its_tasks_until_enabled() {
    watchdog(|| {
        let (mut event_loop, host) = loop_with_host(untimed("paused"));
        let handle = event_loop.handle();
        handle.disable(&host.token()).unwrap();
        let main = host.dispatcher();
        let task = std::thread::spawn(move || main.spawn(async { "resumed" }))
            .join()
            .unwrap();
        event_loop
            .dispatch(Duration::from_millis(20), &mut ())
            .unwrap();
        assert!(!task.is_finished());
        handle.enable(&host.token()).unwrap();
        event_loop.dispatch(None, &mut ()).unwrap();
        assert_eq!(block_on(task).unwrap(), "resumed");
    });
}
