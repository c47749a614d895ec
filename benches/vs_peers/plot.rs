//! `--plot PATH`: the latency distributions as an SVG, one panel per metric,
//! drawn by hand. Each curve is a CDF: latency on a log axis, and the
//! fraction of samples at or below it on a "nines" axis (50 %, 90 %, 99 %,
//! 99.9 %), so that the median and the tail both show.

use std::fmt::Write as _;
use std::path::Path;

use crate::report::{Distribution, format_nanos};

const WIDTH: f64 = 960.0;
const PANEL_HEIGHT: f64 = 330.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 300.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// The y axis goes up to 99.9 %.
const MAX_NINES: f64 = 3.0;
const COLORS: &[&str] = &[
    "#1b6ac9", "#d1495b", "#2e8b57", "#edae49", "#6a4c93", "#00798c",
];

/// Writes the SVG of `distributions` (grouped by panel, in order) to `path`.
pub fn write_svg(path: &Path, distributions: &[Distribution]) -> std::io::Result<()> {
    let mut panels: Vec<(&str, Vec<&Distribution>)> = Vec::new();
    for d in distributions.iter().filter(|d| !d.samples_ns.is_empty()) {
        match panels.iter_mut().find(|(name, _)| *name == d.panel) {
            Some((_, list)) => list.push(d),
            None => panels.push((&d.panel, vec![d])),
        }
    }
    let height = PANEL_HEIGHT * panels.len().max(1) as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    if panels.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="20" y="40">no latency samples in this run</text>"#
        );
    }
    for (i, (title, series)) in panels.iter().enumerate() {
        panel(&mut svg, PANEL_HEIGHT * i as f64, title, series);
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg)
}

/// The value at quantile `q` of sorted `samples`.
fn quantile(sorted: &[u64], q: f64) -> f64 {
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64
}

fn panel(svg: &mut String, y0: f64, title: &str, series: &[&Distribution]) {
    let sorted: Vec<Vec<u64>> = series
        .iter()
        .map(|d| {
            let mut s = d.samples_ns.clone();
            s.sort_unstable();
            s
        })
        .collect();
    let lo = sorted
        .iter()
        .map(|s| quantile(s, 0.001))
        .fold(f64::INFINITY, f64::min)
        .max(1.0);
    let hi = sorted
        .iter()
        .map(|s| quantile(s, 0.999))
        .fold(0.0, f64::max)
        .max(lo * 10.0);
    let (log_lo, log_hi) = (lo.log10().floor(), hi.log10().ceil());
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, PANEL_HEIGHT - TOP - BOTTOM);
    let x = |ns: f64| LEFT + (ns.max(1.0).log10() - log_lo) / (log_hi - log_lo) * plot_w;
    let y = |nines: f64| y0 + TOP + plot_h - nines.min(MAX_NINES) / MAX_NINES * plot_h;

    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{:.1}" font-size="14" font-weight="bold">{}</text><text x="{:.1}" y="{:.1}" fill="#555">every round's samples pooled</text>"##,
        y0 + 24.0,
        escape(title),
        WIDTH - RIGHT + 16.0,
        y0 + 24.0
    );
    // Grid and axes.
    for (nines, label) in [
        (0.0, "0 %"),
        (std::f64::consts::LOG10_2, "50 %"),
        (1.0, "90 %"),
        (2.0, "99 %"),
        (3.0, "99.9 %"),
    ] {
        let yy = y(nines);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            yy + 4.0
        );
    }
    let mut decade = log_lo;
    while decade <= log_hi {
        for m in [1.0, 2.0, 5.0] {
            let ns = 10f64.powf(decade) * m;
            if ns.log10() > log_hi + 1e-9 {
                break;
            }
            let xx = x(ns);
            let stroke = if m == 1.0 { "#bbb" } else { "#eee" };
            let _ = writeln!(
                svg,
                r#"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="{stroke}"/>"#,
                y(MAX_NINES),
                y(0.0)
            );
            if m == 1.0 || (log_hi - log_lo) <= 2.0 {
                let _ = writeln!(
                    svg,
                    r#"<text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    y(0.0) + 16.0,
                    escape(&format_nanos(ns))
                );
            }
        }
        decade += 1.0;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">latency (log scale); y: fraction of samples at or below</text>"#,
        LEFT + plot_w / 2.0,
        y(0.0) + 36.0
    );
    // Curves and legend.
    for (k, (d, s)) in series.iter().zip(&sorted).enumerate() {
        let color = COLORS[k % COLORS.len()];
        let mut points = String::new();
        let max_nines = (s.len() as f64).log10().min(MAX_NINES);
        for j in 0..=300 {
            let nines = max_nines * j as f64 / 300.0;
            let q = 1.0 - 10f64.powf(-nines);
            let _ = write!(points, "{:.1},{:.1} ", x(quantile(s, q)), y(nines));
        }
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            points.trim_end()
        );
        let ly = y0 + TOP + 10.0 + 34.0 * k as f64;
        let lx = WIDTH - RIGHT + 16.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text><text x="{:.1}" y="{:.1}" fill="#555">p50 {} · p99 {} · n={}</text>"##,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            escape(&d.name),
            lx + 28.0,
            ly + 18.0,
            escape(&format_nanos(quantile(s, 0.5))),
            escape(&format_nanos(quantile(s, 0.99))),
            s.len()
        );
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
