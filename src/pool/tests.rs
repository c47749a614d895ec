//! Tests that need the pools' insides: blocking threads with a short
//! keep-alive, and their live-thread count.

use std::num::NonZeroUsize;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::global::blocking_threads;
use super::limited::LimitedView;
use crate::{Dispatcher, block_on};

/// Polls `f` until it is true or a generous deadline passes.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn idle_blocking_threads_retire_and_come_back() {
    let threads = blocking_threads(Duration::from_millis(30));
    let dispatcher = Dispatcher::new(threads.clone());
    for round in 0..2 {
        let barrier = Arc::new(Barrier::new(4));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let barrier = barrier.clone();
                dispatcher.spawn(async move {
                    barrier.wait();
                    std::thread::current().name().unwrap().to_owned()
                })
            })
            .collect();
        let mut names: Vec<_> = tasks.into_iter().map(|t| block_on(t).unwrap()).collect();
        names.sort();
        // Four tasks met at the barrier: four threads, named from 1 up.
        assert_eq!(
            names,
            (1..=4)
                .map(|i| format!("dispatchers-io-{i}"))
                .collect::<Vec<_>>(),
            "round {round}"
        );
        eventually("the idle threads retire", || {
            threads.live_threads() == 0 && threads.exited_threads() == 4 * (round + 1)
        });
    }
}

#[test]
fn an_elastic_view_ignores_the_cap_of_its_sibling() {
    let base = Dispatcher::new(blocking_threads(Duration::from_millis(30)));
    let io = Dispatcher::new(LimitedView::elastic(
        base,
        NonZeroUsize::new(2).unwrap(),
        "test-io".into(),
    ));
    let view = io.limited_parallelism(6).unwrap();
    assert_eq!(view.name(), "test-io.limited_parallelism(6)");
    let barrier = Arc::new(Barrier::new(6));
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let barrier = barrier.clone();
            view.spawn(async move {
                barrier.wait();
            })
        })
        .collect();
    for task in tasks {
        block_on(task).unwrap();
    }
}

#[test]
fn a_narrower_view_of_a_view_is_a_new_view_and_a_wider_one_is_itself() {
    let pool = crate::ThreadPool::new_fixed(2, "views").unwrap();
    let four = pool.limited_parallelism(4).unwrap();
    assert_eq!(four.limited_parallelism(8).unwrap(), four);
    let two = four.limited_parallelism(2).unwrap();
    assert_ne!(two, four);
    assert_eq!(
        two.name(),
        "views.limited_parallelism(4).limited_parallelism(2)"
    );
}
