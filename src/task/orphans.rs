//! `!Send` runnables that end up on a foreign thread, sent back to their own.
//!
//! A `!Send` task's future may only be polled or dropped on the thread that
//! spawned it (its *home*). Yet its runnable can reach another thread:
//!
//! - a task woken from another thread at the very moment its loop shuts
//!   down: the waking thread pushed it after the loop's last drain, finds
//!   the engine closed and must reject what it pushed (see `engine.rs`);
//! - a [`Dispatch`](crate::Dispatch) that drops its runnables, or runs them,
//!   on another thread than the task's.
//!
//! That thread can do nothing with the task, so it sends the runnable home:
//! into the home thread's *mailbox*, and unparks that thread. The home
//! thread cancels what its mailbox holds (the future dropped there, unpolled;
//! the `Task` resolved as cancelled), all of it as one chain of
//! cancellations (see `runnable.rs`), so that a destructor that blocks on
//! another of them is served by its `block_on`:
//!
//! - in [`block_on`](crate::block_on) and [`LoopHost`](crate::LoopHost)'s
//!   waits, which the unpark wakes (as the thread's queued cancellations,
//!   `run_queued_cancellations`), and in `run_test`'s;
//! - at the start of each [`run_pending`](crate::HostEngine::run_pending) of
//!   an engine on that thread, and at the end of its shutdown: a delivery
//!   wakes the thread's host loops too (an unpark does not wake a thread
//!   asleep in `epoll_wait`);
//! - at the latest when the thread exits (its mailbox is a thread-local).
//!
//! A thread gets a mailbox when it first spawns a `!Send` task or starts a
//! host engine. Once the thread's exit has closed its mailbox there is
//! nowhere to send a runnable: it is leaked, with a warning, since running
//! the future's destructor on a foreign thread would be unsound. Other waits
//! (a fixed pool's idle worker, another executor's `block_on`) do not look
//! at the mailbox: those tasks are cancelled when the thread exits.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::{self, Thread};

use super::header::Home;
use super::runnable::{RawRunnable, finish_all_cancelled};

/// The mailboxes of the threads that are alive, by home number.
static HOMES: Mutex<BTreeMap<NonZeroU64, Arc<Mailbox>>> = Mutex::new(BTreeMap::new());

thread_local! {
    /// This thread's mailbox, from its first `!Send` spawn to its exit.
    static MAILBOX: OnceCell<HomeMembership> = const { OnceCell::new() };
}

/// Where the runnables of one thread's `!Send` tasks are sent back to.
struct Mailbox {
    thread: Thread,
    /// Set with each delivery, taken by the home thread: its check, on the
    /// path of every `run_pending`, reads a flag of its own, no lock.
    has_orphans: AtomicBool,
    orphans: Mutex<Orphans>,
}

#[derive(Default)]
struct Orphans {
    runnables: Vec<RawRunnable>,
    /// The thread is exiting: nothing is delivered any more.
    closed: bool,
    /// The host loops of the thread ([`wake_on_delivery`]), woken with each
    /// delivery; the dropped ones are pruned as they are found.
    hosts: Vec<Weak<dyn HostWakeUp>>,
}

/// A host loop on the thread of a mailbox: a delivery wakes it, so that its
/// `run_pending` cancels what was sent back (an unpark would not wake a
/// thread asleep in `epoll_wait`).
pub(crate) trait HostWakeUp: Send + Sync {
    /// Makes the loop call `run_pending` soon; callable from any thread.
    fn wake_up(&self);
}

impl Mailbox {
    fn orphans(&self) -> MutexGuard<'_, Orphans> {
        self.orphans.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The thread-local side of a mailbox: opens it, and at the thread's exit
/// closes it and cancels what it holds.
struct HomeMembership {
    home: Home,
    mailbox: Arc<Mailbox>,
}

impl Drop for HomeMembership {
    fn drop(&mut self) {
        homes().remove(&self.home.get());
        let orphans = {
            let mut orphans = self.mailbox.orphans();
            orphans.closed = true;
            std::mem::take(&mut orphans.runnables)
        };
        cancel_here(orphans);
    }
}

fn homes() -> MutexGuard<'static, BTreeMap<NonZeroU64, Arc<Mailbox>>> {
    HOMES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Gives the calling thread a mailbox, if it has none yet: called when it
/// spawns a `!Send` task.
pub(super) fn open_mailbox() {
    let _ = with_mailbox(|_| ());
}

/// Runs `f` on the calling thread's mailbox, opened if need be; `None` while
/// the thread's locals are destroyed.
fn with_mailbox<R>(f: impl FnOnce(&Mailbox) -> R) -> Option<R> {
    MAILBOX
        .try_with(|cell| {
            let membership = cell.get_or_init(|| {
                let home = Home::current();
                let mailbox = Arc::new(Mailbox {
                    thread: thread::current(),
                    has_orphans: AtomicBool::new(false),
                    orphans: Mutex::new(Orphans::default()),
                });
                homes().insert(home.get(), mailbox.clone());
                HomeMembership { home, mailbox }
            });
            f(&membership.mailbox)
        })
        .ok()
}

/// Has each delivery to the calling thread's mailbox wake `host` too, for as
/// long as it lives: called by a host engine on its loop thread.
pub(crate) fn wake_on_delivery(host: Weak<dyn HostWakeUp>) {
    let _ = with_mailbox(|mailbox| {
        let mut orphans = mailbox.orphans();
        orphans.hosts.retain(|host| host.strong_count() > 0);
        orphans.hosts.push(host);
    });
}

/// Sends the runnable of a `!Send` task, found on another thread than
/// `home`, back to `home`'s mailbox and wakes that thread; leaks it when
/// that thread has exited.
pub(super) fn send_home(raw: RawRunnable, home: Home) {
    let mailbox = homes().get(&home.get()).cloned();
    let Some(mailbox) = mailbox else {
        return leak(raw);
    };
    let hosts: Vec<_> = {
        let mut orphans = mailbox.orphans();
        if orphans.closed {
            drop(orphans);
            return leak(raw);
        }
        orphans.runnables.push(raw);
        mailbox.has_orphans.store(true, Ordering::Release);
        orphans.hosts.retain(|host| host.strong_count() > 0);
        orphans.hosts.iter().filter_map(Weak::upgrade).collect()
    };
    // Outside the lock: a wake-up is the host's code.
    mailbox.thread.unpark();
    for host in hosts {
        host.wake_up();
    }
}

/// Whether runnables were sent back to the calling thread and wait for its
/// [`cancel_orphans`]: a host that runs its engine at most once per loop
/// iteration may have swallowed the wake-up of such a delivery (received
/// after the run), and must come round again. One flag read, no lock.
pub(crate) fn has_orphans() -> bool {
    with_own_mailbox(|mailbox| mailbox.has_orphans.load(Ordering::Relaxed)).unwrap_or(false)
}

/// Cancels, here, the runnables sent back to the calling thread; returns
/// whether there were any.
pub(crate) fn cancel_orphans() -> bool {
    let orphans = with_own_mailbox(|mailbox| {
        // A plain load first: the common case, nothing sent back, costs no
        // read-modify-write.
        if !mailbox.has_orphans.load(Ordering::Relaxed)
            || !mailbox.has_orphans.swap(false, Ordering::Acquire)
        {
            return None;
        }
        Some(std::mem::take(&mut mailbox.orphans().runnables))
    });
    match orphans.flatten() {
        Some(orphans) if !orphans.is_empty() => {
            cancel_here(orphans);
            true
        }
        _ => false,
    }
}

/// Runs `f` on the calling thread's mailbox, if it has one (not opening it);
/// `None` when it has none, or while the thread's locals are destroyed.
fn with_own_mailbox<R>(f: impl FnOnce(&Mailbox) -> R) -> Option<R> {
    MAILBOX
        .try_with(|cell| cell.get().map(|membership| f(&membership.mailbox)))
        .ok()
        .flatten()
}

/// Cancels the runnables on this, their home, thread, as one chain of
/// cancellations (see `finish_all_cancelled`): a destructor of one that
/// blocks on another is served by its `block_on`. A panic escaping them
/// (not a future's destructor's, which its `Task` receives) is reported:
/// the callers include a thread-local's destructor, which must not unwind.
fn cancel_here(orphans: Vec<RawRunnable>) {
    // The common case, on the path of every `run_pending`: nothing to do.
    if orphans.is_empty() {
        return;
    }
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| finish_all_cancelled(orphans))) {
        crate::panic::report_detached_panic(None, &*payload);
    }
}

fn leak(raw: RawRunnable) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        eprintln!(
            "dispatchers: a !Send task was cancelled off its own thread after that thread \
             exited; it is leaked rather than dropped on a foreign thread"
        )
    });
    std::mem::forget(raw);
}
