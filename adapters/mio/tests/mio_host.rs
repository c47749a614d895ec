//! `MioHost` on a real `mio::Poll`: wake-ups, their coalescing, timers,
//! budgets and shutdown. Every wait is bounded by a watchdog of seconds; the
//! assertions count events, wake-ups and runs, never durations.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use dispatchers::{Budget, MainDispatcher, block_on, delay};
use dispatchers_mio::MioHost;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

const WAKE: Token = Token(7);
const LISTENER: Token = Token(1);
/// How long a test may wait for something that should take milliseconds.
const WATCHDOG: Duration = Duration::from_secs(10);

fn new_host() -> io::Result<(Poll, MioHost)> {
    let poll = Poll::new()?;
    let host = MioHost::new(poll.registry(), WAKE)?;
    Ok((poll, host))
}

/// Polls (with the host's timeout) and runs the host until `done()`; returns
/// the number of loop iterations.
///
/// # Panics
///
/// When the watchdog runs out.
fn run_until(poll: &mut Poll, host: &MioHost, done: impl Fn() -> bool) -> io::Result<usize> {
    let give_up = Instant::now() + WATCHDOG;
    let mut events = Events::with_capacity(16);
    let mut iterations = 0;
    while !done() {
        assert!(
            Instant::now() < give_up,
            "watchdog: the loop never got there"
        );
        poll.poll(&mut events, Some(host.next_timeout_before(give_up)))?;
        host.run_pending(Budget::unlimited());
        iterations += 1;
    }
    Ok(iterations)
}

/// Polls until an event with the host's token arrives; returns how many did.
fn poll_for_wake(poll: &mut Poll, host: &MioHost) -> io::Result<usize> {
    let give_up = Instant::now() + WATCHDOG;
    let mut events = Events::with_capacity(16);
    loop {
        poll.poll(
            &mut events,
            Some(give_up.saturating_duration_since(Instant::now())),
        )?;
        let wakes = events.iter().filter(|e| host.is_wake_event(e)).count();
        if wakes > 0 {
            return Ok(wakes);
        }
        assert!(Instant::now() < give_up, "watchdog: no wake-up arrived");
    }
}

#[test]
fn public_handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<MainDispatcher>();
    send_sync::<mio::Waker>();
}

#[test]
fn a_dispatch_from_another_thread_ends_a_blocked_poll() -> io::Result<()> {
    let (mut poll, host) = new_host()?;
    let main = host.dispatcher();
    let spawner = thread::spawn(move || {
        // Give the loop a moment to block in `poll` (the test holds either way).
        thread::sleep(Duration::from_millis(20));
        main.spawn(async { thread::current().id() })
    });

    let started = Instant::now();
    assert_eq!(poll_for_wake(&mut poll, &host)?, 1);
    assert!(started.elapsed() < WATCHDOG);

    let task = spawner.join().expect("spawner panicked");
    assert_eq!(host.run_pending(Budget::unlimited()).ran, 1);
    assert!(task.is_finished());
    assert_eq!(block_on(task).expect("task failed"), thread::current().id());
    assert_eq!(host.engine().host_wakes(), 1);
    assert_eq!(host.failed_wakes(), 0);
    Ok(())
}

#[test]
fn wake_events_are_told_apart_from_socket_events() -> io::Result<()> {
    let (mut poll, host) = new_host()?;
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().expect("address"))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let _client = TcpStream::connect(listener.local_addr()?)?;
    host.dispatcher().spawn(async {}).detach();

    let give_up = Instant::now() + WATCHDOG;
    let mut events = Events::with_capacity(16);
    let (mut wakes, mut sockets) = (0, 0);
    while wakes == 0 || sockets == 0 {
        assert!(Instant::now() < give_up, "watchdog: missing events");
        poll.poll(&mut events, Some(WATCHDOG))?;
        for event in events.iter() {
            if host.is_wake_event(event) {
                wakes += 1;
            } else {
                assert_eq!(event.token(), LISTENER);
                sockets += 1;
            }
        }
    }
    assert_eq!(host.token(), WAKE);
    assert_eq!(wakes, 1);
    Ok(())
}

#[test]
fn a_burst_of_dispatches_between_two_polls_costs_one_wake() -> io::Result<()> {
    const BURST: usize = 100;
    let (mut poll, host) = new_host()?;
    let ran = Arc::new(AtomicUsize::new(0));

    for round in 1..=3u64 {
        let main = host.dispatcher();
        let counter = ran.clone();
        thread::spawn(move || {
            for _ in 0..BURST {
                let counter = counter.clone();
                main.spawn(async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                })
                .detach();
            }
        })
        .join()
        .expect("spawner panicked");

        assert_eq!(host.engine().host_wakes(), round, "one wake per burst");
        assert_eq!(poll_for_wake(&mut poll, &host)?, 1);
        assert_eq!(host.run_pending(Budget::unlimited()).ran, BURST);
        assert_eq!(ran.load(Ordering::Relaxed), BURST * round as usize);
    }
    Ok(())
}

#[test]
fn tasks_spawned_while_the_loop_drains_cost_no_wake() -> io::Result<()> {
    let (_poll, host) = new_host()?;
    let main = host.dispatcher();
    let ran = Arc::new(AtomicUsize::new(0));
    let (inner_main, counter) = (main.clone(), ran.clone());
    main.spawn(async move {
        for _ in 0..10 {
            let counter = counter.clone();
            inner_main
                .spawn(async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                })
                .detach();
        }
    })
    .detach();
    assert_eq!(host.engine().host_wakes(), 1);

    let report = host.run_pending(Budget::unlimited());
    assert_eq!(report.ran, 11, "the spawned tasks run in the same call");
    assert_eq!(ran.load(Ordering::Relaxed), 10);
    assert_eq!(host.engine().host_wakes(), 1);
    Ok(())
}

#[test]
fn delay_resumes_through_next_timeout_without_another_thread() -> io::Result<()> {
    let (mut poll, host) = new_host()?;
    let wait = Duration::from_millis(50);
    let task = host.dispatcher().spawn(async move {
        let started = Instant::now();
        delay(wait).await;
        (thread::current().id(), started.elapsed())
    });
    assert_eq!(host.engine().host_wakes(), 1);
    assert_eq!(
        host.next_timeout(),
        Some(Duration::ZERO),
        "a task is queued"
    );

    host.run_pending(Budget::unlimited());
    assert_eq!(host.engine().pending_timers(), 1, "the loop's own timer");
    let timeout = host.next_timeout();
    if cfg!(any(target_os = "linux", target_os = "android")) {
        // The host's timerfd ends the poll (see tests/timerfd.rs).
        assert!(matches!(timeout, None | Some(Duration::ZERO)));
    } else {
        assert!(timeout.expect("a deadline") <= wait);
    }

    let iterations = run_until(&mut poll, &host, || task.is_finished())?;
    assert!(iterations >= 1);
    let (thread_id, slept) = block_on(task).expect("task failed");
    assert_eq!(thread_id, thread::current().id());
    assert!(slept >= wait);
    // A timer thread would have resumed the task with a dispatch, and woken
    // the loop: the only wake-up is the first spawn's.
    assert_eq!(host.engine().host_wakes(), 1);
    assert_eq!(host.engine().pending_timers(), 0);
    assert_eq!(host.next_timeout(), None);
    Ok(())
}

#[test]
fn next_timeout_before_is_capped_by_the_deadline_and_by_queued_work() -> io::Result<()> {
    let (_poll, host) = new_host()?;
    assert_eq!(host.next_timeout(), None);

    let tick = Instant::now() + Duration::from_secs(1);
    let timeout = host.next_timeout_before(tick);
    assert!(timeout > Duration::ZERO && timeout <= Duration::from_secs(1));
    let passed = Instant::now()
        .checked_sub(Duration::from_millis(1))
        .unwrap_or_else(Instant::now);
    assert_eq!(host.next_timeout_before(passed), Duration::ZERO);

    host.dispatcher().spawn(async {}).detach();
    assert_eq!(host.next_timeout_before(tick), Duration::ZERO);
    host.run_pending(Budget::unlimited());

    // A pending delay earlier than the tick shortens the timeout, unless the
    // host's timerfd takes care of it (see tests/timerfd.rs).
    let task = host.dispatcher().spawn(delay(Duration::from_millis(200)));
    host.run_pending(Budget::unlimited());
    let far_tick = Instant::now() + Duration::from_secs(60);
    let timeout = host.next_timeout_before(far_tick);
    if cfg!(any(target_os = "linux", target_os = "android")) {
        assert!(timeout > Duration::from_millis(200) && timeout <= Duration::from_secs(60));
    } else {
        assert!(timeout <= Duration::from_millis(200));
    }
    drop(task);
    Ok(())
}

#[test]
fn work_left_by_the_budget_wakes_the_next_poll() -> io::Result<()> {
    let (mut poll, host) = new_host()?;
    let main = host.dispatcher();
    for _ in 0..3 {
        main.spawn(async {}).detach();
    }
    assert_eq!(poll_for_wake(&mut poll, &host)?, 1);

    let report = host.run_pending(Budget::unlimited().max_tasks(1));
    assert_eq!(report.ran, 1);
    assert!(report.more_pending);
    assert_eq!(
        host.engine().host_wakes(),
        2,
        "the leftover re-armed the wake"
    );
    assert_eq!(poll_for_wake(&mut poll, &host)?, 1);

    let report = host.run_pending(Budget::unlimited());
    assert_eq!(report.ran, 2);
    assert!(!report.more_pending);
    Ok(())
}

#[test]
fn dropping_the_host_cancels_queued_and_later_tasks() -> io::Result<()> {
    let (poll, host) = new_host()?;
    let main = host.dispatcher();
    let queued = main.spawn(async { 1 });
    drop(host);
    drop(poll);
    let late = main.spawn(async { 2 });

    assert!(
        block_on(queued)
            .expect_err("ran after shutdown")
            .is_cancelled()
    );
    assert!(
        block_on(late)
            .expect_err("ran after shutdown")
            .is_cancelled()
    );
    Ok(())
}

#[test]
fn hosts_carry_their_names() -> io::Result<()> {
    let poll = Poll::new()?;
    let host = MioHost::with_name("lobby", poll.registry(), WAKE)?;
    assert_eq!(host.dispatcher().name(), "lobby");
    assert_eq!(host.engine().name(), "lobby");
    assert!(format!("{host:?}").contains("lobby"));

    let (_poll, plain) = new_host()?;
    assert_eq!(plain.dispatcher().name(), "mio");
    Ok(())
}
