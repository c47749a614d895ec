//! [`MioHost`]: a [`HostEngine`] woken through the `mio::Waker` of a
//! [`mio::Poll`], and at its deadlines by a timerfd where there is one.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dispatchers::{Budget, HostEngine, MainDispatcher, RegisterError, RunReport};
use mio::event::Event;
use mio::{Registry, Token, Waker};

use crate::timer::DeadlineTimer;

/// The [`load_priority`](dispatchers::MainDispatcherFactory::load_priority)
/// [`MioHost::register_as_main`] registers with: 50.
///
/// It is above a bare [`LoopHost`](dispatchers::LoopHost) registered at 0 and
/// leaves room on both sides; use
/// [`register_as_main_with_priority`](MioHost::register_as_main_with_priority)
/// to rank the mio loop against other hosts of the same program.
pub const DEFAULT_PRIORITY: i32 = 50;

/// The host of a mio event loop: the Main dispatcher of the thread that polls
/// a [`mio::Poll`].
///
/// A dispatch from any thread wakes the `Poll` through a [`mio::Waker`]
/// registered on the token you reserve for it; dispatches made before the
/// loop comes round cost one wake-up between them. The loop calls
/// [`run_pending`](Self::run_pending) after every `poll` and sleeps no longer
/// than [`next_timeout`](Self::next_timeout), so `delay`s on this thread use
/// the loop's own timers (no extra thread).
///
/// # Timer precision
///
/// On Linux and Android the host also registers a timerfd on its token and
/// arms it at the next `delay` deadline, with nanosecond precision: `delay`s
/// resume within the scheduling latency of the loop's thread (tens of
/// microseconds on an idle machine). This costs two file descriptors (the
/// timerfd, and a clone of the [`Registry`] to deregister it when the host
/// is dropped). Elsewhere, or when the timerfd cannot be created, the loop
/// sleeps with a poll timeout, which mio rounds up to whole milliseconds:
/// `delay`s then resume up to about a millisecond late.
///
/// # Threads
///
/// `MioHost` is `!Send`: create it on the thread that polls, which becomes
/// the Main thread of this host. Its [`dispatcher`](Self::dispatcher) is
/// `Send + Sync`. Dropping the host shuts its engine down: queued tasks are
/// cancelled and later dispatches are rejected (see [`HostEngine`]).
///
/// ```compile_fail
/// fn send<T: Send>() {}
/// send::<dispatchers_mio::MioHost>(); // the host stays on its loop's thread
/// ```
///
/// # One waker per `Poll`
///
/// mio supports a single [`Waker`] per `Poll`, for the `Poll`'s whole life
/// (debug builds assert it, and the assertion stays armed after the `Waker`
/// is dropped): the host owns it, so there is one `MioHost` per `Poll`; to
/// start over, create a new `Poll`. To wake the loop for your own reasons, dispatch a task to
/// Main, or share the host's waker ([`waker`](Self::waker)); its events carry
/// the host's token and are harmless to the host. The host's timerfd (see
/// above) shares the token too: the host's token stays reserved to the host.
///
/// # Example: a server loop
///
/// ```
/// use dispatchers::Budget;
/// use dispatchers_mio::MioHost;
/// use mio::{Events, Poll, Token};
///
/// const WAKE: Token = Token(0);
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut poll = Poll::new()?;
/// let host = MioHost::new(poll.registry(), WAKE)?;
/// let main = host.dispatcher();
///
/// let task = std::thread::spawn(move || main.spawn(async { 6 * 7 })).join().unwrap();
///
/// let mut events = Events::with_capacity(128);
/// while !task.is_finished() {
///     poll.poll(&mut events, host.next_timeout())?;
///     for event in events.iter() {
///         if host.is_wake_event(event) {
///             continue; // tasks run below
///         }
///         // ... your sockets
///     }
///     host.run_pending(Budget::unlimited());
/// }
/// assert_eq!(dispatchers::block_on(task)?, 42);
/// # Ok(())
/// # }
/// ```
pub struct MioHost {
    engine: HostEngine,
    waker: Arc<Waker>,
    token: Token,
    failed_wakes: Arc<AtomicU64>,
    /// The timerfd that ends the poll at the next deadline (Linux and
    /// Android, when it could be created); dropped (deregistered) with the
    /// host.
    timer: Option<DeadlineTimer>,
}

impl MioHost {
    /// A host for the calling thread's loop, named `"mio"`, whose wake-ups
    /// arrive as readable events with `token` on the `Poll` of `registry`.
    ///
    /// Reserve `token` for the host: use it for no other source. On Linux
    /// and Android the host registers a timerfd there too, for precise
    /// `delay`s (see [Timer precision](MioHost#timer-precision)); when that
    /// fails, the host works with mio's millisecond timeouts instead.
    ///
    /// # Errors
    ///
    /// When mio cannot create the [`Waker`] (out of file descriptors...).
    ///
    /// # Panics
    ///
    /// In debug builds, mio panics when a `Waker` was ever created for this
    /// `Poll`, even one since dropped: mio allows one `Waker` per `Poll` for
    /// the `Poll`'s whole life, so make one `MioHost` per `Poll` (create a
    /// new `Poll` to start over).
    pub fn new(registry: &Registry, token: Token) -> io::Result<MioHost> {
        MioHost::with_name("mio", registry, token)
    }

    /// [`new`](Self::new), with a name for the dispatcher (shown by
    /// [`Dispatcher::name`](dispatchers::Dispatcher::name), in panic reports
    /// and in the registry's messages).
    ///
    /// # Errors
    ///
    /// When mio cannot create the [`Waker`].
    ///
    /// # Panics
    ///
    /// In debug builds, mio panics when a `Waker` was ever created for this
    /// `Poll` (see [`new`](Self::new)).
    pub fn with_name(
        name: impl Into<String>,
        registry: &Registry,
        token: Token,
    ) -> io::Result<MioHost> {
        let waker = Arc::new(Waker::new(registry, token)?);
        let failed_wakes = Arc::new(AtomicU64::new(0));
        let engine = {
            let waker = waker.clone();
            let failed_wakes = failed_wakes.clone();
            HostEngine::new(name, move || {
                // Called from the dispatching thread, which has nowhere to
                // report to: count the failure (see `failed_wakes`).
                if waker.wake().is_err() {
                    failed_wakes.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        // No timerfd is no error: the poll timeouts take over.
        let timer = DeadlineTimer::new(registry, token).ok();
        Ok(MioHost {
            engine,
            waker,
            token,
            failed_wakes,
            timer,
        })
    }

    /// The Main dispatcher of this loop (with its `immediate` view).
    pub fn dispatcher(&self) -> MainDispatcher {
        self.engine.dispatcher()
    }

    /// The engine, for what this type does not forward
    /// ([`host_wakes`](HostEngine::host_wakes),
    /// [`pending_timers`](HostEngine::pending_timers),
    /// [`shutdown`](HostEngine::shutdown)...).
    pub fn engine(&self) -> &HostEngine {
        &self.engine
    }

    /// The token the host's wake-ups carry.
    pub fn token(&self) -> Token {
        self.token
    }

    /// Whether `event` is one of the host's wake-ups (from its [`Waker`] or,
    /// on Linux and Android, its deadline timer). There is nothing to do
    /// with it but skip it: [`run_pending`](Self::run_pending), called after
    /// every poll, runs what the wake-up was for.
    pub fn is_wake_event(&self, event: &Event) -> bool {
        event.token() == self.token
    }

    /// Fires due timers and runs queued tasks until the queue is empty or
    /// `budget` runs out (see [`HostEngine::run_pending`]).
    ///
    /// Call it after **every** `Poll::poll`, not only after a wake event: a
    /// `delay` coming due may end the poll by its timeout, with no event. Work
    /// left over by the budget re-arms the wake-up, so the next poll returns
    /// at once, after delivering your sockets' events.
    pub fn run_pending(&self, budget: Budget) -> RunReport {
        self.engine.run_pending(budget)
    }

    /// The timeout for `Poll::poll` in a loop that waits for events: zero
    /// when tasks are queued or a `delay` deadline has passed; otherwise
    /// `None` (until an event, a dispatch or, on Linux and Android, the
    /// host's timerfd, armed here at the next deadline with nanosecond
    /// precision), or, where there is no timerfd, the time to the next
    /// deadline (which mio rounds up to whole milliseconds).
    ///
    /// Call it right before every poll: it (re-)arms the timerfd.
    pub fn next_timeout(&self) -> Option<Duration> {
        self.deadline_timeout()
    }

    /// The timeout for `Poll::poll` in a loop that must also be back by
    /// `deadline` (a fixed-rate tick loop passes its next tick): the smaller
    /// of the time to `deadline` and [`next_timeout`](Self::next_timeout)
    /// (which arms the timerfd for the host's own deadlines, so these keep
    /// their precision); zero when `deadline` has passed. The poll waits for
    /// `deadline` itself with mio's millisecond resolution.
    ///
    /// ```
    /// # use dispatchers_mio::MioHost;
    /// # use mio::{Events, Poll, Token};
    /// # use std::time::{Duration, Instant};
    /// # fn main() -> std::io::Result<()> {
    /// # let mut poll = Poll::new()?;
    /// # let mut events = Events::with_capacity(16);
    /// # let host = MioHost::new(poll.registry(), Token(0))?;
    /// const TICK: Duration = Duration::from_millis(5);
    /// let mut next_tick = Instant::now() + TICK;
    /// for _ in 0..3 {
    ///     poll.poll(&mut events, Some(host.next_timeout_before(next_tick)))?;
    ///     // ... events
    ///     host.run_pending(dispatchers::Budget::unlimited());
    ///     if Instant::now() >= next_tick {
    ///         // ... tick the world
    ///         next_tick += TICK;
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn next_timeout_before(&self, deadline: Instant) -> Duration {
        let timeout = self.deadline_timeout();
        let until_deadline = deadline.saturating_duration_since(Instant::now());
        match timeout {
            Some(timeout) => timeout.min(until_deadline),
            None => until_deadline,
        }
    }

    /// What the engine asks of the poll's timeout (`None`: nothing, the
    /// timerfd or a dispatch ends the poll), after arming the timerfd at the
    /// engine's next deadline, or disarming it when there is none.
    fn deadline_timeout(&self) -> Option<Duration> {
        if self.engine.has_pending() {
            return Some(Duration::ZERO);
        }
        let next = self.engine.next_deadline();
        let now = Instant::now();
        let Some(deadline) = next else {
            if let Some(timer) = &self.timer {
                timer.disarm(now);
            }
            return None;
        };
        let until_deadline = deadline.saturating_duration_since(now);
        if until_deadline.is_zero() {
            return Some(Duration::ZERO);
        }
        match &self.timer {
            Some(timer) if timer.arm(deadline, now).is_ok() => None,
            // No timerfd, or it refused the arming: mio's timeout.
            _ => Some(until_deadline),
        }
    }

    /// Registers this loop as a source of `Dispatchers::main()` with
    /// `load_priority` [`DEFAULT_PRIORITY`] (50). Call it at start-up,
    /// before the first use of `Dispatchers::main()`, and keep the host alive
    /// for as long as Main is used (a dropped host rejects every task).
    ///
    /// # Errors
    ///
    /// [`RegisterError::AlreadySelected`] when Main was already selected.
    pub fn register_as_main(&self) -> Result<(), RegisterError> {
        self.register_as_main_with_priority(DEFAULT_PRIORITY)
    }

    /// [`register_as_main`](Self::register_as_main) with `load_priority`
    /// `priority` (higher wins; equal priorities in registration order).
    ///
    /// # Errors
    ///
    /// [`RegisterError::AlreadySelected`] when Main was already selected.
    pub fn register_as_main_with_priority(&self, priority: i32) -> Result<(), RegisterError> {
        self.engine.register_as_main(priority)
    }

    /// The host's [`Waker`], to share when something else must wake the
    /// same `Poll` (mio allows one waker per `Poll`). Its events carry
    /// [`token`](Self::token).
    pub fn waker(&self) -> &Arc<Waker> {
        &self.waker
    }

    /// How many wake-ups failed (`Waker::wake` returned an error, which mio's
    /// eventfd and pipe wakers only do on a broken descriptor). The error
    /// cannot reach the dispatching thread, so it is counted here: a failed
    /// wake-up delays the queued tasks until the loop's next poll returns.
    pub fn failed_wakes(&self) -> u64 {
        self.failed_wakes.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for MioHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MioHost")
            .field("engine", &self.engine)
            .field("token", &self.token)
            .field("failed_wakes", &self.failed_wakes())
            .field("timerfd", &self.timer.is_some())
            .finish()
    }
}
