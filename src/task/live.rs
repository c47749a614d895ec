//! [`LiveTasks`]: the suspended tasks of one host loop, kept so that the
//! loop's shutdown can cancel them.
//!
//! A host engine knows the tasks in its queue and those asleep on its timers,
//! but not a task that is idle, waiting on something else (a channel, an IO
//! hop, `std::future::pending()`): without this set, such a task would
//! outlive its loop and its `Task` would never resolve. So:
//!
//! - the engine **opens** a set on its loop thread for its two dispatchers
//!   (Main and Main.immediate);
//! - a task of one of those dispatchers **joins** the set the first time one
//!   of its polls returns `Pending`, leaving a clone of its waker there. Most
//!   tasks finish in their first poll and never join;
//! - the task **leaves** when its future is dropped (it completed or was
//!   cancelled);
//! - at shutdown the engine **closes** the set: it takes every waker out and
//!   wakes it. Each woken task is rejected by the closed engine and cancelled,
//!   or, if a run in place picks it up (Main.immediate), it finds its set
//!   closed in its next poll and completes as cancelled without being polled.
//!
//! This is async-executor's `active: Slab<Waker>`, joined lazily.
//!
//! # Why a thread-local
//!
//! The tasks of Main and Main.immediate are only ever polled on the loop's
//! thread (the one exception, a rejected `Send` task cancelled on the reaper
//! thread, is marked cancelled before that last run and never looks at its
//! set), so the sets live in a thread-local of the loop thread: joining,
//! leaving and the per-poll "closed?" check take no lock and no atomic
//! operation beyond the waker's own reference count. A member dropped on
//! another thread (only after its set closed) has nothing to remove. A set
//! stays on the thread, closed, until its engine is dropped, so that a task
//! that suspends for the first time in the very poll that shut its loop down
//! learns that it must complete as cancelled.
//! Dispatcher ids are addresses, unique while any of their tasks exists
//! (each task holds its dispatcher).

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::task::Waker;

thread_local! {
    /// The sets of the engines of this thread (usually one), from the
    /// engine's creation to its drop.
    static SETS: RefCell<Vec<Set>> = const { RefCell::new(Vec::new()) };
    /// How many sets this thread has closed: a member that joined when it
    /// was the same knows its set is still open without looking it up.
    static CLOSED: Cell<u64> = const { Cell::new(0) };
}

struct Set {
    /// The ids ([`Dispatcher::id`](crate::Dispatcher)) of the dispatchers
    /// whose tasks join this set.
    dispatchers: [usize; 2],
    closed: bool,
    slots: Slots,
}

/// Runs `f` on the set of `dispatcher_id` on this thread, if there is one.
fn with_set<R>(dispatcher_id: usize, f: impl FnOnce(&mut Set) -> R) -> Option<R> {
    SETS.try_with(|sets| {
        let mut sets = sets.borrow_mut();
        let set = sets
            .iter_mut()
            .find(|s| s.dispatchers.contains(&dispatcher_id))?;
        Some(f(set))
    })
    .ok()
    .flatten()
}

/// A host engine's handle on its set (see the module docs): created, used
/// and dropped on the loop thread.
#[derive(Debug)]
pub(crate) struct LiveTasks {
    dispatchers: [usize; 2],
    _loop_thread_only: PhantomData<*const ()>,
}

impl LiveTasks {
    /// Opens a set on this thread for the tasks of `dispatchers` (by id).
    pub(crate) fn open(dispatchers: [usize; 2]) -> Self {
        let _ = SETS.try_with(|sets| {
            sets.borrow_mut().push(Set {
                dispatchers,
                closed: false,
                slots: Slots::default(),
            })
        });
        LiveTasks {
            dispatchers,
            _loop_thread_only: PhantomData,
        }
    }

    /// Closes the set and returns the wakers of its members, for the caller
    /// to wake (outside any borrow). Later calls return nothing.
    pub(crate) fn close(&self) -> Vec<Waker> {
        with_set(self.dispatchers[0], |set| {
            if set.closed {
                return Vec::new();
            }
            set.closed = true;
            let _ = CLOSED.try_with(|closed| closed.set(closed.get() + 1));
            set.slots.take_all()
        })
        .unwrap_or_default()
    }

    /// How many tasks are members.
    pub(crate) fn len(&self) -> usize {
        with_set(self.dispatchers[0], |set| set.slots.len).unwrap_or(0)
    }
}

impl Drop for LiveTasks {
    fn drop(&mut self) {
        // Normally closed (and so empty) already, by the engine's shutdown.
        let wakers = self.close();
        let _ = SETS.try_with(|sets| {
            sets.borrow_mut()
                .retain(|s| s.dispatchers != self.dispatchers)
        });
        drop(wakers);
    }
}

/// What a task's first suspension found (see [`Membership::join`]).
pub(crate) enum Joined {
    /// It is a member now.
    Member(Membership),
    /// Its dispatcher has no set on this thread: not a loop's task.
    Untracked,
    /// Its loop shut down (during this very poll): nothing will wake it, it
    /// must complete as cancelled.
    Closed,
}

/// A task's place in its loop's set; dropping it (with the task's future)
/// removes the task's waker. Held by the task's future.
#[derive(Debug)]
pub(crate) struct Membership {
    dispatcher_id: usize,
    slot: usize,
    /// [`CLOSED`] when the task joined.
    closed_before: u64,
}

impl Membership {
    /// Joins the set, on this thread, of the dispatcher with id
    /// `dispatcher_id`, if there is one.
    pub(crate) fn join(dispatcher_id: usize, waker: &Waker) -> Joined {
        let slot = with_set(dispatcher_id, |set| {
            (!set.closed).then(|| set.slots.insert(waker.clone()))
        });
        match slot {
            None => Joined::Untracked,
            Some(None) => Joined::Closed,
            Some(Some(slot)) => Joined::Member(Membership {
                dispatcher_id,
                slot,
                closed_before: CLOSED.try_with(Cell::get).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Whether the set was closed (the loop shut down): the task must
    /// complete as cancelled. Asked on the loop thread (see the module docs).
    pub(crate) fn is_cancelled(&self) -> bool {
        if CLOSED.try_with(Cell::get).ok() == Some(self.closed_before) {
            return false; // no set closed on this thread since it joined
        }
        with_set(self.dispatcher_id, |set| set.closed).unwrap_or(true)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let waker = with_set(self.dispatcher_id, |set| set.slots.remove(self.slot)).flatten();
        drop(waker); // outside the borrow: dropping a waker may schedule a task
    }
}

/// A slab of wakers: a vector with a free list.
#[derive(Debug, Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
    len: usize,
}

impl Slots {
    fn insert(&mut self, waker: Waker) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(slot) => {
                self.wakers[slot] = Some(waker);
                slot
            }
            None => {
                self.wakers.push(Some(waker));
                self.wakers.len() - 1
            }
        }
    }

    fn remove(&mut self, slot: usize) -> Option<Waker> {
        let waker = self.wakers.get_mut(slot)?.take()?;
        self.free.push(slot);
        self.len -= 1;
        Some(waker)
    }

    fn take_all(&mut self) -> Vec<Waker> {
        self.free.clear();
        self.len = 0;
        std::mem::take(&mut self.wakers)
            .into_iter()
            .flatten()
            .collect()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn slots_reuse_freed_places() {
        let mut slots = Slots::default();
        let a = slots.insert(Waker::noop().clone());
        let b = slots.insert(Waker::noop().clone());
        assert_eq!((a, b, slots.len), (0, 1, 2));
        assert!(slots.remove(a).is_some());
        assert!(slots.remove(a).is_none(), "removed once");
        assert_eq!(slots.insert(Waker::noop().clone()), a);
        assert_eq!(slots.take_all().len(), 2);
        assert_eq!(slots.len, 0);
    }

    fn member(joined: Joined) -> Membership {
        match joined {
            Joined::Member(member) => member,
            Joined::Untracked => panic!("untracked"),
            Joined::Closed => panic!("closed"),
        }
    }

    #[test]
    fn only_the_sets_dispatchers_join_and_none_after_close() {
        let set = LiveTasks::open([1, 2]);
        assert!(matches!(
            Membership::join(3, Waker::noop()),
            Joined::Untracked
        ));
        let first = member(Membership::join(2, Waker::noop()));
        assert!(!first.is_cancelled());
        assert_eq!(set.len(), 1);
        drop(first);
        assert_eq!(set.len(), 0);
        let second = member(Membership::join(1, Waker::noop()));
        assert_eq!(set.close().len(), 1);
        assert!(second.is_cancelled());
        assert!(matches!(Membership::join(1, Waker::noop()), Joined::Closed));
        assert!(set.close().is_empty(), "closed once");
        drop(second);
        drop(set);
        assert!(matches!(
            Membership::join(1, Waker::noop()),
            Joined::Untracked
        ));
    }

    #[test]
    fn a_set_is_found_only_on_its_own_thread() {
        let _set = LiveTasks::open([7, 8]);
        let untracked =
            std::thread::spawn(|| matches!(Membership::join(7, Waker::noop()), Joined::Untracked))
                .join()
                .unwrap();
        assert!(untracked);
    }
}
