//! Post→run latency on a winit loop (X11; Xvfb on a machine without a
//! screen): ours (`WinitHost`, a task spawned on Main from another thread)
//! against a raw `EventLoopProxy::send_event` round (a user event carrying
//! its send time, read in `user_event`), alternating post by post on the
//! same loop.
//!
//! winit allows one event loop per process, so each round runs in a child
//! process: this binary re-executed with [`CHILD_ENV`] set to the number of
//! samples; it prints one `raw NS` or `ours NS` line per sample.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use dispatchers_winit::{HostEvent, WinitHost};
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, EventLoop};
use winit::window::WindowId;

use crate::harness::{Config, LatencyRounds, Rng, Stamp, gap, init_clock, now_ns};
use crate::report::{Report, Row, Target, Unit};

/// Set in the child's environment: the number of samples it takes.
pub const CHILD_ENV: &str = "VS_PEERS_WINIT_CHILD";
const OURS: &str = "ours (winit host)";
const RAW: &str = "raw EventLoopProxy::send_event";
const METRIC: &str = "winit host (Xvfb): post→run p50";
pub const PANEL: &str = "post→run latency on a winit loop (X11)";

pub fn run(config: &Config, report: &mut Report) {
    if std::env::var_os("DISPLAY").is_none_or(|d| d.is_empty()) {
        let why = "no DISPLAY (run the bench under xvfb-run)";
        println!("winit metric skipped: {why}");
        report.push(Row::skipped(METRIC, Unit::Nanos, why));
        return;
    }
    let samples = config.size(3_000, 600, 40);
    let mut raw = LatencyRounds::default();
    let mut ours = LatencyRounds::default();
    for _ in 0..config.rounds {
        // A child that cannot reach the X server gets a second chance
        // (several engineers start `xvfb-run -a` servers on this machine).
        match child_round(samples).or_else(|_| child_round(samples)) {
            Ok((r, o)) => {
                raw.push_round(r);
                ours.push_round(o);
            }
            Err(why) => {
                println!("winit metric skipped: {why}");
                let short: String = why.chars().take(90).collect();
                report.push(Row::skipped(METRIC, Unit::Nanos, short));
                return;
            }
        }
    }
    report.push(Row::vs(
        METRIC,
        Unit::Nanos,
        ours.p50(),
        RAW,
        raw.p50(),
        Target::RatioAtMost(1.5),
    ));
    report.push(Row::vs(
        "winit host (Xvfb): post→run p99",
        Unit::Nanos,
        ours.p99(),
        RAW,
        raw.p99(),
        Target::Info,
    ));
    report.keep_distribution(PANEL, RAW, raw.all);
    report.keep_distribution(PANEL, OURS, ours.all);
}

/// Runs one child; its raw and ours samples.
fn child_round(samples: usize) -> Result<(Vec<u64>, Vec<u64>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the bench binary: {e}"))?;
    let output = Command::new(exe)
        .env(CHILD_ENV, samples.to_string())
        .output()
        .map_err(|e| format!("cannot start the winit child: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("").trim().to_owned();
        return Err(format!(
            "the winit child failed ({}): {last}",
            output.status
        ));
    }
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(value) = value.parse::<u64>() else {
            continue;
        };
        match kind {
            "raw" => raw.push(value),
            "ours" => ours.push(value),
            _ => {}
        }
    }
    if raw.is_empty() || ours.is_empty() {
        return Err("the winit child printed no samples".into());
    }
    Ok((raw, ours))
}

/// The application on the child's loop: a user event is a raw round's send
/// time (0: stop).
struct App {
    stamp: Arc<Stamp>,
}

impl ApplicationHandler<u64> for App {
    fn resumed(&mut self, _: &ActiveEventLoop) {}

    fn user_event(&mut self, event_loop: &ActiveEventLoop, sent: u64) {
        if sent == 0 {
            event_loop.exit();
        } else {
            self.stamp.record(now_ns() - sent);
        }
    }

    fn window_event(&mut self, _: &ActiveEventLoop, _: WindowId, _: WindowEvent) {}
}

/// The child process: builds the one winit loop on its main thread, posts
/// from another thread, prints the samples.
pub fn child_main() {
    init_clock();
    let samples: usize = std::env::var(CHILD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let (event_loop, host) = match WinitHost::<u64>::build(&mut EventLoop::with_user_event()) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("cannot build the winit loop: {e}");
            std::process::exit(1);
        }
    };
    let stamp = Arc::new(Stamp::new());
    let main = host.dispatcher();
    let proxy = host.user_proxy().inner().clone();
    let poster = {
        let stamp = stamp.clone();
        std::thread::spawn(move || {
            const WARM_UP: usize = 20;
            let mut rng = Rng::new(0x3141);
            let mut lines = String::new();
            for i in 0..2 * (samples + WARM_UP) {
                let raw_round = i % 2 == 0;
                stamp.clear();
                if raw_round {
                    let t0 = now_ns();
                    proxy
                        .send_event(HostEvent::User(t0))
                        .expect("the loop is running");
                } else {
                    let stamp = stamp.clone();
                    let t0 = now_ns();
                    main.spawn(async move { stamp.record(now_ns() - t0) })
                        .detach();
                }
                let latency = stamp.wait(Duration::from_secs(10), "a winit post");
                if i >= 2 * WARM_UP {
                    let kind = if raw_round { "raw" } else { "ours" };
                    lines.push_str(&format!("{kind} {latency}\n"));
                }
                gap(&mut rng, 100);
            }
            let _ = proxy.send_event(HostEvent::User(0));
            lines
        })
    };
    if let Err(e) = host.run_app(event_loop, App { stamp }) {
        eprintln!("the winit loop failed: {e}");
        std::process::exit(1);
    }
    let lines = poster.join().expect("the poster thread");
    print!("{lines}");
}
