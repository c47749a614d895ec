//! [`HostEngine`]: the queue, wake gate and timers every host adapter shares.
//!
//! # Threads
//!
//! The engine belongs to the loop thread that created it (`HostEngine` is
//! `!Send`): only that thread runs tasks, fires timers and shuts it down. Its
//! [`dispatcher`](HostEngine::dispatcher) is `Send + Sync` and dispatches
//! from anywhere: a push onto a lock-free MPSC queue, then one atomic
//! read-modify-write on the [wake gate](super::wake_gate), which calls the
//! host's wake-up only for the first push since the loop last emptied the
//! queue. Pushes made by the loop thread while it drains (a timer waking a
//! task, a task spawning another) never call the wake-up at all.
//!
//! # Shutdown
//!
//! [`shutdown`](HostEngine::shutdown) (also run on drop) closes the gate and
//! cancels every queued task on the loop thread; tasks waiting on the
//! engine's timers are woken so that they are cancelled too. Any later
//! dispatch is rejected: the task is cancelled and its `Task` resolves to a
//! cancelled `JoinError`.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use concurrent_queue::ConcurrentQueue;

use super::budget::{Budget, RunReport};
use super::wake_gate::{PushOutcome, WakeGate};
use crate::dispatch::{Dispatch, Dispatcher};
use crate::error::{ParallelismError, RegisterError};
use crate::main_dispatcher::MainDispatcher;
use crate::registry::{HostFactory, register_main_factory};
use crate::task::Runnable;
use crate::thread_id::current_thread_id;
use crate::time::heap::{TimerHeap, TimerKey};
use crate::time::service::{self, TimerService};

thread_local! {
    /// The engine (by address) whose `run_pending` is running on this thread.
    static DRAINING: Cell<usize> = const { Cell::new(0) };
}

/// The engine shared by every host adapter (and usable directly from a
/// hand-written loop; [`LoopHost`](crate::LoopHost) wraps it with a parker).
///
/// An adapter supplies the host's wake-up (an eventfd write, an
/// `EventLoopProxy` event, a calloop ping) and calls
/// [`run_pending`](Self::run_pending) when woken and
/// [`next_deadline`](Self::next_deadline) / [`next_timeout`](Self::next_timeout)
/// before it sleeps.
pub struct HostEngine {
    shared: Arc<EngineShared>,
    main: MainDispatcher,
    /// The thread's timers before this engine took over; restored on shutdown.
    previous_timers: std::cell::RefCell<Option<Arc<dyn TimerService>>>,
    _loop_thread_only: PhantomData<*const ()>,
}

pub(crate) struct EngineShared {
    name: String,
    owner: ThreadId,
    queue: ConcurrentQueue<Runnable>,
    gate: WakeGate,
    wake_host: Box<dyn Fn() + Send + Sync>,
    host_wakes: AtomicU64,
    timers: Mutex<TimerHeap>,
}

impl HostEngine {
    /// An engine for the calling thread's loop. `wake_host` must make the
    /// loop call [`run_pending`](Self::run_pending) soon; it is called from
    /// any thread, at most once per batch of dispatches.
    ///
    /// `delay`s polled on this thread use the engine's timers from now on.
    pub fn new(name: impl Into<String>, wake_host: impl Fn() + Send + Sync + 'static) -> Self {
        let shared = Arc::new(EngineShared {
            name: name.into(),
            owner: current_thread_id(),
            queue: ConcurrentQueue::unbounded(),
            gate: WakeGate::new(),
            wake_host: Box::new(wake_host),
            host_wakes: AtomicU64::new(0),
            timers: Mutex::new(TimerHeap::default()),
        });
        let previous_timers = service::bind(Some(shared.clone()));
        let main = MainDispatcher::new(Dispatcher::from_arc(shared.clone()));
        HostEngine {
            shared,
            main,
            previous_timers: std::cell::RefCell::new(previous_timers),
            _loop_thread_only: PhantomData,
        }
    }

    /// The Main dispatcher of this loop (with its `immediate` view).
    pub fn dispatcher(&self) -> MainDispatcher {
        self.main.clone()
    }

    /// Registers this loop as a source of `Dispatchers::main()` with
    /// `load_priority` `priority` (see
    /// [`register_main_factory`](crate::register_main_factory)).
    ///
    /// # Errors
    ///
    /// [`RegisterError::AlreadySelected`] when Main was already selected.
    pub fn register_as_main(&self, priority: i32) -> Result<(), RegisterError> {
        register_main_factory(Arc::new(HostFactory::new(
            self.shared.name.clone(),
            priority,
            self.dispatcher(),
        )))
    }

    /// Fires due timers and runs queued tasks until the queue is empty or
    /// `budget` runs out; what is left re-arms the host's wake-up.
    ///
    /// A task whose timer fires here resumes within this same call. A
    /// panicking task never unwinds out of this call (its panic goes to its
    /// `Task` or the global handler).
    pub fn run_pending(&self, budget: Budget) -> RunReport {
        let shared = &*self.shared;
        let _draining = Draining::enter(shared.addr());
        let start = Instant::now();
        let timers_fired = shared.fire_due_timers(start);
        let max_tasks = budget.task_limit();
        let stop_at = budget.time_limit().map(|d| start + d);
        let mut ran = 0;
        let more_pending = loop {
            let mut taken = 0;
            let mut exhausted = false;
            loop {
                if ran >= max_tasks || stop_at.is_some_and(|t| Instant::now() >= t) {
                    exhausted = true;
                    break;
                }
                let Ok(runnable) = shared.queue.pop() else {
                    break;
                };
                taken += 1;
                ran += 1;
                run_isolated(runnable);
            }
            if shared.gate.on_drained(taken) <= 0 {
                break false;
            }
            if exhausted {
                break true;
            }
        };
        if more_pending {
            shared.wake_host();
        }
        RunReport {
            ran,
            timers_fired,
            more_pending,
        }
    }

    /// The earliest deadline of a pending `delay` on this loop: the host may
    /// sleep until then (or until woken).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.shared.lock_timers().next_deadline()
    }

    /// How long the host may sleep: zero when tasks are queued, the time to
    /// the next deadline, or `None` (until woken). Ready for `mio::Poll::poll`.
    pub fn next_timeout(&self) -> Option<Duration> {
        if self.has_pending() {
            return Some(Duration::ZERO);
        }
        self.next_deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Whether tasks are queued.
    pub fn has_pending(&self) -> bool {
        self.shared.gate.pending() > 0 || !self.shared.queue.is_empty()
    }

    /// How many `delay`s are waiting on this loop's timers.
    pub fn pending_timers(&self) -> usize {
        self.shared.lock_timers().len()
    }

    /// How many times the engine called the host's wake-up (dispatches are
    /// coalesced: a burst between two loop iterations costs one).
    pub fn host_wakes(&self) -> u64 {
        self.shared.host_wakes.load(Ordering::Relaxed)
    }

    /// The engine's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Closes the engine: queued tasks are cancelled here, tasks waiting on
    /// its timers are woken and cancelled, later dispatches are rejected
    /// (cancelled). Idempotent; also run on drop.
    pub fn shutdown(&self) {
        let shared = &*self.shared;
        if !shared.gate.close() {
            return;
        }
        let mut wakers = Vec::new();
        shared.lock_timers().fire_all(&mut wakers);
        for waker in wakers {
            waker.wake();
        }
        while let Ok(runnable) = shared.queue.pop() {
            runnable.cancel_in_place();
        }
        let service: Arc<dyn TimerService> = self.shared.clone();
        service::unbind(&service, self.previous_timers.borrow_mut().take());
    }

    /// Whether [`shutdown`](Self::shutdown) ran.
    pub fn is_shut_down(&self) -> bool {
        self.shared.gate.is_closed()
    }
}

impl Drop for HostEngine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for HostEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostEngine")
            .field("name", &self.shared.name)
            .field("pending", &self.shared.gate.pending())
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}

/// Runs one task; a panic escaping it (a destructor's: the future's own
/// panics are caught inside the task) is reported, never unwound into the host.
fn run_isolated(runnable: Runnable) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runnable.run())) {
        crate::panic::report_detached_panic(None, &*payload);
    }
}

struct Draining {
    previous: usize,
}

impl Draining {
    fn enter(engine: usize) -> Self {
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
    fn addr(&self) -> usize {
        self as *const Self as usize
    }

    fn wake_host(&self) {
        self.host_wakes.fetch_add(1, Ordering::Relaxed);
        (self.wake_host)();
    }

    fn lock_timers(&self) -> MutexGuard<'_, TimerHeap> {
        self.timers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fire_due_timers(&self, now: Instant) -> usize {
        let mut wakers = Vec::new();
        let fired = self.lock_timers().fire_due(now, &mut wakers);
        for waker in wakers {
            waker.wake();
        }
        fired
    }

    /// Cancels whatever is queued (the gate is closed).
    fn reject_queued(&self) {
        while let Ok(runnable) = self.queue.pop() {
            drop(runnable);
        }
    }
}

impl Dispatch for EngineShared {
    fn dispatch(&self, runnable: Runnable) {
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

    fn is_current_thread(&self) -> bool {
        self.owner == current_thread_id()
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

    fn insert(&self, deadline: Instant, waker: &Waker) -> TimerKey {
        self.lock_timers().insert(deadline, waker.clone())
    }

    fn poll(&self, key: TimerKey, waker: &Waker) -> Poll<()> {
        self.lock_timers().poll(key, waker)
    }

    fn cancel(&self, key: TimerKey) {
        self.lock_timers().cancel(key);
    }

    fn is_open(&self) -> bool {
        !self.gate.is_closed()
    }
}
