//! Timers. Lateness: 10,000 tasks each sleep a random 1–50 ms (the same
//! seeded durations for every contender), started together; each records
//! how late it resumed past its own deadline. Insertion: one task registers
//! 1,000,000 timers (deadlines 1–60 s ahead, so none fires) by polling each
//! timer future once (creating it, then its first poll, which registers it),
//! into storage allocated and touched beforehand; we time it, and count the
//! heap bytes the timer service allocates meanwhile with the bench's
//! counting allocator. Beside them, in the same rounds, the floors of the
//! two ways to keep timers, outside the timer future and inside it
//! (`timer_floors.rs`).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use calloop::EventLoop;
use calloop::timer::{TimeoutAction, Timer};
use dispatchers::{Delay, MainDispatcher, delay_until};
use dispatchers_calloop::CalloopHost;
use dispatchers_mio::MioHost;

use crate::alloc;
use crate::harness::{Config, LatencyRounds, Rng, Signal, alternate, median, on_thread};
use crate::loops::{MioLoop, ParkLoop, TokioLoop};
use crate::report::{Report, Row, Target, Unit};
use crate::timer_floors;

const OURS: &str = "ours (mio host)";
const OURS_CALLOOP: &str = "ours (calloop host)";
const OURS_PARK: &str = "ours (LoopHost, park_timeout)";
const TOKIO: &str = "tokio current_thread";
const CALLOOP: &str = "calloop Timer";
const STORE_FLOOR: &str = "waker clone + 24-B push (floor)";
const INTRUSIVE_SEND: &str = "intrusive, for a Send timer (floor)";
const INTRUSIVE_LOOP_ONLY: &str = "intrusive, for a loop-only timer (floor)";
pub const PANEL: &str = "delay lateness, 10,000 delays of 1–50 ms";

pub fn run(config: &Config, report: &mut Report) {
    lateness(config, report);
    insertion(config, report);
}

/// Where the sleepers record their lateness; the last one sets `done`.
struct Lateness {
    samples: Vec<AtomicU64>,
    left: AtomicUsize,
    done: Signal,
}

impl Lateness {
    fn new(n: usize) -> Arc<Lateness> {
        Arc::new(Lateness {
            samples: (0..n).map(|_| AtomicU64::new(0)).collect(),
            left: AtomicUsize::new(n),
            done: Signal::new(),
        })
    }

    fn record(&self, i: usize, deadline: Instant) {
        let late = Instant::now().saturating_duration_since(deadline);
        self.samples[i].store(late.as_nanos() as u64, Ordering::Relaxed);
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.set();
        }
    }

    fn wait(&self) -> Vec<u64> {
        self.done
            .wait_blocking(Duration::from_secs(60), "the sleeping tasks");
        self.samples
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect()
    }
}

fn durations(n: usize, seed: u64) -> Vec<Duration> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| Duration::from_micros(1_000 + rng.below(49_001)))
        .collect()
}

fn lateness(config: &Config, report: &mut Report) {
    let n = config.size(10_000, 10_000, 200);
    let names = [OURS, TOKIO, CALLOOP, OURS_CALLOOP, OURS_PARK];
    let rounds = alternate(config.rounds, &names, |which, round| {
        let durations = durations(n, 0xde1a + round as u64);
        match names[which] {
            OURS => ours_lateness(&durations),
            TOKIO => tokio_lateness(&durations),
            CALLOOP => calloop_lateness(&durations),
            OURS_CALLOOP => ours_calloop_lateness(&durations),
            _ => ours_park_lateness(&durations),
        }
    });
    let stats: Vec<LatencyRounds> = rounds
        .into_iter()
        .map(|per_round| per_round.into_iter().collect())
        .collect();
    let (ours, tokio, calloop) = (&stats[0], &stats[1], &stats[2]);
    let (ours_calloop, ours_park) = (&stats[3], &stats[4]);
    report.push(Row::alone(
        "10k delays 1–50 ms on Main: lateness p50",
        Unit::Nanos,
        ours.p50(),
        Target::AtMost(100_000.0),
    ));
    report.push(Row::alone(
        "10k delays 1–50 ms on Main: lateness p99",
        Unit::Nanos,
        ours.p99(),
        Target::AtMost(1_000_000.0),
    ));
    for (peer, s) in [(TOKIO, tokio), (CALLOOP, calloop)] {
        report.push(Row::vs(
            "10k delays: lateness p50",
            Unit::Nanos,
            ours.p50(),
            peer,
            s.p50(),
            Target::RatioAtMost(1.0),
        ));
        report.push(Row::vs(
            "10k delays: lateness p99",
            Unit::Nanos,
            ours.p99(),
            peer,
            s.p99(),
            Target::RatioAtMost(1.0),
        ));
    }
    report.push(Row::vs(
        "10k delays on the calloop host: lateness p50",
        Unit::Nanos,
        ours_calloop.p50(),
        CALLOOP,
        calloop.p50(),
        Target::Info,
    ));
    report.push(Row::vs(
        "10k delays on the calloop host: lateness p99",
        Unit::Nanos,
        ours_calloop.p99(),
        CALLOOP,
        calloop.p99(),
        Target::Info,
    ));
    for (label, s) in [("p50", ours_park.p50()), ("p99", ours_park.p99())] {
        report.push(Row::alone(
            format!("10k delays on a LoopHost (park_timeout): lateness {label}"),
            Unit::Nanos,
            s,
            Target::Info,
        ));
    }
    for (name, stats) in names.iter().zip(&stats) {
        report.keep_distribution(PANEL, name, stats.all.clone());
    }
}

fn ours_lateness(durations: &[Duration]) -> Vec<u64> {
    let host = MioLoop::start();
    lateness_on(host.main(), durations)
}

/// The same engine on a loop that sleeps with `park_timeout`: what the mio
/// host would show with a sub-millisecond poll timeout.
fn ours_park_lateness(durations: &[Duration]) -> Vec<u64> {
    let host = ParkLoop::start();
    lateness_on(host.main(), durations)
}

/// One task per duration on `main`, each recording how late its
/// `delay_until` woke it; returns once all have.
fn lateness_on(main: &MainDispatcher, durations: &[Duration]) -> Vec<u64> {
    let record = Lateness::new(durations.len());
    for (i, &d) in durations.iter().enumerate() {
        let record = record.clone();
        main.spawn(async move {
            let deadline = Instant::now() + d;
            delay_until(deadline).await;
            record.record(i, deadline);
        })
        .detach();
    }
    record.wait()
}

fn tokio_lateness(durations: &[Duration]) -> Vec<u64> {
    let rt = TokioLoop::start();
    let record = Lateness::new(durations.len());
    for (i, &d) in durations.iter().enumerate() {
        let record = record.clone();
        drop(rt.handle().spawn(async move {
            let deadline = Instant::now() + d;
            tokio::time::sleep_until(deadline.into()).await;
            record.record(i, deadline);
        }));
    }
    record.wait()
}

/// One calloop `Timer` source per sleeper, on a loop of its own.
fn calloop_lateness(durations: &[Duration]) -> Vec<u64> {
    on_thread("calloop-timers", || {
        let mut event_loop: EventLoop<()> = EventLoop::try_new().expect("calloop loop");
        let handle = event_loop.handle();
        let record = Lateness::new(durations.len());
        for (i, &d) in durations.iter().enumerate() {
            let deadline = Instant::now() + d;
            let record = record.clone();
            handle
                .insert_source(Timer::from_deadline(deadline), move |_, _, _| {
                    record.record(i, deadline);
                    TimeoutAction::Drop
                })
                .expect("insert a timer");
        }
        while !record.done.is_set() {
            event_loop.dispatch(None, &mut ()).expect("dispatch");
        }
        record.wait()
    })
}

/// Ours on a calloop loop (`CalloopHost`), for comparison with calloop's
/// own timers on the same kind of loop.
fn ours_calloop_lateness(durations: &[Duration]) -> Vec<u64> {
    on_thread("ours-calloop", || {
        let mut event_loop: EventLoop<()> = EventLoop::try_new().expect("calloop loop");
        let host = CalloopHost::insert(&event_loop.handle()).expect("calloop host");
        let main = host.dispatcher();
        let record = Lateness::new(durations.len());
        for (i, &d) in durations.iter().enumerate() {
            let record = record.clone();
            main.spawn(async move {
                let deadline = Instant::now() + d;
                delay_until(deadline).await;
                record.record(i, deadline);
            })
            .detach();
        }
        while !record.done.is_set() {
            event_loop.dispatch(None, &mut ()).expect("dispatch");
        }
        record.wait()
    })
}

/// One insertion run: time, and heap bytes allocated by the timer service.
#[derive(Debug, Clone, Copy)]
pub struct Inserted {
    nanos: f64,
    heap_bytes: f64,
}

fn insertion(config: &Config, report: &mut Report) {
    let n = config.size(1_000_000, 1_000_000, 2_000);
    let names = [
        OURS,
        TOKIO,
        STORE_FLOOR,
        INTRUSIVE_SEND,
        INTRUSIVE_LOOP_ONLY,
    ];
    let rounds = alternate(config.rounds, &names, |which, round| {
        let mut rng = Rng::new(0x7173 + round as u64);
        let base = Instant::now();
        let deadlines: Vec<Instant> = (0..n)
            .map(|_| base + Duration::from_millis(1_000 + rng.below(59_000)))
            .collect();
        on_thread(&format!("insert-{which}"), || match names[which] {
            OURS => ours_insert(&deadlines),
            TOKIO => tokio_insert(&deadlines),
            STORE_FLOOR => timer_floors::outside_store(&deadlines),
            INTRUSIVE_SEND => timer_floors::intrusive_send(&deadlines),
            _ => timer_floors::intrusive_loop_only(&deadlines),
        })
    });
    let time = |i: usize| median(&rounds[i].iter().map(|r| r.nanos).collect::<Vec<_>>());
    let bytes = |i: usize| median(&rounds[i].iter().map(|r| r.heap_bytes).collect::<Vec<_>>());
    let label = if n == 1_000_000 {
        "insert 1M timers".to_owned()
    } else {
        format!("insert {n} timers")
    };
    report.push(Row::vs(
        format!("{label}: time"),
        Unit::Nanos,
        time(0),
        TOKIO,
        time(1),
        Target::RatioAtMost(0.25),
    ));
    // What a quarter of tokio's time leaves: no store outside the future
    // gets under this floor (see BENCHMARKS.md).
    report.push(Row::vs(
        format!("{label}: time of a store's floor (waker clone + 24-B push)"),
        Unit::Nanos,
        time(2),
        TOKIO,
        time(1),
        Target::Info,
    ));
    // What tokio's design costs at the least: for a `Send` timer future
    // (under a lock, holding its store), and for one that never leaves the
    // loop's thread (neither).
    report.push(Row::vs(
        format!("{label}: time of an intrusive store's floor, Send timer (lock + store ref)"),
        Unit::Nanos,
        time(3),
        TOKIO,
        time(1),
        Target::Info,
    ));
    report.push(Row::vs(
        format!("{label}: time of an intrusive store's floor, loop-only timer"),
        Unit::Nanos,
        time(4),
        TOKIO,
        time(1),
        Target::Info,
    ));
    report.push(Row::alone(
        format!("{label}: heap bytes per timer"),
        Unit::Bytes,
        bytes(0),
        Target::AtMost(64.0),
    ));
    report.push(Row::vs(
        format!("{label}: heap bytes per timer"),
        Unit::Bytes,
        bytes(0),
        TOKIO,
        bytes(1),
        Target::Info,
    ));
    report.push(Row::vs(
        format!("{label}: bytes per timer + its future"),
        Unit::Bytes,
        bytes(0) + std::mem::size_of::<Delay>() as f64,
        TOKIO,
        bytes(1) + std::mem::size_of::<tokio::time::Sleep>() as f64,
        Target::Info,
    ));
}

/// On a fresh host thread: a task (run in place by `immediate`, so that the
/// timers get a real task waker) polls each `Delay` once.
fn ours_insert(deadlines: &[Instant]) -> Inserted {
    in_our_task(deadlines, |deadlines, cx| {
        let mut delays: Vec<Delay> = Vec::with_capacity(deadlines.len());
        // Fault the storage's pages in before the clock starts.
        delays.extend(deadlines.iter().map(|&d| delay_until(d)));
        delays.clear();
        let inserted = timed(deadlines.len(), || {
            for &deadline in deadlines {
                delays.push(delay_until(deadline));
                let delay = delays.last_mut().expect("just pushed");
                assert!(Pin::new(delay).poll(cx).is_pending());
            }
        });
        drop(delays);
        inserted
    })
}

/// Runs `insert` in one poll of a task on a fresh mio host on this thread,
/// run in place by `immediate` so that it has a real task waker.
pub fn in_our_task(
    deadlines: &[Instant],
    insert: fn(&[Instant], &mut Context<'_>) -> Inserted,
) -> Inserted {
    let poll = mio::Poll::new().expect("mio Poll");
    let host = MioHost::new(poll.registry(), mio::Token(0)).expect("mio host");
    let deadlines = deadlines.to_vec();
    let task = host
        .dispatcher()
        .immediate()
        .spawn(poll_fn(move |cx| Poll::Ready(insert(&deadlines, cx))));
    assert!(task.is_finished(), "immediate ran the task in place");
    futures_lite::future::block_on(task).expect("insertion task")
}

/// Times `insert` of `n` timers and counts the heap bytes it allocates.
pub fn timed(n: usize, insert: impl FnOnce()) -> Inserted {
    let window = alloc::Window::start();
    let start = Instant::now();
    insert();
    let nanos = start.elapsed().as_nanos() as f64;
    let heap = window.stop();
    Inserted {
        nanos,
        heap_bytes: heap as f64 / n as f64,
    }
}

/// On a fresh current_thread runtime: `block_on` polls each `Sleep` once.
fn tokio_insert(deadlines: &[Instant]) -> Inserted {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let n = deadlines.len();
    rt.block_on(async {
        let mut sleeps: Vec<tokio::time::Sleep> = Vec::with_capacity(n);
        // Fault the storage's pages in before the clock starts (a `Sleep`
        // registers on its first poll, not when created).
        sleeps.extend(
            deadlines
                .iter()
                .map(|&d| tokio::time::sleep_until(d.into())),
        );
        sleeps.clear();
        let outcome = poll_fn(|cx| {
            Poll::Ready(timed(n, || {
                for &deadline in deadlines {
                    sleeps.push(tokio::time::sleep_until(deadline.into()));
                    let sleep = sleeps.last_mut().expect("just pushed");
                    // SAFETY: `sleeps` was allocated for all `n` sleeps and
                    // never grows past that, so no element moves until the
                    // vector drops them in place.
                    let sleep = unsafe { Pin::new_unchecked(sleep) };
                    assert!(sleep.poll(cx).is_pending());
                }
            }))
        })
        .await;
        drop(sleeps);
        outcome
    })
}
