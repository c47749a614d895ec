//! Unit tests of the test dispatcher's queue, clock and bookkeeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{TestDispatcher, run_test};
use crate::{Dispatchers, delay, yield_now};

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::default()
}

fn push(log: &Log, entry: impl Into<String>) {
    log.lock().unwrap().push(entry.into());
}

fn take(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn tasks_run_only_when_the_test_runs_the_queue_in_fifo_order() {
    let test = TestDispatcher::new();
    let log = log();
    for name in ["a", "b", "c"] {
        let log = log.clone();
        test.dispatcher()
            .spawn(async move { push(&log, name) })
            .detach();
    }
    assert!(take(&log).is_empty());
    assert!(!test.is_idle());
    test.run_current();
    assert_eq!(take(&log), ["a", "b", "c"]);
    assert!(test.is_idle());
    assert_eq!(test.current_time(), Duration::ZERO);
}

#[test]
fn a_task_woken_by_its_timer_runs_at_the_timer_turn() {
    // The clock lands exactly on a deadline without running it; a task
    // queued afterwards runs after the timer's task: (time, sequence) order.
    let test = TestDispatcher::new();
    let log = log();
    let timed = log.clone();
    test.dispatcher()
        .spawn(async move {
            delay(ms(10)).await;
            push(&timed, "timer");
        })
        .detach();
    test.advance_time_by(ms(10));
    assert!(take(&log).is_empty());
    let queued = log.clone();
    test.dispatcher()
        .spawn(async move { push(&queued, "queued") })
        .detach();
    test.run_current();
    assert_eq!(take(&log), ["timer", "queued"]);
}

#[test]
fn run_current_does_not_move_the_clock() {
    let test = TestDispatcher::new();
    let done = test.dispatcher().spawn(delay(ms(5)));
    test.run_current();
    assert!(!done.is_finished());
    assert_eq!(test.pending_timers(), 1);
    assert_eq!(test.current_time(), Duration::ZERO);
    test.advance_until_idle();
    assert!(done.is_finished());
    assert_eq!(test.current_time(), ms(5));
}

#[test]
fn a_dropped_delay_cancels_its_timer() {
    let test = TestDispatcher::new();
    let task = test.dispatcher().spawn(delay(Duration::from_secs(3600)));
    test.run_current();
    assert_eq!(test.pending_timers(), 1);
    drop(task);
    test.run_current();
    assert_eq!(test.pending_timers(), 0);
    assert!(test.is_idle());
    test.advance_until_idle();
    assert_eq!(
        test.current_time(),
        Duration::ZERO,
        "nothing left to wait for"
    );
}

#[test]
fn the_unconfined_flavour_runs_in_place_and_queues_yields() {
    let test = TestDispatcher::unconfined();
    let _installed = test.install();
    let log = log();
    let inner = log.clone();
    let task = test.dispatcher().spawn(async move {
        push(&inner, "started");
        yield_now().await;
        push(&inner, "after yield");
        delay(ms(7)).await;
        push(&inner, "after delay");
    });
    assert_eq!(take(&log), ["started"], "ran in place, up to the yield");
    test.run_current();
    assert_eq!(take(&log), ["after yield"]);
    test.advance_until_idle();
    assert_eq!(take(&log), ["after delay"]);
    assert!(task.is_finished());
    assert_eq!(test.current_time(), ms(7));
}

#[test]
fn flavours_share_one_clock_and_queue() {
    let standard = TestDispatcher::new();
    let unconfined = standard.to_unconfined();
    let _installed = standard.install();
    assert!(unconfined.is_unconfined() && !standard.is_unconfined());
    let log = log();
    let a = log.clone();
    standard
        .dispatcher()
        .spawn(async move { push(&a, "standard") })
        .detach();
    let b = log.clone();
    unconfined
        .dispatcher()
        .spawn(async move {
            push(&b, "unconfined");
            delay(ms(3)).await;
            push(&b, "unconfined later");
        })
        .detach();
    assert_eq!(take(&log), ["unconfined"]);
    standard.advance_until_idle();
    assert_eq!(take(&log), ["standard", "unconfined later"]);
    assert_eq!(unconfined.current_time(), ms(3));
}

#[test]
fn unconfined_work_is_queued_where_the_virtual_clock_is_not_installed() {
    // In place here, a delay would wait on the real clock: it is queued and
    // runs in the next run_current, on the virtual clock.
    let test = TestDispatcher::unconfined();
    let task = test.dispatcher().spawn(delay(Duration::from_secs(600)));
    assert_eq!(test.pending_timers(), 0);
    test.run_current();
    assert_eq!(test.pending_timers(), 1);
    test.advance_until_idle();
    assert!(task.is_finished());
    assert_eq!(test.current_time(), Duration::from_secs(600));
}

#[test]
fn a_dispatch_from_another_thread_runs_on_the_test_thread_at_the_next_run() {
    let test = TestDispatcher::new();
    let dispatcher = test.dispatcher();
    let test_thread = std::thread::current().id();
    let task = std::thread::spawn(move || dispatcher.spawn(async { std::thread::current().id() }))
        .join()
        .unwrap();
    assert!(!task.is_finished());
    test.run_current();
    assert!(task.is_finished());
    assert_eq!(crate::block_on(task).unwrap(), test_thread);
}

#[test]
fn is_current_thread_only_on_the_test_thread() {
    let test = TestDispatcher::new();
    assert!(test.dispatcher().is_current_thread());
    let main = test.main();
    assert!(!main.immediate().is_dispatch_needed());
    assert!(
        std::thread::spawn(
            move || !main.is_current_thread() && main.immediate().is_dispatch_needed()
        )
        .join()
        .unwrap()
    );
}

#[test]
fn install_sets_main_and_the_clock_for_this_thread_and_restores_them() {
    let test = TestDispatcher::new();
    let before = Dispatchers::main();
    {
        let _installed = test.install();
        assert_eq!(*Dispatchers::main(), test.dispatcher());
        assert!(clock_is(&test));
        let other = std::thread::spawn(|| Dispatchers::main().dispatcher().clone())
            .join()
            .unwrap();
        assert_ne!(other, test.dispatcher());
    }
    assert_eq!(*Dispatchers::main(), *before);
    assert!(!clock_is(&test));
}

/// Whether `test`'s virtual clock is the one `delay` uses on this thread.
fn clock_is(test: &TestDispatcher) -> bool {
    let current = crate::time::service::current();
    std::ptr::addr_eq(Arc::as_ptr(&current), Arc::as_ptr(test.scheduler()))
}

#[test]
fn background_work_does_not_keep_the_dispatcher_busy() {
    run_test(|scope| async move {
        let ticks = Arc::new(Mutex::new(0));
        let counter = ticks.clone();
        scope
            .background()
            .spawn_named("ticker", async move {
                loop {
                    delay(Duration::from_secs(1)).await;
                    *counter.lock().unwrap() += 1;
                }
            })
            .detach();
        scope.spawn(delay(ms(3500))).detach();
        scope.advance_until_idle();
        assert_eq!(scope.current_time(), ms(3500));
        assert_eq!(*ticks.lock().unwrap(), 3);
        assert!(scope.test_dispatcher().is_idle());
        assert_eq!(scope.test_dispatcher().pending_timers(), 1, "the ticker's");
    });
}

#[test]
fn shutdown_cancels_waiting_and_queued_tasks_in_place() {
    let test = TestDispatcher::new();
    let dropped = Arc::new(Mutex::new(0));
    struct CountDrop(Arc<Mutex<i32>>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            *self.0.lock().unwrap() += 1;
        }
    }
    let guard = CountDrop(dropped.clone());
    let waiting = test.dispatcher().spawn(async move {
        let _guard = guard;
        delay(Duration::from_secs(60)).await;
    });
    test.run_current();
    let guard = CountDrop(dropped.clone());
    let queued = test.dispatcher().spawn(async move {
        let _guard = guard;
    });
    test.shutdown();
    assert_eq!(*dropped.lock().unwrap(), 2, "both futures dropped here");
    assert!(crate::block_on(waiting).unwrap_err().is_cancelled());
    assert!(crate::block_on(queued).unwrap_err().is_cancelled());
    let late = test.dispatcher().spawn(async {});
    assert!(crate::block_on(late).unwrap_err().is_cancelled());
}

#[test]
fn conversions_give_the_handles_of_the_test_dispatcher() {
    let test = TestDispatcher::new();
    let main: crate::MainDispatcher = test.clone().into();
    assert_eq!(*main, test.dispatcher());
    let dispatcher: crate::Dispatcher = test.clone().into();
    assert_eq!(dispatcher, test.dispatcher());
    assert_eq!(dispatcher.name(), "TestDispatcher");
    assert_eq!(
        TestDispatcher::unconfined().dispatcher().name(),
        "UnconfinedTestDispatcher"
    );
    // One task at a time already: a limited view is the dispatcher itself.
    assert_eq!(dispatcher.limited_parallelism(4).unwrap(), dispatcher);
}

#[test]
fn public_types_are_send_and_sync_where_it_matters() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<TestDispatcher>();
    send_sync::<super::TestScope>();
    send_sync::<super::TestConfig>();
}
