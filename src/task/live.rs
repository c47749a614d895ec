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
//! - the task **leaves** when its future drops the user's future (it
//!   completed or was cancelled);
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
//!
//! A member's "closed?" check is one thread-local read as long as no set
//! was ever closed on its thread (a loop thread usually closes its set once,
//! at the end); after that, it looks its set up. The membership itself is a
//! 4-byte slot index in the task's future ([`Membership`]).
//!
//! Dispatcher ids are addresses, unique while any of their tasks exists
//! (each task holds its dispatcher).

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::task::Waker;

thread_local! {
    /// The sets of the engines of this thread (usually one), from the
    /// engine's creation to its drop.
    static SETS: RefCell<Vec<Set>> = const { RefCell::new(Vec::new()) };
    /// How many sets this thread has closed: while it is 0, a member knows
    /// its set is still open without looking it up (the common case: a loop
    /// thread closes its set once, at the end).
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

/// Closes the set of `dispatcher_id` on this thread, if there is one, and
/// returns the wakers of its members (see [`LiveTasks::close`]): for the
/// owner of a set that closes it before it drops its handle, on the set's
/// thread but out of reach of that handle.
pub(crate) fn close_here(dispatcher_id: usize) -> Vec<Waker> {
    with_set(dispatcher_id, |set| {
        if set.closed {
            return Vec::new();
        }
        set.closed = true;
        let _ = CLOSED.try_with(|closed| closed.set(closed.get() + 1));
        set.slots.take_all()
    })
    .unwrap_or_default()
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
        close_here(self.dispatchers[0])
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

/// A task's relation to its loop's set, kept in the task's future: 4 bytes,
/// because every task carries one.
///
/// It starts *fresh* (never suspended); the first `Pending` makes it a
/// *member* or *untracked* ([`on_pending`](Self::on_pending)); it *ends*
/// when the task's future drops the user's future ([`end`](Self::end)),
/// leaving the set if it was a member. The task's future also relies on
/// [`has_ended`](Self::has_ended) to know whether the user's future is
/// still there. The dispatcher id that finds the set is not stored here but
/// passed in by the task's future, which has it.
#[derive(Debug)]
pub(crate) struct Membership {
    /// The member's place in its set's slab, or [`FRESH`], [`UNTRACKED`] or
    /// [`ENDED`].
    slot: u32,
}

/// [`Membership::slot`] of a task that has not suspended yet.
const FRESH: u32 = u32::MAX;
/// [`Membership::slot`] of a task whose dispatcher has no set on the thread
/// of its first suspension (not a loop's task), or whose set was closed.
const UNTRACKED: u32 = u32::MAX - 1;
/// [`Membership::slot`] once the membership ended; every smaller value is a
/// member's slot.
const ENDED: u32 = u32::MAX - 2;

impl Membership {
    /// A task that has not suspended yet.
    pub(crate) const fn new() -> Self {
        Membership { slot: FRESH }
    }

    /// After a poll returned `Pending`: the first time, joins the set, on
    /// this thread, of the dispatcher with id `dispatcher_id`, if there is
    /// one. `false` when that set is closed (its loop shut down during this
    /// very poll): nothing will wake the task, it must complete as cancelled.
    #[inline]
    pub(crate) fn on_pending(&mut self, dispatcher_id: usize, waker: &Waker) -> bool {
        self.slot != FRESH || self.join(dispatcher_id, waker)
    }

    /// The first suspension (see [`on_pending`](Self::on_pending)).
    #[cold]
    fn join(&mut self, dispatcher_id: usize, waker: &Waker) -> bool {
        self.slot = UNTRACKED;
        let joined = with_set(dispatcher_id, |set| {
            if set.closed {
                return None;
            }
            // A slab this large (four billion tasks suspended on one loop)
            // cannot be allocated; the check only keeps the sentinels apart.
            if set.slots.len >= ENDED as usize {
                return Some(UNTRACKED);
            }
            Some(set.slots.insert(waker.clone()) as u32)
        });
        match joined {
            None => true, // no set here: untracked
            Some(None) => false,
            Some(Some(slot)) => {
                self.slot = slot;
                true
            }
        }
    }

    /// Whether the task is a member.
    #[inline]
    fn is_member(&self) -> bool {
        self.slot < ENDED
    }

    /// Whether [`end`](Self::end) was called.
    #[inline]
    pub(crate) fn has_ended(&self) -> bool {
        self.slot == ENDED
    }

    /// Whether the task must complete as cancelled, unpolled, because its
    /// loop shut down: it is a member of a set that was closed, or it was
    /// never polled and its dispatcher's set on this thread is closed (a
    /// `Main.immediate` task queued behind an in-place run that shut the
    /// loop down). Asked before each poll, with the id of the task's
    /// dispatcher.
    #[inline]
    pub(crate) fn is_cancelled(&self, dispatcher_id: usize) -> bool {
        let fresh = self.slot == FRESH;
        if !fresh && !self.is_member() {
            return false;
        }
        if CLOSED.try_with(Cell::get).ok() == Some(0) {
            return false; // no set ever closed on this thread
        }
        // A member's set is gone only once its engine was dropped; a fresh
        // task may be of no loop at all.
        with_set(dispatcher_id, |set| set.closed).unwrap_or(!fresh)
    }

    /// Ends the membership: removes the task's waker from its set, if it is
    /// a member; called when the user's future is dropped, with the id of
    /// the task's dispatcher.
    #[inline]
    pub(crate) fn end(&mut self, dispatcher_id: usize) {
        if self.is_member() {
            self.leave(dispatcher_id);
        }
        self.slot = ENDED;
    }

    /// The member's part of [`end`](Self::end).
    fn leave(&self, dispatcher_id: usize) {
        let slot = self.slot as usize;
        let waker = with_set(dispatcher_id, |set| set.slots.remove(slot)).flatten();
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

    /// What a first suspension of a task of `dispatcher_id` makes of it.
    enum Joined {
        Member(Membership),
        Untracked,
        Closed,
    }

    fn join(dispatcher_id: usize) -> Joined {
        let mut membership = Membership::new();
        assert!(!membership.is_member() && !membership.has_ended(), "fresh");
        if !membership.on_pending(dispatcher_id, Waker::noop()) {
            return Joined::Closed;
        }
        assert!(
            membership.on_pending(dispatcher_id, Waker::noop()),
            "joins once"
        );
        match membership.is_member() {
            true => Joined::Member(membership),
            false => Joined::Untracked,
        }
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
        assert!(matches!(join(3), Joined::Untracked));
        let mut first = member(join(2));
        assert!(!first.is_cancelled(2));
        assert_eq!(set.len(), 1);
        first.end(2);
        assert_eq!(set.len(), 0);
        assert!(first.has_ended());
        assert!(!first.is_cancelled(2), "left");
        first.end(2);
        assert_eq!(set.len(), 0);
        let mut second = member(join(1));
        assert_eq!(set.close().len(), 1);
        assert!(second.is_cancelled(1));
        assert!(matches!(join(1), Joined::Closed));
        assert!(set.close().is_empty(), "closed once");
        second.end(1);
        drop(set);
        assert!(matches!(join(1), Joined::Untracked));
    }

    #[test]
    fn a_member_sees_its_set_closed_after_other_sets_closed() {
        let other = LiveTasks::open([10, 11]);
        let set = LiveTasks::open([4, 5]);
        let mut member = member(join(4));
        let _ = other.close();
        assert!(!member.is_cancelled(4), "looked up: open");
        let _ = set.close();
        assert!(member.is_cancelled(4));
        member.end(4);
    }

    #[test]
    fn a_fresh_task_of_a_closed_set_is_cancelled_and_one_of_no_set_is_not() {
        let set = LiveTasks::open([20, 21]);
        let fresh = Membership::new();
        assert!(!fresh.is_cancelled(21), "open");
        let _ = set.close();
        assert!(
            fresh.is_cancelled(21),
            "its loop shut down before its first poll"
        );
        assert!(!fresh.is_cancelled(22), "of no loop on this thread");
        drop(set);
        assert!(!fresh.is_cancelled(21), "no set any more: unknown");
    }

    #[test]
    fn a_membership_is_4_bytes() {
        assert_eq!(std::mem::size_of::<Membership>(), 4);
    }

    #[test]
    fn a_set_is_found_only_on_its_own_thread() {
        let _set = LiveTasks::open([7, 8]);
        let untracked = std::thread::spawn(|| matches!(join(7), Joined::Untracked))
            .join()
            .unwrap();
        assert!(untracked);
    }
}
