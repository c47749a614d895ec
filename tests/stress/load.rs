//! Phases 1 to 3 of the stress suite: the dispatch storm, the `with_context`
//! ping-pong and the panic storm.

use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::thread::{self, ThreadId};
use std::time::Duration;

use dispatchers::{
    Dispatchers, MainDispatcher, PanicSource, Task, block_on, delay, reset_panic_handler,
    set_panic_handler, timeout, with_context, yield_now,
};

use super::{Dice, DropCount, Sizes, WAIT_LIMIT, loop_thread, on_main, report, wait, wait_until};

// ---------------------------------------------------------------------------
// Phase 1: the dispatch storm.
// ---------------------------------------------------------------------------

/// Tasks in flight per producer before it waits for them.
const BATCH: usize = 1024;

/// What the storm saw, shared by the producers and the tasks.
struct Ledger {
    /// Per task: how many times its body ran.
    ran: Vec<AtomicU8>,
    /// Per task: its `Task` was dropped while it slept (it must never run).
    cancelled: Vec<AtomicU8>,
    futures_dropped: Arc<AtomicUsize>,
    off_loop: AtomicUsize,
    loop_thread: ThreadId,
}

impl Ledger {
    fn ran(&self, i: usize) {
        self.ran[i].fetch_add(1, Ordering::Relaxed);
        if thread::current().id() != self.loop_thread {
            self.off_loop.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `sizes.producers` threads dispatch `sizes.per_producer` tasks each.
pub fn dispatch_storm(host: &str, main: &MainDispatcher, sizes: Sizes) {
    let total = sizes.producers * sizes.per_producer;
    let ledger = Arc::new(Ledger {
        ran: (0..total).map(|_| AtomicU8::new(0)).collect(),
        cancelled: (0..total).map(|_| AtomicU8::new(0)).collect(),
        futures_dropped: Arc::new(AtomicUsize::new(0)),
        off_loop: AtomicUsize::new(0),
        loop_thread: loop_thread(main),
    });
    let producers: Vec<_> = (0..sizes.producers)
        .map(|p| {
            let (main, ledger) = (main.clone(), ledger.clone());
            let range = p * sizes.per_producer..(p + 1) * sizes.per_producer;
            thread::Builder::new()
                .name(format!("stress-producer-{p}"))
                .spawn(move || produce(&main, &ledger, range, p as u64))
                .expect("cannot start a producer")
        })
        .collect();
    let mut kinds = Kinds::default();
    for producer in producers {
        kinds.add(producer.join().expect("a producer panicked"));
    }
    let expected_runs = total - kinds.cancelled;
    // Detached tasks may still be asleep: wait for them (the watchdog fails
    // the run if they never come).
    wait_until(|| {
        let ran: usize = ledger
            .ran
            .iter()
            .map(|r| r.load(Ordering::Relaxed) as usize)
            .sum();
        ran >= expected_runs && ledger.futures_dropped.load(Ordering::Relaxed) >= total
    });
    let mut twice = 0;
    let mut never = 0;
    let mut after_drop = 0;
    for i in 0..total {
        let ran = ledger.ran[i].load(Ordering::Relaxed);
        if ledger.cancelled[i].load(Ordering::Relaxed) == 1 {
            after_drop += usize::from(ran != 0);
        } else {
            never += usize::from(ran == 0);
            twice += usize::from(ran > 1);
        }
    }
    report(
        host,
        &format!(
            "dispatch storm: {total} tasks from {} threads ({} with a delay, {} cancelled \
             asleep, {} detached); ran exactly once: {}, never ran: {never}, ran twice: {twice}, \
             ran after its Task was dropped: {after_drop}, ran off the loop thread: {}, \
             futures dropped: {}",
            sizes.producers,
            kinds.delayed,
            kinds.cancelled,
            kinds.detached,
            expected_runs - never - twice,
            ledger.off_loop.load(Ordering::Relaxed),
            ledger.futures_dropped.load(Ordering::Relaxed),
        ),
    );
    assert_eq!((never, twice, after_drop), (0, 0, 0));
    assert_eq!(ledger.off_loop.load(Ordering::Relaxed), 0);
    assert_eq!(ledger.futures_dropped.load(Ordering::Relaxed), total);
    assert!(on_main(main, || true), "the loop survived the storm");
}

#[derive(Debug, Default, Clone, Copy)]
struct Kinds {
    delayed: usize,
    cancelled: usize,
    detached: usize,
}

impl Kinds {
    fn add(&mut self, other: Kinds) {
        self.delayed += other.delayed;
        self.cancelled += other.cancelled;
        self.detached += other.detached;
    }
}

/// One producer: dispatches the tasks of `range` in batches, awaiting the
/// attached ones after each batch.
fn produce(
    main: &MainDispatcher,
    ledger: &Arc<Ledger>,
    range: std::ops::Range<usize>,
    seed: u64,
) -> Kinds {
    let mut dice = Dice::new(seed);
    let mut kinds = Kinds::default();
    let mut awaited = Vec::with_capacity(BATCH);
    for i in range {
        let guard = DropCount(ledger.futures_dropped.clone());
        let ledger2 = ledger.clone();
        let roll = dice.roll(100);
        let task: Task<()> = if roll < 80 {
            main.spawn(async move {
                let _guard = guard;
                ledger2.ran(i);
            })
        } else if roll < 95 {
            kinds.delayed += 1;
            let wait = Duration::from_micros(dice.roll(2_000));
            main.spawn(async move {
                let _guard = guard;
                delay(wait).await;
                ledger2.ran(i);
            })
        } else {
            // Asleep for an hour: it can only run if cancellation failed.
            kinds.cancelled += 1;
            ledger.cancelled[i].store(1, Ordering::Relaxed);
            let task = main.spawn(async move {
                let _guard = guard;
                delay(Duration::from_secs(3600)).await;
                ledger2.ran(i);
            });
            if dice.roll(2) == 0 {
                // Let it reach its `delay` first, sometimes.
                thread::yield_now();
            }
            drop(task);
            continue;
        };
        if dice.roll(4) == 0 {
            kinds.detached += 1;
            task.detach();
        } else {
            awaited.push(task);
        }
        if awaited.len() == BATCH {
            for task in awaited.drain(..) {
                wait(task);
            }
        }
    }
    for task in awaited {
        wait(task);
    }
    kinds
}

// ---------------------------------------------------------------------------
// Phase 2: with_context ping-pong.
// ---------------------------------------------------------------------------

/// One task on Main hops to IO and back `round_trips` times.
pub fn ping_pong(host: &str, main: &MainDispatcher, round_trips: usize) {
    let loop_thread = loop_thread(main);
    let off_loop_in_io = Arc::new(AtomicUsize::new(0));
    let counter = off_loop_in_io.clone();
    let task = main.spawn(async move {
        let io = Dispatchers::io();
        let mut back_on_loop = 0;
        for i in 0..round_trips {
            let counter = counter.clone();
            let doubled = with_context(&io, async move {
                if thread::current().id() != loop_thread {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                i * 2
            })
            .await;
            assert_eq!(doubled, i * 2);
            if thread::current().id() == loop_thread {
                back_on_loop += 1;
            }
        }
        back_on_loop
    });
    let back_on_loop = wait(task);
    let in_io = off_loop_in_io.load(Ordering::Relaxed);
    report(
        host,
        &format!(
            "with_context ping-pong: {round_trips} round trips Main -> IO -> Main; ran on IO: \
             {in_io}, resumed on the loop thread: {back_on_loop}"
        ),
    );
    assert_eq!(in_io, round_trips);
    assert_eq!(back_on_loop, round_trips);
}

// ---------------------------------------------------------------------------
// Phase 3: the panic storm.
// ---------------------------------------------------------------------------

/// The message of the storm's panics: `stress-panic {index}`.
const PANIC_MARK: &str = "stress-panic ";

/// Keeps std's panic hook from printing the storm's 10,000 expected panics
/// (every other panic is printed as usual).
fn silence_storm_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if !message.is_some_and(|m| m.starts_with(PANIC_MARK)) {
                previous(info);
            }
        }));
    });
}

fn storm_index(message: Option<&str>) -> Option<usize> {
    message?.strip_prefix(PANIC_MARK)?.parse().ok()
}

/// `panics` panicking tasks (half awaited, half detached), each followed by
/// a normal task, dispatched from two threads.
pub fn panic_storm(host: &str, main: &MainDispatcher, panics: usize) {
    silence_storm_panics();
    let reported: Arc<Vec<AtomicU8>> = Arc::new((0..panics).map(|_| AtomicU8::new(0)).collect());
    let stray_reports = Arc::new(AtomicUsize::new(0));
    {
        let (reported, stray) = (reported.clone(), stray_reports.clone());
        set_panic_handler(move |report| match storm_index(report.message()) {
            Some(i) if report.source() == PanicSource::DetachedTask && i < reported.len() => {
                reported[i].fetch_add(1, Ordering::SeqCst);
            }
            _ => {
                stray.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let normal_done = Arc::new(AtomicUsize::new(0));
    let spawners: Vec<_> = (0..2)
        .map(|half| {
            let (main, normal_done) = (main.clone(), normal_done.clone());
            thread::spawn(move || {
                let mut awaited = Vec::new();
                let mut normal = Vec::new();
                for i in (half..panics).step_by(2) {
                    let task = main.spawn(async move {
                        if i % 3 == 0 {
                            yield_now().await; // some panic after a suspension
                        }
                        panic!("{PANIC_MARK}{i}");
                    });
                    if i % 4 < 2 {
                        awaited.push((i, task));
                    } else {
                        task.detach();
                    }
                    let done = normal_done.clone();
                    normal.push(main.spawn(async move {
                        done.fetch_add(1, Ordering::Relaxed);
                    }));
                }
                let mut to_task = 0;
                for (i, task) in awaited {
                    let error = block_on(timeout(WAIT_LIMIT, task))
                        .expect("watchdog: a panicking task never resolved")
                        .expect_err("a panicking task resolved to a value");
                    let payload = error.into_panic();
                    let message = payload
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .unwrap_or_default();
                    assert_eq!(storm_index(Some(message)), Some(i));
                    to_task += 1;
                }
                for task in normal {
                    wait(task);
                }
                to_task
            })
        })
        .collect();
    let to_tasks: usize = spawners
        .into_iter()
        .map(|s| s.join().expect("a spawner panicked"))
        .sum();
    let detached = (0..panics).filter(|i| i % 4 >= 2).count();
    wait_until(|| {
        reported
            .iter()
            .filter(|r| r.load(Ordering::SeqCst) > 0)
            .count()
            >= detached
    });
    let alive = on_main(main, || 6 * 7);
    reset_panic_handler();
    let mut wrong = 0;
    for (i, count) in reported.iter().enumerate() {
        let expected = u8::from(i % 4 >= 2);
        wrong += usize::from(count.load(Ordering::SeqCst) != expected);
    }
    let normal = normal_done.load(Ordering::Relaxed);
    report(
        host,
        &format!(
            "panic storm: {panics} panicking tasks + {panics} normal ones; panics to their Task: \
             {to_tasks}, detached panics reported to the handler: {detached}, reported other \
             than once: {wrong}, stray reports: {}, normal tasks completed: {normal}, loop alive \
             after: {}",
            stray_reports.load(Ordering::SeqCst),
            alive == 42
        ),
    );
    assert_eq!(to_tasks + detached, panics);
    assert_eq!(wrong, 0);
    assert_eq!(stray_reports.load(Ordering::SeqCst), 0);
    assert_eq!(normal, panics);
    assert_eq!(alive, 42);
}
