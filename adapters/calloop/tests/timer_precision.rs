//! Measures how late `delay`s on a calloop loop resume, for the ways a host
//! can wake the loop at the engine's next deadline. Ignored by default; run
//! it in release, on a quiet machine:
//!
//! ```text
//! cargo test -p dispatchers-calloop --release --test timer_precision -- --ignored --nocapture
//! ```
//!
//! - `before_sleep`: this crate's [`HostSource`] (one calloop `Timer`,
//!   re-armed in `EventSource::before_sleep`);
//! - `reregister`: [`RearmSource`] below, the other way: one calloop `Timer`
//!   re-armed after each `run_pending` by returning `PostAction::Reregister`;
//! - `timer-per-delay`: no dispatcher, one calloop `Timer` source per delay
//!   (what calloop users write by hand), as a reference.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calloop::ping::{PingSource, make_ping};
use calloop::timer::{TimeoutAction, Timer};
use calloop::{EventLoop, EventSource, Poll, PostAction, Readiness, Token, TokenFactory};
use dispatchers::{Budget, HostEngine, MainDispatcher, delay_until};
use dispatchers_calloop::{CalloopHost, DEFAULT_BUDGET};

const DELAYS: usize = 10_000;
const ROUNDS: usize = 3;

/// `DELAYS` durations spread over 1..50 ms (a fixed pseudo-random sequence).
fn durations() -> Vec<Duration> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..DELAYS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_millis(1) + Duration::from_micros(x % 49_000)
        })
        .collect()
}

struct Run {
    /// (deadline, lateness) of each delay.
    lateness: Vec<(Instant, Duration)>,
    iterations: usize,
}

fn row(way: &str, run: &Run) {
    assert_eq!(run.lateness.len(), DELAYS);
    let first = run.lateness.iter().map(|(d, _)| *d).min().unwrap();
    // The delays due once the start-up burst (10,000 first polls) is over.
    let settled = run
        .lateness
        .iter()
        .filter(|(d, _)| *d >= first + Duration::from_millis(10))
        .map(|(_, late)| *late)
        .max()
        .unwrap();
    let mut v: Vec<Duration> = run.lateness.iter().map(|(_, late)| *late).collect();
    v.sort();
    let pick = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    println!(
        "{way:<16} p50 {:>9.3?}  p99 {:>9.3?}  max {:>9.3?}  max after 10 ms {:>9.3?}  loop iterations {}",
        pick(0.50),
        pick(0.99),
        v[v.len() - 1],
        settled,
        run.iterations
    );
}

/// Spawns one task per duration on `main`; each records how late its
/// `delay_until` resumed.
fn spawn_delays(
    main: &MainDispatcher,
    done: &Arc<AtomicUsize>,
) -> Arc<Mutex<Vec<(Instant, Duration)>>> {
    let lateness = Arc::new(Mutex::new(Vec::with_capacity(DELAYS)));
    for d in durations() {
        let lateness = lateness.clone();
        let done = done.clone();
        main.spawn(async move {
            let deadline = Instant::now() + d;
            delay_until(deadline).await;
            let late = Instant::now().saturating_duration_since(deadline);
            lateness.lock().unwrap().push((deadline, late));
            done.fetch_add(1, Ordering::Release);
        })
        .detach();
    }
    lateness
}

fn drive<Data>(event_loop: &mut EventLoop<'_, Data>, data: &mut Data, done: &AtomicUsize) -> usize {
    let mut iterations = 0;
    while done.load(Ordering::Acquire) < DELAYS {
        event_loop.dispatch(None, data).unwrap();
        iterations += 1;
    }
    iterations
}

fn before_sleep_way() -> Run {
    let mut event_loop: EventLoop<()> = EventLoop::try_new().unwrap();
    let host = CalloopHost::insert(&event_loop.handle()).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let lateness = spawn_delays(&host.dispatcher(), &done);
    let iterations = drive(&mut event_loop, &mut (), &done);
    let lateness = std::mem::take(&mut *lateness.lock().unwrap());
    Run {
        lateness,
        iterations,
    }
}

/// The other way: a `Timer` re-armed by re-registration after each
/// `run_pending` (no lifecycle hooks).
struct RearmSource {
    engine: HostEngine,
    ping_source: PingSource,
    timer: Timer,
    armed: Option<Instant>,
    budget: Budget,
}

impl RearmSource {
    fn new() -> Self {
        let (ping, ping_source) = make_ping().unwrap();
        RearmSource {
            engine: HostEngine::new("rearm", move || ping.ping()),
            ping_source,
            timer: Timer::immediate(),
            armed: None,
            budget: DEFAULT_BUDGET,
        }
    }
}

impl EventSource for RearmSource {
    type Event = ();
    type Metadata = ();
    type Ret = ();
    type Error = calloop::Error;

    fn process_events<F>(
        &mut self,
        readiness: Readiness,
        token: Token,
        _callback: F,
    ) -> Result<PostAction, Self::Error>
    where
        F: FnMut((), &mut ()),
    {
        let mut pinged = false;
        self.ping_source
            .process_events(readiness, token, |(), &mut ()| pinged = true)
            .map_err(|e| calloop::Error::OtherError(Box::new(e)))?;
        let mut fired = false;
        self.timer.process_events(readiness, token, |_, &mut ()| {
            fired = true;
            TimeoutAction::Drop
        })?;
        if fired {
            self.armed = None;
        }
        if !(pinged || fired) {
            return Ok(PostAction::Continue);
        }
        self.engine.run_pending(self.budget);
        match self.engine.next_deadline() {
            Some(next) if Some(next) != self.armed => {
                self.timer.set_deadline(next);
                self.armed = Some(next);
                Ok(PostAction::Reregister)
            }
            _ => Ok(PostAction::Continue),
        }
    }

    fn register(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.ping_source.register(poll, factory)?;
        self.armed = self.timer.current_deadline();
        self.timer.register(poll, factory)
    }

    fn reregister(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.ping_source.reregister(poll, factory)?;
        self.timer.reregister(poll, factory)
    }

    fn unregister(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        self.ping_source.unregister(poll)?;
        self.timer.unregister(poll)
    }
}

fn reregister_way() -> Run {
    let mut event_loop: EventLoop<()> = EventLoop::try_new().unwrap();
    let source = RearmSource::new();
    let main = source.engine.dispatcher();
    event_loop
        .handle()
        .insert_source(source, |(), &mut (), _| {})
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let lateness = spawn_delays(&main, &done);
    let iterations = drive(&mut event_loop, &mut (), &done);
    let lateness = std::mem::take(&mut *lateness.lock().unwrap());
    Run {
        lateness,
        iterations,
    }
}

fn timer_per_delay_way() -> Run {
    let mut event_loop: EventLoop<Vec<(Instant, Duration)>> = EventLoop::try_new().unwrap();
    let handle = event_loop.handle();
    let done = Arc::new(AtomicUsize::new(0));
    for d in durations() {
        let done = done.clone();
        handle
            .insert_source(
                Timer::from_duration(d),
                move |deadline, &mut (), lateness| {
                    lateness.push((deadline, Instant::now().saturating_duration_since(deadline)));
                    done.fetch_add(1, Ordering::Release);
                    TimeoutAction::Drop
                },
            )
            .unwrap();
    }
    let mut lateness = Vec::with_capacity(DELAYS);
    let iterations = drive(&mut event_loop, &mut lateness, &done);
    Run {
        lateness,
        iterations,
    }
}

/// Runs `way` on a thread of its own (each engine binds its thread's timers).
fn on_fresh_thread(way: fn() -> Run) -> Run {
    std::thread::spawn(way).join().unwrap()
}

#[test]
#[ignore = "measurement: run in release with --ignored --nocapture"]
fn lateness_of_10_000_delays() {
    println!("{DELAYS} delays of 1..50 ms; lateness of the resumption");
    for round in 1..=ROUNDS {
        println!("round {round}");
        row("before_sleep", &on_fresh_thread(before_sleep_way));
        row("reregister", &on_fresh_thread(reregister_way));
        row("timer-per-delay", &on_fresh_thread(timer_per_delay_way));
    }
}
