//! A model, under loom, of a task woken from another thread while the loop
//! polls it: the real task state machine (async-task, whose own atomics loom
//! does not see, so each of its steps is one indivisible step here), the real
//! queue and wake gate, and the engine's `run_pending` and `dispatch`
//! (re-stated: the engine's thread-locals and thread ids are not loom's).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release -p dispatchers --lib loom`.

use std::cell::Cell;
use std::future::poll_fn;
use std::task::{Poll, Waker};

use concurrent_queue::ConcurrentQueue;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};

use super::wake_gate::{PushOutcome, WakeGate};

loom::thread_local! {
    /// `DRAINING`: this thread is the loop, inside `run_pending`.
    static DRAINING: Cell<bool> = Cell::new(false);
}

/// The engine: its queue, gate and the host's wake token.
struct Engine {
    queue: ConcurrentQueue<async_task::Runnable>,
    gate: WakeGate,
    /// A host wake-up not consumed yet.
    woken: AtomicBool,
    host_wakes: AtomicUsize,
}

impl Engine {
    /// `EngineShared::dispatch`: a push made by the loop while it
    /// drains does not wake the host.
    fn dispatch(&self, runnable: async_task::Runnable) {
        self.queue.push(runnable).unwrap();
        match self.gate.on_push() {
            PushOutcome::Wake => {
                if !DRAINING.with(Cell::get) {
                    self.host_wakes.fetch_add(1, Ordering::SeqCst);
                    self.woken.store(true, Ordering::SeqCst);
                }
            }
            PushOutcome::Coalesced => {}
            PushOutcome::Closed => unreachable!("never shut down here"),
        }
    }

    /// The host wakes (consuming the token), then `run_pending` drains
    /// until the gate says nothing is left.
    fn run_pending(&self) {
        self.woken.store(false, Ordering::SeqCst);
        DRAINING.with(|d| d.set(true));
        loop {
            let mut taken = 0;
            while let Ok(runnable) = self.queue.pop() {
                taken += 1;
                runnable.run();
            }
            if self.gate.on_drained(taken) <= 0 {
                break;
            }
        }
        DRAINING.with(|d| d.set(false));
    }
}

/// What the task waits for: a count of signals and the waker of the
/// task's last poll (a channel, in effect).
struct Source {
    signals: AtomicUsize,
    waker: Mutex<Option<Waker>>,
    /// Wakes actually delivered (a signal that found a waker).
    wakes: AtomicUsize,
}

impl Source {
    fn signal(&self) {
        self.signals.fetch_add(1, Ordering::SeqCst);
        let waker = self.waker.lock().unwrap().take();
        if let Some(waker) = waker {
            self.wakes.fetch_add(1, Ordering::SeqCst);
            waker.wake();
        }
    }
}

/// `signallers` threads each signal once while the loop runs a task that
/// waits for all their signals. Afterwards the task has finished, or a
/// host wake-up is pending and the next `run_pending` finishes it; and it
/// was polled at most once more than the wakes it received: no wake is
/// lost, none costs two polls.
fn wake_while_running(signallers: usize) {
    let engine = Arc::new(Engine {
        queue: ConcurrentQueue::unbounded(),
        gate: WakeGate::new(),
        woken: AtomicBool::new(false),
        host_wakes: AtomicUsize::new(0),
    });
    let source = Arc::new(Source {
        signals: AtomicUsize::new(0),
        waker: Mutex::new(None),
        wakes: AtomicUsize::new(0),
    });
    let polls = Arc::new(AtomicUsize::new(0));
    let future = {
        let (source, polls) = (source.clone(), polls.clone());
        poll_fn(move |cx| {
            polls.fetch_add(1, Ordering::SeqCst);
            // Register, then check: a signal after the check finds the waker.
            *source.waker.lock().unwrap() = Some(cx.waker().clone());
            if source.signals.load(Ordering::SeqCst) == signallers {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    };
    let schedule = {
        let engine = engine.clone();
        move |runnable| engine.dispatch(runnable)
    };
    let (runnable, task) = async_task::spawn(future, schedule);
    runnable.schedule(); // spawned from the loop thread, outside a drain

    let threads: Vec<_> = (0..signallers)
        .map(|_| {
            let source = source.clone();
            loom::thread::spawn(move || source.signal())
        })
        .collect();
    engine.run_pending();
    for thread in threads {
        thread.join().unwrap();
    }
    if !task.is_finished() {
        assert!(
            engine.woken.load(Ordering::SeqCst),
            "the task is not finished and no host wake-up is pending: a lost wake"
        );
        engine.run_pending();
    }
    assert!(task.is_finished());
    let (polls, wakes) = (
        polls.load(Ordering::SeqCst),
        source.wakes.load(Ordering::SeqCst),
    );
    assert!(polls <= 1 + wakes, "{polls} polls for {wakes} wakes");
    assert!(engine.queue.is_empty());
    drop(task);
    // The future's waker (a clone kept by the source) must not keep the
    // task alive past the model.
    source.waker.lock().unwrap().take();
}

/// Exhaustive (no preemption bound): 79 interleavings.
#[test]
fn a_wake_while_running_is_never_lost_one_signaller() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = None;
    builder.check(|| wake_while_running(1));
}

/// Exhaustive (no preemption bound): about 164,000 interleavings, some
/// seconds in release.
#[test]
fn a_wake_while_running_is_never_lost_two_signallers() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = None;
    builder.max_branches = 100_000;
    builder.check(|| wake_while_running(2));
}
