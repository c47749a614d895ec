//! `dispatchers::test_util`: virtual time, ordering, background work, work
//! finished by other threads, and the dispatcher flavours. `run_test`'s
//! failure reports: `test_util_reports.rs`; the isolation of parallel tests:
//! `test_util_isolation.rs`.
#![cfg(feature = "test-util")]

#[path = "support/held_waker.rs"]
mod held_waker;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use dispatchers::test_util::{TestConfig, TestDispatcher, run_test, run_test_with};
use dispatchers::{
    Dispatchers, TaskBuilder, delay, delay_until, spawn_on_main, spawn_on_main_local, timeout,
    with_context, yield_now,
};
use held_waker::HeldWaker;

type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, entry: impl Into<String>) {
    log.lock().unwrap().push(entry.into());
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A one-value channel, completed from any thread.
struct Oneshot<T> {
    slot: Arc<Mutex<(Option<T>, Option<Waker>)>>,
}

impl<T> Oneshot<T> {
    fn new() -> (impl FnOnce(T) + Send + 'static, Self)
    where
        T: Send + 'static,
    {
        let slot = Arc::new(Mutex::new((None, None::<Waker>)));
        let sender = slot.clone();
        let send = move |value| {
            let waker = {
                let mut slot = sender.lock().unwrap();
                slot.0 = Some(value);
                slot.1.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        };
        (send, Oneshot { slot })
    }
}

impl<T> Future for Oneshot<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.slot.lock().unwrap();
        match slot.0.take() {
            Some(value) => Poll::Ready(value),
            None => {
                slot.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[test]
fn a_ten_minute_delay_completes_at_once_in_virtual_time() {
    let started = Instant::now();
    let virtual_time = run_test(|scope| async move {
        delay(Duration::from_secs(600)).await;
        scope.current_time()
    });
    assert_eq!(virtual_time, Duration::from_secs(600));
    assert!(
        started.elapsed() < secs(10),
        "took {:?} of real time",
        started.elapsed()
    );
}

#[test]
fn equal_deadlines_fire_in_the_order_they_were_registered() {
    run_test(|scope| async move {
        let log = Log::default();
        let deadline = scope.now() + secs(1);
        for name in ["a", "b", "c"] {
            let log = log.clone();
            scope
                .spawn(async move {
                    delay(secs(1)).await;
                    push(&log, name);
                })
                .detach();
        }
        let until = log.clone();
        scope
            .spawn(async move {
                delay_until(deadline).await;
                push(&until, "d (delay_until, same deadline)");
            })
            .detach();
        let early = log.clone();
        scope
            .spawn(async move {
                delay(ms(999)).await;
                push(&early, "early");
            })
            .detach();
        scope.advance_until_idle();
        assert_eq!(
            entries(&log),
            ["early", "a", "b", "c", "d (delay_until, same deadline)"]
        );
        assert_eq!(scope.current_time(), secs(1));
    });
}

#[test]
fn tasks_queued_at_the_same_time_run_in_dispatch_order_behind_due_timers() {
    run_test(|scope| async move {
        let log = Log::default();
        let timed = log.clone();
        scope
            .spawn(async move {
                delay(secs(2)).await;
                push(&timed, "timer at 2 s");
                yield_now().await;
                push(&timed, "after its yield");
            })
            .detach();
        scope.advance_time_by(secs(2)); // lands on the deadline: not run yet
        for name in ["first", "second"] {
            let log = log.clone();
            scope.spawn(async move { push(&log, name) }).detach();
        }
        scope.run_current();
        assert_eq!(
            entries(&log),
            ["timer at 2 s", "first", "second", "after its yield"]
        );
    });
}

#[test]
fn advance_time_by_runs_what_is_due_strictly_before_the_target() {
    run_test(|scope| async move {
        let log = Log::default();
        for at in [999, 1000, 1001] {
            let log = log.clone();
            scope
                .spawn(async move {
                    delay(ms(at)).await;
                    push(&log, format!("{at} ms"));
                })
                .detach();
        }
        scope.advance_time_by(secs(1));
        assert_eq!(entries(&log), ["999 ms"]);
        assert_eq!(scope.current_time(), secs(1));

        scope.run_current();
        assert_eq!(entries(&log), ["999 ms", "1000 ms"]);

        scope.advance_time_by(ms(1));
        assert_eq!(
            entries(&log),
            ["999 ms", "1000 ms"],
            "1001 ms is the target"
        );
        scope.run_current();
        assert_eq!(entries(&log), ["999 ms", "1000 ms", "1001 ms"]);
        assert_eq!(scope.current_time(), ms(1001));
    });
}

#[test]
fn timeout_fires_in_virtual_time() {
    let started = Instant::now();
    run_test(|scope| async move {
        let slow = timeout(secs(30), HeldWaker::default()).await;
        assert!(slow.is_err());
        assert_eq!(scope.current_time(), secs(30));

        let fast = timeout(secs(30), async {
            delay(secs(5)).await;
            "in time"
        })
        .await;
        assert_eq!(fast, Ok("in time"));
        assert_eq!(scope.current_time(), secs(35));
    });
    assert!(started.elapsed() < secs(10));
}

#[test]
fn background_tasks_are_cancelled_at_the_end_instead_of_failing() {
    struct Dropped(Log);
    impl Drop for Dropped {
        fn drop(&mut self) {
            push(&self.0, "dropped");
        }
    }
    let log = Log::default();
    let in_test = log.clone();
    let (ticker, listener) = run_test(move |scope| async move {
        let ticks = in_test.clone();
        let ticker = scope.background().spawn_named("ticker", async move {
            let _dropped = Dropped(ticks.clone());
            loop {
                delay(secs(1)).await;
                push(&ticks, "tick");
            }
        });
        let listener = scope
            .background()
            .spawn_named("listener", HeldWaker::default());
        scope.spawn(delay(ms(2500))).await.unwrap();
        (ticker, listener)
    });
    assert_eq!(entries(&log), ["tick", "tick", "dropped"]);
    assert!(dispatchers::block_on(ticker).unwrap_err().is_cancelled());
    assert!(dispatchers::block_on(listener).unwrap_err().is_cancelled());
}

#[test]
fn the_body_can_wait_for_background_work() {
    run_test(|scope| async move {
        let answer = scope.background().spawn(async {
            delay(secs(3)).await;
            42
        });
        assert_eq!(answer.await.unwrap(), 42);
        assert_eq!(scope.current_time(), secs(3));
    });
}

#[test]
fn work_finished_by_another_thread_is_waited_for() {
    run_test(|scope| async move {
        let (send, received) = Oneshot::new();
        let child = scope.spawn_named("listener", received);
        thread::spawn(move || {
            thread::sleep(ms(20));
            send("from another thread");
        });
        assert_eq!(child.await.unwrap(), "from another thread");
    });
    // The same, not awaited by the body: run_test waits for the child.
    let log = Log::default();
    let in_test = log.clone();
    run_test(move |scope| async move {
        let (send, received) = Oneshot::new();
        scope
            .spawn(async move { push(&in_test, received.await) })
            .detach();
        thread::spawn(move || send("late"));
    });
    assert_eq!(entries(&log), ["late"]);
}

#[test]
fn a_hop_to_io_runs_on_a_pool_thread_and_comes_back_to_the_test_thread() {
    run_test(|scope| async move {
        let test_thread = thread::current().id();
        let saver = scope.spawn_named("saver", async {
            let io_thread =
                with_context(&Dispatchers::io(), async { thread::current().id() }).await;
            (io_thread, thread::current().id())
        });
        let (io_thread, back_on) = saver.await.unwrap();
        assert_ne!(io_thread, test_thread);
        assert_eq!(back_on, test_thread);
    });
}

#[test]
fn immediate_and_local_tasks_run_on_the_test_thread() {
    run_test(|scope| async move {
        let log = Log::default();
        let inner = log.clone();
        let task = scope
            .main()
            .immediate()
            .spawn(async move { push(&inner, "in place") });
        assert_eq!(
            entries(&log),
            ["in place"],
            "immediate ran before spawn returned"
        );
        task.await.unwrap();

        let shared = std::rc::Rc::new(std::cell::Cell::new(0));
        let counter = shared.clone();
        spawn_on_main_local(async move {
            delay(secs(1)).await;
            counter.set(counter.get() + 1);
        })
        .await
        .unwrap();
        scope
            .spawn_local_named("local", async move { shared.get() })
            .await
            .map(|n| assert_eq!(n, 1))
            .unwrap();
    });
}

#[test]
fn names_from_task_builder_reach_join_errors() {
    run_test(|scope| async move {
        let task = TaskBuilder::new()
            .name("named-on-main")
            .spawn(&scope.main(), HeldWaker::default());
        assert_eq!(task.name(), Some("named-on-main"));
        drop(task); // cancelled: the end-of-test check is about scope tasks
    });
}

#[test]
fn run_test_on_the_unconfined_flavour() {
    let config = TestConfig::new().dispatcher(TestDispatcher::unconfined());
    run_test_with(config, |scope| async move {
        let log = Log::default();
        let inner = log.clone();
        let task = scope.spawn(async move {
            push(&inner, "started eagerly");
            delay(secs(1)).await;
            push(&inner, "resumed");
        });
        assert_eq!(entries(&log), ["started eagerly"]);
        task.await.unwrap();
        assert_eq!(entries(&log), ["started eagerly", "resumed"]);
        assert_eq!(scope.current_time(), secs(1));
    });
}

#[test]
fn a_test_dispatcher_can_be_driven_by_hand() {
    let test = TestDispatcher::new();
    let _installed = test.install();
    let task = spawn_on_main(async {
        delay(secs(90)).await;
        "done"
    });
    test.advance_time_by(secs(89));
    assert!(!task.is_finished());
    test.advance_until_idle();
    assert_eq!(dispatchers::block_on(task).unwrap(), "done");
    assert_eq!(test.current_time(), secs(90));
}
