//! [`Runnable`]: a scheduled task, handed to [`Dispatch::dispatch`](crate::Dispatch::dispatch).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::LazyLock;
use std::sync::mpsc;
use std::thread::Thread;

use super::header::{Home, TaskHeader};
use super::orphans;

pub(crate) type RawRunnable = async_task::Runnable<TaskHeader>;

/// A task that is ready to make progress: run it with [`run`](Runnable::run).
///
/// A [`Dispatch`](crate::Dispatch) implementation receives runnables and must
/// eventually run each one on one of its threads. One that cannot (its host
/// has shut down) drops it, or calls [`cancel`](Runnable::cancel), which is
/// the same: the task is cancelled and its `Task` resolves to a cancelled
/// [`JoinError`](crate::JoinError).
///
/// # Dropping a runnable
///
/// Dropping cancels the task, and never runs the future's destructor inside
/// the call that dropped it when that call may be a waker (it could hold a
/// lock the destructor needs):
///
/// - a `Send` task's future is dropped on the `dispatchers-reaper` thread;
/// - a `!Send` task's future is dropped in place when the runnable is dropped
///   on the task's own thread. Dropped on another thread, the runnable is
///   sent back to its own, which drops the future (unpolled) at its next
///   `block_on`, `LoopHost` or `run_test` wait, at its next `run_pending`
///   (the delivery wakes the thread's host loops), or at the latest when it
///   exits: running the destructor on a foreign thread would be unsound.
///   Sent back once its thread is exiting or gone, it is leaked (with a
///   warning) and its `Task` never resolves.
pub struct Runnable {
    raw: Option<RawRunnable>,
}

impl Runnable {
    pub(crate) fn from_raw(raw: RawRunnable) -> Self {
        Runnable { raw: Some(raw) }
    }

    /// Polls the task once. Returns `true` when the task woke itself while
    /// running (a yield), as `async_task::Runnable::run` does.
    ///
    /// A panic of the future is caught and goes to the task's `Task` (or the
    /// global handler when detached): `run` does not unwind because of it.
    ///
    /// # Panics
    ///
    /// When the task is `!Send` and this is not its thread: the task is not
    /// polled here but sent back to its thread, which cancels it (see
    /// [dropping a runnable](Runnable#dropping-a-runnable)).
    pub fn run(mut self) -> bool {
        let raw = self
            .raw
            .take()
            .expect("a Runnable holds its task until run");
        let home = raw.metadata().home();
        if let Some(home) = home {
            if home != Home::current() {
                orphans::send_home(raw, home);
                panic!(
                    "dispatchers: a !Send task was dispatched to another thread than the one \
                     that spawned it; a Dispatch that accepts spawn_local tasks must run them \
                     on that thread (the task is not polled here: it is sent back to its \
                     thread, which cancels it)"
                );
            }
        }
        raw.run()
    }

    /// The task's name, when it was spawned with one.
    pub fn name(&self) -> Option<&str> {
        self.header().name().map(|n| &**n)
    }

    /// Whether the task is `!Send` (spawned with `spawn_local`): it must run
    /// on the thread that spawned it.
    pub fn is_local(&self) -> bool {
        self.header().home().is_some()
    }

    /// Cancels the task: the same as dropping the runnable (see the type docs).
    pub fn cancel(self) {
        drop(self);
    }

    /// Cancels the task now, on this thread, when its future may be dropped
    /// here; used by a host shutting down on its own loop thread.
    pub(crate) fn cancel_in_place(mut self) {
        if let Some(raw) = self.raw.take() {
            drop_or_leak(raw, true);
        }
    }

    fn header(&self) -> &TaskHeader {
        self.raw
            .as_ref()
            .expect("a Runnable holds its task until run")
            .metadata()
    }
}

impl Drop for Runnable {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            drop_or_leak(raw, false);
        }
    }
}

impl fmt::Debug for Runnable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runnable")
            .field("name", &self.name())
            .field("local", &self.is_local())
            .finish()
    }
}

/// Cancels a task where its future may be dropped (see [`Runnable`]): the
/// runnable runs one last time with the task marked cancelled, which drops
/// the future unpolled and resolves its `Task` as cancelled.
fn drop_or_leak(raw: RawRunnable, in_place: bool) {
    match raw.metadata().home() {
        Some(home) if home == Home::current() => finish_cancelled(raw),
        Some(home) => orphans::send_home(raw, home),
        None if in_place => finish_cancelled(raw),
        None => reap(raw),
    }
}

thread_local! {
    /// While a cancellation runs on this thread: the ones it caused (a
    /// dropped future woke a task that was then rejected, and so on), run
    /// after it.
    ///
    /// No destructor (it is `None`, holding nothing, whenever no chain is
    /// running), so that it stays usable while the thread's other locals are
    /// destroyed: the thread's mailbox cancels what it holds then (see
    /// `orphans.rs`), and those destructors get the same chain as any.
    static CANCELLING: RefCell<ManuallyDrop<Option<VecDeque<RawRunnable>>>> =
        const { RefCell::new(ManuallyDrop::new(None)) };
    /// Set on the `dispatchers-reaper` thread.
    static ON_REAPER: Cell<bool> = const { Cell::new(false) };
    /// On the reaper thread: its channel, which a `block_on` in a destructor
    /// it runs also empties (see [`reap`]).
    static REAPER_RX: RefCell<Option<mpsc::Receiver<RawRunnable>>> = const { RefCell::new(None) };
}

/// Runs the task one last time, cancelled: its future is dropped unpolled.
///
/// A destructor may wake another task whose dispatcher rejects it, which
/// cancels that one here too, and so on down a chain of tasks. Those run
/// after the first, in a loop, never inside the destructor that caused them
/// (which may hold a lock their destructors need), so a chain cannot
/// overflow the stack either. The first call returns once the whole chain
/// is done. A destructor that blocks until such a task resolves is served
/// by `block_on`, which runs the queued cancellations before it parks
/// ([`run_queued_cancellations`]).
pub(super) fn finish_cancelled(raw: RawRunnable) {
    finish_all_cancelled([raw]);
}

/// [`finish_cancelled`] for each of `runnables`, in order, as one chain: a
/// destructor of one that blocks on another of them is served by `block_on`
/// like one that blocks on a cancellation it caused.
pub(super) fn finish_all_cancelled(runnables: impl IntoIterator<Item = RawRunnable>) {
    cancel_together(|| {
        let runnables = runnables.into_iter().inspect(|raw| raw.metadata().cancel());
        CANCELLING.with(|queue| {
            queue
                .borrow_mut()
                .as_mut()
                .expect("inside a chain of cancellations")
                .extend(runnables);
        });
    });
}

fn pop_queued_cancellation() -> Option<RawRunnable> {
    CANCELLING.with(|queue| queue.borrow_mut().as_mut().and_then(VecDeque::pop_front))
}

/// Runs the cancellations queued on this thread behind the one running (see
/// [`finish_cancelled`]) when the call starts, not those they queue, and
/// those of the `!Send` runnables sent back to this thread (see
/// `orphans.rs`): called by `block_on` before it parks, in case what it
/// waits for is one of them. Returns whether there were any: the caller then
/// checks its own future again before it parks.
pub(crate) fn run_queued_cancellations() -> bool {
    // First, so that those queued behind a running cancellation are counted.
    let orphans = orphans::cancel_orphans();
    pull_reaped();
    let queued = CANCELLING.with(|queue| queue.borrow().as_ref().map_or(0, VecDeque::len));
    let mut first_panic = None;
    for _ in 0..queued {
        let Some(raw) = pop_queued_cancellation() else {
            break;
        };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| raw.run())) {
            first_panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = first_panic {
        resume_unwind(payload);
    }
    orphans || queued > 0
}

/// Drops a `Send` runnable on the reaper thread, or here if that thread
/// cannot be started.
fn reap(raw: RawRunnable) {
    // On the reaper itself (a destructor it runs cancelled another task):
    // here, behind the running cancellation, where a `block_on` in that
    // destructor can run it; sent to its own channel, it would wait for the
    // destructor that waits for it.
    if ON_REAPER.try_with(Cell::get).unwrap_or(false) {
        finish_cancelled(raw);
        return;
    }
    static REAPER: LazyLock<Option<(mpsc::Sender<RawRunnable>, Thread)>> = LazyLock::new(|| {
        let (tx, rx) = mpsc::channel::<RawRunnable>();
        std::thread::Builder::new()
            .name("dispatchers-reaper".into())
            .spawn(move || {
                let _ = ON_REAPER.try_with(|on| on.set(true));
                REAPER_RX.with(|cell| *cell.borrow_mut() = Some(rx));
                while let Some(raw) =
                    REAPER_RX.with(|cell| cell.borrow().as_ref().and_then(|rx| rx.recv().ok()))
                {
                    // A destructor that panics must not end the reaper.
                    let _ = catch_unwind(AssertUnwindSafe(|| finish_cancelled(raw)));
                }
            })
            .ok()
            .map(|handle| (tx, handle.thread().clone()))
    });
    match REAPER.as_ref() {
        Some((tx, reaper)) => match tx.send(raw) {
            // A destructor on the reaper may be waiting in `block_on` for
            // this very task (see `pull_reaped`): wake it.
            Ok(()) => reaper.unpark(),
            Err(mpsc::SendError(raw)) => finish_cancelled(raw),
        },
        None => finish_cancelled(raw),
    }
}

/// On the reaper thread, inside a destructor that waits (`block_on`): queues
/// what was sent to the reaper since behind the running cancellation, so
/// that the wait can run it. A destructor that waits for a task cancelled on
/// another thread (or by the same shutdown, after its own) would otherwise
/// wait for the reaper, which waits for it.
fn pull_reaped() {
    if !ON_REAPER.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    let reaped: Vec<RawRunnable> = REAPER_RX
        .try_with(|cell| {
            cell.borrow()
                .as_ref()
                .map(|rx| rx.try_iter().collect())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    if !reaped.is_empty() {
        finish_all_cancelled(reaped);
    }
}

/// Runs `f` as part of one chain of cancellations on this thread (see
/// [`finish_cancelled`]): the tasks it cancels here (a wake-up that a closed
/// dispatcher rejects) run after it, together, so that a destructor of one
/// that waits (`block_on`) for another is served by its wait. Inside a
/// running chain, they join it.
///
/// The one place a chain runs: like the trampoline of in-place runs, a
/// destructor's panic does not keep the tasks queued behind it from being
/// cancelled; the first panic is resumed at the end.
pub(crate) fn cancel_together(f: impl FnOnce()) {
    let starts = CANCELLING.with(|queue| {
        let mut queue = queue.borrow_mut();
        if queue.is_some() {
            return false;
        }
        **queue = Some(VecDeque::new());
        true
    });
    let mut first_panic = catch_unwind(AssertUnwindSafe(f)).err();
    if starts {
        while let Some(raw) = pop_queued_cancellation() {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| raw.run())) {
                first_panic.get_or_insert(payload);
            }
        }
        CANCELLING.with(|queue| queue.borrow_mut().take());
    }
    if let Some(payload) = first_panic {
        resume_unwind(payload);
    }
}

/// Cancels `runnables` here, as one chain of cancellations (see
/// [`finish_cancelled`]): a destructor of one that waits (`block_on`) for
/// another of them is served by its wait. For a thread cancelling several
/// tasks at once (a pool's thread at its shutdown). A runnable whose future
/// may not be dropped on this thread is dropped as usual (sent home).
pub(crate) fn cancel_all_here(runnables: Vec<Runnable>) {
    let here = Home::current();
    let mut chain = Vec::with_capacity(runnables.len());
    for mut runnable in runnables {
        let Some(raw) = runnable.raw.take() else {
            continue;
        };
        match raw.metadata().home() {
            Some(home) if home != here => orphans::send_home(raw, home),
            _ => chain.push(raw),
        }
    }
    finish_all_cancelled(chain);
}
