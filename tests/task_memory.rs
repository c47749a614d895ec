//! What spawning allocates, counted by a counting global allocator: a
//! pending task of an empty future is one block of 88 bytes, `Send` or not;
//! a larger future costs its own size and 88 bytes; a name costs one more
//! block; and everything is freed once the tasks are gone.

#![allow(unsafe_code)] // the counting allocator (one `unsafe impl`)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Arc, Mutex};

use dispatchers::{Dispatch, Dispatcher, Runnable, Task, TaskBuilder};

/// The system allocator, counting what the calling thread allocates and
/// frees while [`count`] runs.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Blocks allocated while counting.
    static BLOCKS: Cell<usize> = const { Cell::new(0) };
    /// Bytes allocated minus bytes freed while counting.
    static BYTES: Cell<isize> = const { Cell::new(0) };
}

/// Records an allocation (`delta > 0`, `block`) or a deallocation.
fn record(delta: isize, block: bool) {
    let _ = COUNTING.try_with(|counting| {
        if counting.get() {
            let _ = BYTES.try_with(|bytes| bytes.set(bytes.get() + delta));
            if block {
                let _ = BLOCKS.try_with(|blocks| blocks.set(blocks.get() + 1));
            }
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; the counters only observe (and
// are constant-initialised thread-locals without destructors, which never
// allocate).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let ptr = unsafe { System.alloc(layout) };
        record(layout.size() as isize, true);
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        record(-(layout.size() as isize), false);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        record(new_size as isize - layout.size() as isize, true);
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What `f` allocated on this thread: (blocks, net bytes).
fn count<T>(f: impl FnOnce() -> T) -> (T, (usize, isize)) {
    BLOCKS.with(|blocks| blocks.set(0));
    BYTES.with(|bytes| bytes.set(0));
    COUNTING.with(|counting| counting.set(true));
    let output = f();
    COUNTING.with(|counting| counting.set(false));
    (output, (BLOCKS.with(Cell::get), BYTES.with(Cell::get)))
}

/// A dispatcher that keeps its runnables (room reserved up front) until
/// the test runs them, on the test's thread.
struct Keep(Mutex<Vec<Runnable>>);

impl Dispatch for Keep {
    fn dispatch(&self, runnable: Runnable) {
        self.0.lock().unwrap().push(runnable);
    }

    fn is_current_thread(&self) -> bool {
        true
    }
}

#[test]
fn a_pending_task_is_one_block_of_88_bytes() {
    let keep = Arc::new(Keep(Mutex::new(Vec::with_capacity(8))));
    let dispatcher = Dispatcher::from_arc(keep.clone());
    let name: Arc<str> = Arc::from("named");
    let mut tasks: Vec<Task<()>> = Vec::with_capacity(8);
    let mut total = 0;

    let (task, counted) = count(|| dispatcher.spawn(async {}));
    assert_eq!(counted, (1, 88), "a Send task");
    tasks.push(task);
    total += counted.1;

    // A thread's first `!Send` spawn also opens the thread's mailbox (where
    // a runnable found on another thread is sent back), once per thread.
    let (opening, (_, mailbox)) = count(|| dispatcher.spawn_local(async {}));
    assert!(mailbox > 88, "the first one opens the mailbox");
    let (task, counted) = count(|| dispatcher.spawn_local(async {}));
    assert_eq!(counted, (1, 88), "a !Send task: its home thread is inline");
    tasks.push(task);
    total += counted.1;

    let (task, counted) = count(|| {
        TaskBuilder::new()
            .name(name.clone())
            .spawn(&dispatcher, async {})
    });
    assert_eq!(counted, (2, 88 + 32), "a named task: its name is boxed");
    tasks.push(task);
    total += counted.1;

    let captured = [7u64; 8];
    let future = async move {
        std::hint::black_box(&captured);
    };
    let size = std::mem::size_of_val(&future) as isize;
    let (task, counted) = count(|| dispatcher.spawn(future));
    assert_eq!(counted, (1, size + 88), "a future of {size} bytes");
    tasks.push(task);
    total += counted.1;

    // Running the tasks and dropping their handles frees every byte (but
    // the thread's mailbox).
    tasks.push(opening);
    total += 88;
    let ((), (_, freed)) = count(|| {
        let runnables: Vec<Runnable> = keep.0.lock().unwrap().drain(..).collect();
        for runnable in runnables {
            runnable.run();
        }
        for task in tasks.drain(..) {
            assert!(task.is_finished());
            drop(task);
        }
    });
    assert_eq!(freed, -total);
}
