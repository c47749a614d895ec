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
//! task, a task spawning another) never call the wake-up at all. And while
//! the shared queue is empty, any push made on the loop's thread goes to the
//! loop's own queue instead, with no atomic operation (see `local_queue.rs`,
//! which also shows why Main stays FIFO).
//!
//! # Shutdown
//!
//! [`shutdown`](HostEngine::shutdown) (also run on drop) closes the gate,
//! then cancels, on the loop thread, every task of the loop that has not
//! finished: the queued ones, those asleep on the engine's timers, and those
//! suspended on anything else, whose wakers the engine keeps in a *live set*
//! (see `task/live.rs`). Cancelling is deterministic: when `shutdown` returns,
//! their `Task`s have resolved to a cancelled `JoinError` and their futures
//! have been dropped, on the loop thread. Any later dispatch is rejected: the
//! task is cancelled on the dispatching side. The policy, for users, is in
//! the docs of [`HostEngine::shutdown`].
//!
//! Closing races the producers: a dispatch announced after the gate closed
//! is left in the queue for the loop's shutdown to cancel (so that a `!Send`
//! task queued before the shutdown is never popped by another thread, which
//! could only leak it), until the loop has drained the queue and set
//! `drained`; from then on each producer rejects what it pushed itself. The
//! loom model `loom_tests::dispatch_racing_shutdown_leaves_local_tasks_to_the_loop`
//! in `wake_gate.rs` checks the hand-over.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use concurrent_queue::ConcurrentQueue;

use super::budget::{Budget, RunReport};
use super::local_queue::LocalQueue;
use super::wake_gate::{PushOutcome, WakeGate};
use crate::dispatch::{Dispatch, Dispatcher};
use crate::error::{ParallelismError, RegisterError};
use crate::main_dispatcher::MainDispatcher;
use crate::registry::{HostFactory, register_main_factory};
use crate::task::{LiveTasks, Runnable};
use crate::thread_id::current_thread_id;
use crate::time::heap::TimerKey;
use crate::time::loop_timers::LoopTimers;
use crate::time::service::{self, TimerService};

thread_local! {
    /// The engine (by address) whose `run_pending` is running on this thread.
    static DRAINING: Cell<usize> = const { Cell::new(0) };
    /// Set while an engine on this thread wakes the tasks of due timers.
    static FIRING_TIMERS: Cell<bool> = const { Cell::new(false) };
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
    /// The tasks of Main and Main.immediate that suspended and have not
    /// finished: woken, and so cancelled, at shutdown.
    live: LiveTasks,
    /// The thread's timers before this engine took over; restored on shutdown.
    previous_timers: std::cell::RefCell<Option<Arc<dyn TimerService>>>,
    _loop_thread_only: PhantomData<*const ()>,
}

pub(crate) struct EngineShared {
    name: String,
    owner: ThreadId,
    queue: ConcurrentQueue<Runnable>,
    /// What the loop thread dispatches while `queue` is empty (see
    /// `local_queue.rs`); taken before `queue`.
    local: LocalQueue,
    gate: WakeGate,
    wake_host: Box<dyn Fn() + Send + Sync>,
    host_wakes: AtomicU64,
    /// The loop's timers, kept in a thread-local of the loop's thread.
    timers: LoopTimers,
    /// Set by the shutdown once it has drained the queue: from then on, a
    /// producer that finds the gate closed rejects what it pushed itself
    /// (before, it leaves it to the loop; see the module docs).
    drained: AtomicBool,
    /// The identity of this engine's `Main.immediate` dispatcher (its Main's
    /// identity is this struct's address).
    immediate_id: std::sync::atomic::AtomicUsize,
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
            local: LocalQueue::open(),
            gate: WakeGate::new(),
            wake_host: Box::new(wake_host),
            host_wakes: AtomicU64::new(0),
            timers: LoopTimers::open(),
            drained: AtomicBool::new(false),
            immediate_id: std::sync::atomic::AtomicUsize::new(0),
        });
        let previous_timers = service::bind(Some(shared.clone()));
        let main = MainDispatcher::new(Dispatcher::from_arc(shared.clone()));
        shared
            .immediate_id
            .store(main.immediate().id(), Ordering::Relaxed);
        let live = LiveTasks::open([main.id(), main.immediate().id()]);
        HostEngine {
            shared,
            main,
            live,
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
    /// `budget` runs out; what is left re-arms the host's wake-up. Every
    /// 64 tasks it fires the timers that came due
    /// meanwhile, so that a steady stream of dispatches cannot hold them back.
    ///
    /// A task whose timer fires here resumes within this same call. A
    /// panicking task never unwinds out of this call (its panic goes to its
    /// `Task` or the global handler).
    pub fn run_pending(&self, budget: Budget) -> RunReport {
        let shared = &*self.shared;
        let _draining = Draining::enter(shared.addr());
        let start = Instant::now();
        let mut timers_fired = shared.fire_due_timers(start);
        let max_tasks = budget.task_limit();
        let stop_at = budget.time_limit().map(|d| start + d);
        let mut ran = 0;
        let more_pending = loop {
            // Popped from the shared queue, for the wake gate.
            let mut taken = 0;
            let mut exhausted = false;
            loop {
                if ran >= max_tasks || stop_at.is_some_and(|t| Instant::now() >= t) {
                    exhausted = true;
                    break;
                }
                let runnable = match shared.local.pop() {
                    Some(runnable) => runnable,
                    None => match shared.queue.pop() {
                        Ok(runnable) => {
                            taken += 1;
                            runnable
                        }
                        Err(_) => break,
                    },
                };
                ran += 1;
                run_isolated(runnable);
                if ran % TIMER_CHECK_INTERVAL == 0 && shared.timers.len() > 0 {
                    timers_fired += shared.fire_due_timers(Instant::now());
                }
            }
            let announced_left = shared.gate.on_drained(taken) > 0;
            if exhausted {
                break announced_left || shared.local.len() > 0;
            }
            // Both queues were empty: only announced pushes not visible yet
            // can be left.
            if !announced_left {
                break false;
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
        self.shared.timers.next_deadline()
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

    /// Whether tasks are queued (never, once shut down).
    pub fn has_pending(&self) -> bool {
        let shared = &*self.shared;
        !shared.gate.is_closed()
            && (shared.gate.pending() > 0 || !shared.queue.is_empty() || shared.local.len() > 0)
    }

    /// How many of this loop's tasks (spawned on its Main or Main.immediate)
    /// have suspended at least once and not finished yet: the tasks the
    /// engine tracks so that [`shutdown`](Self::shutdown) can cancel them.
    /// A task that finishes in its first poll is never counted.
    pub fn live_tasks(&self) -> usize {
        self.live.len()
    }

    /// How many `delay`s are waiting on this loop's timers.
    pub fn pending_timers(&self) -> usize {
        self.shared.timers.len()
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

    /// Closes the engine and cancels every task of the loop that has not
    /// finished. Idempotent; also run on drop (so dropping a host adapter
    /// runs it). It never waits for another thread.
    ///
    /// When it returns, each of these tasks has been cancelled, **on this
    /// (the loop's) thread**: its future dropped here without being polled
    /// again, its [`Task`](crate::Task) resolved to a cancelled
    /// [`JoinError`](crate::JoinError) (to a panic, if the future's
    /// destructor panicked):
    ///
    /// - **queued** tasks (dispatched, not run yet);
    /// - tasks asleep on the loop's **timers** (`delay`, `timeout`): the
    ///   timers are dropped;
    /// - **suspended** tasks, waiting on anything else (a channel, a
    ///   `with_context` hop, a future that never wakes them): the engine keeps
    ///   the waker of each task that suspended (see
    ///   [`live_tasks`](Self::live_tasks)) and wakes it here;
    /// - `!Send` tasks among them are dropped here too, on their own thread.
    ///
    /// In-flight hops: a task on Main waiting in `with_context(&io, ..)` is
    /// cancelled, and dropping it cancels the inner task, which its pool
    /// drops after the poll it is in (a blocking call in it finishes first;
    /// the shutdown does not wait for it). A task elsewhere waiting for a hop
    /// to Main gets a cancelled `JoinError` from
    /// [`try_with_context`](crate::try_with_context), and
    /// [`with_context`](crate::with_context) panics with a message saying the
    /// host shut down.
    ///
    /// Afterwards every dispatch is rejected: the task is cancelled (a `Send`
    /// future is dropped on the `dispatchers-reaper` thread, a `!Send` one on
    /// its own thread) and its `Task` resolves to a cancelled `JoinError`.
    ///
    /// A task that is running when `shutdown` is called from inside it
    /// finishes its poll and is cancelled when it next suspends. One case is
    /// left: a `!Send` task woken from another thread at the very moment of
    /// the shutdown may be popped by that thread, which can neither poll nor
    /// drop it; it is leaked (see [`Runnable`](crate::Runnable)).
    pub fn shutdown(&self) {
        let shared = &*self.shared;
        if !shared.gate.close() {
            return;
        }
        // From here on the loop thread's dispatches take the shared path.
        for runnable in shared.local.close() {
            runnable.cancel_in_place();
        }
        let mut wakers = self.live.close();
        shared.timers.close(&mut wakers);
        // Each wake runs the task's schedule function: the closed engine
        // leaves the runnable in the queue for `cancel_queued`; a
        // Main.immediate task woken here may run in place instead, and then
        // sees its live set closed and completes as cancelled.
        for waker in wakers {
            waker.wake();
        }
        shared.cancel_queued();
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

/// Runs one task; a panic escaping `run` is reported, never unwound into the
/// host. (The future's own panics are caught inside the task, and a
/// destructor that panics aborts the process inside async-task.)
fn run_isolated(runnable: Runnable) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runnable.run())) {
        crate::panic::report_detached_panic(None, &*payload);
    }
}

/// How many tasks [`HostEngine::run_pending`] runs between two checks for
/// timers that came due while it runs (tokio's scheduler polls its timers
/// every 61 tasks).
const TIMER_CHECK_INTERVAL: usize = 64;

/// How many times the shutdown drains what producers announced after the
/// gate closed before it hands rejection over to them: enough for a burst in
/// flight, and bounded under a dispatch storm that never stops.
const SHUTDOWN_DRAIN_ROUNDS: usize = 4;

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

    /// Wakes the tasks of due timers. Meanwhile `Main.immediate` queues
    /// instead of running in place ([`is_firing_timers`]): the woken tasks
    /// take their turn in the queue, under `run_pending`'s budget.
    fn fire_due_timers(&self, now: Instant) -> usize {
        let mut wakers = Vec::new();
        let fired = self.timers.fire_due(now, &mut wakers);
        if !wakers.is_empty() {
            let previous = FIRING_TIMERS.replace(true);
            for waker in wakers {
                waker.wake();
            }
            FIRING_TIMERS.set(previous);
        }
        fired
    }

    /// Whether a `delay` being polled now belongs to this loop: polled inside
    /// its `run_pending`, or by one of its Main / immediate tasks. Others
    /// polled on this thread (a `block_on` before the loop starts, say) use
    /// the fallback timers, which fire without the loop.
    fn serves_current_poll(&self) -> bool {
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
    fn cancel_queued(&self) {
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

    fn recent_now(&self) -> Instant {
        self.timers.recent_now().unwrap_or_else(Instant::now)
    }

    fn insert(&self, deadline: Instant, waker: &Waker) -> Option<TimerKey> {
        self.timers.insert(deadline, waker)
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
}

/// Whether an engine on this thread is waking the tasks of due timers.
pub(crate) fn is_firing_timers() -> bool {
    FIRING_TIMERS.get()
}
