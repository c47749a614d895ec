//! Post→run latency: a thread posts one trivial task to a sleeping loop and
//! we measure from just before the post call to the moment the task runs on
//! the loop's thread (both read one monotonic clock). One post at a time,
//! to each contender in turn (their loops all run, asleep, side by side);
//! the poster waits parked for the task to run, then sleeps 50–100 µs so
//! that the loops are back asleep in their poll. The floor is a thread blocked in mio's
//! `Poll::poll` woken by `mio::Waker::wake`, doing nothing but reading the
//! clock.

use std::future::{Future, poll_fn};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::{Events, Token};

use crate::harness::{Config, LatencyRounds, Rng, Stamp, gap, init_clock, now_ns, wait_for};
use crate::loops::{ExecutorLoop, MioLoop, TokioLoop};
use crate::report::{Report, Row, Target, Unit};

const FLOOR: &str = "mio Waker (floor)";
const OURS: &str = "ours (mio host)";
const TOKIO: &str = "tokio current_thread";
const EXECUTOR: &str = "async-executor";
const OURS_WAKE: &str = "ours: wake a parked task (mio host)";
pub const PANEL: &str = "post→run latency, sleeping loop, from another thread";

/// Runs the metric: `config.rounds` rounds; in each, every contender's loop
/// runs at once and the posts go to them in turn, one post at a time, so
/// that they all see the same machine load.
pub fn run(config: &Config, report: &mut Report) {
    init_clock();
    let samples = config.size(5_000, 2_000, 50);
    let names = [FLOOR, OURS, TOKIO, EXECUTOR, OURS_WAKE];
    let mut stats = vec![LatencyRounds::default(); names.len()];
    for round in 0..config.rounds {
        let mut rng = Rng::new(0x5eed + round as u64);
        let per_contender = one_round(samples, &mut rng);
        for (stats, samples) in stats.iter_mut().zip(per_contender) {
            stats.push_round(samples);
        }
    }
    let [floor, ours, tokio, executor, ours_wake] =
        [&stats[0], &stats[1], &stats[2], &stats[3], &stats[4]];
    report.push(Row::vs(
        "post→run p50 (mio host)",
        Unit::Nanos,
        ours.p50(),
        FLOOR,
        floor.p50(),
        Target::RatioAtMost(1.25),
    ));
    report.push(Row::vs(
        "post→run p99 (mio host)",
        Unit::Nanos,
        ours.p99(),
        TOKIO,
        tokio.p99(),
        Target::RatioAtMost(1.0),
    ));
    // The p99 is the machine's more than any contender's: the floor, which
    // does no work at all, is shown against tokio's for scale.
    report.push(Row::vs(
        "post→run p99 of the floor itself (mio Waker, no task)",
        Unit::Nanos,
        floor.p99(),
        TOKIO,
        tokio.p99(),
        Target::Info,
    ));
    report.push(Row::vs(
        "post→run p90 (mio host)",
        Unit::Nanos,
        ours.p90(),
        TOKIO,
        tokio.p90(),
        Target::Info,
    ));
    report.push(Row::vs(
        "post→run p50 (mio host)",
        Unit::Nanos,
        ours.p50(),
        TOKIO,
        tokio.p50(),
        Target::Info,
    ));
    report.push(Row::vs(
        "post→run p50 (mio host)",
        Unit::Nanos,
        ours.p50(),
        EXECUTOR,
        executor.p50(),
        Target::Info,
    ));
    report.push(Row::vs(
        "post→run p99 (mio host)",
        Unit::Nanos,
        ours.p99(),
        FLOOR,
        floor.p99(),
        Target::Info,
    ));
    report.push(Row::vs(
        "wake→run p50 of a parked task (mio host)",
        Unit::Nanos,
        ours_wake.p50(),
        FLOOR,
        floor.p50(),
        Target::Info,
    ));
    for (name, stats) in names.iter().zip(&stats).take(4) {
        report.keep_distribution(PANEL, name, stats.all.clone());
    }
}

/// One round: the floor, ours (spawn), tokio, async-executor and ours
/// (wake of a parked task), interleaved.
fn one_round(n: usize, rng: &mut Rng) -> Vec<Vec<u64>> {
    let floor = RawMio::start();
    let mio = MioLoop::start();
    let tokio = TokioLoop::start();
    let executor = ExecutorLoop::start(1);
    let parked_task = Parked::new();
    let task = mio.main().spawn(parked(parked_task.clone()));
    let parked_waker = wait_for(
        Duration::from_secs(10),
        "the parked task's first poll",
        || parked_task.waker.get().cloned(),
    );

    let (ours_stamp, tokio_stamp, executor_stamp) = (
        Arc::new(Stamp::new()),
        Arc::new(Stamp::new()),
        Arc::new(Stamp::new()),
    );
    let main = mio.main().clone();
    let handle = tokio.handle().clone();
    let ex = executor.executor().clone();
    let mut posters = [
        Poster {
            stamp: &floor.stamp,
            post: Box::new(|| {
                floor.sent.store(now_ns(), Ordering::Release);
                floor.waker.wake().expect("mio wake");
            }),
        },
        Poster {
            stamp: &ours_stamp,
            post: Box::new(|| {
                let stamp = ours_stamp.clone();
                let t0 = now_ns();
                main.spawn(async move { stamp.record(now_ns() - t0) })
                    .detach();
            }),
        },
        Poster {
            stamp: &tokio_stamp,
            post: Box::new(|| {
                let stamp = tokio_stamp.clone();
                let t0 = now_ns();
                drop(handle.spawn(async move { stamp.record(now_ns() - t0) }));
            }),
        },
        Poster {
            stamp: &executor_stamp,
            post: Box::new(|| {
                let stamp = executor_stamp.clone();
                let t0 = now_ns();
                ex.spawn(async move { stamp.record(now_ns() - t0) })
                    .detach();
            }),
        },
        Poster {
            stamp: &parked_task.stamp,
            post: Box::new(|| {
                parked_task.sent.store(now_ns(), Ordering::Release);
                parked_waker.wake_by_ref();
            }),
        },
    ];
    let samples = interleave(n, rng, &mut posters);
    drop(posters);
    drop(task);
    samples
}

/// One contender of an interleaved latency run: `post` posts one task (or
/// wake-up) that records its latency in `stamp`.
pub struct Poster<'a> {
    pub stamp: &'a Stamp,
    pub post: Box<dyn FnMut() + 'a>,
}

/// Posts to each contender before the measured ones, unrecorded.
pub const WARM_UP: usize = 20;

/// Collects `n` latencies per contender (after a few warm-up posts), posting
/// to each in turn (the first one rotates), one post at a time, with a
/// 50–100 µs pause after each so that the loops are asleep when posted to.
/// Between a post and its task's record the poster waits parked (see
/// [`Stamp`]), off the CPU the woken loop usually shares with it.
pub fn interleave(n: usize, rng: &mut Rng, posters: &mut [Poster<'_>]) -> Vec<Vec<u64>> {
    let mut samples: Vec<Vec<u64>> = posters.iter().map(|_| Vec::with_capacity(n)).collect();
    for i in 0..n + WARM_UP {
        for k in 0..posters.len() {
            let which = (i + k) % posters.len();
            let poster = &mut posters[which];
            poster.stamp.clear();
            (poster.post)();
            let latency = poster.stamp.wait(Duration::from_secs(10), "a posted task");
            if i >= WARM_UP {
                samples[which].push(latency);
            }
            gap(rng, 50);
        }
    }
    samples
}

/// What the parked task and the waking thread share.
pub struct Parked {
    pub sent: AtomicU64,
    pub stamp: Stamp,
    pub waker: OnceLock<Waker>,
    pub stop: AtomicBool,
    /// When the loop entered the task's event source after the current
    /// wake, where something marks it (`calloop_host.rs`); else 0.
    pub entered: AtomicU64,
    /// Per resume with `entered` marked: (wake → source entered, source
    /// entered → task polled), in nanoseconds.
    pub phases: Mutex<Vec<(u64, u64)>>,
}

/// A task that never ends: each time it is polled after a wake it records
/// how long ago `sent` was; it hands its waker out on the first poll.
impl Parked {
    pub fn new() -> Arc<Parked> {
        Arc::new(Parked {
            sent: AtomicU64::new(0),
            stamp: Stamp::new(),
            waker: OnceLock::new(),
            stop: AtomicBool::new(false),
            entered: AtomicU64::new(0),
            phases: Mutex::new(Vec::new()),
        })
    }
}

pub fn parked(shared: Arc<Parked>) -> impl Future<Output = ()> + Send + 'static {
    poll_fn(move |cx| {
        let _ = shared.waker.get_or_init(|| cx.waker().clone());
        let t0 = shared.sent.swap(0, Ordering::Acquire);
        if t0 != 0 {
            let now = now_ns();
            let entered = shared.entered.swap(0, Ordering::Relaxed);
            if entered != 0 {
                let mut phases = shared.phases.lock().expect("phases");
                phases.push((entered.saturating_sub(t0), now.saturating_sub(entered)));
            }
            shared.stamp.record(now - t0);
        }
        Poll::Pending
    })
}

/// A bare mio loop that, when woken, records how long ago `sent` was.
pub struct RawMio {
    pub waker: Arc<mio::Waker>,
    pub sent: Arc<AtomicU64>,
    pub stamp: Arc<Stamp>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RawMio {
    pub fn start() -> RawMio {
        let mut poll = mio::Poll::new().expect("mio Poll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), Token(0)).expect("mio Waker"));
        let sent = Arc::new(AtomicU64::new(0));
        let stamp = Arc::new(Stamp::new());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (sent, stamp, stop) = (sent.clone(), stamp.clone(), stop.clone());
            std::thread::Builder::new()
                .name("raw-mio-loop".into())
                .spawn(move || {
                    let mut events = Events::with_capacity(8);
                    while !stop.load(Ordering::Acquire) {
                        if let Err(e) = poll.poll(&mut events, None) {
                            assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "poll: {e}");
                        }
                        let t0 = sent.swap(0, Ordering::Acquire);
                        if t0 != 0 {
                            stamp.record(now_ns() - t0);
                        }
                    }
                })
                .expect("spawn the raw mio loop")
        };
        RawMio {
            waker,
            sent,
            stamp,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RawMio {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
