//! One loop iteration runs at most one budget, even when the wake-up ping and
//! the timer come in it together (calloop then calls the source's
//! `process_events` once for each), and what is left, or dispatched
//! meanwhile, runs in the following iterations without any other event.
//!
//! Each test runs its loop on a thread of its own under a watchdog, so a lost
//! wake-up fails the test instead of hanging it. Nothing depends on timing
//! luck: the waits only make the timer more certainly due.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[path = "../../../tests/support/watchdog.rs"]
mod watchdog;

use calloop::EventLoop;
use dispatchers::{Budget, MainDispatcher, delay};
use dispatchers_calloop::HostSource;

/// The budget of the tests: a few tasks, no time limit (a descheduled thread
/// cannot change what one iteration runs).
const TASKS_PER_ITERATION: usize = 5;

/// [`watchdog::watchdog`] for this file's loops: 10 s.
fn watchdog<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog::watchdog("calloop-budget-loop", Duration::from_secs(10), test)
}

/// What the source's callback saw: `run_pending` calls and tasks run.
#[derive(Default)]
struct Runs {
    reports: Cell<usize>,
    ran: Cell<usize>,
}

impl Runs {
    /// The counts since the last call, which resets them.
    fn take(&self) -> (usize, usize) {
        (self.reports.take(), self.ran.take())
    }
}

/// A loop with a source of budget [`TASKS_PER_ITERATION`] whose callback
/// counts its runs into `runs`, then calls `on_run`; after its first
/// iteration (the one that runs the timer armed at registration, and tells
/// the source its timer's token).
fn loop_with_counted_source(
    runs: &Rc<Runs>,
    on_run: impl FnMut() + 'static,
) -> (EventLoop<'static, ()>, MainDispatcher) {
    let source = HostSource::new("budget-per-iteration")
        .with_budget(Budget::unlimited().max_tasks(TASKS_PER_ITERATION));
    let main = source.dispatcher();
    let mut event_loop: EventLoop<()> = EventLoop::try_new().unwrap();
    let counts = runs.clone();
    let mut on_run = on_run;
    event_loop
        .handle()
        .insert_source(source, move |report, &mut (), &mut ()| {
            counts.reports.set(counts.reports.get() + 1);
            counts.ran.set(counts.ran.get() + report.ran);
            on_run();
        })
        .unwrap();
    event_loop.dispatch(Duration::ZERO, &mut ()).unwrap();
    assert_eq!(runs.take(), (1, 0), "the registration's iteration");
    (event_loop, main)
}

/// Starts a task that sleeps 20 ms on the loop's timer, and runs the
/// iteration that starts it: from the next iteration on, calloop's timer is
/// armed at its deadline. Returns whether the task finished.
fn start_a_delay(
    event_loop: &mut EventLoop<'static, ()>,
    main: &MainDispatcher,
) -> Arc<AtomicBool> {
    let woke = Arc::new(AtomicBool::new(false));
    let flag = woke.clone();
    main.spawn(async move {
        delay(Duration::from_millis(20)).await;
        flag.store(true, Ordering::Relaxed);
    })
    .detach();
    event_loop
        .dispatch(Duration::from_secs(5), &mut ())
        .unwrap();
    assert!(!woke.load(Ordering::Relaxed));
    woke
}

/// Queues `count` tasks that count themselves into `ran` (a ping: the first
/// dispatch since the loop drained its queue wakes it).
fn spawn_counted(main: &MainDispatcher, count: usize, ran: &Arc<AtomicUsize>) {
    for _ in 0..count {
        let ran = ran.clone();
        main.spawn(async move {
            ran.fetch_add(1, Ordering::Relaxed);
        })
        .detach();
    }
}

/// Far past the 20 ms delay: its deadline has passed for certain, so the next
/// iteration has both the ping and the timer.
fn let_the_delay_come_due() {
    std::thread::sleep(Duration::from_millis(100));
}

#[test]
fn the_ping_and_the_timer_in_one_iteration_run_one_budget() {
    watchdog(|| {
        let runs = Rc::new(Runs::default());
        let (mut event_loop, main) = loop_with_counted_source(&runs, || {});
        let woke = start_a_delay(&mut event_loop, &main);
        runs.take();

        let ran = Arc::new(AtomicUsize::new(0));
        spawn_counted(&main, 100, &ran);
        let_the_delay_come_due();
        event_loop.dispatch(Duration::ZERO, &mut ()).unwrap();
        let (reports, tasks) = runs.take();
        assert_eq!(
            reports, 1,
            "run_pending ran {reports} times in one iteration ({tasks} tasks)"
        );
        assert!(
            tasks <= TASKS_PER_ITERATION,
            "{tasks} tasks in one iteration"
        );

        // The rest runs in the next iterations, one budget each, with no
        // event but the source's own re-arm.
        let mut iterations = 0;
        while ran.load(Ordering::Relaxed) < 100 || !woke.load(Ordering::Relaxed) {
            event_loop
                .dispatch(Duration::from_secs(5), &mut ())
                .unwrap();
            iterations += 1;
            let (reports, tasks) = runs.take();
            assert!(reports <= 1, "{reports} runs in iteration {iterations}");
            assert!(
                tasks <= TASKS_PER_ITERATION,
                "{tasks} tasks in iteration {iterations}"
            );
        }
        assert_eq!(ran.load(Ordering::Relaxed), 100);
        // 101 tasks (the 100 and the delay's) at 5 per iteration.
        assert!(
            iterations >= 101 / TASKS_PER_ITERATION,
            "{iterations} iterations"
        );
    });
}

#[test]
fn work_dispatched_after_the_iterations_run_still_wakes_the_loop() {
    watchdog(|| {
        let runs = Rc::new(Runs::default());
        // Armed for the iteration with both events: its run dispatches a task
        // from another thread, after `run_pending` drained the queue and
        // before the iteration's second event (which must not run it).
        let armed: Rc<Cell<Option<MainDispatcher>>> = Rc::new(Cell::new(None));
        let during = Arc::new(AtomicBool::new(false));
        let (mut event_loop, main) = loop_with_counted_source(&runs, {
            let armed = armed.clone();
            let during = during.clone();
            move || {
                if let Some(main) = armed.take() {
                    let during = during.clone();
                    std::thread::spawn(move || {
                        main.spawn(async move { during.store(true, Ordering::Relaxed) })
                            .detach();
                    })
                    .join()
                    .unwrap();
                }
            }
        });
        let woke = start_a_delay(&mut event_loop, &main);
        runs.take();

        // Fewer tasks than the budget: the run leaves nothing, so only the
        // late dispatch's own wake-up can bring the loop round.
        let ran = Arc::new(AtomicUsize::new(0));
        spawn_counted(&main, 2, &ran);
        let_the_delay_come_due();
        armed.set(Some(main.clone()));
        event_loop.dispatch(Duration::ZERO, &mut ()).unwrap();
        assert!(
            armed.take().is_none(),
            "the iteration did not run the engine"
        );
        assert_eq!(runs.take().0, 1, "one run per iteration");
        assert_eq!(ran.load(Ordering::Relaxed), 2);
        assert!(woke.load(Ordering::Relaxed));
        assert!(!during.load(Ordering::Relaxed), "ran in the same iteration");

        // Nothing but that dispatch's wake-up: a lost one hangs here.
        while !during.load(Ordering::Relaxed) {
            event_loop.dispatch(None, &mut ()).unwrap();
        }

        // And a dispatch from another thread between two iterations.
        let after = Arc::new(AtomicBool::new(false));
        {
            let main = main.clone();
            let after = after.clone();
            std::thread::spawn(move || {
                main.spawn(async move { after.store(true, Ordering::Relaxed) })
                    .detach();
            })
            .join()
            .unwrap();
        }
        while !after.load(Ordering::Relaxed) {
            event_loop.dispatch(None, &mut ()).unwrap();
        }
    });
}
