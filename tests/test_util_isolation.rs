//! The isolation of parallel tests: each `run_test` installs its own Main
//! and clock on its own thread, and puts the previous Main back at the end.
#![cfg(feature = "test-util")]

use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use dispatchers::test_util::run_test;
use dispatchers::{Dispatchers, delay, spawn_on_main};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Blocks until `n` threads have called it (a barrier with a watchdog: a
/// thread that fails before arriving fails the others instead of hanging them).
struct Rendezvous {
    arrived: Mutex<usize>,
    changed: Condvar,
}

impl Rendezvous {
    fn new() -> Arc<Self> {
        Arc::new(Rendezvous {
            arrived: Mutex::new(0),
            changed: Condvar::new(),
        })
    }

    fn wait_for(&self, n: usize) {
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.changed.notify_all();
        let (arrived, timed_out) = self
            .changed
            .wait_timeout_while(arrived, secs(30), |arrived| *arrived < n)
            .unwrap();
        assert!(!timed_out.timed_out(), "only {} of {n} arrived", *arrived);
    }
}

#[test]
fn sixteen_parallel_tests_each_see_their_own_main() {
    const TESTS: usize = 16;
    let rendezvous = Rendezvous::new();
    let threads: Vec<_> = (0..TESTS)
        .map(|i| {
            let rendezvous = rendezvous.clone();
            thread::spawn(move || {
                run_test(move |scope| async move {
                    let mine = scope.main();
                    rendezvous.wait_for(TESTS); // every test is inside run_test
                    assert_eq!(*Dispatchers::main(), *mine);
                    let ran_on = spawn_on_main(async { thread::current().id() }).await;
                    assert_eq!(ran_on.unwrap(), thread::current().id());
                    // Each test has its own clock.
                    delay(secs(i as u64 + 1)).await;
                    assert_eq!(scope.current_time(), secs(i as u64 + 1));
                    // Other threads see the process-wide Main, not the test's.
                    let elsewhere = thread::spawn(|| Dispatchers::main().dispatcher().clone())
                        .join()
                        .unwrap();
                    assert_ne!(elsewhere, *mine);
                    rendezvous.wait_for(2 * TESTS); // still all installed
                    assert_eq!(*Dispatchers::main(), *mine);
                    mine.dispatcher().clone()
                })
            })
        })
        .collect();
    let mains: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (i, a) in mains.iter().enumerate() {
        for b in &mains[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn main_is_restored_after_run_test() {
    let before = Dispatchers::main().dispatcher().clone();
    let during = run_test(|scope| async move {
        assert_eq!(*Dispatchers::main(), *scope.main());
        scope.main().dispatcher().clone()
    });
    assert_ne!(during, before);
    assert_eq!(*Dispatchers::main(), before);
}
