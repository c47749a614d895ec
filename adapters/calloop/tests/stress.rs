//! The shared stress suite (`tests/stress/`) on a calloop loop running on a
//! thread of its own.
//!
//! Debug builds run reduced sizes; the full sizes need a release build:
//! `cargo test --release -p dispatchers-calloop --test stress -- --nocapture`.

#[path = "../../../tests/stress/mod.rs"]
mod stress;
mod support;

#[test]
fn stress() {
    let (main, stop, join) = support::start();
    stress::run_all(stress::StressHost::new("calloop", main, stop, join));
}
