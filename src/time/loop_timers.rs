//! [`LoopTimers`]: the timers of one host loop, owned by the loop's thread.
//!
//! Every `delay` of a loop's tasks is registered, polled and fired on the
//! loop's thread, so the timer heap lives in a thread-local of that thread
//! (one store per engine, usually one): registering takes no lock and no
//! atomic operation beyond the waker's reference count, and needs no clock
//! read for a `delay_until` (a deadline is compared with the time the loop
//! last fired its timers, see [`insert_until`](LoopTimers::insert_until)).
//!
//! The one access from elsewhere is a cancel: a `Delay` dropped on another
//! thread queues its key in [`remote`](LoopTimers) and the loop applies it
//! before it next reads its deadlines. A `Delay` *polled* on another thread
//! gets `None` from [`poll`](LoopTimers::poll) and moves its deadline to that
//! thread's timers.
//!
//! A store is opened by the engine on its loop thread and closed by its
//! shutdown, which fires (hands back) every waiting timer.
//!
//! No waker code runs while the store is borrowed: a hand-written waker's
//! clone or drop may do anything, such as drop another `Delay` of the loop,
//! which needs the store again. Wakers are cloned before the borrow and
//! dropped after it.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Poll, Waker};
use std::time::Instant;

use super::heap::{Mark, TimerHeap, TimerKey, TimerPoll};
use super::service::Until;

thread_local! {
    /// The timer stores of the loops of this thread.
    static STORES: RefCell<Vec<Store>> = const { RefCell::new(Vec::new()) };
}

/// Ids of stores, unique for the process's life.
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

struct Store {
    id: usize,
    heap: TimerHeap,
    /// When the loop last fired its timers.
    recent_now: Instant,
    /// The deadline the host last learnt from [`LoopTimers::next_deadline`]
    /// (none, or never asked: [`Mark::NONE`]), lowered by each earlier timer
    /// that [`insert`](LoopTimers::insert) reports.
    announced: Mark,
}

impl Store {
    /// Registers a timer; tells whether it is earlier than what the host was
    /// last told (it may then sleep past it, see `LoopTimers::insert`).
    fn insert(&mut self, deadline: Instant, waker: Waker) -> (TimerKey, bool) {
        self.heap.insert_below(deadline, waker, &mut self.announced)
    }
}

/// A loop's handle on its timer store (see the module docs). `Sync`: only
/// [`cancel`](Self::cancel) does anything off the loop's thread.
#[derive(Debug)]
pub(crate) struct LoopTimers {
    id: usize,
    /// Keys of timers cancelled on other threads, for the loop to forget.
    remote: Mutex<Vec<TimerKey>>,
    /// Whether `remote` may hold keys (set and cleared under its lock).
    has_remote: AtomicBool,
    /// Set by [`close`](Self::close): cancels have nothing left to forget.
    closed: AtomicBool,
}

impl LoopTimers {
    /// Opens a store on the calling (the loop's) thread.
    pub(crate) fn open() -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let _ = STORES.try_with(|stores| {
            stores.borrow_mut().push(Store {
                id,
                heap: TimerHeap::default(),
                recent_now: Instant::now(),
                announced: Mark::NONE,
            });
        });
        LoopTimers {
            id,
            remote: Mutex::new(Vec::new()),
            has_remote: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Closes the store, on the loop's thread: the wakers of every waiting
    /// timer go to `wakers`, and later calls find no store (inserts and polls
    /// answer `None`, cancels are no-ops).
    pub(crate) fn close(&self, wakers: &mut Vec<Waker>) {
        self.closed.store(true, Ordering::Relaxed);
        let store = STORES
            .try_with(|stores| {
                let mut stores = stores.borrow_mut();
                let index = stores.iter().position(|s| s.id == self.id)?;
                Some(stores.swap_remove(index))
            })
            .ok()
            .flatten();
        if let Some(mut store) = store {
            store.heap.fire_all(wakers);
        }
    }

    /// Registers a timer; `None` off the loop's thread or once closed. A
    /// timer earlier than the deadline the host last learnt from
    /// [`next_deadline`](Self::next_deadline) calls `earlier`, after the
    /// borrow: a host that has already decided how long to sleep must then
    /// be woken to see it.
    pub(crate) fn insert(
        &self,
        deadline: Instant,
        waker: &Waker,
        earlier: impl FnOnce(),
    ) -> Option<TimerKey> {
        // Cloning may run user code that needs the store: not while borrowed.
        let mut waker = Some(waker.clone());
        let inserted = self.with_store(|store| store.insert(deadline, take(&mut waker)));
        // Unused when there was no store: dropped after the borrow.
        drop(waker);
        let (key, below) = inserted?;
        if below {
            earlier();
        }
        Some(key)
    }

    /// Registers a timer unless `deadline` is at or before the time the loop
    /// last fired its timers (one store lookup, no clock read); `Unreachable`
    /// off the loop's thread or once closed. A registered timer earlier than
    /// the host was told calls `earlier` (see [`insert`](Self::insert)).
    pub(crate) fn insert_until(
        &self,
        deadline: Instant,
        waker: &Waker,
        earlier: impl FnOnce(),
    ) -> Until {
        // Cloning may run user code that needs the store: not while borrowed
        // (a passed deadline then drops the clone unused, after the borrow).
        let mut waker = Some(waker.clone());
        let until = self
            .with_store(|store| {
                if deadline <= store.recent_now {
                    (Until::Passed, false)
                } else {
                    let (key, below) = store.insert(deadline, take(&mut waker));
                    (Until::Waiting(key), below)
                }
            })
            .unwrap_or((Until::Unreachable, false));
        drop(waker);
        let (until, below) = until;
        if below {
            earlier();
        }
        until
    }

    /// Polls a timer; `None` off the loop's thread or once closed.
    pub(crate) fn poll(&self, key: TimerKey, waker: &Waker) -> Option<Poll<()>> {
        match self.with_store(|store| store.heap.poll(key, waker))? {
            TimerPoll::Ready => Some(Poll::Ready(())),
            TimerPoll::Pending => Some(Poll::Pending),
            TimerPoll::NeedsWaker => {
                // Cloning may run user code that needs the store: not while
                // borrowed.
                let mut waker = Some(waker.clone());
                // `None` if the store closed meanwhile (the clone shut the
                // host down): the caller moves the deadline elsewhere.
                let poll = self.with_store(|store| {
                    let (poll, dropped) = store.heap.set_waker(key, take(&mut waker));
                    waker = dropped;
                    poll
                });
                // The replaced (or unused) waker: dropping a task's last
                // waker may schedule it, not while borrowed.
                drop(waker);
                poll
            }
        }
    }

    /// Forgets a timer: at once on the loop's thread, else when the loop
    /// next reads its deadlines.
    pub(crate) fn cancel(&self, key: TimerKey) {
        match self.with_store(|store| store.heap.cancel(key)) {
            Some(waker) => drop(waker),
            None if self.closed.load(Ordering::Relaxed) => {}
            None => {
                let mut remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
                remote.push(key);
                self.has_remote.store(true, Ordering::Relaxed);
            }
        }
    }

    /// On the loop's thread: fires the timers due at `now` into `wakers`;
    /// returns how many fired.
    pub(crate) fn fire_due(&self, now: Instant, wakers: &mut Vec<Waker>) -> usize {
        self.with_store_up_to_date(|store| {
            store.recent_now = now;
            store.heap.fire_due(now, wakers)
        })
        .unwrap_or(0)
    }

    /// On the loop's thread: the earliest deadline of a waiting timer, which
    /// the host is now taken to know (see [`insert`](Self::insert)).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.with_store_up_to_date(|store| {
            let (next, mark) = store.heap.next_deadline_marked();
            store.announced = mark;
            next
        })
        .flatten()
    }

    /// On the loop's thread: how many timers wait (those cancelled on other
    /// threads no longer count).
    pub(crate) fn len(&self) -> usize {
        self.with_store_up_to_date(|store| store.heap.len())
            .unwrap_or(0)
    }

    /// [`with_store`](Self::with_store), once the timers cancelled on other
    /// threads are forgotten (their wakers dropped after the borrow).
    fn with_store_up_to_date<R>(&self, f: impl FnOnce(&mut Store) -> R) -> Option<R> {
        let cancelled = self.take_remote();
        if cancelled.is_empty() {
            // The common case: nothing to forget, nothing to drop after.
            return self.with_store(f);
        }
        let mut dropped = Vec::new();
        let result = self.with_store(|store| {
            forget(&mut store.heap, &cancelled, &mut dropped);
            f(store)
        });
        drop(dropped);
        result
    }

    fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> Option<R> {
        STORES
            .try_with(|stores| {
                let mut stores = stores.borrow_mut();
                let store = stores.iter_mut().find(|s| s.id == self.id)?;
                Some(f(store))
            })
            .ok()
            .flatten()
    }

    /// The keys cancelled on other threads since the last call.
    fn take_remote(&self) -> Vec<TimerKey> {
        if !self.has_remote.load(Ordering::Relaxed) {
            return Vec::new();
        }
        let mut remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        self.has_remote.store(false, Ordering::Relaxed);
        std::mem::take(&mut *remote)
    }
}

/// The waker cloned before a store borrow, moved into the store inside it.
fn take(waker: &mut Option<Waker>) -> Waker {
    waker
        .take()
        .expect("a waker is cloned for each store access")
}

/// Cancels `keys` in `heap`, handing their wakers to `dropped`: dropping a
/// task's last waker may schedule the task, which must not happen while the
/// store is borrowed.
fn forget(heap: &mut TimerHeap, keys: &[TimerKey], dropped: &mut Vec<Waker>) {
    dropped.extend(keys.iter().filter_map(|&key| heap.cancel(key)));
}
