//! The cases of the conformance suite, in the order they run.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use dispatchers::{
    Dispatch, Dispatcher, MainDispatcher, PanicSource, Runnable, Task, block_on, delay,
    reset_panic_handler, set_panic_handler, timeout, with_context, yield_now,
};

use super::HostUnderTest;

/// Generous: a case that takes this long is hung, not slow.
const WATCHDOG: Duration = Duration::from_secs(60);

/// A case: its name and the check, run against the host's Main.
type Case = (&'static str, fn(&MainDispatcher));

pub(super) fn run_all(host: &mut HostUnderTest) {
    let cases: &[Case] = &[
        ("tasks run on the loop thread", runs_on_the_loop_thread),
        (
            "immediate is dispatched off the loop thread",
            immediate_dispatches_off_thread,
        ),
        (
            "immediate runs in place on the loop thread",
            immediate_runs_in_place_on_thread,
        ),
        (
            "nested immediate runs are queued, not nested",
            nested_immediate_runs_fifo,
        ),
        ("Main is FIFO from one thread", main_is_fifo),
        (
            "yield_now goes behind queued tasks",
            yield_goes_behind_queued_tasks,
        ),
        (
            "delay resumes on the loop thread, not early",
            delay_resumes_on_loop_thread,
        ),
        ("many delays all complete", many_delays_complete),
        ("timeout cancels a long delay", timeout_cancels_long_delay),
        ("with_context round trip", with_context_round_trip),
        ("panic isolation", panics_are_isolated),
        ("spawn from 4 threads at once", spawn_from_four_threads),
        (
            "spawn_local on the loop thread only",
            spawn_local_on_loop_thread_only,
        ),
    ];
    for (name, case) in cases {
        eprintln!("conformance[{}]: {name}", host.name);
        case(&host.main);
    }
    eprintln!("conformance[{}]: rejection after the loop ends", host.name);
    rejection_after_the_loop_ends(host);
}

/// Awaits `task` from the test thread, failing instead of hanging.
fn wait<T>(task: Task<T>) -> T {
    block_on(timeout(WATCHDOG, task))
        .expect("watchdog: the host did not run the task within 60 s")
        .expect("the task failed")
}

/// Runs `f` in a task on Main and returns its result.
fn on_main<T: Send + 'static>(main: &MainDispatcher, f: impl FnOnce() -> T + Send + 'static) -> T {
    wait(main.spawn(async move { f() }))
}

fn loop_thread(main: &MainDispatcher) -> ThreadId {
    on_main(main, || thread::current().id())
}

fn runs_on_the_loop_thread(main: &MainDispatcher) {
    let loop_thread = loop_thread(main);
    assert_ne!(loop_thread, thread::current().id());
    assert!(!main.is_current_thread());
    assert!(on_main(main, {
        let main = main.clone();
        move || main.is_current_thread()
    }));
    assert!(main.is_dispatch_needed(), "Main always dispatches");
}

fn immediate_dispatches_off_thread(main: &MainDispatcher) {
    let immediate = main.immediate();
    assert!(
        immediate.is_dispatch_needed(),
        "off the loop thread, immediate must dispatch"
    );
    let loop_thread = loop_thread(main);
    let ran_on = wait(immediate.spawn(async { thread::current().id() }));
    assert_eq!(ran_on, loop_thread);
}

fn immediate_runs_in_place_on_thread(main: &MainDispatcher) {
    let main2 = main.clone();
    let (in_place, needed, main_needed) = on_main(main, move || {
        let immediate = main2.immediate();
        let task = immediate.spawn(async { 7 });
        let finished = task.is_finished();
        task.detach();
        (
            finished,
            immediate.is_dispatch_needed(),
            main2.is_dispatch_needed(),
        )
    });
    assert!(
        in_place,
        "spawn on immediate from the loop thread must run in place"
    );
    assert!(!needed);
    assert!(main_needed, "Main itself always dispatches");
}

fn nested_immediate_runs_fifo(main: &MainDispatcher) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let main2 = main.clone();
    let log2 = log.clone();
    on_main(main, move || {
        let immediate = main2.immediate();
        let push = |s: &'static str| log2.lock().unwrap().push(s);
        let (inner_log, imm) = (log2.clone(), immediate.clone());
        immediate
            .spawn(async move {
                inner_log.lock().unwrap().push("outer start");
                let nested_log = inner_log.clone();
                imm.spawn(async move { nested_log.lock().unwrap().push("nested") })
                    .detach();
                inner_log.lock().unwrap().push("outer end");
            })
            .detach();
        push("caller after spawn");
    });
    assert_eq!(
        *log.lock().unwrap(),
        ["outer start", "outer end", "nested", "caller after spawn"]
    );
}

fn main_is_fifo(main: &MainDispatcher) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let log = log.clone();
            main.spawn(async move { log.lock().unwrap().push(i) })
        })
        .collect();
    for task in tasks {
        wait(task);
    }
    assert_eq!(*log.lock().unwrap(), (0..1000).collect::<Vec<_>>());
}

fn yield_goes_behind_queued_tasks(main: &MainDispatcher) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (main2, log2) = (main.clone(), log.clone());
    wait(main.immediate().spawn(async move {
        let queued_log = log2.clone();
        main2
            .spawn(async move { queued_log.lock().unwrap().push("queued before the yield") })
            .detach();
        yield_now().await;
        log2.lock().unwrap().push("after the yield");
    }));
    assert_eq!(
        *log.lock().unwrap(),
        ["queued before the yield", "after the yield"]
    );
}

fn delay_resumes_on_loop_thread(main: &MainDispatcher) {
    let loop_thread = loop_thread(main);
    let (elapsed, thread) = wait(main.spawn(async {
        let start = Instant::now();
        delay(Duration::from_millis(50)).await;
        (start.elapsed(), thread::current().id())
    }));
    assert_eq!(thread, loop_thread);
    assert!(
        elapsed >= Duration::from_millis(50),
        "woke early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "woke far too late: {elapsed:?}"
    );
}

fn many_delays_complete(main: &MainDispatcher) {
    let tasks: Vec<_> = (0..200u64)
        .map(|i| {
            main.spawn(async move {
                let wanted = Duration::from_millis(1 + i % 50);
                let start = Instant::now();
                delay(wanted).await;
                start.elapsed() >= wanted
            })
        })
        .collect();
    for task in tasks {
        assert!(wait(task), "a delay completed early");
    }
}

fn timeout_cancels_long_delay(main: &MainDispatcher) {
    let result = wait(main.spawn(async {
        timeout(Duration::from_millis(10), delay(Duration::from_secs(3600))).await
    }));
    assert!(result.is_err());
    let quick = wait(main.spawn(async { timeout(Duration::from_secs(3600), async { 5 }).await }));
    assert_eq!(quick, Ok(5));
}

/// A dispatcher on one thread of its own: the far side of a hop.
struct Worker(Mutex<std::sync::mpsc::Sender<Runnable>>);

impl Dispatch for Worker {
    fn dispatch(&self, runnable: Runnable) {
        let _ = self.0.lock().unwrap().send(runnable);
    }

    fn name(&self) -> &str {
        "conformance-worker"
    }
}

fn worker() -> (Dispatcher, ThreadId) {
    let (tx, rx) = std::sync::mpsc::channel::<Runnable>();
    let handle = thread::Builder::new()
        .name("conformance-worker".into())
        .spawn(move || {
            for runnable in rx {
                runnable.run();
            }
        })
        .unwrap();
    (
        Dispatcher::new(Worker(Mutex::new(tx))),
        handle.thread().id(),
    )
}

fn with_context_round_trip(main: &MainDispatcher) {
    let loop_thread = loop_thread(main);
    let (worker, worker_thread) = worker();
    let (inside, after) = wait(main.spawn(async move {
        let inside = with_context(&worker, async { thread::current().id() }).await;
        (inside, thread::current().id())
    }));
    assert_eq!(inside, worker_thread);
    assert_eq!(
        after, loop_thread,
        "with_context must resume on the caller's dispatcher"
    );

    let main2 = main.clone();
    let (worker, _) = self::worker();
    let caught = wait(main.spawn(async move {
        let hop = with_context(&worker, async { panic!("inside the hop") });
        let result = futures_catch(hop).await;
        (result, main2.is_current_thread())
    }));
    assert_eq!(caught, (Err("inside the hop".to_owned()), true));
}

/// Catches a panic of `future` as its message.
async fn futures_catch<F: std::future::Future>(future: F) -> Result<F::Output, String> {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(payload) => std::task::Poll::Ready(Err(payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default())),
        },
    )
    .await
}

fn panics_are_isolated(main: &MainDispatcher) {
    let reported = Arc::new(AtomicUsize::new(0));
    let counter = reported.clone();
    set_panic_handler(move |report| {
        if report.source() == PanicSource::DetachedTask && report.message() == Some("detached boom")
        {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let error = block_on(timeout(WATCHDOG, main.spawn(async { panic!("boom") })))
        .expect("watchdog")
        .unwrap_err();
    assert!(error.is_panic());
    for _ in 0..10 {
        main.spawn(async { panic!("detached boom") }).detach();
    }
    assert_eq!(
        on_main(main, || 1 + 1),
        2,
        "the loop keeps running after panics"
    );
    let deadline = Instant::now() + WATCHDOG;
    while reported.load(Ordering::SeqCst) < 10 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    reset_panic_handler();
    assert_eq!(
        reported.load(Ordering::SeqCst),
        10,
        "every detached panic reported once"
    );
}

fn spawn_from_four_threads(main: &MainDispatcher) {
    const PER_THREAD: usize = 10_000;
    let loop_thread = loop_thread(main);
    let ran = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let (main, ran) = (main.clone(), ran.clone());
            thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|_| {
                        let ran = ran.clone();
                        main.spawn(async move {
                            assert_eq!(thread::current().id(), loop_thread);
                            ran.fetch_add(1, Ordering::Relaxed);
                        })
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for producer in producers {
        for task in producer.join().unwrap() {
            wait(task);
        }
    }
    assert_eq!(ran.load(Ordering::Relaxed), 4 * PER_THREAD);
}

fn spawn_local_on_loop_thread_only(main: &MainDispatcher) {
    assert!(
        main.try_spawn_local(async {}).is_err(),
        "off the loop thread"
    );
    let main2 = main.clone();
    let value = wait(main.spawn(async move {
        // The !Send state lives only inside the local task.
        let task = main2.spawn_local(async move {
            let state = Rc::new(std::cell::Cell::new(1));
            yield_now().await;
            state.set(state.get() + 1);
            state.get()
        });
        task.await.unwrap()
    }));
    assert_eq!(value, 2);
}

fn rejection_after_the_loop_ends(host: &mut HostUnderTest) {
    let main = host.main.clone();
    let sleeping = main.spawn(async { delay(Duration::from_secs(3600)).await });
    // Let the task start and register its timer.
    assert_eq!(on_main(&main, || 0), 0);
    host.stop();
    let error = block_on(timeout(WATCHDOG, main.spawn(async { 1 })))
        .expect("a dispatch after the loop ended must resolve, not hang")
        .unwrap_err();
    assert!(error.is_cancelled(), "{error}");
    let error = block_on(timeout(WATCHDOG, sleeping))
        .expect("a task waiting on the loop's timer must be cancelled, not hang")
        .unwrap_err();
    assert!(error.is_cancelled(), "{error}");
}
