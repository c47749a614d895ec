//! Error values for misuse that a caller can handle.

use std::error::Error;
use std::fmt;

/// [`spawn_local`](crate::Dispatcher::try_spawn_local) was called on a thread
/// that the dispatcher does not run its tasks on; the future is handed back.
pub struct SpawnLocalError<F> {
    future: F,
    dispatcher: String,
}

impl<F> SpawnLocalError<F> {
    pub(crate) fn new(future: F, dispatcher: &str) -> Self {
        SpawnLocalError {
            future,
            dispatcher: dispatcher.to_owned(),
        }
    }

    /// The future that was not spawned.
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F> fmt::Display for SpawnLocalError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spawn_local: a !Send future can only be spawned on the thread that dispatcher '{}' \
             runs its tasks on (the host's loop thread), and this is {:?}; spawn a Send future \
             with spawn/spawn_on_main instead, or spawn from a task already on that thread",
            self.dispatcher,
            std::thread::current().name().unwrap_or("an unnamed thread"),
        )
    }
}

impl<F> fmt::Debug for SpawnLocalError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnLocalError")
            .field("dispatcher", &self.dispatcher)
            .finish_non_exhaustive()
    }
}

impl<F> Error for SpawnLocalError<F> {}

/// [`Dispatcher::limited_parallelism`](crate::Dispatcher::limited_parallelism)
/// was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParallelismError {
    /// `n` was zero: a view that may run nothing would hang every task.
    Zero,
    /// The dispatcher cannot be limited (e.g. `Unconfined`, which runs tasks
    /// in place on whatever thread resumes them).
    Unsupported {
        /// The dispatcher's name.
        dispatcher: String,
    },
}

impl fmt::Display for ParallelismError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParallelismError::Zero => {
                f.write_str("limited_parallelism(0): the parallelism must be at least 1")
            }
            ParallelismError::Unsupported { dispatcher } => write!(
                f,
                "limited_parallelism is not supported by dispatcher '{dispatcher}'"
            ),
        }
    }
}

impl Error for ParallelismError {}

/// [`register_main_factory`](crate::register_main_factory) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// `Dispatchers::main()` was already selected; a factory registered now
    /// would never be used. Register adapters at start-up, before the first
    /// use of Main.
    AlreadySelected {
        /// The factory that was refused.
        factory: String,
        /// What backs Main.
        selected: String,
    },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::AlreadySelected { factory, selected } => write!(
                f,
                "cannot register main dispatcher factory '{factory}': Dispatchers::main() was \
                 already selected ('{selected}'); register every adapter at start-up, before \
                 the first use of Dispatchers::main()"
            ),
        }
    }
}

impl Error for RegisterError {}
