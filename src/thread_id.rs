//! A cached `ThreadId` of the calling thread (`thread::current()` clones an
//! `Arc`; this is one thread-local read).

use std::thread::{self, ThreadId};

thread_local! {
    static ID: ThreadId = thread::current().id();
}

/// The calling thread's id.
pub(crate) fn current_thread_id() -> ThreadId {
    ID.try_with(|id| *id)
        .unwrap_or_else(|_| thread::current().id())
}
