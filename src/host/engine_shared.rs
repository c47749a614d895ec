//! [`EngineShared`]: the part of a [`HostEngine`](super::HostEngine) that
//! every thread reaches through its dispatcher: the queues, the wake gate,
//! the host's wake-up and the loop's timers, with the `Dispatch` and
//! `TimerService` implementations and the shutdown's drain. The module docs
//! of `engine.rs` describe the threads and the shutdown protocol.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Poll, Waker};
use std::thread::ThreadId;
use std::time::Instant;

use concurrent_queue::ConcurrentQueue;

use super::local_queue::LocalQueue;
use super::wake_gate::{PushOutcome, WakeGate};
use crate::dispatch::{Dispatch, Dispatcher};
use crate::error::ParallelismError;
use crate::panic::wake_reporting_panics;
use crate::task::Runnable;
use crate::thread_id::current_thread_id;
use crate::time::heap::TimerKey;
use crate::time::loop_timers::LoopTimers;
use crate::time::service::{TimerService, Until};

thread_local! {
    /// The engine (by address) whose `run_pending` is running on this thread.
    static DRAINING: Cell<usize> = const { Cell::new(0) };
    /// Set while an engine on this thread wakes the tasks of due timers.
    static FIRING_TIMERS: Cell<bool> = const { Cell::new(false) };
}

/// What the engine's threads share (see the module docs).
pub(crate) struct EngineShared {
    pub(super) name: String,
    owner: ThreadId,
    pub(super) queue: ConcurrentQueue<Runnable>,
    /// What the loop thread dispatches while `queue` is empty (see
    /// `local_queue.rs`); taken before `queue`.
    pub(super) local: LocalQueue,
    pub(super) gate: WakeGate,
    wake_host: Box<dyn Fn() + Send + Sync>,
    pub(super) host_wakes: AtomicU64,
    /// The loop's timers, kept in a thread-local of the loop's thread.
    pub(super) timers: LoopTimers,
    /// Set by the shutdown once it has drained the queue: from then on, a
    /// producer that finds the gate closed rejects what it pushed itself
    /// (before, it leaves it to the loop; see the module docs of `engine.rs`).
    drained: AtomicBool,
    /// The identity of this engine's `Main.immediate` dispatcher (its Main's
    /// identity is this struct's address).
    pub(super) immediate_id: AtomicUsize,
}

/// How many times the shutdown drains what producers announced after the
/// gate closed before it hands rejection over to them: enough for a burst in
/// flight, and bounded under a dispatch storm that never stops.
const SHUTDOWN_DRAIN_ROUNDS: usize = 4;

/// Sets [`FIRING_TIMERS`] until dropped.
struct FiringTimers {
    previous: bool,
}

impl FiringTimers {
    fn enter() -> Self {
        FiringTimers {
            previous: FIRING_TIMERS.replace(true),
        }
    }
}

impl Drop for FiringTimers {
    fn drop(&mut self) {
        FIRING_TIMERS.set(self.previous);
    }
}

pub(super) struct Draining {
    previous: usize,
}

impl Draining {
    pub(super) fn enter(engine: usize) -> Self {
        Draining {
            previous: DRAINING.replace(engine),
        }
    }
}

impl Drop for Draining {
    fn drop(&mut self) {
        DRAINING.set(self.previous);
    }
}

impl EngineShared {
    /// The shared part of a new engine for the calling (the loop's) thread.
    pub(super) fn new(name: String, wake_host: Box<dyn Fn() + Send + Sync>) -> Arc<Self> {
        Arc::new(EngineShared {
            name,
            owner: current_thread_id(),
            queue: ConcurrentQueue::unbounded(),
            local: LocalQueue::open(),
            gate: WakeGate::new(),
            wake_host,
            host_wakes: AtomicU64::new(0),
            timers: LoopTimers::open(),
            drained: AtomicBool::new(false),
            immediate_id: AtomicUsize::new(0),
        })
    }

    /// The engine's identity: Main's dispatcher id.
    pub(super) fn addr(&self) -> usize {
        self as *const Self as usize
    }

    pub(super) fn wake_host(&self) {
        self.host_wakes.fetch_add(1, Ordering::Relaxed);
        (self.wake_host)();
    }

    /// A timer earlier than the deadline the host last read was added.
    /// Outside `run_pending` (a `Main.immediate` task run in place by the
    /// loop thread's own code), the host may have decided how long to sleep
    /// already: a winit loop keeps the `ControlFlow` its last iteration
    /// computed across the application's code between two
    /// `pump_app_events`. So the host is brought round, to sleep until the
    /// new deadline instead. (After `run_pending` the host reads the next
    /// deadline anyway.)
    fn earlier_timer_added(&self) {
        if DRAINING.get() != self.addr() {
            self.wake_host();
        }
    }

    /// Wakes the tasks of due timers. Meanwhile `Main.immediate` queues
    /// instead of running in place ([`is_firing_timers`]): the woken tasks
    /// take their turn in the queue, under `run_pending`'s budget.
    ///
    /// A waker that panics is reported (see
    /// [`PanicSource::Waker`](crate::PanicSource::Waker)); the others are
    /// still woken.
    pub(super) fn fire_due_timers(&self, now: Instant) -> usize {
        let mut wakers = Vec::new();
        let fired = self.timers.fire_due(now, &mut wakers);
        if !wakers.is_empty() {
            let _firing = FiringTimers::enter();
            for waker in wakers {
                wake_reporting_panics(waker, &self.name);
            }
        }
        fired
    }

    /// Whether a `delay` being polled now belongs to this loop: polled inside
    /// its `run_pending`, or by one of its Main / immediate tasks. Others
    /// polled on this thread (a `block_on` before the loop starts, or inside
    /// one of its tasks, which blocks the loop) use the fallback timers,
    /// which fire without the loop.
    fn serves_current_poll(&self) -> bool {
        if crate::block_on::is_blocking() {
            return false;
        }
        if DRAINING.get() == self.addr() {
            return true;
        }
        let current = crate::context::current_id();
        current == self.addr() || current == self.immediate_id.load(Ordering::Relaxed)
    }

    /// The shutdown's drain, on the loop thread, after the gate closed:
    /// cancels everything queued in place, then hands rejection over to the
    /// producers (`drained`). Each round takes at most what was queued when it
    /// began, so that producers that never stop cannot keep it going.
    pub(super) fn cancel_queued(&self) {
        for _ in 0..SHUTDOWN_DRAIN_ROUNDS {
            let taken = self.cancel_at_most(self.queue.len());
            if self.gate.on_drained(taken) <= 0 {
                break;
            }
        }
        self.drained.store(true, Ordering::Release);
        // A read-modify-write of the gate: it sees every push announced
        // before the store above, whose producer may have left it to us.
        let _ = self.gate.on_drained(0);
        self.cancel_at_most(self.queue.len());
    }

    /// Pops and cancels up to `n` queued runnables; returns how many.
    fn cancel_at_most(&self, n: usize) -> usize {
        let mut taken = 0;
        while taken < n {
            let Ok(runnable) = self.queue.pop() else {
                break;
            };
            taken += 1;
            runnable.cancel_in_place();
        }
        taken
    }

    /// A producer's side of a closed gate: once the loop's shutdown has
    /// drained the queue, cancels whatever is queued (its own push, at least);
    /// before, leaves it to the shutdown.
    fn reject_queued(&self) {
        if !self.drained.load(Ordering::Acquire) {
            return;
        }
        while let Ok(runnable) = self.queue.pop() {
            drop(runnable);
        }
    }
}

impl Dispatch for EngineShared {
    fn dispatch(&self, runnable: Runnable) {
        let runnable = if self.owner == current_thread_id() && self.queue.is_empty() {
            match self.local.push(runnable) {
                Ok(was_empty) => {
                    // Outside `run_pending`, the host must come round (once
                    // for a batch, like the gate's wake-up).
                    if was_empty && DRAINING.get() != self.addr() {
                        self.wake_host();
                    }
                    return;
                }
                // Shut down: the shared path rejects it.
                Err(runnable) => runnable,
            }
        } else {
            runnable
        };
        if let Err(err) = self.queue.push(runnable) {
            drop(err.into_inner());
            return;
        }
        match self.gate.on_push() {
            PushOutcome::Wake => {
                if DRAINING.get() != self.addr() {
                    self.wake_host();
                }
            }
            PushOutcome::Coalesced => {}
            PushOutcome::Closed => self.reject_queued(),
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn is_closed(&self) -> bool {
        self.gate.is_closed()
    }

    fn is_current_thread(&self) -> bool {
        // A loop that shut down runs nothing, so `immediate` dispatches (and
        // is rejected) rather than running a task in place.
        self.owner == current_thread_id() && !self.gate.is_closed()
    }

    fn limited_parallelism(
        &self,
        this: &Dispatcher,
        _n: std::num::NonZeroUsize,
    ) -> Result<Dispatcher, ParallelismError> {
        // The loop runs one task at a time already.
        Ok(this.clone())
    }
}

impl TimerService for EngineShared {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn insert(&self, deadline: Instant, waker: &Waker) -> Option<TimerKey> {
        self.timers
            .insert(deadline, waker, || self.earlier_timer_added())
    }

    fn insert_until(&self, deadline: Instant, waker: &Waker) -> Until {
        self.timers
            .insert_until(deadline, waker, || self.earlier_timer_added())
    }

    fn poll(&self, key: TimerKey, waker: &Waker) -> Option<Poll<()>> {
        self.timers.poll(key, waker)
    }

    fn cancel(&self, key: TimerKey) {
        self.timers.cancel(key);
    }

    fn is_open(&self) -> bool {
        !self.gate.is_closed()
    }

    fn serves_current_poll(&self) -> bool {
        EngineShared::serves_current_poll(self)
    }

    fn serves_own_tasks_only(&self) -> bool {
        true
    }
}

/// Whether an engine on this thread is waking the tasks of due timers.
pub(crate) fn is_firing_timers() -> bool {
    FIRING_TIMERS.get()
}
