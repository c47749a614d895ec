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
//! could only send it back to the loop's thread, to be cancelled later; see
//! `task/orphans.rs`), until the loop has drained the queue and set
//! `drained`; from then on each producer rejects what it pushed itself. The
//! loom model `loom_tests::dispatch_racing_shutdown_leaves_local_tasks_to_the_loop`
//! in `wake_gate.rs` checks the hand-over.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::budget::{Budget, RunReport};
use super::engine_shared::{Draining, EngineShared};
use crate::dispatch::Dispatcher;
use crate::error::RegisterError;
use crate::main_dispatcher::MainDispatcher;
use crate::panic::wake_reporting_panics;
use crate::registry::{HostFactory, register_main_factory};
use crate::task::{HostWakeUp, LiveTasks, Runnable};
use crate::time::service::{self, TimerService};

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
    /// Set when [`shutdown`](Self::shutdown) starts: the gate's closed bit,
    /// read without touching the cache line the producers write.
    shut_down: Cell<bool>,
    /// What the thread's mailbox wakes on a delivery (it holds a `Weak`):
    /// owned here, so that a dropped engine's loop is not woken.
    wake_on_delivery: Arc<DeliveryWake>,
    _loop_thread_only: PhantomData<*const ()>,
}

/// Wakes an engine's loop when a `!Send` task is sent back to its thread.
struct DeliveryWake {
    shared: Arc<EngineShared>,
    /// Set when the engine is dropped. The mailbox's `Weak` alone does not
    /// do: a delivery upgrades it under the mailbox's lock, then calls the
    /// wake-ups one after the other, outside it, and the engine may be
    /// dropped meanwhile (while an earlier host's wake-up runs).
    dropped: AtomicBool,
}

impl HostWakeUp for DeliveryWake {
    fn wake_up(&self) {
        if !self.dropped.load(Ordering::Acquire) {
            self.shared.wake_host();
        }
    }
}

impl HostEngine {
    /// An engine for the calling thread's loop. `wake_host` must make the
    /// loop call [`run_pending`](Self::run_pending) soon; it is called from
    /// any thread, at most once per batch of dispatches, and once per `!Send`
    /// task of this thread that another thread sends back to it (see
    /// [`Runnable`]), for as long as the engine lives.
    ///
    /// `delay`s of its tasks (and inside its `run_pending`) polled on this
    /// thread use the engine's timers from now on; other `delay`s polled on
    /// this thread keep the timers they had (a test's virtual clock, an
    /// outer loop's timers, or the fallback timer thread).
    pub fn new(name: impl Into<String>, wake_host: impl Fn() + Send + Sync + 'static) -> Self {
        let shared = EngineShared::new(name.into(), Box::new(wake_host));
        service::bind(shared.clone());
        let main = MainDispatcher::new(Dispatcher::from_arc(shared.clone()));
        shared
            .immediate_id
            .store(main.immediate().id(), Ordering::Relaxed);
        let live = LiveTasks::open([main.id(), main.immediate().id()]);
        // A `!Send` task of this thread sent back from another one is
        // cancelled by `run_pending`: the delivery wakes the loop, for as
        // long as this engine lives (its shared part may outlive it, held by
        // a dispatcher, while its loop is gone).
        let wake_on_delivery = Arc::new(DeliveryWake {
            shared: shared.clone(),
            dropped: AtomicBool::new(false),
        });
        let weak: std::sync::Weak<dyn HostWakeUp> = Arc::downgrade(&wake_on_delivery) as _;
        crate::task::wake_on_delivery(weak);
        HostEngine {
            shared,
            main,
            live,
            wake_on_delivery,
            shut_down: Cell::new(false),
            _loop_thread_only: PhantomData,
        }
    }

    /// The Main dispatcher of this loop (with its `immediate` view).
    pub fn dispatcher(&self) -> MainDispatcher {
        self.main.clone()
    }

    /// Registers this loop as a source of `Dispatchers::main()` with
    /// `load_priority` `priority` (see
    /// [`register_main_factory`]).
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
        let mut report = RunReport {
            ran: 0,
            timers_fired: 0,
            more_pending: false,
        };
        // `!Send` tasks of this thread that another thread could only send
        // back (see `Runnable`): cancelled here. One flag read when none.
        crate::task::cancel_orphans();
        // Shut down (before, or by one of the tasks below): nothing runs.
        if self.is_shut_down() {
            return report;
        }
        let _draining = Draining::enter(shared.addr());
        let start = Instant::now();
        let mut timers_fired = shared.fire_due_timers(start);
        let max_tasks = budget.task_limit().unwrap_or(usize::MAX);
        // A limit too far away for an `Instant` is no limit.
        let stop_at = budget.time_limit().and_then(|d| start.checked_add(d));
        let mut ran = 0;
        let more_pending = loop {
            // Popped from the shared queue, for the wake gate.
            let mut taken = 0;
            let mut exhausted = false;
            loop {
                if self.is_shut_down() {
                    // Keeps the closed gate's count right (its `Debug`).
                    shared.gate.on_drained(taken);
                    report.ran = ran;
                    report.timers_fired = timers_fired;
                    return report;
                }
                // The time limit never stops the first task: every call
                // makes progress (see `Budget::max_time`).
                if ran >= max_tasks || (ran > 0 && stop_at.is_some_and(|t| Instant::now() >= t)) {
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
        report.ran = ran;
        report.timers_fired = timers_fired;
        report.more_pending = more_pending;
        report
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

    /// Whether tasks are queued (never, once shut down), counting the
    /// `!Send` tasks of this thread sent back to it from another one (see
    /// [`Runnable`]), which the next [`run_pending`](Self::run_pending)
    /// cancels: a host that runs the engine once per loop iteration may
    /// have received the wake-up of their delivery after that run.
    pub fn has_pending(&self) -> bool {
        let shared = &*self.shared;
        !shared.gate.is_closed()
            && (shared.gate.pending() > 0
                || !shared.queue.is_empty()
                || shared.local.len() > 0
                || crate::task::has_orphans())
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
    /// finishes its poll and is cancelled when it next suspends. One case
    /// ends later: a `!Send` task woken from another thread at the very
    /// moment of the shutdown may be popped by that thread, which can neither
    /// poll nor drop it. It sends the task back, and this thread cancels it at
    /// its next `run_pending`, `block_on` or `LoopHost` wait, or when it exits
    /// (see [`Runnable`]).
    pub fn shutdown(&self) {
        let shared = &*self.shared;
        if !shared.gate.close() {
            return;
        }
        self.shut_down.set(true);
        // Every cancellation below joins one chain, run after the closure:
        // a destructor that waits (`block_on`) for another task of the loop,
        // queued or suspended behind it, is served by its wait.
        crate::task::cancel_together(|| {
            // From here on the loop thread's dispatches take the shared path.
            for runnable in shared.local.close() {
                runnable.cancel_in_place();
            }
            let mut wakers = self.live.close();
            shared.timers.close(&mut wakers);
            // Each wake runs the task's schedule function: the closed engine
            // leaves the runnable in the queue for `cancel_queued`; a
            // Main.immediate task woken here may run in place instead, and
            // then sees its live set closed and completes as cancelled.
            for waker in wakers {
                wake_reporting_panics(waker, &shared.name);
            }
            shared.cancel_queued();
        });
        crate::task::cancel_orphans();
        let service: Arc<dyn TimerService> = self.shared.clone();
        service::unbind(&service);
    }

    /// Whether [`shutdown`](Self::shutdown) ran.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.get()
    }
}

impl Drop for HostEngine {
    fn drop(&mut self) {
        // A delivery that took this engine's wake-up from the mailbox before
        // it expired must not call it any more.
        self.wake_on_delivery.dropped.store(true, Ordering::Release);
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
/// host. (The future's own panics, and its destructor's, are caught inside
/// the task.)
fn run_isolated(runnable: Runnable) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runnable.run())) {
        crate::panic::report_detached_panic(None, &*payload);
    }
}

/// How many tasks [`HostEngine::run_pending`] runs between two checks for
/// timers that came due while it runs (tokio's scheduler polls its timers
/// every 61 tasks).
const TIMER_CHECK_INTERVAL: usize = 64;
