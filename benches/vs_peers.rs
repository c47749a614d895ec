//! `cargo bench --bench vs_peers`: this library and its peers (tokio,
//! async-executor + blocking, calloop's futures executor, raw mio and winit)
//! measured side by side in one process, alternating, several rounds; one
//! table of medians and ratios against the targets (see `BENCHMARKS.md`).
//!
//! Options: `--quick` (smaller sizes, fewer rounds, under a minute),
//! `--smoke` (tiny sizes, one round: checks that everything runs; also the
//! mode when the binary runs without `--bench`, as under `cargo test
//! --benches`), `--rounds N`, `--only NAME[,NAME]` (metric families:
//! latency, throughput, hop, immediate, timers, memory, pool, winit,
//! calloop), `--json PATH`, `--plot PATH` (an SVG of the latency
//! distributions).
//!
//! The winit metric runs in a child process (winit allows one event loop per
//! process): the binary re-executes itself with `VS_PEERS_WINIT_CHILD` set.

#![allow(unsafe_code)] // the counting allocator (one `unsafe impl`, in alloc.rs)

#[path = "vs_peers/alloc.rs"]
mod alloc;
#[path = "vs_peers/calloop_host.rs"]
mod calloop_host;
#[path = "vs_peers/core_to_core.rs"]
mod core_to_core;
#[path = "vs_peers/harness.rs"]
mod harness;
#[path = "vs_peers/hop.rs"]
mod hop;
#[path = "vs_peers/immediate.rs"]
mod immediate;
#[path = "vs_peers/latency.rs"]
mod latency;
#[path = "vs_peers/loops.rs"]
mod loops;
#[path = "vs_peers/memory.rs"]
mod memory;
#[path = "vs_peers/plot.rs"]
mod plot;
#[path = "vs_peers/pool.rs"]
mod pool;
#[path = "vs_peers/report.rs"]
mod report;
#[path = "vs_peers/throughput.rs"]
mod throughput;
#[path = "vs_peers/timer_floors.rs"]
mod timer_floors;
#[path = "vs_peers/timers.rs"]
mod timers;
#[path = "vs_peers/winit_host.rs"]
mod winit_host;

use std::time::Instant;

use harness::{Config, Mode};
use report::Report;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// The metric families, in the order they run.
const FAMILIES: &[&str] = &[
    "latency",
    "throughput",
    "hop",
    "immediate",
    "timers",
    "memory",
    "pool",
    "calloop",
    "winit",
];

fn main() {
    if std::env::var_os(winit_host::CHILD_ENV).is_some() {
        winit_host::child_main();
        return;
    }
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("vs_peers: {message}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let mut report = Report::new(&config);
    println!(
        "vs_peers: mode {}, {} round(s), {} CPUs, load average {}",
        config.mode.name(),
        config.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        report::load_average()
    );
    for family in FAMILIES {
        if !config.runs(family) {
            continue;
        }
        let family_started = Instant::now();
        let round_trips = config.size(200_000, 50_000, 1_000) as u64;
        let before = core_to_core::round_trip_ns(round_trips);
        eprintln!("-- {family} (core-to-core round trip {before:.0} ns)");
        match *family {
            "latency" => latency::run(&config, &mut report),
            "throughput" => throughput::run(&config, &mut report),
            "hop" => hop::run(&config, &mut report),
            "immediate" => immediate::run(&config, &mut report),
            "timers" => timers::run(&config, &mut report),
            "memory" => memory::run(&config, &mut report),
            "pool" => pool::run(&config, &mut report),
            "calloop" => calloop_host::run(&config, &mut report),
            "winit" => winit_host::run(&config, &mut report),
            _ => unreachable!("every family is listed"),
        }
        let after = core_to_core::round_trip_ns(round_trips);
        eprintln!(
            "   ({:.1} s; core-to-core round trip {after:.0} ns)",
            family_started.elapsed().as_secs_f64()
        );
        report.note_round_trips(family, before, after);
    }
    report.finish(started.elapsed());
    report.print_table();
    if let Some(path) = &config.json {
        match report.write_json(path) {
            Ok(()) => println!("results written to {}", path.display()),
            Err(e) => eprintln!("vs_peers: cannot write {}: {e}", path.display()),
        }
    }
    if let Some(path) = &config.plot {
        match plot::write_svg(path, report.distributions()) {
            Ok(()) => println!("plot written to {}", path.display()),
            Err(e) => eprintln!("vs_peers: cannot write {}: {e}", path.display()),
        }
    }
    if config.mode == Mode::Smoke {
        println!("smoke run complete: every metric ran");
    }
}
