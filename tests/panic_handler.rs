//! The global handler for panics with no `Task` to go to. One test: the
//! handler is process-wide.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use dispatchers::{
    Budget, Dispatch, Dispatcher, LoopHost, PanicSource, Runnable, TaskBuilder,
    reset_panic_handler, set_panic_handler,
};

/// A dispatcher that panics on every dispatch.
struct Exploding;

impl Dispatch for Exploding {
    fn dispatch(&self, runnable: Runnable) {
        drop(runnable);
        panic!("dispatch exploded");
    }

    fn name(&self) -> &str {
        "exploding"
    }
}

#[test]
fn panics_without_a_task_reach_the_handler_once_each() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    set_panic_handler(move |report| {
        sink.lock().unwrap().push((
            report.source(),
            report.name().map(str::to_owned),
            report.message().map(str::to_owned),
            report.to_string(),
        ));
    });

    let host = LoopHost::new("loop");
    let main = host.dispatcher();

    // Detached before it panics.
    TaskBuilder::new()
        .name("before")
        .spawn(&main, async { panic!("late boom") })
        .detach();
    // Panics before it is detached: the payload is fetched on detach.
    let early = TaskBuilder::new()
        .name("after")
        .spawn(&main, async { panic!("early boom") });
    host.run_pending(Budget::unlimited());
    assert!(early.is_finished());
    early.detach();
    // Awaited to the end through `&mut` (as `select!` does), then detached:
    // the payload went to the awaiter, so nothing is reported and nothing
    // panics.
    let mut awaited = TaskBuilder::new()
        .name("awaited")
        .spawn(&main, async { panic!("awaited boom") });
    host.run_pending(Budget::unlimited());
    let joined = dispatchers::block_on(std::future::poll_fn(|cx| {
        std::pin::Pin::new(&mut awaited).poll(cx)
    }));
    assert!(joined.unwrap_err().is_panic());
    awaited.detach();
    // The loop keeps running after the panics.
    let normal_runs = Arc::new(AtomicUsize::new(0));
    let runs = normal_runs.clone();
    main.spawn(async move {
        runs.fetch_add(1, Ordering::SeqCst);
    })
    .detach();
    host.run_pending(Budget::unlimited());
    assert_eq!(normal_runs.load(Ordering::SeqCst), 1);

    // A Dispatch that panics when a waker schedules a task: reported, the
    // waker's caller is not unwound, and the task is cancelled.
    let exploding = Dispatcher::new(ExplodesAfterFirst(AtomicUsize::new(0)));
    let (waker_tx, waker_rx) = std::sync::mpsc::channel();
    let waker_tx = Mutex::new(Some(waker_tx));
    let parked = exploding.spawn(std::future::poll_fn(move |cx| {
        if let Some(tx) = waker_tx.lock().unwrap().take() {
            tx.send(cx.waker().clone()).unwrap();
        }
        std::task::Poll::<()>::Pending
    }));
    let waker: std::task::Waker = waker_rx.recv().unwrap();
    waker.wake(); // the second dispatch panics inside; wake() must return
    let cancelled = dispatchers::block_on(parked).unwrap_err();
    assert!(cancelled.is_cancelled());

    // The first dispatch of a new task surfaces in spawn's caller instead.
    let spawn_panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Dispatcher::new(Exploding).spawn(async {}).detach();
    }));
    assert!(spawn_panic.is_err());

    reset_panic_handler();
    let reports = reports.lock().unwrap();
    let detached: Vec<_> = reports
        .iter()
        .filter(|r| r.0 == PanicSource::DetachedTask)
        .collect();
    assert_eq!(detached.len(), 2, "{reports:?}");
    assert!(detached.iter().any(|r| r.1.as_deref() == Some("before")
        && r.2.as_deref() == Some("late boom")
        && r.3 == "detached task 'before' panicked: late boom"));
    assert!(
        detached
            .iter()
            .any(|r| r.1.as_deref() == Some("after") && r.2.as_deref() == Some("early boom"))
    );
    let dispatch: Vec<_> = reports
        .iter()
        .filter(|r| r.0 == PanicSource::Dispatch)
        .collect();
    assert_eq!(dispatch.len(), 1, "{reports:?}");
    assert_eq!(dispatch[0].1.as_deref(), Some("exploding"));
}

/// Runs its first task on a thread of its own, then panics on every dispatch.
struct ExplodesAfterFirst(AtomicUsize);

impl Dispatch for ExplodesAfterFirst {
    fn dispatch(&self, runnable: Runnable) {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            std::thread::spawn(move || runnable.run());
        } else {
            drop(runnable);
            panic!("dispatch exploded");
        }
    }

    fn name(&self) -> &str {
        "exploding"
    }
}
