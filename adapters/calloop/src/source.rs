//! [`HostSource`]: the calloop event source that owns the loop's
//! [`HostEngine`], wakes on a ping and sleeps until the engine's next
//! deadline.
//!
//! One loop iteration runs at most one budget: when the ping and the timer
//! both come in the same `EventLoop::dispatch` (calloop then calls
//! `process_events` once for each), only the first runs the engine; the
//! other is consumed (the ping drained, the timer's bookkeeping updated)
//! without running it again. What the budget leaves keeps the loop pinged, so
//! the next iteration continues, after the loop's other sources.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use calloop::ping::{Ping, PingSource, make_ping};
use calloop::timer::{TimeoutAction, Timer};
use calloop::{EventIterator, EventSource, Poll, PostAction, Readiness, Token, TokenFactory};
use dispatchers::{Budget, HostEngine, MainDispatcher, RunReport};

/// The work one loop iteration gives the dispatcher unless
/// [`HostSource::with_budget`] says otherwise: at most 1024 tasks (the cap of
/// calloop's own futures executor) and no task started after 5 ms. One
/// iteration runs at most one budget, even when the wake-up ping and the
/// timer come in it together. What is left runs in the next iteration, after
/// the loop's other sources.
pub const DEFAULT_BUDGET: Budget = Budget::unlimited()
    .max_tasks(1024)
    .max_time(Duration::from_millis(5));

/// The calloop [`EventSource`] behind [`CalloopHost`](crate::CalloopHost):
/// it owns the loop's [`HostEngine`], so the engine lives (and is shut down)
/// on the loop's thread.
///
/// Most programs never touch it: [`CalloopHost::insert`](crate::CalloopHost::insert)
/// creates and inserts one. Build it yourself to choose its name or budget
/// and insert it with [`CalloopHost::insert_source`](crate::CalloopHost::insert_source),
/// or insert it with a callback of your own (`LoopHandle::insert_source`):
/// the callback then receives the [`RunReport`] of each
/// [`run_pending`](HostEngine::run_pending).
///
/// It is `!Send`: create it on the loop's thread. Creating it binds the
/// thread's `delay`s to its engine's timers, so insert it right away.
/// Creating it also creates its wake-up ping (an eventfd); if that fails (out
/// of file descriptors), inserting it fails, and calloop 0.14 leaves a loop
/// whose insertion failed unusable (its next `dispatch` panics), unless it
/// is inserted with [`CalloopHost::insert_source`](crate::CalloopHost::insert_source),
/// which checks first.
///
/// Dropping it (removing it from the loop, or dropping the loop) shuts the
/// engine down: queued tasks and tasks waiting on its timers are cancelled,
/// and later dispatches are rejected (their `Task` resolves to a cancelled
/// `JoinError`).
pub struct HostSource {
    /// Boxed: the source travels by value (into the loop, back in an
    /// `InsertError`), so it is one pointer.
    state: Box<State>,
}

struct State {
    engine: HostEngine,
    budget: Budget,
    /// The sending side of the wake-up ping, shared with the engine's
    /// wake-up closure; set with `ping_source`.
    ping: Arc<OnceLock<Ping>>,
    /// How many times the engine called its wake-up.
    wakes: Arc<AtomicU64>,
    /// Which loop the source is registered with (see [`loop_id`]); 0 before
    /// its first registration and once the source is dropped.
    loop_id: Arc<AtomicUsize>,
    /// The receiving side of the ping: created with the source, or, if that
    /// failed, when it is inserted (see [`State::ensure_ping`]).
    ping_source: Option<PingSource>,
    /// One calloop timer, kept at the engine's earliest deadline.
    timer: Timer,
    /// The timer's token, learnt when it fires the first time after each
    /// registration (calloop hands it to the timer only).
    timer_token: Option<Token>,
    /// The deadline the timer is armed at in calloop's timer wheel, if any.
    armed: Option<Instant>,
    /// The engine ran its budget in this loop iteration: a second event (the
    /// ping and the timer in the same iteration, or a stale timer entry) is
    /// consumed without running it again. Cleared by `before_handle_events`.
    ran_this_iteration: bool,
}

impl HostSource {
    /// A source whose engine and Main dispatcher are named `name`, with the
    /// [`DEFAULT_BUDGET`]. Call it on the loop's thread.
    pub fn new(name: impl Into<String>) -> Self {
        let ping: Arc<OnceLock<Ping>> = Arc::new(OnceLock::new());
        let wakes = Arc::new(AtomicU64::new(0));
        let engine = HostEngine::new(name, {
            let ping = ping.clone();
            let wakes = wakes.clone();
            move || {
                wakes.fetch_add(1, Ordering::Relaxed);
                // Without a ping yet (its creation failed), the timer armed
                // by `register` runs the engine on the first iteration.
                if let Some(ping) = ping.get() {
                    ping.ping();
                }
            }
        });
        let mut source = HostSource {
            state: Box::new(State {
                engine,
                budget: DEFAULT_BUDGET,
                ping,
                wakes,
                loop_id: Arc::new(AtomicUsize::new(0)),
                ping_source: None,
                timer: Timer::immediate(),
                timer_token: None,
                armed: None,
                ran_this_iteration: false,
            }),
        };
        // Now rather than in `register`: a failed registration leaves calloop
        // 0.14's loop broken (see `prepare`). If it fails here, `prepare` or
        // `register` tries again and reports the error.
        let _ = source.state.ensure_ping();
        source
    }

    /// Replaces the work one loop iteration may give the dispatcher (see
    /// [`Budget`]; default [`DEFAULT_BUDGET`]). The engine runs at most once
    /// per iteration, so this bounds the whole iteration; what is left runs
    /// in the next one.
    ///
    /// # Panics
    ///
    /// When `budget` lets no task run (`max_tasks(0)`): every iteration
    /// would find Main's work still queued and wake the loop again, without
    /// running it.
    pub fn with_budget(mut self, budget: Budget) -> Self {
        assert!(
            !budget.allows_no_task(),
            "HostSource::with_budget: a budget of max_tasks(0) would never run Main's \
             tasks while waking the loop for them forever; give it at least one task"
        );
        self.state.budget = budget;
        self
    }

    /// The budget of one loop iteration.
    pub fn budget(&self) -> Budget {
        self.state.budget
    }

    /// The loop's Main dispatcher (with its `immediate` view).
    pub fn dispatcher(&self) -> MainDispatcher {
        self.state.engine.dispatcher()
    }

    /// The engine, for what this type does not forward (pending timers, the
    /// next deadline...).
    pub fn engine(&self) -> &HostEngine {
        &self.state.engine
    }

    pub(crate) fn wake_counter(&self) -> Arc<AtomicU64> {
        self.state.wakes.clone()
    }

    /// Which loop the source is registered with, as [`loop_id`] tells it;
    /// 0 once the source is dropped.
    pub(crate) fn loop_id(&self) -> Arc<AtomicUsize> {
        self.state.loop_id.clone()
    }

    /// Creates the wake-up ping (an eventfd) unless it exists: the one part
    /// of the registration that fails for want of resources.
    ///
    /// calloop 0.14 adds a source to its list of `before_sleep` hooks before
    /// it registers it and keeps it there when the registration fails: the
    /// loop's next `dispatch` then panics ("entered unreachable code").
    /// [`CalloopHost::insert_source`](crate::CalloopHost::insert_source)
    /// calls this first, so that such a failure leaves the loop untouched.
    pub(crate) fn prepare(&mut self) -> std::io::Result<()> {
        self.state.ensure_ping().map(drop)
    }
}

impl State {
    /// The receiving side of the ping, created (with its sending side) if
    /// it does not exist yet.
    fn ensure_ping(&mut self) -> std::io::Result<&mut PingSource> {
        let ping_source = match self.ping_source.take() {
            Some(ping_source) => ping_source,
            None => {
                let (ping, ping_source) = make_ping()?;
                // Only ever set here, while `ping_source` is `None`.
                let _ = self.ping.set(ping);
                ping_source
            }
        };
        Ok(self.ping_source.insert(ping_source))
    }

    /// Arms the timer at once: the first iteration after a registration runs
    /// the engine (tasks dispatched before the ping existed) and tells us the
    /// timer's token.
    fn arm_now(&mut self) {
        let now = Instant::now();
        self.timer.set_deadline(now);
        self.timer_token = None;
        self.armed = Some(now);
    }
}

impl EventSource for HostSource {
    type Event = RunReport;
    type Metadata = ();
    type Ret = ();
    type Error = calloop::Error;

    /// `before_sleep` keeps the timer at the engine's earliest deadline;
    /// `before_handle_events` starts a new iteration's budget.
    const NEEDS_EXTRA_LIFECYCLE_EVENTS: bool = true;

    fn process_events<F>(
        &mut self,
        readiness: Readiness,
        token: Token,
        mut callback: F,
    ) -> Result<PostAction, Self::Error>
    where
        F: FnMut(RunReport, &mut ()),
    {
        let this = &mut *self.state;
        let mut pinged = false;
        if let Some(ping_source) = &mut this.ping_source {
            ping_source
                .process_events(readiness, token, |(), &mut ()| pinged = true)
                .map_err(|e| calloop::Error::OtherError(Box::new(e)))?;
        }
        let mut fired = false;
        // The wheel already dropped the entry that fired; `Drop` keeps the
        // timer from re-inserting one (the `Remove` it returns is the child
        // timer's, not ours).
        this.timer.process_events(readiness, token, |_, &mut ()| {
            fired = true;
            TimeoutAction::Drop
        })?;
        if fired {
            this.timer_token = Some(token);
            // An entry left by an earlier re-arm may fire before the armed one.
            if this.armed.is_some_and(|armed| armed <= Instant::now()) {
                this.armed = None;
            }
        }
        if !(pinged || fired) {
            return Ok(PostAction::Continue);
        }
        if !this.ran_this_iteration {
            this.ran_this_iteration = true;
            // What the budget leaves re-arms the wake-up (a ping, read in the
            // next iteration).
            let report = this.engine.run_pending(this.budget);
            callback(report, &mut ());
        } else if this.engine.has_pending() {
            // The engine already ran in this iteration. Draining the ping
            // above may have consumed a wake-up sent since (by `run_pending`
            // for what its budget left, or by a dispatch after it drained the
            // queue), and the wake gate will not send another until the queue
            // is drained: ping again, so the next iteration runs it. Checked
            // after the drain, so a dispatch whose ping was consumed is seen.
            if let Some(ping) = this.ping.get() {
                ping.ping();
            }
        }
        // A skipped timer event needs nothing more: if the engine has a timer
        // due that this iteration's run did not fire, `armed` was cleared
        // above and `before_sleep` re-arms calloop's timer at that (past)
        // deadline, so the next iteration's poll fires it at once.
        Ok(PostAction::Continue)
    }

    fn register(
        &mut self,
        poll: &mut Poll,
        token_factory: &mut TokenFactory,
    ) -> calloop::Result<()> {
        let this = &mut *self.state;
        this.loop_id.store(loop_id(poll), Ordering::Relaxed);
        this.ensure_ping()?.register(poll, token_factory)?;
        this.arm_now();
        this.timer.register(poll, token_factory)
    }

    fn reregister(
        &mut self,
        poll: &mut Poll,
        token_factory: &mut TokenFactory,
    ) -> calloop::Result<()> {
        let this = &mut *self.state;
        if let Some(ping_source) = &mut this.ping_source {
            ping_source.reregister(poll, token_factory)?;
        }
        this.arm_now();
        this.timer.reregister(poll, token_factory)
    }

    fn unregister(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        let this = &mut *self.state;
        if let Some(ping_source) = &mut this.ping_source {
            ping_source.unregister(poll)?;
        }
        this.timer_token = None;
        this.armed = None;
        this.timer.unregister(poll)
    }

    /// Called before every poll: re-arms the timer when the engine's earliest
    /// deadline is earlier than the armed one. This catches every `delay`
    /// registered on the loop's thread, including those polled outside
    /// `run_pending` (a `Main.immediate` task started from another source's
    /// callback).
    fn before_sleep(&mut self) -> calloop::Result<Option<(Readiness, Token)>> {
        let this = &mut *self.state;
        let (Some(token), Some(next)) = (this.timer_token, this.engine.next_deadline()) else {
            return Ok(None);
        };
        if this.armed.is_none_or(|armed| next < armed) {
            // The timer inserts a new entry at `next` into calloop's wheel. A
            // later entry it may still have there fires as a spurious wake-up
            // (a `run_pending` with nothing due), never as a late one.
            this.timer
                .process_events(Readiness::EMPTY, token, |_, &mut ()| {
                    TimeoutAction::ToInstant(next)
                })?;
            this.armed = Some(next);
        }
        Ok(None)
    }

    /// Called after each poll, before this iteration's `process_events`:
    /// the iteration gets a new budget.
    fn before_handle_events(&mut self, _events: EventIterator<'_>) {
        self.state.ran_this_iteration = false;
    }
}

impl Drop for HostSource {
    fn drop(&mut self) {
        // Gone from its loop: a `CalloopHost::remove` has nothing to remove,
        // and must not take a later loop at the same address for this one.
        self.state.loop_id.store(0, Ordering::Relaxed);
    }
}

/// An identity of a calloop loop for as long as it lives: the address of its
/// `Poll`, which the loop keeps in place (behind an `Rc`) and hands to every
/// source it registers.
pub(crate) fn loop_id(poll: &mut Poll) -> usize {
    std::ptr::from_mut(poll) as usize
}

impl fmt::Debug for HostSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostSource")
            .field("engine", &self.state.engine)
            .field("budget", &self.state.budget)
            .field("armed", &self.state.armed)
            .finish_non_exhaustive()
    }
}
