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
//!   the head of its slot in a timing wheel of tokio's shape.
//!   - *For a `Send` timer future*: one dropped on another thread while
//!     linked must unlink itself before its memory goes, so every change to
//!     the lists, the loop's included, takes the store's lock, and the entry
//!     holds a counted reference to the store, to find it from that thread
//!     (tokio's `Sleep` does both). 48-byte entries.
//!   - *For one that never leaves the loop's thread*: no lock and no
//!     reference. 40-byte entries.
//!
//! All three leave out all else a real timer future does (finding its
//! thread's timers, its own state, reading the clock). They write memory
//! that is not in the cache, so their time grows with the entry's size.
//! Links are indices into the entries' storage, standing in for pointers.

use std::sync::{Arc, Mutex};
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

/// The intrusive store's floor for a `Send` timer future: the wheel under a
/// lock, a counted reference in each entry (see the module docs).
pub fn intrusive_send(deadlines: &[Instant]) -> Inserted {
    in_our_task(deadlines, |deadlines, cx| {
        let store: Store = Arc::new(Mutex::new(Wheel::new()));
        intrusive(deadlines, cx, &*store, || store.clone())
    })
}

/// The intrusive store's floor for a timer future that never leaves the
/// loop's thread: no lock, no reference (see the module docs).
pub fn intrusive_loop_only(deadlines: &[Instant]) -> Inserted {
    in_our_task(deadlines, |deadlines, cx| {
        intrusive(deadlines, cx, Wheel::new(), || ())
    })
}

/// Times the insertion of one entry per deadline, into storage faulted in
/// beforehand, linked into `wheel`; each entry holds what `reference` gives.
fn intrusive<R>(
    deadlines: &[Instant],
    cx: &Context<'_>,
    mut wheel: impl Link,
    reference: impl Fn() -> R,
) -> Inserted {
    let epoch = Instant::now();
    let mut entries: Vec<Entry<R>> = Vec::with_capacity(deadlines.len());
    entries.extend(deadlines.iter().map(|_| Entry::new(0, None, reference())));
    entries.clear();
    let inserted = timed(deadlines.len(), || {
        for &deadline in deadlines {
            let tick = deadline.saturating_duration_since(epoch).as_millis() as u64;
            let index = entries.len();
            let waker = Some(cx.waker().clone());
            entries.push(Entry::new(std::hint::black_box(tick), waker, reference()));
            wheel.link(&mut entries, index);
        }
    });
    drop(entries);
    inserted
}

/// A store as a `Send` timer's entry refers to it.
type Store = Arc<Mutex<Wheel>>;

/// How an insertion reaches the wheel: under its lock, or directly.
trait Link {
    /// Links `entries[index]` at the head of its slot.
    fn link<R>(&mut self, entries: &mut [Entry<R>], index: usize);
}

impl Link for &Mutex<Wheel> {
    fn link<R>(&mut self, entries: &mut [Entry<R>], index: usize) {
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

/// A timer's entry as it would sit inside its future, holding `R` (a
/// counted reference to its store, or nothing).
struct Entry<R> {
    /// The deadline, in milliseconds since the wheel's start.
    tick: u64,
    /// Kept until the timer fires, which it does not in this bench.
    #[expect(dead_code, reason = "stored as a timer stores it; never woken here")]
    waker: Option<Waker>,
    #[expect(dead_code, reason = "held as a timer holds it; never read here")]
    reference: R,
    /// The neighbours in the slot's doubly linked list.
    prev: usize,
    next: usize,
}

impl<R> Entry<R> {
    fn new(tick: u64, waker: Option<Waker>, reference: R) -> Self {
        Entry {
            tick,
            waker,
            reference,
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
    fn link<R>(&mut self, entries: &mut [Entry<R>], index: usize) {
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
