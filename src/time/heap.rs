//! The timer heap: deadlines ordered by (deadline, insertion order), with
//! O(log n) insert and O(1) cancel.
//!
//! A cancelled timer's heap entry is not searched for: its slot becomes a
//! *zombie* that keeps the entry's place until the entry is popped or
//! compacted away, and only then is the slot reused. So a slot has at most
//! one heap entry, and an entry never needs more than the slot's index to be
//! told apart from a later timer.
//!
//! Equal deadlines fire first in, first out: each entry carries a 32-bit
//! *tie* number, taken from a counter that counts up with every insert. When
//! that counter is about to wrap (once per 2^32 inserts), the entries in the
//! heap are renumbered 0..n in their (deadline, tie) order, zombies dropped,
//! and counting goes on from n: the order of the timers already waiting is
//! kept, and later timers still sort after them. The timer's key has a
//! separate 64-bit sequence, which never wraps.
//!
//! Memory: a heap entry (deadline, tie, slot) is 16 bytes and a slot
//! (sequence, waker) 24, so a pending timer costs 40 bytes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Identifies one registered timer; the sequence tells a reused slot apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: u32,
    seq: u64,
}

#[cfg(feature = "test-util")]
impl TimerKey {
    /// A key for a timer kept outside a `TimerHeap` (the test dispatcher's
    /// virtual clock), identified by its sequence number alone.
    pub(crate) fn from_seq(seq: u64) -> Self {
        TimerKey {
            slot: u32::MAX,
            seq,
        }
    }

    /// The key's sequence number.
    pub(crate) fn seq(self) -> u64 {
        self.seq
    }
}

/// `Slot::seq` of a free slot.
const FREE: u64 = 0;
/// `Slot::seq` of a cancelled timer whose heap entry is still in the heap.
const ZOMBIE: u64 = u64::MAX;

/// A timer's slot: free, a zombie (see the module docs), or a timer's,
/// whose `waker` is `Some` while it waits and `None` once it fired. 24 bytes
/// (`Option<Waker>` uses the waker's niche).
#[derive(Debug)]
struct Slot {
    seq: u64,
    waker: Option<Waker>,
}

/// A heap entry: the deadline in nanoseconds since the heap's epoch, the
/// tie number (first in, first fired among equal deadlines; see the module
/// docs), and the slot.
type Entry = Reverse<(u64, u32, u32)>;

/// What [`TimerHeap::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerPoll {
    /// The timer fired (the key is now spent).
    Ready,
    /// The timer waits, and will wake the waker it was polled with.
    Pending,
    /// The timer waits with another waker: the caller clones the new one
    /// where the heap is neither borrowed nor locked (a clone may run user
    /// code that touches these timers) and hands it to
    /// [`TimerHeap::set_waker`].
    NeedsWaker,
}

/// Timers of one thread (a host loop's, or the fallback timer thread's).
///
/// Methods that drop a waker hand it back instead: dropping a task's last
/// waker may schedule the task, which must not happen where the heap is
/// borrowed or locked.
#[derive(Debug)]
pub(crate) struct TimerHeap {
    /// Deadlines are stored as nanoseconds since this instant.
    epoch: Instant,
    heap: BinaryHeap<Entry>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    waiting: usize,
    next_seq: u64,
    /// The tie number of the next entry (see the module docs).
    next_tie: u32,
}

impl Default for TimerHeap {
    fn default() -> Self {
        TimerHeap {
            epoch: Instant::now(),
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            waiting: 0,
            next_seq: FREE,
            next_tie: 0,
        }
    }
}

/// A deadline as the heap orders it (nanoseconds since its epoch), for a
/// caller that compares deadlines on every insert: see
/// [`TimerHeap::insert_below`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark(u64);

impl Mark {
    /// After every deadline.
    pub(crate) const NONE: Mark = Mark(u64::MAX);
}

impl TimerHeap {
    /// Registers a timer that wakes `waker` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
        let nanos = self.nanos(deadline);
        self.push(nanos, waker)
    }

    /// [`insert`](Self::insert), and whether `deadline` is before `mark`,
    /// which is then lowered to it. One integer comparison.
    pub(crate) fn insert_below(
        &mut self,
        deadline: Instant,
        waker: Waker,
        mark: &mut Mark,
    ) -> (TimerKey, bool) {
        let nanos = self.nanos(deadline);
        let below = nanos < mark.0;
        if below {
            *mark = Mark(nanos);
        }
        (self.push(nanos, waker), below)
    }

    /// [`next_deadline`](Self::next_deadline), with its mark
    /// ([`Mark::NONE`] when no timer waits).
    pub(crate) fn next_deadline_marked(&mut self) -> (Option<Instant>, Mark) {
        let next = self.next_nanos();
        (
            next.map(|nanos| self.epoch + Duration::from_nanos(nanos)),
            next.map_or(Mark::NONE, Mark),
        )
    }

    fn push(&mut self, nanos: u64, waker: Waker) -> TimerKey {
        self.next_seq += 1;
        let seq = self.next_seq;
        let waker = Some(waker);
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Slot { seq, waker };
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("more than 2^32 pending timers");
                self.slots.push(Slot { seq, waker });
                slot
            }
        };
        if self.next_tie == u32::MAX {
            self.renumber_ties();
        }
        let tie = self.next_tie;
        self.next_tie += 1;
        self.heap.push(Reverse((nanos, tie, slot)));
        self.waiting += 1;
        TimerKey { slot, seq }
    }

    /// `Ready` once the timer fired (the key is then spent); `Pending` while
    /// it waits to wake `waker`; `NeedsWaker` while it waits with another
    /// waker. Runs no user code: `waker` is compared, never cloned.
    pub(crate) fn poll(&mut self, key: TimerKey, waker: &Waker) -> TimerPoll {
        let Some(slot) = self.slot_mut(key) else {
            return TimerPoll::Ready;
        };
        match &slot.waker {
            Some(current) if current.will_wake(waker) => TimerPoll::Pending,
            Some(_) => TimerPoll::NeedsWaker,
            None => {
                // Fired: its heap entry is gone.
                self.release(key.slot);
                TimerPoll::Ready
            }
        }
    }

    /// After [`poll`](Self::poll) answered `NeedsWaker`: makes the timer
    /// wake `waker` (a clone made outside the borrow or lock), or returns
    /// `Ready` if it fired in the meantime. Either way hands back a waker
    /// for the caller to drop where the heap is not borrowed or locked: the
    /// one replaced, or `waker` itself when it was not needed.
    pub(crate) fn set_waker(&mut self, key: TimerKey, waker: Waker) -> (Poll<()>, Option<Waker>) {
        let Some(slot) = self.slot_mut(key) else {
            return (Poll::Ready(()), Some(waker));
        };
        match &mut slot.waker {
            Some(current) => (Poll::Pending, Some(std::mem::replace(current, waker))),
            None => {
                // Fired: its heap entry is gone.
                self.release(key.slot);
                (Poll::Ready(()), Some(waker))
            }
        }
    }

    /// Forgets the timer; returns its waker, never woken, for the caller to
    /// drop.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<Waker> {
        let slot = self.slot_mut(key)?;
        match slot.waker.take() {
            Some(waker) => {
                // Its heap entry is still there: the slot waits for it.
                slot.seq = ZOMBIE;
                self.waiting -= 1;
                self.compact_if_sparse();
                Some(waker)
            }
            None => {
                self.release(key.slot);
                None
            }
        }
    }

    /// Marks every timer due at `now` as fired and collects the wakers to wake
    /// (outside the borrow or lock this heap lives in); returns how many
    /// fired.
    pub(crate) fn fire_due(&mut self, now: Instant, wakers: &mut Vec<Waker>) -> usize {
        // The common case of a loop's every wake-up: no timer at all, and
        // no need to convert the time.
        if self.heap.is_empty() {
            return 0;
        }
        let now = self.nanos(now);
        let mut fired = 0;
        while let Some(&Reverse((deadline, _, slot))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            if let Some(waker) = self.pop_entry(slot) {
                self.waiting -= 1;
                fired += 1;
                wakers.push(waker);
            }
        }
        fired
    }

    /// The earliest deadline of a waiting timer.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.next_nanos()
            .map(|nanos| self.epoch + Duration::from_nanos(nanos))
    }

    /// The next deadline in nanoseconds since the epoch, once the zombies
    /// above it are dropped.
    fn next_nanos(&mut self) -> Option<u64> {
        while let Some(&Reverse((deadline, _, slot))) = self.heap.peek() {
            if self.slots[slot as usize].seq != ZOMBIE {
                return Some(deadline);
            }
            self.heap.pop();
            self.release(slot);
        }
        None
    }

    /// Fires every waiting timer at once (a host shutting down): their tasks
    /// wake and are cancelled by the closed host rather than left hanging.
    pub(crate) fn fire_all(&mut self, wakers: &mut Vec<Waker>) {
        for Reverse((_, _, slot)) in std::mem::take(&mut self.heap) {
            if let Some(waker) = self.pop_entry(slot) {
                wakers.push(waker);
            }
        }
        self.waiting = 0;
    }

    /// How many timers are waiting to fire.
    pub(crate) fn len(&self) -> usize {
        self.waiting
    }

    /// `deadline` as nanoseconds since the epoch: 0 for earlier deadlines
    /// (they are all due), saturating 584 years on.
    fn nanos(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.epoch);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    /// The heap entry of `slot` was just removed: a waiting timer fires (its
    /// waker is returned), a zombie's slot is freed.
    fn pop_entry(&mut self, slot: u32) -> Option<Waker> {
        let entry = &mut self.slots[slot as usize];
        if entry.seq == ZOMBIE {
            self.release(slot);
            return None;
        }
        entry.waker.take()
    }

    fn slot_mut(&mut self, key: TimerKey) -> Option<&mut Slot> {
        self.slots
            .get_mut(key.slot as usize)
            .filter(|slot| slot.seq == key.seq)
    }

    fn release(&mut self, slot: u32) {
        let entry = &mut self.slots[slot as usize];
        debug_assert!(entry.waker.is_none(), "a released slot has no waker");
        entry.seq = FREE;
        self.free.push(slot);
    }

    /// The tie counter is about to wrap: renumbers the entries in the heap
    /// 0..n in their (deadline, tie) order, dropping zombies, and continues
    /// from n (see the module docs). O(n log n), once per 2^32 inserts.
    fn renumber_ties(&mut self) {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        let (slots, free) = (&mut self.slots, &mut self.free);
        entries.retain(|&Reverse((_, _, slot))| keep_or_free(slots, free, slot));
        // Ties are unique since the last renumbering, so this is the firing
        // order.
        entries.sort_unstable_by_key(|&Reverse((deadline, tie, _))| (deadline, tie));
        // 2^32 - 1 pending timers would take over 160 GiB.
        let n = u32::try_from(entries.len())
            .ok()
            .filter(|&n| n < u32::MAX)
            .expect("fewer than 2^32 - 1 pending timers");
        for (tie, Reverse((_, entry_tie, _))) in (0..n).zip(entries.iter_mut()) {
            *entry_tie = tie;
        }
        self.next_tie = n;
        self.heap = BinaryHeap::from(entries);
    }

    /// Drops the entries of zombies once they outnumber the waiting timers,
    /// so that a `timeout` that usually completes early doesn't grow the heap.
    fn compact_if_sparse(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 2 * self.waiting {
            let (slots, free) = (&mut self.slots, &mut self.free);
            self.heap
                .retain(|&Reverse((_, _, slot))| keep_or_free(slots, free, slot));
        }
    }
}

/// For a sweep of heap entries: `true` keeps the entry of `slot`; a
/// zombie's is dropped, and its slot freed.
fn keep_or_free(slots: &mut [Slot], free: &mut Vec<u32>, slot: u32) -> bool {
    let entry = &mut slots[slot as usize];
    if entry.seq != ZOMBIE {
        return true;
    }
    entry.seq = FREE;
    free.push(slot);
    false
}

#[cfg(all(test, not(loom)))]
mod tests;
