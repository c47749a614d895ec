//! The results: one row per comparison (ours against one peer, or against
//! an absolute target), the table printed at the end, the JSON file, and
//! the latency samples kept for the plot.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::harness::Config;

/// How a row's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A duration, stored in nanoseconds.
    Nanos,
    /// Tasks per second.
    PerSecond,
    /// Bytes.
    Bytes,
    /// A count of events.
    Count,
}

impl Unit {
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Nanos => format_nanos(value),
            Unit::PerSecond => {
                if value >= 1e6 {
                    format!("{:.2} M/s", value / 1e6)
                } else {
                    format!("{:.0} k/s", value / 1e3)
                }
            }
            Unit::Bytes => format!("{value:.1} B"),
            Unit::Count => format!("{value:.0}"),
        }
    }

    fn json_name(self) -> &'static str {
        match self {
            Unit::Nanos => "ns",
            Unit::PerSecond => "per_second",
            Unit::Bytes => "bytes",
            Unit::Count => "count",
        }
    }
}

/// A duration in ns, in the unit that reads best.
pub fn format_nanos(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// What a row must meet.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// ours / peer ≤ x.
    RatioAtMost(f64),
    /// ours / peer ≥ x.
    RatioAtLeast(f64),
    /// ours ≤ x (in the row's unit).
    AtMost(f64),
    /// A yes/no property, described.
    Check(String, bool),
    /// Shown for context only.
    Info,
}

impl Target {
    fn describe(&self, unit: Unit) -> String {
        match self {
            Target::RatioAtMost(x) => format!("≤ {x}×"),
            Target::RatioAtLeast(x) => format!("≥ {x}×"),
            Target::AtMost(x) => format!("≤ {}", unit.format(*x)),
            Target::Check(what, _) => what.clone(),
            Target::Info => "—".into(),
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub metric: String,
    pub unit: Unit,
    pub ours: Option<f64>,
    pub peer: Option<(String, f64)>,
    pub target: Target,
    /// Why the row has no measurement (a skipped metric).
    pub skipped: Option<String>,
}

impl Row {
    /// Ours against `peer` (named `peer_name`).
    pub fn vs(
        metric: impl Into<String>,
        unit: Unit,
        ours: f64,
        peer_name: &str,
        peer: f64,
        target: Target,
    ) -> Row {
        Row {
            metric: metric.into(),
            unit,
            ours: Some(ours),
            peer: Some((peer_name.to_owned(), peer)),
            target,
            skipped: None,
        }
    }

    /// Ours alone, against an absolute target.
    pub fn alone(metric: impl Into<String>, unit: Unit, ours: f64, target: Target) -> Row {
        Row {
            metric: metric.into(),
            unit,
            ours: Some(ours),
            peer: None,
            target,
            skipped: None,
        }
    }

    /// A metric that could not run here, and why.
    pub fn skipped(metric: impl Into<String>, unit: Unit, why: impl Into<String>) -> Row {
        Row {
            metric: metric.into(),
            unit,
            ours: None,
            peer: None,
            target: Target::Info,
            skipped: Some(why.into()),
        }
    }

    pub fn ratio(&self) -> Option<f64> {
        match (self.ours, &self.peer) {
            (Some(ours), Some((_, peer))) if *peer > 0.0 => Some(ours / peer),
            _ => None,
        }
    }

    pub fn verdict(&self) -> &'static str {
        if self.skipped.is_some() {
            return "SKIPPED";
        }
        let pass = match (&self.target, self.ratio(), self.ours) {
            (Target::RatioAtMost(x), Some(r), _) => r <= *x,
            (Target::RatioAtLeast(x), Some(r), _) => r >= *x,
            (Target::AtMost(x), _, Some(ours)) => ours <= *x,
            (Target::Check(_, ok), _, _) => *ok,
            _ => return "info",
        };
        if pass { "PASS" } else { "SHORT" }
    }
}

/// A latency distribution kept for the plot.
#[derive(Debug, Clone)]
pub struct Distribution {
    /// Which panel of the plot.
    pub panel: String,
    pub name: String,
    pub samples_ns: Vec<u64>,
}

/// Everything measured in this run.
#[derive(Debug)]
pub struct Report {
    mode: String,
    rounds: usize,
    load_before: String,
    load_after: String,
    /// The core-to-core round trip (ns) measured before and after each
    /// metric family (see `core_to_core.rs`).
    round_trips: Vec<(String, f64, f64)>,
    elapsed: Duration,
    rows: Vec<Row>,
    distributions: Vec<Distribution>,
}

impl Report {
    pub fn new(config: &Config) -> Report {
        Report {
            mode: config.mode.name().to_owned(),
            rounds: config.rounds,
            load_before: load_average(),
            load_after: String::new(),
            round_trips: Vec::new(),
            elapsed: Duration::ZERO,
            rows: Vec::new(),
            distributions: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        eprintln!(
            "   {}: ours {}{} [{}]",
            row.metric,
            row.ours.map_or("-".into(), |v| row.unit.format(v)),
            row.peer.as_ref().map_or(String::new(), |(n, v)| format!(
                ", {n} {}",
                row.unit.format(*v)
            )),
            row.verdict()
        );
        self.rows.push(row);
    }

    pub fn keep_distribution(&mut self, panel: &str, name: &str, samples_ns: Vec<u64>) {
        self.distributions.push(Distribution {
            panel: panel.to_owned(),
            name: name.to_owned(),
            samples_ns,
        });
    }

    pub fn distributions(&self) -> &[Distribution] {
        &self.distributions
    }

    /// Records the core-to-core round trips measured around `family`.
    pub fn note_round_trips(&mut self, family: &str, before: f64, after: f64) {
        self.round_trips.push((family.to_owned(), before, after));
    }

    /// The round trips as `family before/after` items.
    fn round_trips_line(&self) -> String {
        let items: Vec<String> = self
            .round_trips
            .iter()
            .map(|(family, before, after)| format!("{family} {before:.0}/{after:.0}"))
            .collect();
        items.join(" · ")
    }

    pub fn finish(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
        self.load_after = load_average();
    }

    /// The table, as Markdown (readable as is in a terminal).
    pub fn table(&self) -> String {
        let header = ["metric", "ours", "peer", "ratio", "target", "verdict"];
        let mut lines: Vec<[String; 6]> = Vec::new();
        for row in &self.rows {
            let ours = match (&row.skipped, row.ours) {
                (Some(why), _) => format!("skipped: {why}"),
                (None, Some(v)) => row.unit.format(v),
                (None, None) => "-".into(),
            };
            let peer = row.peer.as_ref().map_or("—".into(), |(n, v)| {
                format!("{n}: {}", row.unit.format(*v))
            });
            let ratio = row.ratio().map_or("—".into(), |r| format!("{r:.2}×"));
            lines.push([
                row.metric.clone(),
                ours,
                peer,
                ratio,
                row.target.describe(row.unit),
                row.verdict().into(),
            ]);
        }
        let mut widths = header.map(|h| h.chars().count());
        for line in &lines {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut put = |cells: &[String]| {
            out.push('|');
            for (cell, w) in cells.iter().zip(widths) {
                let pad = w - cell.chars().count();
                let _ = write!(out, " {cell}{} |", " ".repeat(pad));
            }
            out.push('\n');
        };
        put(&header.map(String::from));
        put(&widths.map(|w| "-".repeat(w)));
        for line in &lines {
            put(line);
        }
        out
    }

    pub fn print_table(&self) {
        println!();
        println!(
            "vs_peers ({} mode, medians of {} rounds; load average before {}, after {}; {:.0} s)",
            self.mode,
            self.rounds,
            self.load_before,
            self.load_after,
            self.elapsed.as_secs_f64()
        );
        println!(
            "core-to-core round trip before/after each family, ns: {}",
            self.round_trips_line()
        );
        println!();
        print!("{}", self.table());
        let (pass, short) = self
            .rows
            .iter()
            .fold((0, 0), |(p, s), row| match row.verdict() {
                "PASS" => (p + 1, s),
                "SHORT" => (p, s + 1),
                _ => (p, s),
            });
        println!();
        println!("{pass} PASS, {short} SHORT");
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let mut out = String::from("{\n");
        let _ = writeln!(out, "  \"mode\": {},", json_str(&self.mode));
        let _ = writeln!(out, "  \"rounds\": {},", self.rounds);
        let _ = writeln!(
            out,
            "  \"cpus\": {},",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let _ = writeln!(out, "  \"load_before\": {},", json_str(&self.load_before));
        let _ = writeln!(out, "  \"load_after\": {},", json_str(&self.load_after));
        let _ = writeln!(out, "  \"seconds\": {:.1},", self.elapsed.as_secs_f64());
        let round_trips: Vec<String> = self
            .round_trips
            .iter()
            .map(|(family, before, after)| {
                format!("{}: [{before:.1}, {after:.1}]", json_str(family))
            })
            .collect();
        let _ = writeln!(
            out,
            "  \"core_round_trip_ns\": {{{}}},",
            round_trips.join(", ")
        );
        out.push_str("  \"rows\": [\n");
        for (i, row) in self.rows.iter().enumerate() {
            let mut fields = vec![
                format!("\"metric\": {}", json_str(&row.metric)),
                format!("\"unit\": {}", json_str(row.unit.json_name())),
                format!("\"ours\": {}", json_num(row.ours)),
            ];
            match &row.peer {
                Some((name, value)) => {
                    fields.push(format!("\"peer\": {}", json_str(name)));
                    fields.push(format!("\"peer_value\": {}", json_num(Some(*value))));
                }
                None => {
                    fields.push("\"peer\": null".into());
                    fields.push("\"peer_value\": null".into());
                }
            }
            fields.push(format!("\"ratio\": {}", json_num(row.ratio())));
            fields.push(format!(
                "\"target\": {}",
                json_str(&row.target.describe(row.unit))
            ));
            fields.push(format!("\"verdict\": {}", json_str(row.verdict())));
            if let Some(why) = &row.skipped {
                fields.push(format!("\"skipped\": {}", json_str(why)));
            }
            let comma = if i + 1 < self.rows.len() { "," } else { "" };
            let _ = writeln!(out, "    {{{}}}{comma}", fields.join(", "));
        }
        out.push_str("  ]\n}\n");
        std::fs::write(path, out)
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.4}"),
        _ => "null".into(),
    }
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), or "unknown".
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}
