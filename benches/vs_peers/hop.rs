//! A hop to the blocking pool and back: a task on the loop thread awaits a
//! trivial job run on the blocking pool, back to back; each sample is the
//! time from just before the hop to the task running again on its loop.
//! Ours: `with_context(&Dispatchers::io(), ..)` from Main of a mio loop.
//! Peers: `blocking::unblock` from a task of async-executor (one thread),
//! and `tokio::task::spawn_blocking` from a task of a current_thread runtime.

use std::hint::black_box;
use std::time::Instant;

use dispatchers::{Dispatchers, with_context};

use crate::harness::{Config, LatencyRounds, alternate};
use crate::loops::{ExecutorLoop, MioLoop, TokioLoop};
use crate::report::{Report, Row, Target, Unit};

const OURS: &str = "ours (Main → IO → Main)";
const EXECUTOR: &str = "async-executor + blocking::unblock";
const TOKIO: &str = "tokio spawn_blocking";
pub const PANEL: &str = "hop loop → blocking pool → loop, trivial job";
const WARM_UP: usize = 100;

pub fn run(config: &Config, report: &mut Report) {
    let n = config.size(10_000, 3_000, 50);
    let names = [OURS, EXECUTOR, TOKIO];
    let rounds = alternate(config.rounds, &names, |which, _| match names[which] {
        OURS => ours(n),
        EXECUTOR => executor(n),
        _ => tokio(n),
    });
    let stats: Vec<LatencyRounds> = rounds
        .into_iter()
        .map(|per_round| per_round.into_iter().collect())
        .collect();
    let metric = "hop loop → blocking pool → loop p50";
    report.push(Row::vs(
        metric,
        Unit::Nanos,
        stats[0].p50(),
        EXECUTOR,
        stats[1].p50(),
        Target::RatioAtMost(0.8),
    ));
    report.push(Row::vs(
        metric,
        Unit::Nanos,
        stats[0].p50(),
        TOKIO,
        stats[2].p50(),
        Target::RatioAtMost(0.5),
    ));
    for (peer, stats_peer) in [(EXECUTOR, &stats[1]), (TOKIO, &stats[2])] {
        report.push(Row::vs(
            "hop loop → blocking pool → loop p99",
            Unit::Nanos,
            stats[0].p99(),
            peer,
            stats_peer.p99(),
            Target::Info,
        ));
    }
    for (name, stats) in names.iter().zip(&stats) {
        report.keep_distribution(PANEL, name, stats.all.clone());
    }
}

fn ours(n: usize) -> Vec<u64> {
    let host = MioLoop::start();
    let io = Dispatchers::io();
    let task = host.main().spawn(async move {
        let mut samples = Vec::with_capacity(n);
        for i in 0..n + WARM_UP {
            let start = Instant::now();
            black_box(with_context(&io, async { black_box(1) }).await);
            if i >= WARM_UP {
                samples.push(start.elapsed().as_nanos() as u64);
            }
        }
        samples
    });
    futures_lite::future::block_on(task).expect("the hop task")
}

fn executor(n: usize) -> Vec<u64> {
    let ex = ExecutorLoop::start(1);
    let task = ex.executor().spawn(async move {
        let mut samples = Vec::with_capacity(n);
        for i in 0..n + WARM_UP {
            let start = Instant::now();
            black_box(blocking::unblock(|| black_box(1)).await);
            if i >= WARM_UP {
                samples.push(start.elapsed().as_nanos() as u64);
            }
        }
        samples
    });
    futures_lite::future::block_on(task)
}

fn tokio(n: usize) -> Vec<u64> {
    let rt = TokioLoop::start();
    let task = rt.handle().spawn(async move {
        let mut samples = Vec::with_capacity(n);
        for i in 0..n + WARM_UP {
            let start = Instant::now();
            let one = tokio::task::spawn_blocking(|| black_box(1)).await;
            black_box(one.expect("spawn_blocking"));
            if i >= WARM_UP {
                samples.push(start.elapsed().as_nanos() as u64);
            }
        }
        samples
    });
    futures_lite::future::block_on(task).expect("the hop task")
}
