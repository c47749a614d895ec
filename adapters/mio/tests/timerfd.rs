//! The host's timerfd (Linux and Android): `delay` deadlines end a poll that
//! has no timeout, with an event on the host's token.
//!
//! No assertion depends on how fast the machine is: a timerfd never expires
//! before its deadline, the loop's only other wake-up source is the waker
//! (counted by `host_wakes`), and every poll that waits on the timerfd alone
//! is bounded by a watchdog of seconds that fails the test instead of hanging.

#![cfg(any(target_os = "linux", target_os = "android"))]

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use dispatchers::{Budget, block_on, delay, delay_until};
use dispatchers_mio::MioHost;
use mio::{Events, Poll, Token};

const WAKE: Token = Token(3);
/// How long a poll may wait for a timerfd that should expire within
/// milliseconds before the test fails.
const WATCHDOG: Duration = Duration::from_secs(5);
/// How long a whole test may loop.
const GIVE_UP: Duration = Duration::from_secs(30);
/// A `delay` well under mio's millisecond resolution.
const SHORT: Duration = Duration::from_micros(300);

fn new_host() -> io::Result<(Poll, MioHost)> {
    let poll = Poll::new()?;
    let host = MioHost::new(poll.registry(), WAKE)?;
    Ok((poll, host))
}

/// Takes the events already pending on `poll` (a spawn's wake-up) without
/// waiting; returns how many carry the host's token.
fn drain(poll: &mut Poll, host: &MioHost) -> io::Result<usize> {
    let mut events = Events::with_capacity(16);
    poll.poll(&mut events, Some(Duration::ZERO))?;
    Ok(events.iter().filter(|e| host.is_wake_event(e)).count())
}

/// The loop of a server, polling with `next_timeout()` until `done()`, with
/// no other source registered: a poll that has no timeout (the timerfd's
/// turn) waits at most [`WATCHDOG`] and must end with a host event. Returns
/// how many polls the timerfd ended.
///
/// # Panics
///
/// When a timerfd poll times out, when an event is not the host's, or after
/// [`GIVE_UP`].
fn serve_until(poll: &mut Poll, host: &MioHost, done: impl Fn() -> bool) -> io::Result<usize> {
    let give_up = Instant::now() + GIVE_UP;
    let mut events = Events::with_capacity(16);
    let mut timer_polls = 0;
    while !done() {
        assert!(
            Instant::now() < give_up,
            "watchdog: the loop never got there"
        );
        let timeout = host.next_timeout();
        poll.poll(&mut events, Some(timeout.unwrap_or(WATCHDOG)))?;
        assert!(
            events.iter().all(|e| host.is_wake_event(e)),
            "only the host's sources are registered"
        );
        if timeout.is_none() {
            assert!(
                !events.is_empty(),
                "watchdog: the timerfd did not end the poll in {WATCHDOG:?}"
            );
            timer_polls += 1;
        }
        host.run_pending(Budget::unlimited());
    }
    Ok(timer_polls)
}

#[test]
fn a_pending_delay_arms_the_timerfd_instead_of_a_poll_timeout() -> io::Result<()> {
    let (mut poll, host) = new_host()?;
    let task = host.dispatcher().spawn(async {
        let deadline = Instant::now() + SHORT;
        delay_until(deadline).await;
        deadline
    });
    assert_eq!(drain(&mut poll, &host)?, 1, "the spawn's wake-up");
    host.run_pending(Budget::unlimited());
    assert_eq!(host.engine().pending_timers(), 1);

    // Under a millisecond away: mio would round a timeout up; the host asks
    // for none and arms its timerfd.
    let timeout = host.next_timeout();
    if timeout == Some(Duration::ZERO) {
        // The machine was slower than `SHORT`: the deadline has passed.
        assert!(host.engine().next_deadline() <= Some(Instant::now()));
    } else {
        assert_eq!(timeout, None, "the timerfd ends the poll");
        let mut events = Events::with_capacity(16);
        poll.poll(&mut events, Some(WATCHDOG))?;
        let woke = Instant::now();
        assert!(
            !events.is_empty(),
            "watchdog: the timerfd did not end the poll in {WATCHDOG:?}"
        );
        assert!(events.iter().all(|e| host.is_wake_event(e)));
        assert!(
            host.engine().next_deadline() <= Some(woke),
            "a timerfd never expires early"
        );
    }
    let report = host.run_pending(Budget::unlimited());
    assert_eq!(report.timers_fired, 1);
    assert!(task.is_finished());
    let deadline = block_on(task).expect("task failed");
    assert!(Instant::now() >= deadline);
    assert_eq!(
        host.engine().host_wakes(),
        1,
        "the spawn's only: no dispatch"
    );
    assert_eq!(host.next_timeout(), None, "nothing left to wait for");
    Ok(())
}

#[test]
fn fifty_short_delays_in_a_row_all_wake_the_loop() -> io::Result<()> {
    const ROUNDS: usize = 50;
    let (mut poll, host) = new_host()?;
    let done = Arc::new(AtomicUsize::new(0));
    let counter = done.clone();
    // Each delay is registered after the last one fired, with the timerfd
    // expired and never read: a re-arming must still wake the poll.
    let task = host.dispatcher().spawn(async move {
        for _ in 0..ROUNDS {
            delay(SHORT).await;
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let timer_polls = serve_until(&mut poll, &host, || task.is_finished())?;
    block_on(task).expect("task failed");
    assert_eq!(done.load(Ordering::Relaxed), ROUNDS);
    assert!(timer_polls <= ROUNDS);
    assert_eq!(
        host.engine().host_wakes(),
        1,
        "the spawn's only: no dispatch"
    );
    assert_eq!(host.engine().pending_timers(), 0);
    Ok(())
}

#[test]
fn a_cancelled_delay_leaves_the_next_one_working() -> io::Result<()> {
    let (mut poll, host) = new_host()?;
    let main = host.dispatcher();

    // A far deadline, armed by `next_timeout`, then cancelled.
    let far = main.spawn(delay(Duration::from_secs(60)));
    drain(&mut poll, &host)?;
    host.run_pending(Budget::unlimited());
    assert_eq!(host.next_timeout(), None, "armed 60 s ahead");
    drop(far); // the loop drops its future, and so its timer, on its next run
    serve_until(&mut poll, &host, || host.engine().next_deadline().is_none())?;
    assert_eq!(host.next_timeout(), None, "disarmed");

    // A near one, re-armed on the same timerfd.
    let near = main.spawn(delay(SHORT));
    serve_until(&mut poll, &host, || near.is_finished())?;
    block_on(near).expect("task failed");

    // Two, the earlier cancelled while the timerfd is armed at it: the
    // timerfd moves to the later one (had the earlier expired meanwhile, on
    // a slow machine, its expiration would only be a spurious wake-up).
    let earlier = main.spawn(delay(Duration::from_millis(2)));
    let later = main.spawn(delay(Duration::from_millis(4)));
    drain(&mut poll, &host)?;
    host.run_pending(Budget::unlimited());
    assert_eq!(host.engine().pending_timers(), 2);
    // Armed at the earlier deadline (zero: it has passed already).
    assert!(matches!(host.next_timeout(), None | Some(Duration::ZERO)));
    drop(earlier);
    serve_until(&mut poll, &host, || later.is_finished())?;
    block_on(later).expect("task failed");
    assert_eq!(host.engine().pending_timers(), 0);
    assert_eq!(host.next_timeout(), None, "disarmed");
    Ok(())
}

#[test]
fn a_disarmed_timerfd_stays_quiet() -> io::Result<()> {
    let (mut poll, host) = new_host()?;
    let far = Duration::from_millis(200);
    let task = host.dispatcher().spawn(delay(far));
    drain(&mut poll, &host)?;
    host.run_pending(Budget::unlimited());
    let deadline = host.engine().next_deadline().expect("a deadline");
    assert_eq!(host.next_timeout(), None, "armed");
    drop(task);
    drain(&mut poll, &host)?;
    host.run_pending(Budget::unlimited()); // drops the delay
    assert_eq!(host.engine().next_deadline(), None);
    assert_eq!(host.next_timeout(), None, "disarmed");
    let disarmed_in_time = Instant::now() < deadline;

    // Past the old deadline: nothing wakes the poll.
    let mut events = Events::with_capacity(16);
    poll.poll(&mut events, Some(far + Duration::from_millis(50)))?;
    if disarmed_in_time {
        assert!(events.is_empty(), "the disarmed timerfd expired");
    }
    Ok(())
}

#[test]
fn next_timeout_before_a_tick_leaves_the_delay_to_the_timerfd() -> io::Result<()> {
    let (mut poll, host) = new_host()?;
    let task = host.dispatcher().spawn(delay(SHORT));
    drain(&mut poll, &host)?;
    host.run_pending(Budget::unlimited());
    assert_eq!(host.engine().pending_timers(), 1);

    let tick = Instant::now() + WATCHDOG;
    let timeout = host.next_timeout_before(tick);
    if timeout > Duration::ZERO {
        // Up to the tick: the delay's deadline is the timerfd's.
        assert!(timeout > SHORT);
        let mut events = Events::with_capacity(16);
        poll.poll(&mut events, Some(timeout))?;
        assert!(
            !events.is_empty(),
            "watchdog: the timerfd did not end the poll before the tick"
        );
        assert!(events.iter().all(|e| host.is_wake_event(e)));
    }
    host.run_pending(Budget::unlimited());
    assert!(task.is_finished());
    block_on(task).expect("task failed");
    Ok(())
}

#[test]
fn a_passed_deadline_means_a_zero_timeout() -> io::Result<()> {
    let (mut poll, host) = new_host()?;
    let task = host.dispatcher().spawn(delay(Duration::from_millis(1)));
    drain(&mut poll, &host)?;
    host.run_pending(Budget::unlimited());
    thread::sleep(Duration::from_millis(2));
    assert_eq!(host.next_timeout(), Some(Duration::ZERO));
    let far_tick = Instant::now() + WATCHDOG;
    assert_eq!(host.next_timeout_before(far_tick), Duration::ZERO);
    assert_eq!(host.run_pending(Budget::unlimited()).timers_fired, 1);
    assert!(task.is_finished());
    Ok(())
}

#[test]
fn dropping_an_armed_host_deregisters_its_timerfd() -> io::Result<()> {
    let (mut poll, host) = new_host()?;
    let task = host.dispatcher().spawn(delay(Duration::from_millis(1)));
    drain(&mut poll, &host)?;
    host.run_pending(Budget::unlimited());
    let armed = host.next_timeout();
    drop(host);
    assert!(
        block_on(task)
            .expect_err("ran after shutdown")
            .is_cancelled()
    );
    if armed.is_none() {
        // Past the deadline it was armed at: the timerfd is gone.
        let mut events = Events::with_capacity(16);
        poll.poll(&mut events, Some(Duration::from_millis(20)))?;
        assert!(events.is_empty(), "an event from a dropped host");
    }

    // And the other way round: the `Poll` first, then the host.
    let (poll, host) = new_host()?;
    let task = host.dispatcher().spawn(delay(Duration::from_secs(60)));
    host.run_pending(Budget::unlimited());
    assert_eq!(host.next_timeout(), None, "armed");
    drop(poll);
    drop(host);
    drop(task);
    Ok(())
}
