//! The shared stress suite (`tests/stress/`) on a mio loop.
//!
//! Debug builds run reduced sizes; the full sizes need a release build:
//! `cargo test --release -p dispatchers-mio --test stress -- --nocapture`.

#[path = "../../../tests/stress/mod.rs"]
mod stress;
mod support;

#[test]
fn stress() {
    let (main, signal, join) = support::start("mio-stress").into_parts();
    stress::run_all(stress::StressHost::new("mio", main, signal, join));
}
