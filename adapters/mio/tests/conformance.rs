//! The shared Main-dispatcher conformance suite, run against a mio loop.

#[path = "../../../tests/conformance/mod.rs"]
mod conformance;
mod support;

#[test]
fn mio_host_passes_the_conformance_suite() {
    let (main, signal, join) = support::start("mio-conformance").into_parts();
    conformance::run_suite(conformance::HostUnderTest::new("mio", main, move || {
        signal();
        join();
    }));
}
