//! How a pool's queued tasks reach its threads: a queue, one atomic word that
//! balances tasks against idle threads and counts the live threads, and a
//! token semaphore that idle threads sleep on.
//!
//! # Protocol
//!
//! The word holds `live`, the threads started and not yet exited (bits 40 and
//! up), and a signed `balance` (low 40 bits, biased by 2^39): the tasks
//! announced and not yet claimed minus the threads registered as waiting for
//! one. Positive: tasks wait for a thread. Negative: threads wait for a task.
//!
//! - A producer **first** pushes its task into the queue, **then** announces
//!   it with one read-modify-write ([`WorkQueue::push`]): `balance + 1`. If
//!   the balance was negative a thread is waiting: the producer posts it a
//!   token ([`Pushed::WokeIdle`]). Otherwise, if `live < max_threads`, the
//!   same step also does `live + 1` and the producer must start a thread
//!   ([`Pushed::StartThread`]); else the task waits for a busy thread.
//! - A thread asks for a task with `balance - 1` (one `fetch_sub`). If the
//!   balance was positive it claimed an announced task and pops it. Otherwise
//!   it is registered as waiting, and sleeps until it takes a token (each
//!   token is one task handed to one waiting thread) or the queue closes.
//! - A thread that has waited for its keep-alive without a token retires
//!   with one compare-and-swap: if the balance is still negative no producer
//!   has counted on it, so it withdraws (`balance + 1`) and leaves
//!   (`live - 1`) in that same step. If the balance is no longer negative, a
//!   producer has already decided to post it a token: it stays and takes it.
//!
//! Every decision is one read-modify-write of the one word, so the steps are
//! totally ordered and each sees the announcements before it (`AcqRel`).
//! This rules out the lost task where a producer sees no idle thread and
//! every thread busy or at the cap while the last thread retires: a
//! retirement and an announcement are ordered, and whichever comes second
//! sees the other (the producer then reads `live < max_threads` and starts a
//! thread; the retiring thread reads a balance that is not negative and
//! stays). The `loom_tests` module checks it with producers racing a thread
//! that retires and racing a close.

use std::time::{Duration, Instant};

use concurrent_queue::{ConcurrentQueue, PopError};

use crate::sync::{AtomicU64, Condvar, Mutex, MutexGuard, Ordering, spin_wait};

/// `live` lives above this bit.
const LIVE_SHIFT: u32 = 40;
/// One live thread in the word.
const LIVE_ONE: u64 = 1 << LIVE_SHIFT;
/// The balance bits.
const BALANCE_MASK: u64 = LIVE_ONE - 1;
/// The stored balance is the real one plus this bias (so that it never
/// borrows from `live`: it is never below minus the number of live threads).
const BIAS: u64 = 1 << (LIVE_SHIFT - 1);
/// The most threads the word can count.
pub(crate) const MAX_THREADS: usize = (1 << (64 - LIVE_SHIFT)) - 1;

/// What a producer must do after a push.
#[must_use = "a producer must start a thread when told to, and cancel a rejected task"]
#[derive(Debug)]
pub(crate) enum Pushed<T> {
    /// A waiting thread was handed the task.
    WokeIdle,
    /// No thread was waiting and the pool is below its cap: the push counted
    /// one more live thread, which the producer must start (or report with
    /// [`WorkQueue::start_failed`]).
    StartThread,
    /// No thread was waiting and the pool is at its cap: a busy thread will
    /// claim the task.
    Queued,
    /// The queue is closed; here is the task back.
    Rejected(T),
}

/// What a thread gets from [`WorkQueue::next`].
#[must_use = "a thread must run the task, or exit when told to"]
#[derive(Debug)]
pub(crate) enum Next<T> {
    /// A task to run.
    Run(T),
    /// The keep-alive passed without a task: the thread no longer counts as
    /// live and must exit.
    Retire,
    /// The queue is closed: the thread must exit (and call
    /// [`WorkQueue::exit_closed`]).
    Closed,
}

/// A queue drained by a set of threads (see the module docs).
#[derive(Debug)]
pub(crate) struct WorkQueue<T> {
    queue: ConcurrentQueue<T>,
    /// `live << LIVE_SHIFT | (balance + BIAS)`.
    state: AtomicU64,
    max_threads: u64,
    tokens: Mutex<Tokens>,
    wakeup: Condvar,
}

#[derive(Debug)]
struct Tokens {
    /// Tasks handed to waiting threads and not yet taken.
    available: usize,
    /// Set by `close`, under the lock, so that no sleeper misses it.
    closed: bool,
}

impl<T> WorkQueue<T> {
    /// An empty queue for at most `max_threads` threads, `live` of which are
    /// already counted (a fixed pool starts them all at once).
    pub(crate) fn new(max_threads: usize, live: usize) -> Self {
        debug_assert!(live <= max_threads && max_threads <= MAX_THREADS);
        WorkQueue {
            queue: ConcurrentQueue::unbounded(),
            state: AtomicU64::new(live as u64 * LIVE_ONE + BIAS),
            max_threads: max_threads as u64,
            tokens: Mutex::new(Tokens {
                available: 0,
                closed: false,
            }),
            wakeup: Condvar::new(),
        }
    }

    /// Pushes `task` and announces it; a push may start a thread.
    pub(crate) fn push(&self, task: T) -> Pushed<T> {
        self.push_inner(task, true)
    }

    /// Pushes `task` from one of the queue's own threads, which will ask for
    /// a task again right after: never starts a thread (a task that yields
    /// on a pool must not make it grow).
    pub(crate) fn push_from_worker(&self, task: T) -> Pushed<T> {
        self.push_inner(task, false)
    }

    fn push_inner(&self, task: T, may_start: bool) -> Pushed<T> {
        if let Err(err) = self.queue.push(task) {
            return Pushed::Rejected(err.into_inner());
        }
        let max = self.max_threads;
        let starts = move |s: u64| may_start && balance(s) >= 0 && live(s) < max;
        let prev = match self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                Some(if starts(s) { s + 1 + LIVE_ONE } else { s + 1 })
            }) {
            Ok(prev) | Err(prev) => prev,
        };
        if balance(prev) < 0 {
            self.post_token();
            Pushed::WokeIdle
        } else if starts(prev) {
            Pushed::StartThread
        } else {
            Pushed::Queued
        }
    }

    /// Called by a live thread for its next task: waits for one, at most
    /// `keep_alive` (`None`: forever) before retiring.
    pub(crate) fn next(&self, keep_alive: Option<Duration>) -> Next<T> {
        let prev = self.state.fetch_sub(1, Ordering::AcqRel);
        if balance(prev) > 0 {
            return self.take_claimed();
        }
        match self.wait_for_token(keep_alive) {
            Some(next) => next,
            None => self.take_claimed(),
        }
    }

    /// Sleeps until a token comes (`None`: a task was claimed), the queue
    /// closes, or the keep-alive passes and the thread can withdraw.
    fn wait_for_token(&self, keep_alive: Option<Duration>) -> Option<Next<T>> {
        let mut deadline = keep_alive.map(|d| Instant::now() + d);
        let mut tokens = self.lock_tokens();
        loop {
            if tokens.available > 0 {
                tokens.available -= 1;
                return None;
            }
            if tokens.closed {
                return Some(Next::Closed);
            }
            let (Some(keep_alive), Some(at)) = (keep_alive, deadline) else {
                tokens = self.wakeup.wait(tokens).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            let now = Instant::now();
            if now < at {
                tokens = self.wait_timeout(tokens, at - now);
                continue;
            }
            if self.withdraw() {
                return Some(Next::Retire);
            }
            // A producer counted on this thread: its token is on the way
            // (unless another thread that registered later takes it first;
            // then this thread waits one more keep-alive and tries again).
            deadline = Some(now + keep_alive);
            tokens = self.wait_timeout(tokens, keep_alive);
        }
    }

    /// Withdraws a waiting thread and counts it out of `live`, if no producer
    /// has counted on it; `false` when one has.
    fn withdraw(&self) -> bool {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (balance(s) < 0).then(|| s + 1 - LIVE_ONE)
            })
            .is_ok()
    }

    /// Pops the task a thread claimed.
    fn take_claimed(&self) -> Next<T> {
        loop {
            match self.queue.pop() {
                Ok(task) => return Next::Run(task),
                // A concurrent push is still writing the claimed task's slot.
                Err(PopError::Empty) => spin_wait(),
                // Closed and drained by the shutdown.
                Err(PopError::Closed) => return Next::Closed,
            }
        }
    }

    fn post_token(&self) {
        self.lock_tokens().available += 1;
        self.wakeup.notify_one();
    }

    /// The thread a [`Pushed::StartThread`] asked for could not be started:
    /// counts it out. The task stays queued for the pool's other threads, or
    /// for the thread the next push starts.
    pub(crate) fn start_failed(&self) {
        self.state.fetch_sub(LIVE_ONE, Ordering::AcqRel);
    }

    /// A thread that got [`Next::Closed`] is leaving.
    pub(crate) fn exit_closed(&self) {
        self.state.fetch_sub(LIVE_ONE, Ordering::AcqRel);
    }

    /// Closes the queue: pushes are rejected from now on, and every thread
    /// gets [`Next::Closed`] (after the task it is running). Returns `true`
    /// for the call that closed it. The tasks left are taken out with
    /// [`take_closed`](Self::take_closed).
    pub(crate) fn close(&self) -> bool {
        let first = self.queue.close();
        self.lock_tokens().closed = true;
        self.wakeup.notify_all();
        first
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// After [`close`](Self::close): takes one of the tasks left, for the
    /// caller to cancel.
    pub(crate) fn take_closed(&self) -> Option<T> {
        self.queue.pop().ok()
    }

    /// The live threads: started (or about to be) and not exited.
    pub(crate) fn live_threads(&self) -> usize {
        live(self.state.load(Ordering::Acquire)) as usize
    }

    fn lock_tokens(&self) -> MutexGuard<'_, Tokens> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait_timeout<'a>(
        &self,
        tokens: MutexGuard<'a, Tokens>,
        timeout: Duration,
    ) -> MutexGuard<'a, Tokens> {
        match self.wakeup.wait_timeout(tokens, timeout) {
            Ok((tokens, _)) => tokens,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }
}

fn live(state: u64) -> u64 {
    state >> LIVE_SHIFT
}

fn balance(state: u64) -> i64 {
    (state & BALANCE_MASK) as i64 - BIAS as i64
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn starts_threads_up_to_the_cap_then_queues() {
        let q = WorkQueue::new(2, 0);
        assert!(matches!(q.push(1), Pushed::StartThread));
        assert!(matches!(q.push(2), Pushed::StartThread));
        assert!(matches!(q.push(3), Pushed::Queued));
        assert_eq!(q.live_threads(), 2);
        assert!(matches!(q.next(None), Next::Run(1)));
        assert!(matches!(q.next(None), Next::Run(2)));
        assert!(matches!(q.next(None), Next::Run(3)));
    }

    #[test]
    fn a_push_from_a_worker_never_starts_a_thread() {
        let q = WorkQueue::new(4, 0);
        assert!(matches!(q.push_from_worker(1), Pushed::Queued));
        assert_eq!(q.live_threads(), 0);
    }

    #[test]
    fn an_idle_thread_retires_after_its_keep_alive() {
        let q = WorkQueue::<u32>::new(1, 1);
        assert!(matches!(
            q.next(Some(Duration::from_millis(1))),
            Next::Retire
        ));
        assert_eq!(q.live_threads(), 0);
        // The next push starts a thread again.
        assert!(matches!(q.push(1), Pushed::StartThread));
    }

    #[test]
    fn a_waiting_thread_is_handed_the_task() {
        let q = std::sync::Arc::new(WorkQueue::new(1, 1));
        let worker = {
            let q = q.clone();
            std::thread::spawn(move || match q.next(None) {
                Next::Run(task) => task,
                other => panic!("expected a task, got {other:?}"),
            })
        };
        // Wait until the thread is registered as waiting.
        while balance(q.state.load(Ordering::Acquire)) >= 0 {
            std::thread::yield_now();
        }
        assert!(matches!(q.push(9), Pushed::WokeIdle));
        assert_eq!(worker.join().unwrap(), 9);
    }

    #[test]
    fn close_wakes_waiting_threads_and_rejects() {
        let q = std::sync::Arc::new(WorkQueue::<u32>::new(1, 1));
        let worker = {
            let q = q.clone();
            std::thread::spawn(move || matches!(q.next(None), Next::Closed))
        };
        assert!(q.close());
        assert!(worker.join().unwrap());
        assert!(matches!(q.push(1), Pushed::Rejected(1)));
    }
}

#[cfg(all(test, loom))]
#[path = "handoff_loom.rs"]
mod loom_tests;
