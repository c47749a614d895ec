//! The registry of [`MainDispatcherFactory`]s, the selection of Main, and
//! [`MissingMainDispatcher`].
//!
//! # Selection
//!
//! On the first use of [`Dispatchers::main()`](crate::Dispatchers::main), the
//! registered factories are tried in descending
//! [`load_priority`](MainDispatcherFactory::load_priority); among equal
//! priorities, the one registered **first** is tried first. The first factory
//! whose [`create_dispatcher`](MainDispatcherFactory::create_dispatcher)
//! succeeds backs Main for the rest of the process. A factory that fails (or
//! panics) is skipped, and its error and hint are kept for the message of the
//! [`MissingMainDispatcher`] used when none succeeds. Registering after the
//! selection is an error ([`RegisterError::AlreadySelected`]).
//!
//! The factories' methods and destructors, and the selected dispatcher's
//! [`name`](Dispatch::name), are user code: they never run under the
//! registry's lock, so they may register a factory (refused once the
//! selection has begun) or read `Dispatchers::main()` (the missing dispatcher
//! while the selection runs, the selected one after).

use std::error::Error;
use std::fmt::{self, Write as _};
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use crate::dispatch::{Dispatch, Dispatcher};
use crate::error::{ParallelismError, RegisterError};
use crate::main_dispatcher::MainDispatcher;
use crate::task::Runnable;

/// A source of the Main dispatcher: one per host adapter, registered at
/// start-up with [`register_main_factory`].
pub trait MainDispatcherFactory: Send + Sync + 'static {
    /// Higher wins; equal priorities are tried in registration order.
    fn load_priority(&self) -> i32;

    /// Creates the Main dispatcher. `all` is every registered factory, in the
    /// order they are tried (so a factory can defer to another).
    ///
    /// # Errors
    ///
    /// Why this host cannot back Main (no display, no loop running...): the
    /// factory is skipped and the error shows in the missing-Main message.
    fn create_dispatcher(
        &self,
        all: &[Arc<dyn MainDispatcherFactory>],
    ) -> Result<MainDispatcher, Box<dyn Error + Send + Sync>>;

    /// What the user can do when this factory fails; shown in the
    /// missing-Main message.
    fn hint_on_error(&self) -> Option<String> {
        None
    }

    /// A name for diagnostics. Default: the type's name.
    fn name(&self) -> String {
        std::any::type_name::<Self>().to_owned()
    }
}

/// A factory that hands out a dispatcher that already exists (a host engine's)
/// with a fixed priority: what [`HostEngine::register_as_main`](crate::HostEngine::register_as_main)
/// and the adapters register. Once that dispatcher has shut down (its host
/// was dropped before Main was first used), the factory fails, so that the
/// next one is tried.
pub struct HostFactory {
    name: String,
    priority: i32,
    dispatcher: MainDispatcher,
}

impl HostFactory {
    /// A factory named `name` with `priority` that selects `dispatcher`.
    pub fn new(name: impl Into<String>, priority: i32, dispatcher: MainDispatcher) -> Self {
        HostFactory {
            name: name.into(),
            priority,
            dispatcher,
        }
    }
}

impl MainDispatcherFactory for HostFactory {
    fn load_priority(&self) -> i32 {
        self.priority
    }

    /// The dispatcher, unless it has shut down (a host dropped before Main
    /// was first used): then an error, so that the next factory is tried.
    fn create_dispatcher(
        &self,
        _all: &[Arc<dyn MainDispatcherFactory>],
    ) -> Result<MainDispatcher, Box<dyn Error + Send + Sync>> {
        if self.dispatcher.is_closed() {
            return Err(format!(
                "the host '{}' shut down before Main was first used",
                self.name
            )
            .into());
        }
        Ok(self.dispatcher.clone())
    }

    fn hint_on_error(&self) -> Option<String> {
        Some(format!(
            "keep the host '{}' alive until the program stops using Main",
            self.name
        ))
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

impl fmt::Debug for HostFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostFactory")
            .field("name", &self.name)
            .field("priority", &self.priority)
            .finish()
    }
}

#[derive(Default)]
struct Registry {
    factories: Vec<Arc<dyn MainDispatcherFactory>>,
    /// `Some(name of what backs Main)` once selected.
    selected: Option<String>,
    /// The factories, after the selection, until they are dropped.
    retired: Vec<Arc<dyn MainDispatcherFactory>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    factories: Vec::new(),
    selected: None,
    retired: Vec::new(),
});

/// Registers a source of the Main dispatcher. Call it at start-up, before the
/// first use of [`Dispatchers::main()`](crate::Dispatchers::main).
///
/// # Errors
///
/// [`RegisterError::AlreadySelected`] when Main was already selected: the
/// factory would never be used.
pub fn register_main_factory(factory: Arc<dyn MainDispatcherFactory>) -> Result<(), RegisterError> {
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let Some(selected) = registry.selected.clone() else {
        registry.factories.push(factory);
        return Ok(());
    };
    // The refused factory's `name` and destructor are user code, which may
    // use the registry: both run once the lock is released.
    drop(registry);
    Err(RegisterError::AlreadySelected {
        factory: factory.name(),
        selected,
    })
}

thread_local! {
    /// Set while this thread runs the selection: a factory (or the selected
    /// dispatcher's `name`) that reads `Dispatchers::main()` gets an answer
    /// instead of a deadlock.
    static SELECTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread is inside the selection (see `SELECTING`).
pub(crate) fn is_selecting() -> bool {
    SELECTING.with(|s| s.get())
}

/// The answer to `Dispatchers::main()` read from inside a factory.
pub(crate) fn reentrant_main() -> MainDispatcher {
    MainDispatcher::missing(MissingMainDispatcher {
        message: String::from(
            "Dispatchers::main() was used while Main is being selected, inside a \
             MainDispatcherFactory method or the selected dispatcher's name(); \
             a factory must not depend on Main",
        ),
    })
}

/// Selects Main from the registered factories and closes registration.
pub(crate) fn select_global() -> MainDispatcher {
    let factories = {
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        registry.selected = Some(String::from("<selecting>"));
        // Registration is closed from here on: the factories are not needed
        // after the selection, and dropping them (once Main is stored) drops
        // what they hold (the dispatcher of a host that was not selected,
        // its waker's fd...).
        std::mem::take(&mut registry.factories)
    };
    let (main, name) = {
        let _selecting = Selecting::enter();
        let main = select(factories.clone());
        // `Dispatch::name` is user code: read without the lock, and while
        // `Dispatchers::main()` still answers that Main is being selected
        // (after, it would wait for this very selection).
        let name = guarded(
            || main.name().to_owned(),
            |_| "<dispatcher whose name() panicked>".into(),
        );
        (main, name)
    };
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    registry.selected = Some(name);
    // Dropped once Main is stored (`drop_retired_factories`): a factory's
    // destructor is user code, which may read Main.
    registry.retired = factories;
    main
}

/// Drops the factories the selection let go of, once Main is stored (see
/// [`select_global`]); a destructor's panic is caught, since reading Main
/// never panics.
pub(crate) fn drop_retired_factories() {
    let retired = std::mem::take(&mut REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).retired);
    if catch_unwind(AssertUnwindSafe(|| drop(retired))).is_err() {
        eprintln!("dispatchers: a MainDispatcherFactory panicked when dropped after the selection");
    }
}

/// Sets [`SELECTING`] until dropped.
struct Selecting;

impl Selecting {
    fn enter() -> Self {
        SELECTING.with(|s| s.set(true));
        Selecting
    }
}

impl Drop for Selecting {
    fn drop(&mut self) {
        SELECTING.with(|s| s.set(false));
    }
}

/// Calls into a factory, turning a panic into `fallback`'s value.
fn guarded<T>(call: impl FnOnce() -> T, fallback: impl FnOnce(String) -> T) -> T {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|payload| {
        fallback(
            crate::panic::payload_message(&*payload)
                .unwrap_or("<non-string payload>")
                .to_owned(),
        )
    })
}

/// One factory that was tried and failed.
struct Failure {
    name: String,
    /// `None` when `load_priority` itself panicked.
    priority: Option<i32>,
    error: String,
    hint: Option<String>,
}

/// Tries `factories` in selection order (see the module docs).
///
/// Every call into a factory is guarded: one that panics (in
/// `load_priority`, `create_dispatcher`, `name` or `hint_on_error`) is
/// skipped with its panic recorded, so reading Main never panics.
pub(crate) fn select(factories: Vec<Arc<dyn MainDispatcherFactory>>) -> MainDispatcher {
    let mut failures = Vec::new();
    let mut ranked = Vec::with_capacity(factories.len());
    for factory in factories {
        let name = guarded(
            || factory.name(),
            |_| "<factory whose name() panicked>".into(),
        );
        match guarded(|| Ok(factory.load_priority()), Err) {
            Ok(priority) => ranked.push((priority, name, factory)),
            Err(panic) => failures.push(Failure {
                name,
                priority: None,
                error: format!("load_priority panicked: {panic}"),
                hint: None,
            }),
        }
    }
    // A stable sort keeps registration order among equal priorities.
    ranked.sort_by_key(|(priority, ..)| std::cmp::Reverse(*priority));
    let in_order: Vec<_> = ranked.iter().map(|(.., f)| f.clone()).collect();
    for (priority, name, factory) in ranked {
        let error = guarded(
            || match factory.create_dispatcher(&in_order) {
                Ok(main) => Ok(main),
                Err(error) => Err(error.to_string()),
            },
            |panic| Err(format!("create_dispatcher panicked: {panic}")),
        );
        let error = match error {
            Ok(main) => return main,
            Err(error) => error,
        };
        failures.push(Failure {
            name,
            priority: Some(priority),
            error,
            hint: guarded(|| factory.hint_on_error(), |_| None),
        });
    }
    MainDispatcher::missing(MissingMainDispatcher::new(&failures))
}

/// What backs Main when no factory could: it panics on use (dispatch,
/// `is_dispatch_needed`, `limited_parallelism`) with a message that names
/// every factory tried, its error and hint, and how to fix it. Reading it
/// (`Dispatchers::main()`, `.immediate()`, `.is_missing()`, `.name()`) never
/// panics.
pub struct MissingMainDispatcher {
    message: String,
}

impl MissingMainDispatcher {
    fn new(failures: &[Failure]) -> Self {
        let mut message = String::from("Dispatchers::main() is missing: ");
        if failures.is_empty() {
            message.push_str("no main dispatcher factory was registered.\n");
        } else {
            let _ = writeln!(
                message,
                "no registered factory could create it. Tried, in order:"
            );
            for f in failures {
                let _ = match f.priority {
                    Some(p) => write!(message, "  - {} (load_priority {p}): {}", f.name, f.error),
                    None => write!(message, "  - {}: {}", f.name, f.error),
                };
                if let Some(hint) = &f.hint {
                    let _ = write!(message, "\n      hint: {hint}");
                }
                message.push('\n');
            }
        }
        message.push_str(
            "Fix: register a host adapter at start-up, before the first use of \
             Dispatchers::main(), and keep the host alive as long as the loop runs, e.g.\n\
             \x20 - a hand-written loop: `let host = dispatchers::LoopHost::new(\"game\"); \
             host.register_as_main(0)?;` then call `host.run_pending(..)` from the loop;\n\
             \x20 - mio: `let host = dispatchers_mio::MioHost::new(poll.registry(), WAKE_TOKEN)?; \
             host.register_as_main()?;`\n\
             \x20 - calloop: `let host = dispatchers_calloop::CalloopHost::insert(&handle)?; \
             host.register_as_main()?;`\n\
             \x20 - winit: `let (event_loop, host) = \
             dispatchers_winit::WinitHost::build(&mut EventLoop::with_user_event())?; \
             host.register_as_main()?;`\n\
             \x20 - tests: `Dispatchers::set_main(dispatcher)` or `Dispatchers::set_thread_main(..)`.",
        );
        MissingMainDispatcher { message }
    }

    /// The message it panics with.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn fail(&self) -> ! {
        panic!("{}", self.message)
    }
}

impl fmt::Debug for MissingMainDispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MissingMainDispatcher")
            .finish_non_exhaustive()
    }
}

impl Dispatch for MissingMainDispatcher {
    fn dispatch(&self, runnable: Runnable) {
        drop(runnable);
        self.fail()
    }

    fn is_dispatch_needed(&self) -> bool {
        self.fail()
    }

    fn name(&self) -> &str {
        "Main (missing)"
    }

    fn limited_parallelism(
        &self,
        _this: &Dispatcher,
        _n: NonZeroUsize,
    ) -> Result<Dispatcher, ParallelismError> {
        self.fail()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
