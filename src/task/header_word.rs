//! [`HeaderWord`]: a task's metadata in one atomic word (see `header.rs`),
//! and the second of the two places this crate uses `unsafe` (the first is
//! `spawn.rs`): the word holds either the home thread's number or the
//! address of a boxed name, so reading the name turns an integer back into
//! a pointer.

use std::fmt;
use std::marker::PhantomData;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::header::Home;

/// The low bits of a [`HeaderWord`] that hold the header's flags.
const FLAGS: usize = 0b0111;
/// Set when the rest of the word is the address of an [`Extra`]; clear when
/// it is a home thread's number (0: none).
const BOXED: usize = 0b1000;
/// The bits below the address or the number.
const LOW_BITS: usize = FLAGS | BOXED;
/// How far the home thread's number is shifted.
const HOME_SHIFT: u32 = LOW_BITS.count_ones();

/// What a task rarely has, boxed: a name, and then its home thread with it.
/// Aligned so that its address leaves [`LOW_BITS`] free.
#[repr(align(16))]
struct Extra {
    name: Option<Arc<str>>,
    home: Option<Home>,
}

/// One atomic word of a [`TaskHeader`](super::header::TaskHeader): its flags (3 bits, which only the
/// header interprets, all clear at first) and either the home thread's
/// number inline, or, for a named task (or a thread number too large for
/// the word), the address of a boxed [`Extra`].
///
/// An integer rather than a pointer, so that a flag is set with one
/// `fetch_or`; the box's provenance is exposed when it is made and taken
/// back when it is read. Only the flags ever change: the rest is written
/// once, by [`new`](Self::new), before the task exists for anyone else, and
/// an [`Extra`] is freed only by the word's drop. That is the whole safety
/// argument of its two `unsafe` blocks.
pub(super) struct HeaderWord {
    word: AtomicUsize,
    /// The word owns its [`Extra`]: `Send`/`Sync` as a `Box<Extra>` is.
    _owns: PhantomData<Box<Extra>>,
}

impl HeaderWord {
    pub(super) fn new(name: Option<Arc<str>>, home: Option<Home>) -> Self {
        let inline = match (&name, home) {
            (Some(_), _) => None,
            (None, None) => Some(0),
            (None, Some(home)) => usize::try_from(home.get().get())
                .ok()
                .filter(|number| number.leading_zeros() >= HOME_SHIFT),
        };
        let word = match inline {
            Some(number) => number << HOME_SHIFT,
            None => Box::into_raw(Box::new(Extra { name, home })).expose_provenance() | BOXED,
        };
        HeaderWord {
            word: AtomicUsize::new(word),
            _owns: PhantomData,
        }
    }

    /// The boxed part, if there is one. The address and number bits never
    /// change, so any load sees them as [`new`](Self::new) wrote them.
    #[allow(unsafe_code)]
    #[inline]
    fn extra(&self) -> Option<&Extra> {
        let word = self.word.load(Ordering::Relaxed);
        if word & BOXED == 0 {
            return None;
        }
        let extra = ptr::with_exposed_provenance::<Extra>(word & !LOW_BITS);
        // SAFETY: with `BOXED` set, the word is the exposed address of a
        // `Box<Extra>` plus low bits (the type's docs), freed only by `drop`,
        // which `&self` rules out for as long as the returned reference lives.
        Some(unsafe { &*extra })
    }

    #[inline]
    pub(super) fn name(&self) -> Option<&Arc<str>> {
        self.extra()?.name.as_ref()
    }

    #[inline]
    pub(super) fn home(&self) -> Option<Home> {
        let word = self.word.load(Ordering::Relaxed);
        if word & BOXED != 0 {
            return self.extra()?.home;
        }
        let number = u64::try_from(word >> HOME_SHIFT).ok()?;
        std::num::NonZeroU64::new(number).map(Home::from_number)
    }

    /// The flags, loaded with `order`.
    #[inline]
    pub(super) fn flags(&self, order: Ordering) -> u8 {
        (self.word.load(order) & FLAGS) as u8
    }

    /// Sets the flags in `flags` with one `fetch_or` of ordering `order`;
    /// returns the flags from before.
    #[inline]
    pub(super) fn set_flags(&self, flags: u8, order: Ordering) -> u8 {
        debug_assert_eq!(usize::from(flags) & !FLAGS, 0, "flags fit their bits");
        (self.word.fetch_or(usize::from(flags) & FLAGS, order) & FLAGS) as u8
    }
}

impl Drop for HeaderWord {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        let word = *self.word.get_mut();
        if word & BOXED != 0 {
            let extra = ptr::with_exposed_provenance_mut::<Extra>(word & !LOW_BITS);
            // SAFETY: with `BOXED` set, the word is the exposed address of a
            // `Box<Extra>` plus low bits (the type's docs); this is its only
            // drop.
            drop(unsafe { Box::from_raw(extra) });
        }
    }
}

impl fmt::Debug for HeaderWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderWord")
            .field("flags", &self.flags(Ordering::Relaxed))
            .field("name", &self.name())
            .field("home", &self.home())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::num::NonZeroU64;

    use super::*;

    #[test]
    fn the_header_word_keeps_its_parts_while_the_flags_change() {
        let name: Arc<str> = Arc::from("worker");
        let home = Home::current();
        let huge = Home::from_number(NonZeroU64::MAX);
        let words = [
            (None, None),
            (None, Some(home)),
            (Some(name.clone()), None),
            (Some(name.clone()), Some(home)),
            (None, Some(huge)),
        ];
        for (name, home) in words {
            let word = HeaderWord::new(name.clone(), home);
            let check = |flags: u8| {
                assert_eq!(word.flags(Ordering::Relaxed), flags);
                assert_eq!(word.name(), name.as_ref());
                assert_eq!(word.home(), home);
            };
            check(0);
            assert_eq!(word.set_flags(0b101, Ordering::AcqRel), 0);
            check(0b101);
            assert_eq!(word.set_flags(0b011, Ordering::AcqRel), 0b101);
            check(0b111);
        }
        assert_eq!(Arc::strong_count(&name), 1, "the boxed names were dropped");
    }

    #[test]
    fn threads_have_distinct_homes() {
        let here = Home::current();
        assert_eq!(here, Home::current());
        let there = std::thread::spawn(Home::current).join().unwrap();
        assert_ne!(here, there);
    }
}
