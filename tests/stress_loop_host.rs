//! The stress suite on a hand-written loop ([`LoopHost`](dispatchers::LoopHost)).
//!
//! Debug builds run reduced sizes; the full sizes need a release build:
//! `cargo test --release -p dispatchers --test stress_loop_host -- --nocapture`.

mod stress;
mod support;

#[test]
fn stress() {
    let (main, stop, join) = support::start_tick_loop();
    stress::run_all(stress::StressHost::new("tick-loop", main, stop, join));
}
