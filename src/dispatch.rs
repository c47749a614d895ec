//! [`Dispatch`], the trait a dispatcher implements, and [`Dispatcher`], the
//! cheap handle users spawn on.

use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;

use crate::error::{ParallelismError, SpawnLocalError};
use crate::task::{Runnable, Task, TaskBuilder};

/// The implementor side of a dispatcher: where runnable tasks go.
///
/// Implement it to put tasks on a thread or pool of your own; wrap the
/// implementation in a [`Dispatcher`] with [`Dispatcher::new`]. Host loops
/// don't implement it directly: they use a [`HostEngine`](crate::HostEngine).
///
/// ```
/// use dispatchers::{Dispatch, Dispatcher, Runnable, block_on};
/// use std::sync::mpsc;
///
/// /// Runs every task on one dedicated thread.
/// struct OneThread(mpsc::Sender<Runnable>);
///
/// impl Dispatch for OneThread {
///     fn dispatch(&self, runnable: Runnable) {
///         // If the thread is gone, `send` hands the runnable back and
///         // dropping it cancels the task.
///         let _ = self.0.send(runnable);
///     }
/// }
///
/// let (tx, rx) = mpsc::channel::<Runnable>();
/// std::thread::spawn(move || rx.into_iter().for_each(|r| { r.run(); }));
/// let dispatcher = Dispatcher::new(OneThread(tx));
/// assert_eq!(block_on(dispatcher.spawn(async { 6 * 7 })).unwrap(), 42);
/// ```
pub trait Dispatch: Send + Sync + 'static {
    /// Runs `runnable` eventually, on one of this dispatcher's threads, never
    /// inline inside this call. A dispatcher that cannot run it any more drops
    /// it (or calls [`Runnable::cancel`]), which cancels the task.
    fn dispatch(&self, runnable: Runnable);

    /// Whether a task resumed on the calling thread must go through
    /// [`dispatch`](Self::dispatch); `false` runs it in place (through the
    /// per-thread trampoline). Default: `true`.
    fn is_dispatch_needed(&self) -> bool {
        true
    }

    /// Dispatches a task that yielded ([`yield_now`](crate::yield_now)): it
    /// should run after the tasks already queued. Default: `dispatch`.
    fn dispatch_yield(&self, runnable: Runnable) {
        self.dispatch(runnable)
    }

    /// A name for diagnostics. Default: `"custom"`.
    fn name(&self) -> &str {
        "custom"
    }

    /// Whether the calling thread is the one thread this dispatcher runs its
    /// tasks on (a host loop's thread); enables `spawn_local` and
    /// `immediate`. Default: `false`.
    fn is_current_thread(&self) -> bool {
        false
    }

    /// Whether this dispatcher has shut down for good: every later dispatch
    /// is rejected (the task is cancelled). Main's selection skips a host
    /// that shut down, and a limited view over a closed dispatcher cancels
    /// its queued tasks instead of running them. Default: `false`.
    fn is_closed(&self) -> bool {
        false
    }

    /// A view of this dispatcher that runs at most `n` of its tasks at once
    /// (see [`Dispatcher::limited_parallelism`]). `this` is the handle this
    /// implementation is wrapped in. Default: a generic limited view on top
    /// of `this`.
    fn limited_parallelism(
        &self,
        this: &Dispatcher,
        n: NonZeroUsize,
    ) -> Result<Dispatcher, ParallelismError> {
        Ok(crate::pool::limited_view(this.clone(), n))
    }
}

/// A dispatcher: a cheap, cloneable handle to spawn tasks on.
///
/// Get one from [`Dispatchers`](crate::Dispatchers), from a host (such as
/// [`LoopHost::dispatcher`](crate::LoopHost::dispatcher)), or wrap your own
/// [`Dispatch`] with [`Dispatcher::new`]. Two handles are equal when they are
/// clones of the same dispatcher.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<dyn Dispatch>,
}

impl Dispatcher {
    /// Wraps a [`Dispatch`] implementation.
    pub fn new<D: Dispatch>(dispatch: D) -> Self {
        Dispatcher {
            inner: Arc::new(dispatch),
        }
    }

    /// Wraps a shared [`Dispatch`] implementation.
    pub fn from_arc(dispatch: Arc<dyn Dispatch>) -> Self {
        Dispatcher { inner: dispatch }
    }

    /// Spawns `future` on this dispatcher.
    ///
    /// The returned [`Task`] resolves to the output; dropping it cancels the
    /// future. On a dispatcher that needs no dispatch here (`immediate` on
    /// its own thread, `Unconfined`) the future starts running before `spawn`
    /// returns.
    ///
    /// # Panics
    ///
    /// When the dispatcher panics on dispatch: the missing Main dispatcher
    /// does, with a message that says how to install a host.
    pub fn spawn<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TaskBuilder::new().spawn(self, future)
    }

    /// Spawns a `!Send` future; the calling thread must be the one this
    /// dispatcher runs its tasks on ([`is_current_thread`](Self::is_current_thread)).
    ///
    /// # Panics
    ///
    /// On any other thread, with a message saying so;
    /// [`try_spawn_local`](Self::try_spawn_local) hands the future back instead.
    pub fn spawn_local<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        TaskBuilder::new().spawn_local(self, future)
    }

    /// Spawns a `!Send` future, or returns it in the error when the calling
    /// thread is not the one this dispatcher runs its tasks on.
    pub fn try_spawn_local<F>(&self, future: F) -> Result<Task<F::Output>, SpawnLocalError<F>>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        TaskBuilder::new().try_spawn_local(self, future)
    }

    /// A view of this dispatcher that runs at most `n` of its tasks at once.
    ///
    /// The view keeps its own queue and takes at most `n` permits on this
    /// dispatcher. On Main it is Main itself (already sequential); on
    /// `Dispatchers::io()` it is elastic (independent of IO's own cap).
    ///
    /// # Errors
    ///
    /// [`ParallelismError::Zero`] when `n == 0`;
    /// [`ParallelismError::Unsupported`] on `Unconfined`.
    ///
    /// # Panics
    ///
    /// On the missing Main dispatcher, with a message that says how to
    /// install a host.
    pub fn limited_parallelism(&self, n: usize) -> Result<Dispatcher, ParallelismError> {
        let n = NonZeroUsize::new(n).ok_or(ParallelismError::Zero)?;
        self.inner.limited_parallelism(self, n)
    }

    /// The dispatcher's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Whether resuming a task on the calling thread goes through a dispatch
    /// (`false`: it runs in place).
    ///
    /// # Panics
    ///
    /// On the missing Main dispatcher.
    pub fn is_dispatch_needed(&self) -> bool {
        self.inner.is_dispatch_needed()
    }

    /// Whether the calling thread is the one thread this dispatcher runs its
    /// tasks on.
    pub fn is_current_thread(&self) -> bool {
        self.inner.is_current_thread()
    }

    /// Whether the dispatcher has shut down for good (a host loop that shut
    /// down, a pool after `shutdown`): every later spawn is cancelled.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The implementation behind the handle.
    pub fn as_dispatch(&self) -> &dyn Dispatch {
        &*self.inner
    }

    /// A number that identifies the dispatcher among the live ones.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner).cast::<()>() as usize
    }

    /// A weak handle: while it lives, no other dispatcher gets this one's
    /// [`id`](Self::id), even after this one is dropped.
    pub(crate) fn downgrade(&self) -> std::sync::Weak<dyn Dispatch> {
        Arc::downgrade(&self.inner)
    }
}

impl PartialEq for Dispatcher {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for Dispatcher {}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Dispatcher").field(&self.name()).finish()
    }
}

// A dispatcher is shared across threads and stays consistent when a task
// panics (panics are caught inside tasks), as `Arc<Mutex<_>>`-based handles do.
impl std::panic::UnwindSafe for Dispatcher {}
impl std::panic::RefUnwindSafe for Dispatcher {}
