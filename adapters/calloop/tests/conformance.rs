//! The shared conformance suite on a calloop loop running on a thread of its
//! own.

#[path = "../../../tests/conformance/mod.rs"]
mod conformance;
mod support;

#[test]
fn conformance() {
    let (main, stop, join) = support::start();
    conformance::run_suite(conformance::HostUnderTest::new(
        "calloop",
        main,
        move || {
            stop();
            join();
        },
    ));
}
