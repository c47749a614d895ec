//! The bench binary's global allocator: the system allocator, counting the
//! live bytes requested while a measurement window is open
//! ([`measure_live_bytes`]).
//!
//! Counting is off outside the windows, so the other metrics pay one relaxed
//! load per allocation and never contend on the counter. A window counts
//! what every thread allocates and frees meanwhile: measure with the other
//! threads idle. Bytes are the sizes requested (`Layout::size`), not what
//! malloc rounds them up to. [`trim`] resets the allocator between runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// The counting allocator.
pub struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        new
    }
}

/// Runs `f` with counting on; returns its output and the change in live
/// bytes (allocated minus freed) while it ran, by every thread.
pub fn measure_live_bytes<T>(f: impl FnOnce() -> T) -> (T, isize) {
    let before = LIVE.load(Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let output = f();
    COUNTING.store(false, Ordering::SeqCst);
    (output, LIVE.load(Ordering::SeqCst) - before)
}

/// Starts a counting window by hand, for code that cannot run inside a
/// closure (a future polled by another runtime); [`Window::stop`] ends it.
pub struct Window {
    before: isize,
}

impl Window {
    /// Opens the window.
    pub fn start() -> Self {
        let before = LIVE.load(Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        Window { before }
    }

    /// Closes the window: the change in live bytes since [`start`](Self::start).
    pub fn stop(self) -> isize {
        COUNTING.store(false, Ordering::SeqCst);
        LIVE.load(Ordering::SeqCst) - self.before
    }
}

/// Hands the allocator's free memory back to the system (glibc's
/// `malloc_trim`), so that the next run starts from the same state of the
/// allocator whichever run came before (see `harness::alternate`). A no-op
/// where the system allocator is not glibc's.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            /// glibc: releases free memory from the heaps of every arena.
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: `malloc_trim` takes a plain size, touches only the
        // allocator's own free memory under its locks, and may be called
        // from any thread at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}
