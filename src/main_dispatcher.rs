//! [`MainDispatcher`], [`Dispatchers`] (the well-known dispatchers and the Main
//! override), [`spawn_on_main`] and [`spawn_on_main_local`].

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};

use crate::dispatch::Dispatcher;
use crate::immediate::Immediate;
use crate::registry::{self, MissingMainDispatcher};
use crate::task::Task;

/// The dispatcher of a host loop's thread, with its `immediate` view.
///
/// Dereferences to the [`Dispatcher`] that queues onto the loop
/// (`is_dispatch_needed()` always `true`), so `main.spawn(..)` and
/// `with_context(&main, ..)` work directly.
#[derive(Clone)]
pub struct MainDispatcher {
    main: Dispatcher,
    immediate: Dispatcher,
    missing: bool,
}

impl MainDispatcher {
    /// Main backed by `dispatcher`, whose
    /// [`is_current_thread`](crate::Dispatch::is_current_thread) tells
    /// `immediate` when it may run in place.
    pub fn new(dispatcher: Dispatcher) -> Self {
        let immediate = Dispatcher::new(Immediate::new(dispatcher.clone()));
        MainDispatcher {
            main: dispatcher,
            immediate,
            missing: false,
        }
    }

    pub(crate) fn missing(missing: MissingMainDispatcher) -> Self {
        let main = Dispatcher::new(missing);
        MainDispatcher {
            immediate: main.clone(),
            main,
            missing: true,
        }
    }

    /// `Main.immediate`: runs a task in place when started or resumed on the
    /// main thread (nested runs go through the per-thread trampoline, so deep
    /// chains don't grow the stack), dispatches to Main from any other thread.
    /// [`yield_now`](crate::yield_now) on it always dispatches.
    pub fn immediate(&self) -> Dispatcher {
        self.immediate.clone()
    }

    /// Whether this is the [`MissingMainDispatcher`] (no host was installed).
    pub fn is_missing(&self) -> bool {
        self.missing
    }

    /// The dispatcher behind Main.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.main
    }
}

impl Deref for MainDispatcher {
    type Target = Dispatcher;

    fn deref(&self) -> &Dispatcher {
        &self.main
    }
}

impl From<Dispatcher> for MainDispatcher {
    fn from(dispatcher: Dispatcher) -> Self {
        MainDispatcher::new(dispatcher)
    }
}

impl fmt::Debug for MainDispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MainDispatcher")
            .field("name", &self.main.name())
            .field("missing", &self.missing)
            .finish()
    }
}

/// The well-known dispatchers.
///
/// - [`main`](Dispatchers::main): the host loop's thread, chosen from the
///   registered [`MainDispatcherFactory`](crate::MainDispatcherFactory)s;
/// - [`default`](Dispatchers::default): a pool of max(2, ncpu) threads for
///   CPU work;
/// - [`io`](Dispatchers::io): up to max(64, ncpu) blocking tasks at once, on
///   threads started on demand and retired when idle;
/// - [`unconfined`](Dispatchers::unconfined): runs in place on whatever thread
///   resumes the task.
#[derive(Debug)]
pub struct Dispatchers(());

static SELECTED: OnceLock<MainDispatcher> = OnceLock::new();
static HAS_OVERRIDE: AtomicBool = AtomicBool::new(false);
static OVERRIDE: RwLock<Option<MainDispatcher>> = RwLock::new(None);

thread_local! {
    static THREAD_OVERRIDE: RefCell<Option<MainDispatcher>> = const { RefCell::new(None) };
}

impl Dispatchers {
    /// The Main dispatcher.
    ///
    /// In order: this thread's override ([`set_thread_main`](Self::set_thread_main)),
    /// the process override ([`set_main`](Self::set_main)), then the
    /// dispatcher selected from the registered factories on first use (see
    /// [`register_main_factory`](crate::register_main_factory)). With no
    /// usable factory it is the [`MissingMainDispatcher`]; this call never
    /// panics, using it does.
    pub fn main() -> MainDispatcher {
        if let Some(main) = THREAD_OVERRIDE
            .try_with(|o| o.borrow().clone())
            .ok()
            .flatten()
        {
            return main;
        }
        if HAS_OVERRIDE.load(Ordering::Acquire) {
            if let Some(main) = OVERRIDE.read().unwrap_or_else(|e| e.into_inner()).clone() {
                return main;
            }
        }
        if let Some(main) = SELECTED.get() {
            return main.clone();
        }
        if registry::is_selecting() {
            return registry::reentrant_main();
        }
        let main = SELECTED.get_or_init(registry::select_global).clone();
        registry::drop_retired_factories();
        main
    }

    /// Overrides Main for the whole process until [`reset_main`](Self::reset_main);
    /// it wins over every factory. For apps that build their host by hand and
    /// for tests (see also [`set_thread_main`](Self::set_thread_main), which
    /// parallel tests don't share).
    pub fn set_main(main: impl Into<MainDispatcher>) {
        *OVERRIDE.write().unwrap_or_else(|e| e.into_inner()) = Some(main.into());
        HAS_OVERRIDE.store(true, Ordering::Release);
    }

    /// Removes the [`set_main`](Self::set_main) override: Main is selected
    /// from the factories again.
    pub fn reset_main() {
        *OVERRIDE.write().unwrap_or_else(|e| e.into_inner()) = None;
        HAS_OVERRIDE.store(false, Ordering::Release);
    }

    /// Overrides Main for the calling thread only, until the returned guard
    /// is dropped (the previous override then comes back). It wins over
    /// [`set_main`](Self::set_main). Tests running in parallel threads use it
    /// so that they don't see each other's Main; code on other threads (pool
    /// threads) still sees the process-wide Main.
    pub fn set_thread_main(main: impl Into<MainDispatcher>) -> ThreadMainGuard {
        let previous = THREAD_OVERRIDE.with(|o| o.replace(Some(main.into())));
        ThreadMainGuard {
            previous,
            _not_send: std::marker::PhantomData,
        }
    }

    /// The `Unconfined` dispatcher: a task runs in place on whatever thread
    /// starts or resumes it (through the per-thread trampoline).
    pub fn unconfined() -> Dispatcher {
        crate::unconfined::unconfined()
    }
}

/// Restores the previous thread override of Main when dropped (see
/// [`Dispatchers::set_thread_main`]).
#[must_use = "the override ends when the guard is dropped"]
pub struct ThreadMainGuard {
    previous: Option<MainDispatcher>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for ThreadMainGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = THREAD_OVERRIDE.try_with(|o| *o.borrow_mut() = previous);
    }
}

impl fmt::Debug for ThreadMainGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadMainGuard").finish_non_exhaustive()
    }
}

/// Spawns `future` on Main, from any thread.
///
/// ```no_run
/// # use dispatchers::spawn_on_main;
/// spawn_on_main(async { println!("on the loop's thread") }).detach();
/// ```
///
/// # Panics
///
/// When no Main dispatcher is installed, with a message that says how to
/// install one.
pub fn spawn_on_main<F>(future: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Dispatchers::main().spawn(future)
}

/// Spawns a `!Send` future (GUI state, `Rc`s) on Main, from the main thread.
///
/// # Panics
///
/// When called off the main thread (a `!Send` future cannot be moved there),
/// or when no Main dispatcher is installed; both with a message that says
/// what to do.
pub fn spawn_on_main_local<F>(future: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let main = Dispatchers::main();
    if main.is_missing() {
        main.is_dispatch_needed();
    }
    main.spawn_local(future)
}
