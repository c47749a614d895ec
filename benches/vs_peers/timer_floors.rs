//! The floors of timer insertion: the least a timer store does per timer,
//! for each of the two ways to keep one, timed in the same rounds as ours
//! and tokio's (see BENCHMARKS.md, "Inserting 1M timers"). Each runs in one
//! poll of our task, so that the waker it clones is a real task's.
//!
//! - **Outside the timer future** (ours): the waker cloned and pushed with
//!   its deadline (24 bytes) onto a vector that grows from empty; no
//!   ordering, no lookup.
//! - **Inside the timer future** (intrusive, tokio's design): the waker
//!   cloned into the future's own entry (memory faulted in beforehand, as
//!   the bench does for every contender's futures), and the entry linked at
//!   the head of its slot in a timing wheel of tokio's shape. Under the
//!   store's lock: a `Send` timer future may be dropped on another thread
//!   while linked, and must then unlink itself before its memory goes, so
//!   every change the loop makes to the same lists takes the lock too. And
//!   with no lock, which only a timer future that never leaves the loop's
//!   thread could do. No reference to the store is cloned (tokio's `Sleep`
//!   holds one, and so would any `Send` timer future that can unlink itself
//!   from another thread): the floors leave it out, in the design's favour.
//!
//! Links are indices into the entries' storage, standing in for pointers.

use std::sync::Mutex;
use std::task::{Context, Waker};
use std::time::Instant;

use crate::timers::{Inserted, in_our_task, timed};

/// The outside store's floor (see the module docs).
pub fn outside_store(deadlines: &[Instant]) -> Inserted {
    in_our_task(deadlines, |deadlines, cx| {
        let epoch = deadlines[0];
        let mut store: Vec<(u64, Waker)> = Vec::new();
        let inserted = timed(deadlines.len(), || {
            for &deadline in deadlines {
                let nanos = deadline.saturating_duration_since(epoch).as_nanos() as u64;
                store.push((std::hint::black_box(nanos), cx.waker().clone()));
            }
        });
        drop(store);
        inserted
    })
}

/// The intrusive store's floor, with the wheel under a lock (see the module
/// docs).
pub fn intrusive_locked(deadlines: &[Instant]) -> Inserted {
    in_our_task(deadlines, |deadlines, cx| {
        intrusive(deadlines, cx, &Mutex::new(Wheel::new()))
    })
}

/// The intrusive store's floor with no lock (see the module docs).
pub fn intrusive_unlocked(deadlines: &[Instant]) -> Inserted {
    in_our_task(deadlines, |deadlines, cx| {
        intrusive(deadlines, cx, Wheel::new())
    })
}

/// Times the insertion of one entry per deadline, into storage faulted in
/// beforehand, linked into `wheel`.
fn intrusive(deadlines: &[Instant], cx: &Context<'_>, mut wheel: impl Link) -> Inserted {
    let epoch = Instant::now();
    let mut entries: Vec<Entry> = Vec::with_capacity(deadlines.len());
    entries.extend(deadlines.iter().map(|_| Entry::default()));
    entries.clear();
    let inserted = timed(deadlines.len(), || {
        for &deadline in deadlines {
            let tick = deadline.saturating_duration_since(epoch).as_millis() as u64;
            let index = entries.len();
            entries.push(Entry {
                tick: std::hint::black_box(tick),
                waker: Some(cx.waker().clone()),
                ..Entry::default()
            });
            wheel.link(&mut entries, index);
        }
    });
    drop(entries);
    inserted
}

/// How an insertion reaches the wheel: under its lock, or directly.
trait Link {
    /// Links `entries[index]` at the head of its slot.
    fn link(&mut self, entries: &mut [Entry], index: usize);
}

impl Link for &Mutex<Wheel> {
    fn link(&mut self, entries: &mut [Entry], index: usize) {
        let mut wheel = self.lock().unwrap_or_else(|e| e.into_inner());
        wheel.link(entries, index);
    }
}

/// No entry: the end of a slot's list.
const NIL: usize = usize::MAX;
/// tokio's wheel: six levels of 64 slots, one millisecond a tick.
const LEVELS: usize = 6;
const SLOT_BITS: usize = 6;
const SLOTS: usize = 1 << SLOT_BITS;

/// A timer's entry as it would sit inside its future.
struct Entry {
    /// The deadline, in milliseconds since the wheel's start.
    tick: u64,
    /// Kept until the timer fires, which it does not in this bench.
    #[expect(dead_code, reason = "stored as a timer stores it; never woken here")]
    waker: Option<Waker>,
    /// The neighbours in the slot's doubly linked list.
    prev: usize,
    next: usize,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            tick: 0,
            waker: None,
            prev: NIL,
            next: NIL,
        }
    }
}

/// The heads of the wheel's slot lists.
struct Wheel {
    heads: [[usize; SLOTS]; LEVELS],
    /// The tick the wheel has advanced to.
    elapsed: u64,
}

impl Link for Wheel {
    /// As tokio's wheel picks the slot: the level of the highest bit in
    /// which the deadline differs from the wheel's time.
    fn link(&mut self, entries: &mut [Entry], index: usize) {
        let tick = entries[index].tick;
        let differs = (self.elapsed ^ tick) | (SLOTS as u64 - 1);
        let significant = 63 - differs.leading_zeros() as usize;
        let level = (significant / SLOT_BITS).min(LEVELS - 1);
        let slot = (tick >> (level * SLOT_BITS)) as usize % SLOTS;
        let head = std::mem::replace(&mut self.heads[level][slot], index);
        entries[index].next = head;
        if head != NIL {
            entries[head].prev = index;
        }
    }
}

impl Wheel {
    fn new() -> Self {
        Wheel {
            heads: [[NIL; SLOTS]; LEVELS],
            elapsed: 0,
        }
    }
}
