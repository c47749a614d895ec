//! The timer heap: deadlines ordered by (deadline, insertion order), with
//! O(log n) insert and O(1) cancel.
//!
//! A cancelled timer's heap entry is not searched for: its slot becomes a
//! *zombie* that keeps the entry's place until the entry is popped or
//! compacted away, and only then is the slot reused. So a slot has at most
//! one heap entry, and an entry never needs more than the slot's index to be
//! told apart from a later timer.
//!
//! Memory: a heap entry (deadline, tie-break, slot) is 16 bytes and a slot
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

/// A heap entry: the deadline in nanoseconds since the heap's epoch, the low
/// bits of the timer's sequence (first in, first fired among equal
/// deadlines), and the slot.
type Entry = Reverse<(u64, u32, u32)>;

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
        }
    }
}

impl TimerHeap {
    /// Registers a timer that wakes `waker` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
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
        // Truncating the sequence is deliberate: it only orders equal
        // deadlines.
        self.heap
            .push(Reverse((self.nanos(deadline), seq as u32, slot)));
        self.waiting += 1;
        TimerKey { slot, seq }
    }

    /// `Ready` once the timer fired (the key is then spent); otherwise
    /// remembers `waker` and returns `Pending`, with the waker it replaced.
    pub(crate) fn poll(&mut self, key: TimerKey, waker: &Waker) -> (Poll<()>, Option<Waker>) {
        let Some(slot) = self.slot_mut(key) else {
            return (Poll::Ready(()), None);
        };
        match &mut slot.waker {
            Some(current) if current.will_wake(waker) => (Poll::Pending, None),
            Some(current) => (
                Poll::Pending,
                Some(std::mem::replace(current, waker.clone())),
            ),
            None => {
                // Fired: its heap entry is gone.
                self.release(key.slot);
                (Poll::Ready(()), None)
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
        while let Some(&Reverse((deadline, _, slot))) = self.heap.peek() {
            if self.slots[slot as usize].seq != ZOMBIE {
                return Some(self.epoch + Duration::from_nanos(deadline));
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

    /// Drops the entries of zombies once they outnumber the waiting timers,
    /// so that a `timeout` that usually completes early doesn't grow the heap.
    fn compact_if_sparse(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 2 * self.waiting {
            let slots = &mut self.slots;
            let free = &mut self.free;
            self.heap.retain(|&Reverse((_, _, slot))| {
                let entry = &mut slots[slot as usize];
                if entry.seq != ZOMBIE {
                    return true;
                }
                entry.seq = FREE;
                free.push(slot);
                false
            });
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_then_insertion_order() {
        let mut heap = TimerHeap::default();
        let t0 = Instant::now();
        let later = heap.insert(t0 + Duration::from_millis(2), Waker::noop().clone());
        let first = heap.insert(t0 + Duration::from_millis(1), Waker::noop().clone());
        let tie = heap.insert(t0 + Duration::from_millis(1), Waker::noop().clone());
        assert_eq!(heap.next_deadline(), Some(t0 + Duration::from_millis(1)));
        let mut wakers = Vec::new();
        assert_eq!(heap.fire_due(t0 + Duration::from_millis(1), &mut wakers), 2);
        assert!(heap.poll(first, Waker::noop()).0.is_ready());
        assert!(heap.poll(tie, Waker::noop()).0.is_ready());
        assert!(heap.poll(later, Waker::noop()).0.is_pending());
        assert_eq!(heap.len(), 1);
    }

    #[test]
    fn equal_deadlines_fire_first_in_first_out() {
        let mut heap = TimerHeap::default();
        let at = Instant::now() + Duration::from_millis(5);
        let (wakers, woken) = recording_wakers(100);
        // Fill slots, free them in an order unlike the insertion order, so
        // that slot numbers and insertion order disagree.
        let keys: Vec<_> = (0..100)
            .map(|_| heap.insert(at, Waker::noop().clone()))
            .collect();
        let mut fired = Vec::new();
        heap.fire_due(at, &mut fired);
        for key in &keys {
            assert!(heap.poll(*key, Waker::noop()).0.is_ready());
        }
        for waker in &wakers {
            heap.insert(at, waker.clone());
        }
        let mut fired = Vec::new();
        assert_eq!(heap.fire_due(at, &mut fired), 100);
        fired.into_iter().for_each(Waker::wake);
        assert_eq!(*woken.lock().unwrap(), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn cancel_forgets_and_compacts() {
        let mut heap = TimerHeap::default();
        let t0 = Instant::now();
        let keys: Vec<_> = (0..1000)
            .map(|i| heap.insert(t0 + Duration::from_secs(60 + i), Waker::noop().clone()))
            .collect();
        for key in &keys[1..] {
            assert!(heap.cancel(*key).is_some(), "the waker comes back");
        }
        assert_eq!(heap.len(), 1);
        assert!(
            heap.heap.len() <= 130,
            "zombies compacted: {}",
            heap.heap.len()
        );
        assert!(heap.free.len() >= 870, "their slots are free again");
        assert_eq!(heap.next_deadline(), Some(t0 + Duration::from_secs(60)));
        let mut wakers = Vec::new();
        assert_eq!(
            heap.fire_due(t0 + Duration::from_secs(3600), &mut wakers),
            1
        );
        assert!(heap.heap.is_empty());
        assert_eq!(heap.free.len(), 999, "every zombie was freed");
    }

    #[test]
    fn a_zombie_slot_is_reused_only_after_its_entry_left() {
        let mut heap = TimerHeap::default();
        let t0 = Instant::now();
        let early = heap.insert(t0 + Duration::from_secs(1), Waker::noop().clone());
        let _ = heap.cancel(early);
        // The cancelled timer's entry is still in the heap: a new timer gets
        // another slot, and does not fire at the old deadline.
        let late = heap.insert(t0 + Duration::from_secs(10), Waker::noop().clone());
        let mut wakers = Vec::new();
        assert_eq!(heap.fire_due(t0 + Duration::from_secs(2), &mut wakers), 0);
        assert!(heap.poll(late, Waker::noop()).0.is_pending());
        assert_eq!(heap.next_deadline(), Some(t0 + Duration::from_secs(10)));
        // The zombie's entry was popped: its slot is reused now.
        let again = heap.insert(t0 + Duration::from_secs(3), Waker::noop().clone());
        assert_eq!(again.slot, early.slot);
        assert_eq!(heap.fire_due(t0 + Duration::from_secs(3), &mut wakers), 1);
        assert!(heap.poll(late, Waker::noop()).0.is_pending());
    }

    #[test]
    fn deadlines_before_the_epoch_are_due_at_once() {
        let past = Instant::now();
        let mut heap = TimerHeap::default();
        heap.insert(past, Waker::noop().clone());
        assert!(heap.next_deadline().is_some_and(|d| d <= Instant::now()));
        let mut wakers = Vec::new();
        assert_eq!(heap.fire_due(Instant::now(), &mut wakers), 1);
    }

    #[test]
    fn a_pending_timer_costs_40_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 24);
        assert_eq!(std::mem::size_of::<Entry>(), 16);
    }

    #[test]
    fn a_reused_slot_does_not_answer_for_the_old_key() {
        let mut heap = TimerHeap::default();
        let t0 = Instant::now();
        let old = heap.insert(t0, Waker::noop().clone());
        let mut wakers = Vec::new();
        heap.fire_due(t0, &mut wakers);
        let _ = heap.cancel(old);
        let new = heap.insert(t0 + Duration::from_secs(1), Waker::noop().clone());
        assert_eq!(old.slot, new.slot);
        assert_ne!(old, new);
        assert!(heap.cancel(old).is_none());
        assert_eq!(heap.len(), 1);
        assert!(heap.poll(new, Waker::noop()).0.is_pending());
    }

    /// Wakers that record their index when woken.
    fn recording_wakers(n: usize) -> (Vec<Waker>, std::sync::Arc<std::sync::Mutex<Vec<usize>>>) {
        use std::sync::{Arc, Mutex};
        use std::task::Wake;
        struct Record(usize, Arc<Mutex<Vec<usize>>>);
        impl Wake for Record {
            fn wake(self: Arc<Self>) {
                self.1.lock().unwrap().push(self.0);
            }
        }
        let woken = Arc::new(Mutex::new(Vec::new()));
        let wakers = (0..n)
            .map(|i| Waker::from(Arc::new(Record(i, woken.clone()))))
            .collect();
        (wakers, woken)
    }
}
