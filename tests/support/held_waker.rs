//! [`HeldWaker`], shared by the test files that include it with
//! `#[path = "support/held_waker.rs"] mod held_waker;`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// A future that stays pending, its waker held by the test (as a channel
/// whose sender is alive would hold it).
#[derive(Clone, Default)]
pub struct HeldWaker(Arc<Mutex<Option<Waker>>>);

impl Future for HeldWaker {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.0.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}
