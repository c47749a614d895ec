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
//! read per task), like for like.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use calloop::EventLoop;
use dispatchers::Budget;
use dispatchers_calloop::{CalloopHost, DEFAULT_BUDGET, HostSource};

use crate::harness::{
    Config, LatencyRounds, Rng, alternate, init_clock, median, now_ns, on_thread, wait_for,
};
use crate::latency::{Parked, Poster, interleave, parked};
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
    for round in 0..config.rounds {
        let mut rng = Rng::new(0xca11 + round as u64);
        for (stats, samples) in stats.iter_mut().zip(resume_latency(samples, &mut rng)) {
            stats.push_round(samples);
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
/// (`CalloopHost`) or calloop's executor.
struct ParkedLoop {
    shared: Arc<Parked>,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
}

impl ParkedLoop {
    fn start(ours: bool) -> ParkedLoop {
        let shared = Parked::new();
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(if ours { "ours-calloop" } else { "calloop-exec" }.into())
                .spawn(move || {
                    let mut event_loop: EventLoop<()> = EventLoop::try_new().expect("calloop loop");
                    let handle = event_loop.handle();
                    let future = parked(shared.clone());
                    // Kept alive for the loop's lifetime.
                    let _spawner: Box<dyn std::any::Any> = if ours {
                        let host = CalloopHost::insert(&handle).expect("calloop host");
                        host.dispatcher().spawn(future).detach();
                        Box::new(host)
                    } else {
                        let (executor, scheduler) =
                            calloop::futures::executor::<()>().expect("calloop executor");
                        handle
                            .insert_source(executor, |(), &mut (), &mut ()| {})
                            .expect("insert the executor");
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
fn resume_latency(n: usize, rng: &mut Rng) -> Vec<Vec<u64>> {
    let ours = ParkedLoop::start(true);
    let calloop = ParkedLoop::start(false);
    interleave(n, rng, &mut [ours.poster(), calloop.poster()])
}
