//! [`Workers`]: a set of named threads that run the tasks of one queue; the
//! engine behind `Default`, `IO` and the fixed pools.
//!
//! Threads are started on demand by a dispatch that finds none idle (up to
//! `max_threads`), or all at once for a fixed pool; with a keep-alive an idle
//! thread retires after it. The hand-off between the queue and the threads
//! is the [`handoff`](super::handoff) protocol. A thread is named
//! `{prefix}-{index}` with the lowest index not in use, so the names stay
//! short however often threads come and go.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError, Weak};
use std::task::Waker;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::handoff::{Next, Pushed, WorkQueue};
use crate::dispatch::{Dispatch, Dispatcher};
use crate::sync::{Condvar, Mutex};
use crate::task::{LiveTasks, Runnable};

/// What [`Workers::started`] returns: the dispatcher, the shared part and
/// the threads' handles.
pub(crate) type Started = (Dispatcher, Arc<Shared>, Vec<JoinHandle<()>>);

thread_local! {
    /// The pool (by address of its `Shared`) whose thread this is; 0 elsewhere.
    static CURRENT_POOL: Cell<usize> = const { Cell::new(0) };
    /// On the thread of a single-thread pool: the id of the dispatcher whose
    /// live set the thread keeps (see `run_thread`); 0 elsewhere.
    static LIVE_SET: Cell<usize> = const { Cell::new(0) };
}

/// How a [`Workers`] set is made.
#[derive(Debug, Clone)]
pub(crate) struct WorkersSpec {
    /// The dispatcher's name.
    pub(crate) name: String,
    /// Threads are named `{thread_prefix}-{index}`, index from 1.
    pub(crate) thread_prefix: String,
    /// The cap on live threads.
    pub(crate) max_threads: usize,
    /// How long an idle thread waits for a task before it retires; `None`:
    /// it never does.
    pub(crate) keep_alive: Option<Duration>,
    /// The threads' stack size; `None`: std's default.
    pub(crate) stack_size: Option<usize>,
    /// Whether [`Dispatch::is_current_thread`] is true on the pool's thread
    /// (single-thread pools: `spawn_local` works from their tasks).
    pub(crate) single_thread: bool,
}

/// The dispatcher side of a thread set: cheap to clone.
#[derive(Clone)]
pub(crate) struct Workers {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    spec: WorkersSpec,
    tasks: WorkQueue<Runnable>,
    /// Which thread-name indices are taken (`names[i]`: index `i + 1`).
    names: Mutex<Vec<bool>>,
    /// Threads that have left their loop, for a shutdown that waits.
    exited: Mutex<usize>,
    exit: Condvar,
    /// `!Send` tasks that `close` took out of the queue on another thread:
    /// the pool thread cancels them on its way out (`None` once it has).
    stranded: Mutex<Option<Vec<Runnable>>>,
}

impl Workers {
    /// A thread set that starts its threads on demand.
    pub(crate) fn on_demand(spec: WorkersSpec) -> Self {
        Workers {
            shared: Shared::new(spec, 0),
        }
    }

    /// A thread set with all its `spec.max_threads` threads started now;
    /// returns its dispatcher, its shared part (for the pool's owner) and the
    /// threads' handles.
    pub(crate) fn started(spec: WorkersSpec) -> io::Result<Started> {
        let threads = spec.max_threads;
        let single_thread = spec.single_thread;
        let shared = Shared::new(spec, threads);
        let dispatcher = Dispatcher::new(Workers {
            shared: shared.clone(),
        });
        // The thread of a single-thread pool keeps the pool's suspended tasks
        // (see `run_thread`); the weak handle keeps the dispatcher's id,
        // which finds them, from going to another dispatcher meanwhile.
        let owner = single_thread.then(|| dispatcher.downgrade());
        let mut handles = Vec::with_capacity(threads);
        for _ in 0..threads {
            match shared.start_thread(owner.clone()) {
                Ok(handle) => handles.push(handle),
                Err(err) => {
                    // The threads not started still count as live: the ones
                    // started exit on the close.
                    shared.close();
                    for handle in handles {
                        let _ = handle.join();
                    }
                    return Err(err);
                }
            }
        }
        Ok((dispatcher, shared, handles))
    }
}

impl Shared {
    fn new(spec: WorkersSpec, live: usize) -> Arc<Self> {
        Arc::new(Shared {
            tasks: WorkQueue::new(spec.max_threads, live),
            names: Mutex::new(Vec::new()),
            exited: Mutex::new(0),
            exit: Condvar::new(),
            stranded: Mutex::new(Some(Vec::new())),
            spec,
        })
    }

    fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// Starts one thread (already counted as live); `owner`: the dispatcher
    /// of a single-thread pool, whose suspended tasks the thread cancels
    /// when it exits.
    fn start_thread(
        self: &Arc<Self>,
        owner: Option<Weak<dyn Dispatch>>,
    ) -> io::Result<JoinHandle<()>> {
        let index = self.take_name();
        let mut builder =
            thread::Builder::new().name(format!("{}-{}", self.spec.thread_prefix, index));
        if let Some(size) = self.spec.stack_size {
            builder = builder.stack_size(size);
        }
        let shared = self.clone();
        builder
            .spawn(move || shared.run_thread(index, owner))
            .inspect_err(|_| self.release_name(index))
    }

    /// A thread's loop. On the thread of a single-thread pool (`owner`),
    /// the pool's tasks suspended there join a live set, as a host loop's
    /// do: at the shutdown the thread wakes them, the closed pool rejects
    /// them, and they are cancelled on this thread, their own. Otherwise a
    /// `!Send` one woken after the thread exited could not be dropped
    /// anywhere, and its `Task` would never resolve.
    fn run_thread(self: Arc<Self>, index: usize, owner: Option<Weak<dyn Dispatch>>) {
        struct Exit<'a>(&'a Shared, usize);
        impl Drop for Exit<'_> {
            fn drop(&mut self) {
                self.0.release_name(self.1);
                *self.0.exited.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                self.0.exit.notify_all();
            }
        }
        let _exit = Exit(&self, index);
        CURRENT_POOL.set(self.addr());
        let live = owner.as_ref().map(|owner| {
            let id = owner.as_ptr().cast::<()>() as usize;
            LIVE_SET.set(id);
            LiveTasks::open([id, id])
        });
        loop {
            match self.tasks.next(self.spec.keep_alive) {
                // Shutting down: a task not started yet is cancelled; a
                // `!Send` one with the others, on the way out.
                Next::Run(runnable) if self.tasks.is_closed() => {
                    if runnable.is_local() {
                        self.strand(runnable);
                    } else {
                        drop(runnable);
                    }
                }
                Next::Run(runnable) => run_isolated(runnable),
                Next::Retire => return,
                Next::Closed => {
                    let stranded = self
                        .stranded
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take();
                    let stranded = stranded.unwrap_or_default();
                    let suspended = live.as_ref().map(LiveTasks::close).unwrap_or_default();
                    cancel_here(stranded, suspended);
                    self.tasks.exit_closed();
                    // The set goes first: the weak handle reserves its id.
                    LIVE_SET.set(0);
                    drop(live);
                    drop(owner);
                    return;
                }
            }
        }
    }

    /// The lowest free thread-name index.
    fn take_name(&self) -> usize {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        let free = names.iter().position(|taken| !taken);
        let slot = free.unwrap_or_else(|| {
            names.push(false);
            names.len() - 1
        });
        names[slot] = true;
        slot + 1
    }

    fn release_name(&self, index: usize) {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(taken) = names.get_mut(index - 1) {
            *taken = false;
        }
    }

    fn on_pushed(self: &Arc<Self>, pushed: Pushed<Runnable>) {
        match pushed {
            Pushed::WokeIdle | Pushed::Queued => {}
            Pushed::StartThread => {
                if let Err(err) = self.start_thread(None) {
                    self.tasks.start_failed();
                    report_start_failure(&self.spec.name, &err);
                }
            }
            // Closed: dropping the runnable cancels the task.
            Pushed::Rejected(runnable) => drop(runnable),
        }
    }

    /// Closes the queue and cancels what is queued; running tasks finish
    /// their current poll, then their threads exit. A queued `!Send` task
    /// (single-thread pools host them) is cancelled by the pool's thread on
    /// its way out, since its future may only be dropped there. Returns
    /// `true` for the call that closed it.
    pub(crate) fn close(&self) -> bool {
        let on_pool_thread = CURRENT_POOL.get() == self.addr();
        if on_pool_thread {
            let first = self.tasks.close();
            // Cancelled here, together with the tasks suspended on this
            // thread (which the closed pool can no longer resume): the
            // destructor of one may wait for another (see `cancel_here`).
            let mut local = Vec::new();
            while let Some(runnable) = self.tasks.take_closed() {
                if runnable.is_local() {
                    local.push(runnable);
                } else {
                    drop(runnable);
                }
            }
            let suspended = match LIVE_SET.get() {
                0 => Vec::new(),
                id => crate::task::close_live_set_here(id),
            };
            cancel_here(local, suspended);
            return first;
        }
        // The list stays locked until the queue is empty, so that the pool's
        // thread, which takes it on its way out, finds every `!Send` task in
        // it. The others are cancelled after the lock is released: no user
        // code runs under it.
        let mut cancelled = Vec::new();
        let mut stranded = self.stranded.lock().unwrap_or_else(PoisonError::into_inner);
        let first = self.tasks.close();
        while let Some(runnable) = self.tasks.take_closed() {
            match (runnable.is_local(), stranded.as_mut()) {
                (true, Some(list)) => list.push(runnable),
                _ => cancelled.push(runnable),
            }
        }
        drop(stranded);
        drop(cancelled);
        first
    }

    /// Hands a `!Send` runnable to the pool thread to cancel (or drops it
    /// here when that thread is gone: see `Runnable`'s drop).
    fn strand(&self, runnable: Runnable) {
        let mut stranded = self.stranded.lock().unwrap_or_else(PoisonError::into_inner);
        match stranded.as_mut() {
            Some(list) => list.push(runnable),
            None => drop(runnable),
        }
    }

    /// Waits until `count` threads have exited, or `deadline`; returns
    /// whether they had.
    pub(crate) fn wait_exited(&self, count: usize, deadline: Option<Instant>) -> bool {
        let mut exited = self.exited.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if *exited >= count {
                return true;
            }
            match deadline {
                None => {
                    exited = self
                        .exit
                        .wait(exited)
                        .unwrap_or_else(PoisonError::into_inner)
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    exited = match self.exit.wait_timeout(exited, deadline - now) {
                        Ok((exited, _)) => exited,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                }
            }
        }
    }

    /// Whether the calling thread is one of this set's.
    pub(crate) fn is_own_thread(&self) -> bool {
        CURRENT_POOL.get() == self.addr()
    }

    /// Threads started and not exited.
    pub(crate) fn live_threads(&self) -> usize {
        self.tasks.live_threads()
    }

    pub(crate) fn name(&self) -> &str {
        &self.spec.name
    }
}

#[cfg(all(test, not(loom)))]
impl Workers {
    /// Threads started and not exited (retiring threads leave the count
    /// before they end).
    pub(crate) fn live_threads(&self) -> usize {
        self.shared.live_threads()
    }

    /// Threads that have ended their loop (and given back their name).
    pub(crate) fn exited_threads(&self) -> usize {
        *self
            .shared
            .exited
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Dispatch for Workers {
    fn dispatch(&self, runnable: Runnable) {
        let pushed = self.shared.tasks.push(runnable);
        self.shared.on_pushed(pushed);
    }

    fn dispatch_yield(&self, runnable: Runnable) {
        // On one of this set's threads, that thread asks for a task right
        // after: queue behind the others without starting a thread.
        let pushed = if self.shared.is_own_thread() {
            self.shared.tasks.push_from_worker(runnable)
        } else {
            self.shared.tasks.push(runnable)
        };
        self.shared.on_pushed(pushed);
    }

    fn name(&self) -> &str {
        &self.shared.spec.name
    }

    fn is_current_thread(&self) -> bool {
        self.shared.spec.single_thread && self.shared.is_own_thread()
    }

    fn is_closed(&self) -> bool {
        self.shared.tasks.is_closed()
    }
}

impl fmt::Debug for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workers")
            .field("name", &self.shared.spec.name)
            .field("live_threads", &self.shared.live_threads())
            .field("max_threads", &self.shared.spec.max_threads)
            .finish()
    }
}

/// Cancels the `!Send` tasks of a shutdown on their thread, and wakes the
/// suspended tasks of the closed pool (which rejects them: they are
/// cancelled), all as one chain of cancellations: a destructor of one that
/// waits (`block_on`) for another of them is served by that wait, instead
/// of blocking the thread forever. A panic escaping them is reported, never
/// unwound into the thread's loop.
fn cancel_here(runnables: Vec<Runnable>, suspended: Vec<Waker>) {
    if runnables.is_empty() && suspended.is_empty() {
        return;
    }
    let cancel = || {
        crate::task::cancel_together(|| {
            crate::task::cancel_all_here(runnables);
            suspended.into_iter().for_each(Waker::wake);
        })
    };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(cancel)) {
        crate::panic::report_detached_panic(None, &*payload);
    }
}

/// Runs one task; a panic escaping it (a destructor's: the future's own
/// panics are caught inside the task) is reported, never unwound into the
/// thread's loop.
pub(crate) fn run_isolated(runnable: Runnable) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runnable.run())) {
        crate::panic::report_detached_panic(None, &*payload);
    }
}

fn report_start_failure(pool: &str, err: &io::Error) {
    eprintln!(
        "dispatchers: pool '{pool}' could not start a thread ({err}); its queued tasks wait for \
         a running thread or for the next dispatch to try again"
    );
}
