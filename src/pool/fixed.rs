//! [`ThreadPool`]: a fixed pool of threads that the user creates and that
//! shuts down when dropped, and its [`ThreadPoolBuilder`].

use std::fmt;
use std::io;
use std::ops::Deref;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::handoff::MAX_THREADS;
use super::workers::{Shared, Workers, WorkersSpec};
use crate::dispatch::Dispatcher;

/// How long [`ThreadPool`]'s `Drop` waits for its threads by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// A fixed number of threads running the tasks dispatched to it, shut down
/// when dropped (kotlinx's `newFixedThreadPoolContext` /
/// `newSingleThreadContext`).
///
/// The pool dereferences to its [`Dispatcher`]: spawn on it, hop to it with
/// [`with_context`](crate::with_context), or make
/// [`limited_parallelism`](Dispatcher::limited_parallelism) views of it.
/// Threads are named `{name}-1` to `{name}-{n}`.
///
/// ```
/// use dispatchers::{ThreadPool, block_on, with_context};
///
/// let pool = ThreadPool::new_fixed(2, "render")?;
/// let name = block_on(with_context(&pool, async {
///     std::thread::current().name().map(str::to_owned)
/// }));
/// assert!(name.unwrap().starts_with("render-"));
/// drop(pool); // joins both threads
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Shutdown
///
/// Dropping the pool (or [`shutdown_timeout`](Self::shutdown_timeout))
/// closes it: the tasks queued and not started are cancelled (their `Task`s
/// resolve to a cancelled [`JoinError`](crate::JoinError)), and so is every
/// task dispatched later, including tasks of the pool that wake up after
/// it. A task that is running cannot be interrupted: `Drop` waits for each
/// thread to finish the poll it is in, at most the pool's shutdown timeout
/// ([`DEFAULT_SHUTDOWN_TIMEOUT`], or
/// [`ThreadPoolBuilder::shutdown_timeout`]), and joins every thread that
/// has exited by then. A thread still blocked after the timeout is detached
/// (with a message on stderr): it exits as soon as its poll returns. On a
/// single-thread pool, the tasks suspended when its thread exits (waiting
/// for something else) are cancelled then, on that thread: a `!Send` one
/// could not be dropped anywhere else later. Dropped
/// from one of its own tasks, the pool cannot join the calling thread; that
/// thread exits when the task's poll returns (a single-thread pool cancels
/// its suspended tasks at once then, with the queued ones).
pub struct ThreadPool {
    dispatcher: Dispatcher,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl ThreadPool {
    /// A pool of `threads` threads named `{name}-1` to `{name}-{threads}`,
    /// all started now.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `threads` is 0; the OS's error when a thread
    /// cannot be started (the ones already started are stopped).
    pub fn new_fixed(threads: usize, name: impl Into<String>) -> io::Result<ThreadPool> {
        ThreadPool::builder(name).threads(threads).build()
    }

    /// A pool of one thread, named `{name}-1`: its tasks run one at a time,
    /// in dispatch order. On that thread the pool's
    /// [`is_current_thread`](Dispatcher::is_current_thread) is true, so its
    /// tasks can [`spawn_local`](Dispatcher::spawn_local) `!Send` futures
    /// on it.
    ///
    /// # Errors
    ///
    /// The OS's error when the thread cannot be started.
    pub fn new_single_thread(name: impl Into<String>) -> io::Result<ThreadPool> {
        ThreadPool::builder(name).threads(1).build()
    }

    /// A builder for a pool named `name`, for more options.
    pub fn builder(name: impl Into<String>) -> ThreadPoolBuilder {
        ThreadPoolBuilder::new(name)
    }

    /// The pool's dispatcher (also reachable through `Deref`); it outlives
    /// the pool, and cancels what it is given once the pool is shut down.
    pub fn dispatcher(&self) -> Dispatcher {
        self.dispatcher.clone()
    }

    /// The number of threads the pool was built with.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Shuts the pool down (see [Shutdown](Self#shutdown)) and waits for
    /// its threads at most `timeout`. Returns `true` when every thread was
    /// joined; `false` when some were still running a task and were detached.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> bool {
        self.shutdown(timeout) == 0
    }

    /// Shuts the pool down (see [Shutdown](Self#shutdown)) without waiting:
    /// each thread exits after the poll it is in.
    pub fn shutdown_background(mut self) {
        self.shared.close();
        self.threads.clear();
    }

    /// Closes the pool and joins its threads, waiting at most `timeout`;
    /// returns how many threads were still running and were detached (the
    /// calling thread, when it is one of the pool's, is not counted: it
    /// exits after the poll it is in).
    fn shutdown(&mut self, timeout: Duration) -> usize {
        self.shared.close();
        let me = thread::current().id();
        let others: Vec<_> = std::mem::take(&mut self.threads)
            .into_iter()
            .filter(|t| t.thread().id() != me)
            .collect();
        let all_exited = self
            .shared
            .wait_exited(others.len(), Instant::now().checked_add(timeout));
        let mut detached = 0;
        for handle in others {
            if all_exited || handle.is_finished() {
                let _ = handle.join();
            } else {
                detached += 1;
            }
        }
        detached
    }
}

impl Deref for ThreadPool {
    type Target = Dispatcher;

    fn deref(&self) -> &Dispatcher {
        &self.dispatcher
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        let detached = self.shutdown(self.shutdown_timeout);
        if detached > 0 {
            eprintln!(
                "dispatchers: pool '{}' was dropped with {detached} thread(s) still running a task \
                 after {:?}; they were detached and exit when their task's poll returns",
                self.shared.name(),
                self.shutdown_timeout,
            );
        }
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("name", &self.shared.name())
            .field("threads", &self.threads.len())
            .field("live_threads", &self.shared.live_threads())
            .finish()
    }
}

/// Builds a [`ThreadPool`] with options.
///
/// ```
/// use dispatchers::ThreadPool;
/// use std::time::Duration;
///
/// let pool = ThreadPool::builder("db")
///     .threads(4)
///     .stack_size(256 * 1024)
///     .shutdown_timeout(Duration::from_secs(2))
///     .build()?;
/// assert_eq!(pool.threads(), 4);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ThreadPoolBuilder {
    name: String,
    threads: usize,
    stack_size: Option<usize>,
    shutdown_timeout: Duration,
}

impl ThreadPoolBuilder {
    /// A builder for a pool named `name` (its threads: `{name}-1`, ...), of
    /// one thread unless [`threads`](Self::threads) says otherwise.
    pub fn new(name: impl Into<String>) -> Self {
        ThreadPoolBuilder {
            name: name.into(),
            threads: 1,
            stack_size: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// The number of threads (at least 1). With 1 the pool is a
    /// single-thread pool, as [`ThreadPool::new_single_thread`] makes.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// The threads' stack size in bytes (default: std's, 2 MiB unless
    /// `RUST_MIN_STACK` says otherwise).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// How long `Drop` waits for the threads to finish the task they are
    /// running (default [`DEFAULT_SHUTDOWN_TIMEOUT`]).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Starts the pool's threads.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the thread count is 0 or absurdly large; the OS's
    /// error when a thread cannot be started (the ones already started are
    /// stopped).
    pub fn build(self) -> io::Result<ThreadPool> {
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "thread pool '{}': the thread count must be between 1 and {MAX_THREADS}, not {}",
                    self.name, self.threads
                ),
            ));
        }
        let spec = WorkersSpec {
            thread_prefix: self.name.clone(),
            name: self.name,
            max_threads: self.threads,
            keep_alive: None,
            stack_size: self.stack_size,
            single_thread: self.threads == 1,
        };
        let (dispatcher, shared, threads) = Workers::started(spec)?;
        Ok(ThreadPool {
            dispatcher,
            shared,
            threads,
            shutdown_timeout: self.shutdown_timeout,
        })
    }
}
