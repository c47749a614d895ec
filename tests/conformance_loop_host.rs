//! The conformance suite on the hand-written loop host
//! ([`LoopHost`](dispatchers::LoopHost)).

mod conformance;
mod support;

#[test]
fn conformance() {
    let (main, stop, join) = support::start_tick_loop();
    conformance::run_suite(conformance::HostUnderTest::new(
        "tick-loop",
        main,
        move || {
            stop();
            join();
        },
    ));
}
