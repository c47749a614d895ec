//! The timer heap: deadlines ordered by (deadline, sequence), with O(log n)
//! insert and O(1) cancel (the heap entry goes stale and is skipped or
//! compacted away).
//!
//! Memory: a heap entry (deadline, sequence, slot) is 32 bytes and a slot
//! (sequence, state) 24, so a pending timer costs 56 bytes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::{Poll, Waker};
use std::time::Instant;

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

/// A timer's slot: `seq == 0` when free; otherwise `waker` is `Some` while
/// the timer waits and `None` once it fired. 24 bytes (`Option<Waker>` uses
/// the waker's niche).
#[derive(Debug)]
struct Slot {
    seq: u64,
    waker: Option<Waker>,
}

/// Timers of one thread (a host loop's, or the fallback timer thread's).
#[derive(Debug, Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    waiting: usize,
    next_seq: u64,
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
        self.heap.push(Reverse((deadline, seq, slot)));
        self.waiting += 1;
        TimerKey { slot, seq }
    }

    /// `Ready` once the timer fired (the key is then spent); otherwise
    /// remembers `waker` and returns `Pending`.
    pub(crate) fn poll(&mut self, key: TimerKey, waker: &Waker) -> Poll<()> {
        let Some(slot) = self.slot_mut(key) else {
            return Poll::Ready(());
        };
        match &mut slot.waker {
            Some(current) => {
                if !current.will_wake(waker) {
                    current.clone_from(waker);
                }
                Poll::Pending
            }
            None => {
                self.release(key.slot);
                Poll::Ready(())
            }
        }
    }

    /// Forgets the timer; its waker is dropped and never woken.
    pub(crate) fn cancel(&mut self, key: TimerKey) {
        let Some(slot) = self.slot_mut(key) else {
            return;
        };
        if slot.waker.is_some() {
            self.waiting -= 1;
        }
        self.release(key.slot);
        self.compact_if_sparse();
    }

    /// Marks every timer due at `now` as fired and collects the wakers to wake
    /// (outside the lock this heap lives in); returns how many fired.
    pub(crate) fn fire_due(&mut self, now: Instant, wakers: &mut Vec<Waker>) -> usize {
        let mut fired = 0;
        while let Some(&Reverse((deadline, seq, slot))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            let entry = &mut self.slots[slot as usize];
            if entry.seq != seq {
                continue;
            }
            if let Some(waker) = entry.waker.take() {
                self.waiting -= 1;
                fired += 1;
                wakers.push(waker);
            }
        }
        fired
    }

    /// The earliest deadline of a waiting timer.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((deadline, seq, slot))) = self.heap.peek() {
            let entry = &self.slots[slot as usize];
            if entry.seq == seq && entry.waker.is_some() {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Fires every waiting timer at once (a host shutting down): their tasks
    /// wake and are cancelled by the closed host rather than left hanging.
    pub(crate) fn fire_all(&mut self, wakers: &mut Vec<Waker>) {
        for slot in &mut self.slots {
            if let Some(waker) = slot.waker.take() {
                wakers.push(waker);
            }
        }
        self.waiting = 0;
        self.heap.clear();
    }

    /// How many timers are waiting to fire.
    pub(crate) fn len(&self) -> usize {
        self.waiting
    }

    fn slot_mut(&mut self, key: TimerKey) -> Option<&mut Slot> {
        self.slots
            .get_mut(key.slot as usize)
            .filter(|slot| slot.seq == key.seq)
    }

    fn release(&mut self, slot: u32) {
        let entry = &mut self.slots[slot as usize];
        entry.waker = None;
        entry.seq = 0;
        self.free.push(slot);
    }

    /// Drops stale heap entries once they outnumber the live ones, so that a
    /// `timeout` that usually completes early doesn't grow the heap.
    fn compact_if_sparse(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 2 * self.waiting {
            let slots = &self.slots;
            self.heap
                .retain(|Reverse((_, seq, slot))| slots[*slot as usize].seq == *seq);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

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
        assert!(heap.poll(first, Waker::noop()).is_ready());
        assert!(heap.poll(tie, Waker::noop()).is_ready());
        assert!(heap.poll(later, Waker::noop()).is_pending());
        assert_eq!(heap.len(), 1);
    }

    #[test]
    fn cancel_forgets_and_compacts() {
        let mut heap = TimerHeap::default();
        let t0 = Instant::now();
        let keys: Vec<_> = (0..1000)
            .map(|i| heap.insert(t0 + Duration::from_secs(60 + i), Waker::noop().clone()))
            .collect();
        for key in &keys[1..] {
            heap.cancel(*key);
        }
        assert_eq!(heap.len(), 1);
        assert!(
            heap.heap.len() <= 130,
            "stale entries compacted: {}",
            heap.heap.len()
        );
        assert_eq!(heap.next_deadline(), Some(t0 + Duration::from_secs(60)));
        let mut wakers = Vec::new();
        assert_eq!(
            heap.fire_due(t0 + Duration::from_secs(3600), &mut wakers),
            1
        );
    }

    #[test]
    fn a_pending_timer_costs_56_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 24);
        assert_eq!(std::mem::size_of::<Reverse<(Instant, u64, u32)>>(), 32);
    }

    #[test]
    fn a_reused_slot_does_not_answer_for_the_old_key() {
        let mut heap = TimerHeap::default();
        let t0 = Instant::now();
        let old = heap.insert(t0, Waker::noop().clone());
        heap.cancel(old);
        let new = heap.insert(t0 + Duration::from_secs(1), Waker::noop().clone());
        assert_ne!(old, new);
        heap.cancel(old);
        assert_eq!(heap.len(), 1);
        assert!(heap.poll(new, Waker::noop()).is_pending());
    }
}
