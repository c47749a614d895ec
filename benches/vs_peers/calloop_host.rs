//! Ours on a calloop loop (`CalloopHost`) against calloop's own futures
//! executor (`calloop::futures::executor`), on the same kind of loop.
//!
//! calloop's `Scheduler` is `!Send`: its tasks are spawned on the loop's
//! thread only, and other threads reach them through their wakers. So:
//! throughput is N trivial tasks spawned on the loop's thread and run to the
//! last (time from the first spawn); latency is the resume of a task parked
//! on the loop, woken from another thread (time from just before the wake
//! to the task running), one wake at a time, to the two loops in turn, with
//! both asleep between. Beside the throughput with the host's default budget
//! (1024 tasks and 5 ms a loop iteration), an info row gives it with
//! calloop's executor's own budget (1024 tasks, no time limit, so no clock
//! read per task), like for like. Beside the resume latency, info rows split
//! it at the moment the loop enters the task's event source (ours, or
//! calloop's executor), marked by a wrapper around each, on a second pair
//! of loops (the mark reads the clock, which the latency rows leave out):
//! before it, each executor's wake-up call, the kernel, the CPU the loop
//! shares with the poster and calloop's dispatch; after it, each
//! executor's work from its source to the task's poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use calloop::{
    EventIterator, EventLoop, EventSource, LoopHandle, Poll, PostAction, Readiness, Token,
    TokenFactory,
};
use dispatchers::Budget;
use dispatchers_calloop::{CalloopHost, DEFAULT_BUDGET, HostSource};

use crate::harness::{
    Config, LatencyRounds, Rng, alternate, init_clock, median, now_ns, on_thread, wait_for,
};
use crate::latency::{Parked, Poster, WARM_UP, interleave, parked};
use crate::report::{Report, Row, Target, Unit};

const OURS: &str = "ours (calloop host)";
const OURS_TASK_CAP: &str = "ours (calloop host, 1024-task budget, no time limit)";
const CALLOOP: &str = "calloop futures executor";

static COUNT: AtomicUsize = AtomicUsize::new(0);

async fn trivial() {
    COUNT.fetch_add(1, Ordering::Relaxed);
}

pub fn run(config: &Config, report: &mut Report) {
    init_clock();
    let n = config.size(1_000_000, 200_000, 2_000);
    let names = [OURS, CALLOOP, OURS_TASK_CAP];
    let rounds = alternate(config.rounds, &names, |which, _| match names[which] {
        OURS => on_thread("ours-calloop", || throughput(n, Some(DEFAULT_BUDGET))),
        OURS_TASK_CAP => on_thread("ours-calloop-cap", || throughput(n, Some(TASK_CAP))),
        _ => on_thread("calloop-exec", || throughput(n, None)),
    });
    report.push(Row::vs(
        "calloop host: spawn throughput (loop thread)",
        Unit::PerSecond,
        median(&rounds[0]),
        CALLOOP,
        median(&rounds[1]),
        Target::RatioAtLeast(1.5),
    ));
    // Like for like: calloop's executor caps a dispatch at 1024 tasks and
    // has no time limit, whose check costs a clock read per task.
    report.push(Row::vs(
        "calloop host: spawn throughput, 1024-task budget without time limit",
        Unit::PerSecond,
        median(&rounds[2]),
        CALLOOP,
        median(&rounds[1]),
        Target::Info,
    ));

    let samples = config.size(5_000, 2_000, 50);
    let mut stats = vec![LatencyRounds::default(); 2];
    // Per contender: wake → source entered, source entered → task polled.
    let mut phases = vec![[LatencyRounds::default(), LatencyRounds::default()]; 2];
    for round in 0..config.rounds {
        let mut rng = Rng::new(0xca11 + round as u64);
        let resumed = resume_latency(samples, &mut rng);
        for (stats, samples) in stats.iter_mut().zip(resumed.samples) {
            stats.push_round(samples);
        }
        for (phases, split) in phases.iter_mut().zip(resumed.phases) {
            let (before, after): (Vec<u64>, Vec<u64>) = split.into_iter().unzip();
            phases[0].push_round(before);
            phases[1].push_round(after);
        }
    }
    report.push(Row::vs(
        "calloop host: resume latency p50 (wake from another thread)",
        Unit::Nanos,
        stats[0].p50(),
        CALLOOP,
        stats[1].p50(),
        Target::RatioAtMost(1.0),
    ));
    report.push(Row::vs(
        "calloop host: resume latency p99 (wake from another thread)",
        Unit::Nanos,
        stats[0].p99(),
        CALLOOP,
        stats[1].p99(),
        Target::Info,
    ));
    for (phase, metric) in [
        "calloop host: resume, wake → event source entered, p50",
        "calloop host: resume, event source entered → task polled, p50",
    ]
    .into_iter()
    .enumerate()
    {
        report.push(Row::vs(
            metric,
            Unit::Nanos,
            phases[0][phase].p50(),
            CALLOOP,
            phases[1][phase].p50(),
            Target::Info,
        ));
    }
}

/// The budget of calloop's own executor: 1024 tasks a dispatch, no time
/// limit.
const TASK_CAP: Budget = Budget::unlimited().max_tasks(1024);

/// Tasks per second, spawning and running `n` trivial tasks on this thread's
/// calloop loop: ours with `budget`, or calloop's executor.
fn throughput(n: usize, budget: Option<Budget>) -> f64 {
    let mut event_loop: EventLoop<()> = EventLoop::try_new().expect("calloop loop");
    let handle = event_loop.handle();
    COUNT.store(0, Ordering::SeqCst);
    let start;
    if let Some(budget) = budget {
        let source = HostSource::new("calloop").with_budget(budget);
        let host = CalloopHost::insert_source(&handle, source).expect("calloop host");
        let main = host.dispatcher();
        start = Instant::now();
        for _ in 0..n {
            main.spawn(trivial()).detach();
        }
    } else {
        let (executor, scheduler) = calloop::futures::executor::<()>().expect("calloop executor");
        handle
            .insert_source(executor, |(), &mut (), &mut ()| {})
            .expect("insert the executor");
        start = Instant::now();
        for _ in 0..n {
            scheduler.schedule(trivial()).expect("executor alive");
        }
    }
    // A lost task must fail the run, not hang it (as `wait_blocking` does
    // for the other families).
    let limit = Duration::from_secs(120);
    while COUNT.load(Ordering::Relaxed) < n {
        assert!(
            start.elapsed() < limit,
            "vs_peers: the calloop loop's tasks did not finish within {limit:?}"
        );
        event_loop
            .dispatch(Some(Duration::from_millis(100)), &mut ())
            .expect("dispatch");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// A calloop loop on a thread of its own, with a parked task: ours
/// (`CalloopHost`) or calloop's executor; when `marked`, the source sits
/// inside a [`MarkEntry`] (ours then a `HostSource`, the source
/// `CalloopHost` inserts).
struct ParkedLoop {
    shared: Arc<Parked>,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
}

impl ParkedLoop {
    fn start(ours: bool, marked: bool) -> ParkedLoop {
        let shared = Parked::new();
        let name = match (ours, marked) {
            (true, false) => "ours-calloop",
            (false, false) => "calloop-exec",
            (true, true) => "ours-calloop-marked",
            (false, true) => "calloop-exec-marked",
        };
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let mut event_loop: EventLoop<()> = EventLoop::try_new().expect("calloop loop");
                    let handle = event_loop.handle();
                    let future = parked(shared.clone());
                    // Kept alive for the loop's lifetime.
                    let _spawner: Box<dyn std::any::Any> = if ours && !marked {
                        let host = CalloopHost::insert(&handle).expect("calloop host");
                        host.dispatcher().spawn(future).detach();
                        Box::new(host)
                    } else if ours {
                        let source = HostSource::new("calloop");
                        let main = source.dispatcher();
                        insert_marked(&handle, source, &shared);
                        main.spawn(future).detach();
                        Box::new(main)
                    } else {
                        let (executor, scheduler) =
                            calloop::futures::executor::<()>().expect("calloop executor");
                        if marked {
                            insert_marked(&handle, executor, &shared);
                        } else {
                            handle
                                .insert_source(executor, |(), &mut (), &mut ()| {})
                                .expect("insert the executor");
                        }
                        scheduler.schedule(future).expect("executor alive");
                        Box::new(scheduler)
                    };
                    while !shared.stop.load(Ordering::Acquire) {
                        event_loop.dispatch(None, &mut ()).expect("dispatch");
                    }
                })
                .expect("spawn the calloop loop")
        };
        let waker = wait_for(
            Duration::from_secs(10),
            "the parked task's first poll",
            || shared.waker.get().cloned(),
        );
        ParkedLoop {
            shared,
            waker,
            thread: Some(thread),
        }
    }

    fn poster(&self) -> Poster<'_> {
        Poster {
            stamp: &self.shared.stamp,
            post: Box::new(|| {
                self.shared.sent.store(now_ns(), Ordering::Release);
                self.waker.wake_by_ref();
            }),
        }
    }
}

impl Drop for ParkedLoop {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.waker.wake_by_ref();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One round of resume latencies: ours and calloop's executor, interleaved.
struct Resumed {
    /// Per contender, each resume's latency (loops without the mark).
    samples: Vec<Vec<u64>>,
    /// Per contender, each resume split where the loop entered the source
    /// (see [`Parked::phases`]), from loops of their own with the mark.
    phases: Vec<Vec<(u64, u64)>>,
}

/// The latency rows come from plain loops, so that the mark (a clock read
/// in the measured window) is not in them; the split comes from a second
/// pair of loops with the mark, posted to in the same interleaving.
fn resume_latency(n: usize, rng: &mut Rng) -> Resumed {
    let loops = [(true, false), (false, false), (true, true), (false, true)]
        .map(|(ours, marked)| ParkedLoop::start(ours, marked));
    let mut posters: Vec<Poster<'_>> = loops.iter().map(ParkedLoop::poster).collect();
    let mut samples = interleave(n, rng, &mut posters);
    drop(posters);
    samples.truncate(2);
    let phases = loops[2..]
        .iter()
        .map(|marked| {
            let phases = std::mem::take(&mut *marked.shared.phases.lock().expect("phases"));
            // One per post: the task runs only inside its source's
            // `process_events`, which marks it.
            assert_eq!(
                phases.len(),
                n + WARM_UP,
                "vs_peers: a resume without its mark"
            );
            // Without the warm-up, as the samples are.
            phases.into_iter().skip(WARM_UP).collect()
        })
        .collect();
    Resumed { samples, phases }
}

/// Inserts `source` into the loop of `handle` inside a [`MarkEntry`].
fn insert_marked<'l, S>(handle: &LoopHandle<'l, ()>, source: S, shared: &Arc<Parked>)
where
    S: EventSource<Metadata = (), Ret = ()> + 'l,
{
    handle
        .insert_source(MarkEntry::new(source, shared), |_, &mut (), &mut ()| {})
        .map_err(|e| e.error)
        .expect("insert the marked source");
}

/// An event source that marks, in its task's [`Parked`], when the loop
/// first enters it after a wake; the rest it hands to the source inside.
struct MarkEntry<S> {
    inner: S,
    parked: Arc<Parked>,
}

impl<S> MarkEntry<S> {
    fn new(inner: S, parked: &Arc<Parked>) -> Self {
        MarkEntry {
            inner,
            parked: parked.clone(),
        }
    }
}

impl<S: EventSource> EventSource for MarkEntry<S> {
    type Event = S::Event;
    type Metadata = S::Metadata;
    type Ret = S::Ret;
    type Error = S::Error;

    const NEEDS_EXTRA_LIFECYCLE_EVENTS: bool = S::NEEDS_EXTRA_LIFECYCLE_EVENTS;

    fn process_events<F>(
        &mut self,
        readiness: Readiness,
        token: Token,
        callback: F,
    ) -> Result<PostAction, S::Error>
    where
        F: FnMut(S::Event, &mut S::Metadata) -> S::Ret,
    {
        let parked = &self.parked;
        if parked.sent.load(Ordering::Acquire) != 0 && parked.entered.load(Ordering::Relaxed) == 0 {
            parked.entered.store(now_ns(), Ordering::Relaxed);
        }
        self.inner.process_events(readiness, token, callback)
    }

    fn register(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.inner.register(poll, factory)
    }

    fn reregister(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.inner.reregister(poll, factory)
    }

    fn unregister(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        self.inner.unregister(poll)
    }

    fn before_sleep(&mut self) -> calloop::Result<Option<(Readiness, Token)>> {
        self.inner.before_sleep()
    }

    fn before_handle_events(&mut self, events: EventIterator<'_>) {
        self.inner.before_handle_events(events)
    }
}
