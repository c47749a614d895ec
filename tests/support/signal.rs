//! A one-shot signal shared by test files that include it with
//! `#[path = "support/signal.rs"] mod signal;`: the future keeps the waker of
//! the task that waits, as a channel does, and `send` wakes it.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// The signal: clone it to hand one side to the waiting task.
#[derive(Clone, Default)]
pub struct Signal(Arc<Mutex<(bool, Option<Waker>)>>);

impl Signal {
    /// Sets the signal and wakes the waiting task, outside the lock.
    pub fn send(&self) {
        let waker = {
            let mut state = self.0.lock().unwrap();
            state.0 = true;
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether a task waits on it (holds its waker).
    pub fn has_waiter(&self) -> bool {
        self.0.lock().unwrap().1.is_some()
    }
}

impl Future for Signal {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.0.lock().unwrap();
        if state.0 {
            Poll::Ready(())
        } else {
            state.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}
