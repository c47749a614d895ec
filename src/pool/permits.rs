//! The queue and permits of a limited view: at most `limit` workers, no task
//! left behind.
//!
//! # Protocol
//!
//! One atomic word holds two counts: `pending`, the items pushed and
//! announced but not yet claimed by a worker (low 40 bits), and `running`, the
//! permits held, i.e. the workers started and not yet finished (the bits
//! above).
//!
//! - A producer **first** pushes its item into the queue, **then** announces
//!   it with one read-modify-write of the word: `pending + 1`, and, when
//!   `running < limit`, also `running + 1`. In that second case it took a
//!   permit and must start a worker ([`Pushed::StartWorker`]).
//! - A worker holding a permit asks for its next item with one
//!   read-modify-write ([`ViewQueue::next`]): when `pending > 0` it claims one
//!   (`pending - 1`) and pops it; otherwise it gives its permit back
//!   (`running - 1`) in that same step and stops.
//!
//! Both steps are read-modify-writes of one word, so they are totally
//! ordered, and each sees every announcement made before it (`AcqRel`). The
//! classic lost task (a producer sees every permit taken while the last
//! worker, having found the queue empty, gives its permit back) cannot
//! happen: a worker gives its permit back only in the step that reads
//! `pending == 0`, so an announcement ordered before that step is claimed by
//! it, and one ordered after it reads `running < limit` and starts a worker.
//! `running` only grows in a step that checked `running < limit`, so at most
//! `limit` workers ever run. A claim is made only for an announced item,
//! which was pushed before it was announced: the pop that follows a claim
//! always finds an item (at worst it waits for a concurrent push to finish
//! writing its slot).
//!
//! The `loom_tests` module checks both properties with racing producers and
//! workers.

use concurrent_queue::{ConcurrentQueue, PopError};

use crate::sync::{AtomicU64, Ordering, spin_wait};

/// `running` lives above this bit.
const RUNNING_SHIFT: u32 = 40;
/// One permit in the word.
const RUNNING_ONE: u64 = 1 << RUNNING_SHIFT;
/// The `pending` bits.
const PENDING_MASK: u64 = RUNNING_ONE - 1;
/// The largest limit the word can hold; larger limits are clamped to it
/// (sixteen million workers is no limit at all in practice).
pub(crate) const MAX_LIMIT: usize = (1 << (64 - RUNNING_SHIFT)) - 1;

/// What a producer must do after a push.
#[must_use = "a producer must start a worker when told to, and cancel a rejected item"]
#[derive(Debug)]
pub(crate) enum Pushed<T> {
    /// The push took a permit: start a worker, which will claim items with
    /// [`ViewQueue::next`] until it gets `None`.
    StartWorker,
    /// Every permit is held: a running worker will claim the item.
    Queued,
    /// The queue is closed; here is the item back.
    Rejected(T),
}

/// An MPMC queue whose items are run by at most `limit` workers at once.
#[derive(Debug)]
pub(crate) struct ViewQueue<T> {
    queue: ConcurrentQueue<T>,
    /// `running << RUNNING_SHIFT | pending` (see the module docs).
    state: AtomicU64,
    limit: u64,
}

impl<T> ViewQueue<T> {
    /// An empty queue for at most `limit` workers (`1..=MAX_LIMIT`).
    pub(crate) fn new(limit: usize) -> Self {
        debug_assert!((1..=MAX_LIMIT).contains(&limit));
        ViewQueue {
            queue: ConcurrentQueue::unbounded(),
            state: AtomicU64::new(0),
            limit: limit as u64,
        }
    }

    /// Pushes `item` and announces it.
    pub(crate) fn push(&self, item: T) -> Pushed<T> {
        if let Err(err) = self.queue.push(item) {
            return Pushed::Rejected(err.into_inner());
        }
        let limit = self.limit;
        let prev = self.update(|s| {
            if running(s) < limit {
                s + 1 + RUNNING_ONE
            } else {
                s + 1
            }
        });
        if running(prev) < limit {
            Pushed::StartWorker
        } else {
            Pushed::Queued
        }
    }

    /// Called by a worker that holds a permit: its next item, or `None`, and
    /// then the permit is given back (or the queue was closed).
    pub(crate) fn next(&self) -> Option<T> {
        let prev = self.update(|s| {
            if pending(s) > 0 {
                s - 1
            } else {
                s - RUNNING_ONE
            }
        });
        if pending(prev) == 0 {
            return None;
        }
        loop {
            match self.queue.pop() {
                Ok(item) => return Some(item),
                // A concurrent push is still writing the claimed item's slot.
                Err(PopError::Empty) => spin_wait(),
                // Closed and drained by `take_closed`: nothing left to claim.
                Err(PopError::Closed) => {
                    self.release();
                    return None;
                }
            }
        }
    }

    /// Gives back a permit without asking for an item (a worker that cannot
    /// go on).
    pub(crate) fn release(&self) {
        self.state.fetch_sub(RUNNING_ONE, Ordering::AcqRel);
    }

    /// Closes the queue: later pushes are rejected. Returns `true` for the
    /// call that closed it.
    pub(crate) fn close(&self) -> bool {
        self.queue.close()
    }

    /// Whether [`close`](Self::close) ran.
    pub(crate) fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// After [`close`](Self::close): takes one of the items left, for the
    /// caller to cancel.
    pub(crate) fn take_closed(&self) -> Option<T> {
        self.queue.pop().ok()
    }

    /// The permits held right now.
    pub(crate) fn running(&self) -> usize {
        running(self.state.load(Ordering::Acquire)) as usize
    }

    /// One read-modify-write of the word; returns the previous value.
    fn update(&self, f: impl Fn(u64) -> u64) -> u64 {
        match self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| Some(f(s)))
        {
            Ok(prev) | Err(prev) => prev,
        }
    }
}

fn running(state: u64) -> u64 {
    state >> RUNNING_SHIFT
}

fn pending(state: u64) -> u64 {
    state & PENDING_MASK
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn starts_workers_up_to_the_limit() {
        let q = ViewQueue::new(2);
        assert!(matches!(q.push(1), Pushed::StartWorker));
        assert!(matches!(q.push(2), Pushed::StartWorker));
        assert!(matches!(q.push(3), Pushed::Queued));
        assert_eq!(q.running(), 2);
        assert_eq!(q.next(), Some(1));
        assert_eq!(q.next(), Some(2));
        assert_eq!(q.next(), Some(3));
        assert_eq!(q.next(), None);
        assert_eq!(q.running(), 1);
        assert!(matches!(q.push(4), Pushed::StartWorker));
    }

    #[test]
    fn closed_queue_rejects_and_hands_back_what_is_left() {
        let q = ViewQueue::new(1);
        assert!(matches!(q.push(1), Pushed::StartWorker));
        assert!(q.close());
        assert!(matches!(q.push(2), Pushed::Rejected(2)));
        assert_eq!(q.take_closed(), Some(1));
        assert_eq!(q.take_closed(), None);
        // The worker's claim finds nothing and gives its permit back.
        assert_eq!(q.next(), None);
        assert_eq!(q.running(), 0);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::{Arc, AtomicUsize, Condvar, Mutex};
    use loom::thread;

    /// Producers push items and run, on their own thread, the worker their
    /// push started (a worker is just code that claims items; whose thread
    /// runs it does not matter). Checks: every item runs exactly once, and
    /// never more than `limit` items run at once.
    ///
    /// With `hold`, a running item lasts until every producer has pushed:
    /// the workers then overlap without costing preemptions, so a view that
    /// started one worker too many fails even at a low preemption bound.
    fn check(limit: usize, producers: usize, items_each: usize, preemptions: usize, hold: bool) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(preemptions);
        // Spins on a slot being written make long paths.
        builder.max_branches = 10_000;
        builder.check(move || {
            let view = Model::new(limit, producers, hold);
            let produce = move |view: &Model, p: usize| {
                for i in 0..items_each {
                    let pushed = view.queue.push(p * items_each + i);
                    if i + 1 == items_each {
                        *view.pushed.lock().unwrap() += 1;
                        view.all_pushed.notify_all();
                    }
                    match pushed {
                        Pushed::StartWorker => view.work(),
                        Pushed::Queued => {}
                        Pushed::Rejected(_) => unreachable!("never closed"),
                    }
                }
            };
            // The model's own thread is the last producer.
            let handles: Vec<_> = (1..producers)
                .map(|p| {
                    let view = view.clone();
                    thread::spawn(move || produce(&view, p))
                })
                .collect();
            produce(&view, 0);
            for handle in handles {
                handle.join().unwrap();
            }
            assert_eq!(view.ran.load(Ordering::Acquire), producers * items_each);
            assert_eq!(view.queue.running(), 0);
        });
    }

    struct Model {
        queue: ViewQueue<usize>,
        running: AtomicUsize,
        ran: AtomicUsize,
        limit: usize,
        /// Producers done pushing (starts at `producers` without `hold`).
        pushed: Mutex<usize>,
        all_pushed: Condvar,
        producers: usize,
    }

    impl Model {
        fn new(limit: usize, producers: usize, hold: bool) -> Arc<Self> {
            Arc::new(Model {
                queue: ViewQueue::new(limit),
                running: AtomicUsize::new(0),
                ran: AtomicUsize::new(0),
                limit,
                pushed: Mutex::new(if hold { 0 } else { producers }),
                all_pushed: Condvar::new(),
                producers,
            })
        }

        fn work(&self) {
            while let Some(_item) = self.queue.next() {
                let now = self.running.fetch_add(1, Ordering::AcqRel) + 1;
                assert!(
                    now <= self.limit,
                    "{now} items running, limit {}",
                    self.limit
                );
                let mut pushed = self.pushed.lock().unwrap();
                while *pushed < self.producers {
                    pushed = self.all_pushed.wait(pushed).unwrap();
                }
                drop(pushed);
                self.ran.fetch_add(1, Ordering::AcqRel);
                self.running.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    #[test]
    fn limit_one_two_producers_lose_nothing() {
        check(1, 2, 1, 3, false);
    }

    #[test]
    fn limit_one_producer_racing_the_last_worker() {
        // The second push of each producer races the release of the worker
        // the first push started.
        check(1, 2, 2, 2, false);
    }

    #[test]
    fn limit_two_three_producers_never_exceed_two() {
        check(2, 3, 1, 1, true);
    }

    #[test]
    fn close_racing_a_push_cancels_or_runs_each_item() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let view = Model::new(1, 1, false);
            let cancelled = Arc::new(AtomicUsize::new(0));
            let producer = {
                let (view, cancelled) = (view.clone(), cancelled.clone());
                thread::spawn(move || match view.queue.push(7) {
                    Pushed::StartWorker => view.work(),
                    Pushed::Queued => {}
                    Pushed::Rejected(_) => {
                        cancelled.fetch_add(1, Ordering::AcqRel);
                    }
                })
            };
            view.queue.close();
            while view.queue.take_closed().is_some() {
                cancelled.fetch_add(1, Ordering::AcqRel);
            }
            producer.join().unwrap();
            let ran = view.ran.load(Ordering::Acquire);
            let cancelled = cancelled.load(Ordering::Acquire);
            assert_eq!(ran + cancelled, 1, "ran {ran}, cancelled {cancelled}");
            assert_eq!(view.queue.running(), 0);
        });
    }
}
