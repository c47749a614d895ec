//! The bookkeeping behind `TestScope`'s spawns: which tasks are still alive,
//! whether anything can still wake them, and whether one panicked.
//!
//! Each task spawned through a scope is wrapped in [`Tracked`], which
//!
//! - registers an [`Entry`] (name, spawn location) that lives exactly as
//!   long as the task's future;
//! - polls the future with a *counted* waker: the entry knows how many of
//!   the task's wakers are alive outside the task. A pending task none of
//!   whose wakers is alive, and which is not queued, can never run again:
//!   `run_test` reports it as leaked at once instead of waiting for its
//!   timeout (a waker that is woken dispatches the task before it is
//!   dropped, so "no waker and not queued" is never a transient state);
//! - catches a panic of the future to fail the test, then resumes it, so the
//!   task's `Task` still resolves to the panic.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};

use super::scheduler::Attribution;

/// The live tasks of one test scope and the panics of finished ones.
#[derive(Default)]
pub(crate) struct Registry {
    entries: Mutex<BTreeMap<u64, Arc<Entry>>>,
    failures: Mutex<Vec<String>>,
    next_id: AtomicU64,
}

/// One live task spawned through a scope.
pub(crate) struct Entry {
    id: u64,
    name: Option<Arc<str>>,
    location: &'static Location<'static>,
    background: bool,
    polled: AtomicBool,
    /// Counted wakers alive (see the module docs).
    live_wakers: AtomicUsize,
    /// The task's own waker, to wake it for cancellation at the end.
    waker: Mutex<Option<Waker>>,
    registry: Weak<Registry>,
}

/// A snapshot of a live task, for reports.
#[derive(Debug, Clone)]
pub(crate) struct PendingTask {
    pub(crate) description: String,
    /// Nothing can wake it any more: it will never complete.
    pub(crate) stuck: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// Wraps `future` in a tracked future registered here.
    pub(crate) fn track<F: Future>(
        self: &Arc<Self>,
        name: Option<Arc<str>>,
        location: &'static Location<'static>,
        background: bool,
        future: F,
    ) -> Tracked<F> {
        let entry = Arc::new(Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            name,
            location,
            background,
            polled: AtomicBool::new(false),
            live_wakers: AtomicUsize::new(0),
            waker: Mutex::new(None),
            registry: Arc::downgrade(self),
        });
        lock(&self.entries).insert(entry.id, entry.clone());
        Tracked {
            future: Box::pin(future),
            entry,
            counted: Weak::new(),
        }
    }

    /// The first recorded panic of a tracked task, if any.
    pub(crate) fn first_failure(&self) -> Option<String> {
        lock(&self.failures).first().cloned()
    }

    /// The live foreground tasks, in spawn order.
    pub(crate) fn pending_foreground(&self) -> Vec<PendingTask> {
        lock(&self.entries)
            .values()
            .filter(|entry| !entry.background)
            .map(|entry| PendingTask {
                description: entry.to_string(),
                stuck: entry.polled.load(Ordering::Acquire)
                    && entry.live_wakers.load(Ordering::Acquire) == 0,
            })
            .collect()
    }

    /// Wakes every live task (to have it cancelled by a closing dispatcher).
    pub(crate) fn wake_all(&self) {
        let entries: Vec<_> = lock(&self.entries).values().cloned().collect();
        for entry in entries {
            let waker = lock(&entry.waker).take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "task '{name}'")?,
            None => f.write_str("unnamed task")?,
        }
        write!(f, " (spawned at {})", self.location)
    }
}

/// A scope task's future (see the module docs).
pub(crate) struct Tracked<F: Future> {
    future: Pin<Box<F>>,
    entry: Arc<Entry>,
    /// The counted waker handed to the future last time, while it is alive.
    counted: Weak<CountedWaker>,
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let entry = &this.entry;
        let replaced = {
            let mut stored = lock(&entry.waker);
            match &mut *stored {
                Some(waker) if waker.will_wake(cx.waker()) => None,
                stored => stored.replace(cx.waker().clone()),
            }
        };
        drop(replaced);
        let counted = match this.counted.upgrade() {
            Some(counted) if counted.inner.will_wake(cx.waker()) => counted,
            _ => {
                let counted = CountedWaker::new(cx.waker().clone(), entry.clone());
                this.counted = Arc::downgrade(&counted);
                counted
            }
        };
        let waker = Waker::from(counted);
        let mut inner_cx = Context::from_waker(&waker);
        let _attribution = Attribution::enter(entry.background, entry.name.clone());
        let polled = catch_unwind(AssertUnwindSafe(|| {
            this.future.as_mut().poll(&mut inner_cx)
        }));
        entry.polled.store(true, Ordering::Release);
        match polled {
            Ok(poll) => poll,
            Err(payload) => {
                let message = crate::panic::payload_message(&*payload).unwrap_or("(no message)");
                if let Some(registry) = entry.registry.upgrade() {
                    lock(&registry.failures).push(format!("{entry} panicked: {message}"));
                }
                resume_unwind(payload)
            }
        }
    }
}

impl<F: Future> Drop for Tracked<F> {
    fn drop(&mut self) {
        if let Some(registry) = self.entry.registry.upgrade() {
            let removed = lock(&registry.entries).remove(&self.entry.id);
            drop(removed);
        }
    }
}

/// A waker of a tracked task, counted in its entry while alive.
struct CountedWaker {
    inner: Waker,
    entry: Arc<Entry>,
}

impl CountedWaker {
    fn new(inner: Waker, entry: Arc<Entry>) -> Arc<Self> {
        entry.live_wakers.fetch_add(1, Ordering::AcqRel);
        Arc::new(CountedWaker { inner, entry })
    }
}

impl Wake for CountedWaker {
    fn wake(self: Arc<Self>) {
        // The task is dispatched before this waker is dropped (and the count
        // decremented): see the module docs.
        self.inner.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.inner.wake_by_ref();
    }
}

impl Drop for CountedWaker {
    fn drop(&mut self) {
        self.entry.live_wakers.fetch_sub(1, Ordering::AcqRel);
    }
}
