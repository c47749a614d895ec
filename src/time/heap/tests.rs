//! Unit tests of the timer heap: order, cancellation, slot reuse and the tie wrap.

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
    assert_eq!(heap.poll(first, Waker::noop()), TimerPoll::Ready);
    assert_eq!(heap.poll(tie, Waker::noop()), TimerPoll::Ready);
    assert_ne!(heap.poll(later, Waker::noop()), TimerPoll::Ready);
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
        assert_eq!(heap.poll(*key, Waker::noop()), TimerPoll::Ready);
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
fn equal_deadlines_fire_first_in_first_out_across_the_tie_wrap() {
    let mut heap = TimerHeap::default();
    let at = Instant::now() + Duration::from_millis(5);
    let later = at + Duration::from_millis(1);
    let (wakers, woken) = recording_wakers(12);
    // As after ~4.29e9 inserts: four ties left before the counter wraps.
    heap.next_tie = u32::MAX - 4;
    let mut keys = Vec::new();
    for (i, waker) in wakers.iter().enumerate() {
        let deadline = if i % 3 == 2 { later } else { at };
        keys.push(heap.insert(deadline, waker.clone()));
        if i == 1 {
            // A zombie from before the wrap.
            assert!(heap.cancel(keys[1]).is_some());
        }
    }
    // A zombie from after the wrap.
    assert!(heap.cancel(keys[7]).is_some());
    let (next_tie, entries) = (heap.next_tie, heap.heap.len());
    assert_eq!(heap.len(), 10);
    assert_eq!(heap.next_deadline(), Some(at));
    let mut fired = Vec::new();
    assert_eq!(heap.fire_due(later, &mut fired), 10);
    fired.into_iter().for_each(Waker::wake);
    // Deadline first, then registration order; cancelled ones never.
    assert_eq!(*woken.lock().unwrap(), vec![0, 3, 4, 6, 9, 10, 2, 5, 8, 11]);
    assert!(next_tie < 100, "the ties were renumbered");
    assert_eq!(
        entries, 11,
        "the renumbering dropped the entry of the zombie from before it"
    );
    for (i, key) in keys.iter().enumerate() {
        if i != 1 && i != 7 {
            assert_eq!(heap.poll(*key, Waker::noop()), TimerPoll::Ready);
        }
    }
}

#[test]
fn another_waker_is_stored_by_set_waker() {
    let mut heap = TimerHeap::default();
    let t0 = Instant::now();
    let (wakers, woken) = recording_wakers(2);
    let key = heap.insert(t0 + Duration::from_secs(1), wakers[0].clone());
    assert_eq!(heap.poll(key, &wakers[0]), TimerPoll::Pending);
    assert_eq!(heap.poll(key, &wakers[1]), TimerPoll::NeedsWaker);
    let (poll, replaced) = heap.set_waker(key, wakers[1].clone());
    assert!(poll.is_pending());
    assert!(replaced.is_some_and(|w| w.will_wake(&wakers[0])));
    assert_eq!(heap.poll(key, &wakers[1]), TimerPoll::Pending);
    let mut fired = Vec::new();
    assert_eq!(heap.fire_due(t0 + Duration::from_secs(1), &mut fired), 1);
    fired.into_iter().for_each(Waker::wake);
    assert_eq!(*woken.lock().unwrap(), vec![1]);
    // Fired before the new waker came: it is handed back, unused.
    let (poll, unused) = heap.set_waker(key, wakers[0].clone());
    assert!(poll.is_ready());
    assert!(unused.is_some_and(|w| w.will_wake(&wakers[0])));
    assert_eq!(heap.len(), 0);
    assert_eq!(heap.free.len(), 1, "the fired timer's slot is free");
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
    assert_ne!(heap.poll(late, Waker::noop()), TimerPoll::Ready);
    assert_eq!(heap.next_deadline(), Some(t0 + Duration::from_secs(10)));
    // The zombie's entry was popped: its slot is reused now.
    let again = heap.insert(t0 + Duration::from_secs(3), Waker::noop().clone());
    assert_eq!(again.slot, early.slot);
    assert_eq!(heap.fire_due(t0 + Duration::from_secs(3), &mut wakers), 1);
    assert_ne!(heap.poll(late, Waker::noop()), TimerPoll::Ready);
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
    assert_ne!(heap.poll(new, Waker::noop()), TimerPoll::Ready);
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

#[test]
fn insert_below_reports_and_lowers_the_mark_and_the_next_mark_skips_zombies() {
    let mut heap = TimerHeap::default();
    let t0 = Instant::now();
    let mut mark = Mark::NONE;
    let at = |ms| t0 + Duration::from_millis(ms);
    let (_, below) = heap.insert_below(at(5), Waker::noop().clone(), &mut mark);
    assert!(below, "everything is below no mark");
    let (_, below) = heap.insert_below(at(7), Waker::noop().clone(), &mut mark);
    assert!(!below);
    let (_, below) = heap.insert_below(at(5), Waker::noop().clone(), &mut mark);
    assert!(!below, "equal is not below");
    let (early, below) = heap.insert_below(at(3), Waker::noop().clone(), &mut mark);
    assert!(below);
    assert_eq!(
        heap.next_deadline_marked().1,
        mark,
        "the mark is the next deadline"
    );
    // Cancelled, the earliest becomes a zombie: the next mark is behind it.
    drop(heap.cancel(early));
    let next = heap.next_deadline_marked().1;
    assert_ne!(next, mark);
    let (_, below) = heap.insert_below(at(4), Waker::noop().clone(), &mut { next });
    assert!(below, "4 ms is before the next waiting deadline, 5 ms");
    let mut wakers = Vec::new();
    heap.fire_all(&mut wakers);
    assert_eq!(heap.next_deadline_marked().1, Mark::NONE);
}
