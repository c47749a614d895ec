//! The process-wide pools: [`Dispatchers::default()`] and
//! [`Dispatchers::io()`].

use std::num::NonZeroUsize;
use std::sync::LazyLock;

use super::config::PoolConfig;
use super::handoff::MAX_THREADS;
use super::limited::LimitedView;
use super::workers::{Workers, WorkersSpec};
use crate::dispatch::Dispatcher;
use crate::main_dispatcher::Dispatchers;

/// `Default`: max(2, CPUs) threads, started on demand, never retired.
static DEFAULT: LazyLock<Dispatcher> = LazyLock::new(|| {
    let config = PoolConfig::get();
    Dispatcher::new(Workers::on_demand(WorkersSpec {
        name: "Default".into(),
        thread_prefix: "dispatchers-default".into(),
        max_threads: config.default_threads.min(MAX_THREADS),
        keep_alive: None,
        stack_size: None,
        single_thread: false,
    }))
});

/// The blocking threads under `IO` and its views: as many as there are
/// blocking tasks running, started on demand, retired after the keep-alive.
/// Never handed out: `IO` and its views limit what runs here.
static BLOCKING: LazyLock<Dispatcher> =
    LazyLock::new(|| Dispatcher::new(blocking_threads(PoolConfig::get().io_keep_alive)));

/// `IO`: a view of the blocking threads with max(64, CPUs) permits, whose own
/// `limited_parallelism` views are views of the blocking threads too.
static IO: LazyLock<Dispatcher> = LazyLock::new(|| {
    let limit = NonZeroUsize::new(PoolConfig::get().io_max_threads).unwrap_or(NonZeroUsize::MIN);
    Dispatcher::new(LimitedView::elastic(BLOCKING.clone(), limit, "IO".into()))
});

/// A set of blocking threads named `dispatchers-io-N` that retire after
/// `keep_alive` (the one under `IO`, or a test's own).
pub(crate) fn blocking_threads(keep_alive: std::time::Duration) -> Workers {
    Workers::on_demand(WorkersSpec {
        name: "IO (blocking threads)".into(),
        thread_prefix: "dispatchers-io".into(),
        max_threads: MAX_THREADS,
        keep_alive: Some(keep_alive),
        stack_size: None,
        single_thread: false,
    })
}

impl Dispatchers {
    /// `Default`: the pool for CPU-bound work, max(2, CPUs) threads named
    /// `dispatchers-default-N` (`DISPATCHERS_DEFAULT_THREADS` overrides the
    /// count; see [Configuration](crate::pool#configuration)).
    ///
    /// Threads start on the first dispatches that find none idle and then
    /// stay. Don't block in its tasks: hop to [`io`](Self::io) for that.
    /// [`limited_parallelism(n)`](Dispatcher::limited_parallelism) views run
    /// at most `n` of their tasks at once, on these same threads.
    ///
    /// ```
    /// use dispatchers::{Dispatchers, block_on, with_context};
    ///
    /// let sum = block_on(with_context(&Dispatchers::default(), async {
    ///     (1..=1_000u64).sum::<u64>()
    /// }));
    /// assert_eq!(sum, 500_500);
    /// ```
    // The name is kotlinx's `Dispatchers.Default`; `Dispatchers` is a
    // namespace, there is no value of it to default.
    #[allow(clippy::should_implement_trait)]
    pub fn default() -> Dispatcher {
        DEFAULT.clone()
    }

    /// `IO`: the pool for blocking calls (files, blocking sockets, database
    /// drivers): up to max(64, CPUs) tasks block at once, on threads named
    /// `dispatchers-io-N` started on demand and retired after idling 60 s
    /// (`DISPATCHERS_IO_MAX_THREADS` and `DISPATCHERS_IO_KEEP_ALIVE_MS`
    /// override both; see [Configuration](crate::pool#configuration)).
    ///
    /// Its [`limited_parallelism(n)`](Dispatcher::limited_parallelism) is
    /// *elastic*, as in kotlinx: the view may run `n` blocking tasks at once
    /// whatever IO's own cap and load, on threads of the same set. Give a
    /// subsystem its own view (`io().limited_parallelism(8)` for a database
    /// pool of 8 connections) and it neither starves nor is starved by the
    /// rest of IO.
    ///
    /// ```
    /// use dispatchers::{Dispatchers, block_on, with_context};
    ///
    /// let db = Dispatchers::io().limited_parallelism(8)?;
    /// let text = block_on(async {
    ///     let dir = with_context(&Dispatchers::io(), async {
    ///         std::env::temp_dir() // blocking calls belong here
    ///     })
    ///     .await;
    ///     with_context(&db, async move { format!("{}", dir.display()) }).await
    /// });
    /// assert!(!text.is_empty());
    /// # Ok::<(), dispatchers::ParallelismError>(())
    /// ```
    pub fn io() -> Dispatcher {
        IO.clone()
    }
}
