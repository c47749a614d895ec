//! The per-task metadata stored inside every task allocation: its name, the
//! thread that owns it when it is `!Send`, and the attach/detach/panic state
//! that routes a panic either to the `Task` or to the global handler.
//!
//! Every task pays for this struct, so it is one atomic word
//! ([`HeaderWord`], 8 bytes): the flags below, and either the home thread's
//! number inline or, for a named task, the address of a boxed name (and
//! home).
//! Names are rare; `!Send` tasks are not, so their home check never follows
//! a pointer unless they are named. The task's dispatcher is not here but in
//! its schedule function, which async-task keeps alive while it runs (see
//! `spawn.rs`).

use std::any::Any;
use std::cell::Cell;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::header_word::HeaderWord;
use crate::panic::{on_task_panic, report_detached_panic};

/// A panic payload, as produced by `catch_unwind`.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// `Task::detach` ran. If [`PANICKED`] was not set before, a later panic goes
/// to the global handler.
const DETACHED: u8 = 0b001;
/// The future panicked. If [`DETACHED`] was not set before, the payload is
/// (being) stored as the output, for the `Task`, and a later `Task::detach`
/// must fetch it and report it.
///
/// Whichever of the two bits is set first decides, each with one atomic
/// read-modify-write on the task's word (`fetch_or`), which sees whether the
/// other was set before it.
const PANICKED: u8 = 0b010;
/// Set before a rejected task's runnable is run one last time: the future is
/// then dropped without being polled and the task completes as cancelled, so
/// its `Task` always resolves.
const CANCELLED: u8 = 0b100;

/// Why a task's future produced no value.
pub(crate) enum Failure {
    /// It panicked: the payload when a `Task` will receive it, `None` when it
    /// was already reported to the global handler.
    Panicked(Option<Payload>),
    /// It was cancelled before completing (its dispatcher rejected it).
    Cancelled,
}

/// A thread, as the home of `!Send` tasks: a number given to each thread
/// the first time it asks, never reused (unlike a thread-local's address),
/// and small enough to share a word with the header's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Home(NonZeroU64);

impl Home {
    /// The calling thread.
    #[inline]
    pub(crate) fn current() -> Home {
        /// The last number given out.
        static LAST: AtomicU64 = AtomicU64::new(0);
        thread_local! {
            /// This thread's number, 0 until it asks. No destructor, so it
            /// stays readable while the thread's other locals are dropped.
            static NUMBER: Cell<u64> = const { Cell::new(0) };
        }
        let number = NUMBER.with(|number| {
            if number.get() == 0 {
                number.set(LAST.fetch_add(1, Ordering::Relaxed) + 1);
            }
            number.get()
        });
        Home(NonZeroU64::new(number).expect("thread numbers start at 1"))
    }

    /// The thread's number (never 0).
    #[inline]
    pub(crate) fn get(self) -> NonZeroU64 {
        self.0
    }

    #[inline]
    pub(crate) fn from_number(number: NonZeroU64) -> Home {
        Home(number)
    }
}

/// Metadata of one task (see the module docs for its layout).
#[derive(Debug)]
pub(crate) struct TaskHeader {
    /// The flags ([`DETACHED`], [`PANICKED`], [`CANCELLED`]), the name, and
    /// the home thread: `Some` for `!Send` tasks, the only thread allowed to
    /// poll or drop them.
    word: HeaderWord,
}

impl TaskHeader {
    pub(crate) fn new(name: Option<Arc<str>>, home: Option<Home>) -> Self {
        TaskHeader {
            word: HeaderWord::new(name, home),
        }
    }

    #[inline]
    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.word.name()
    }

    #[inline]
    pub(crate) fn home(&self) -> Option<Home> {
        self.word.home()
    }

    /// Marks the task cancelled (see [`CANCELLED`]).
    pub(crate) fn cancel(&self) {
        self.word.set_flags(CANCELLED, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.word.flags(Ordering::Acquire) & CANCELLED != 0
    }

    /// Called by the task's future after catching a panic.
    pub(crate) fn on_panic(&self, payload: Payload) -> Failure {
        let name = self.name().map(|name| &**name);
        if self.word.set_flags(PANICKED, Ordering::AcqRel) & DETACHED == 0 {
            on_task_panic(name, &*payload);
            Failure::Panicked(Some(payload))
        } else {
            report_detached_panic(name, &*payload);
            Failure::Panicked(None)
        }
    }

    /// Called by `Task::detach`; `false` means the task already panicked and
    /// its output holds the payload, which the caller must report.
    #[inline]
    pub(crate) fn detach(&self) -> bool {
        self.word.set_flags(DETACHED, Ordering::AcqRel) & PANICKED == 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_detach_and_panic_decides_and_cancel_is_apart() {
        // Detached first: the panic goes to the handler (printed to the
        // captured stderr here), not to the output.
        let header = TaskHeader::new(None, None);
        assert!(header.detach());
        assert!(matches!(
            header.on_panic(Box::new("late panic of a detached task")),
            Failure::Panicked(None)
        ));
        // Panicked first: the output keeps the payload and `detach` is told
        // to report it.
        let header = TaskHeader::new(Some(Arc::from("named")), Some(Home::current()));
        assert!(matches!(
            header.on_panic(Box::new("early")),
            Failure::Panicked(Some(_))
        ));
        assert!(!header.detach());
        assert!(!header.is_cancelled());
        header.cancel();
        assert!(header.is_cancelled());
        assert_eq!(header.name().map(|n| &**n), Some("named"));
        assert_eq!(header.home(), Some(Home::current()));
    }
}
