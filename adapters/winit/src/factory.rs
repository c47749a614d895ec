//! [`WinitFactory`], the source of `Dispatchers::main()` for a winit loop,
//! and the process-wide record of that loop (winit allows one per process).

use std::error::Error;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use dispatchers::{MainDispatcher, MainDispatcherFactory, RegisterError, register_main_factory};

use crate::error::WinitError;

/// The [`load_priority`](MainDispatcherFactory::load_priority) a winit host
/// registers with unless told otherwise: 100, above the mio and calloop
/// adapters (50), because a GUI owns the process's real main thread.
pub const DEFAULT_LOAD_PRIORITY: i32 = 100;

/// The name the factory shows in diagnostics.
const FACTORY_NAME: &str = "dispatchers-winit";

/// Proof that a host is alive: the record holds a `Weak` of it.
pub(crate) type LiveToken = Arc<()>;

/// The process's winit loop, as far as this crate knows.
enum Record {
    /// No loop was built through this crate yet.
    None,
    /// A host exists (or existed: check `alive`).
    Host {
        main: MainDispatcher,
        alive: Weak<()>,
    },
    /// Building the loop failed.
    Failed {
        reason: String,
        hint: Option<&'static str>,
    },
}

static RECORD: Mutex<Record> = Mutex::new(Record::None);

fn record() -> MutexGuard<'static, Record> {
    RECORD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records a new host made by `make`; refused, before `make` runs, while
/// another host is alive (making an engine rebinds the thread's timers).
pub(crate) fn install<E>(
    make: impl FnOnce() -> (E, MainDispatcher),
) -> Result<(E, LiveToken), WinitError> {
    let mut record = record();
    if let Record::Host { alive, .. } = &*record {
        if alive.strong_count() > 0 {
            return Err(WinitError::HostExists);
        }
    }
    let (engine, main) = make();
    let token = Arc::new(());
    *record = Record::Host {
        main,
        alive: Arc::downgrade(&token),
    };
    Ok((engine, token))
}

/// Records why the loop could not be built, for the factory's error. The
/// first failure is kept: later attempts fail only because winit allows one
/// attempt per process.
pub(crate) fn record_failure(error: &WinitError) {
    let mut record = record();
    match &*record {
        Record::Host { alive, .. } if alive.strong_count() > 0 => return,
        Record::Failed { .. } => return,
        Record::Host { .. } | Record::None => {}
    }
    *record = Record::Failed {
        reason: error.reason(),
        hint: error.hint(),
    };
}

/// The source of `Dispatchers::main()` for the process's winit loop.
///
/// It backs Main with the [`WinitHost`](crate::WinitHost) alive at selection
/// time, and fails (so that a lower-priority host is used, or the
/// missing-Main message explains what happened) when there is none: the
/// loop could not be built (no display; [`hint_on_error`] then says to set
/// `DISPLAY` or run under Xvfb), was not built yet, or has ended.
///
/// [`WinitHost::register_as_main`](crate::WinitHost::register_as_main)
/// registers one. Register it yourself, before building the loop, when the
/// program can fall back to another host without a display:
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use dispatchers_winit::{WinitFactory, WinitHost};
/// use winit::event_loop::EventLoop;
///
/// WinitFactory::new().register()?; // load_priority 100
/// // ... register a headless host at a lower priority here ...
/// match WinitHost::<()>::build(&mut EventLoop::with_user_event()) {
///     Ok((event_loop, host)) => { /* run the GUI */ }
///     Err(error) => eprintln!("no GUI: {error}"), // Main falls back
/// }
/// # Ok(())
/// # }
/// ```
///
/// [`hint_on_error`]: MainDispatcherFactory::hint_on_error
#[derive(Debug, Clone)]
pub struct WinitFactory {
    load_priority: i32,
}

impl WinitFactory {
    /// A factory with [`DEFAULT_LOAD_PRIORITY`] (100).
    pub fn new() -> Self {
        WinitFactory {
            load_priority: DEFAULT_LOAD_PRIORITY,
        }
    }

    /// Sets the `load_priority` (higher wins; equal priorities are tried in
    /// registration order).
    pub fn with_load_priority(mut self, load_priority: i32) -> Self {
        self.load_priority = load_priority;
        self
    }

    /// Registers the factory with
    /// [`register_main_factory`].
    ///
    /// # Errors
    ///
    /// [`RegisterError::AlreadySelected`] when Main was already selected.
    pub fn register(self) -> Result<(), RegisterError> {
        register_main_factory(Arc::new(self))
    }
}

impl Default for WinitFactory {
    fn default() -> Self {
        WinitFactory::new()
    }
}

impl MainDispatcherFactory for WinitFactory {
    fn load_priority(&self) -> i32 {
        self.load_priority
    }

    fn create_dispatcher(
        &self,
        _all: &[Arc<dyn MainDispatcherFactory>],
    ) -> Result<MainDispatcher, Box<dyn Error + Send + Sync>> {
        match &*record() {
            Record::Host { main, alive } if alive.strong_count() > 0 => Ok(main.clone()),
            Record::Host { .. } => Err(
                "the WinitHost was dropped (its event loop ended) before Main was first used"
                    .into(),
            ),
            Record::Failed { reason, .. } => Err(reason.clone().into()),
            Record::None => Err("no winit event loop with a WinitHost exists yet".into()),
        }
    }

    fn hint_on_error(&self) -> Option<String> {
        match &*record() {
            Record::Failed { hint, .. } => hint.map(str::to_owned),
            Record::None | Record::Host { .. } => Some(String::from(
                "build the event loop and its WinitHost at start-up \
                 (`WinitHost::build(&mut EventLoop::with_user_event())`), before the first use \
                 of Dispatchers::main(); without a display, set DISPLAY or run under Xvfb \
                 (`xvfb-run -a <command>`)",
            )),
        }
    }

    fn name(&self) -> String {
        FACTORY_NAME.to_owned()
    }
}
