//! The [`Delay`] future and the [`timeout`] combinator.

use std::error::Error;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::heap::TimerKey;
use super::service::{self, TimerService, Until};

/// Completes after `duration`, measured on the timers of the thread that first
/// polls it (see the [module docs](crate::time)); on a test dispatcher, in
/// virtual time. A zero duration completes at once. A duration too long for
/// an [`Instant`] (such as `Duration::MAX`) never completes, as kotlinx's
/// `delay(Long.MAX_VALUE)`: `timeout(Duration::MAX, ..)` means no timeout.
///
/// ```
/// # use dispatchers::{delay, block_on};
/// # use std::time::Duration;
/// block_on(delay(Duration::from_millis(1)));
/// ```
pub fn delay(duration: Duration) -> Delay {
    Delay {
        target: Target::After(duration),
        registration: None,
    }
}

/// Completes at `deadline` (see [`delay`]).
pub fn delay_until(deadline: Instant) -> Delay {
    Delay {
        target: Target::At(deadline),
        registration: None,
    }
}

/// The future of [`delay`] and [`delay_until`]; dropping it cancels the timer.
///
/// If the host whose timers it waits on shuts down first, the next poll moves
/// the same deadline to the timers of the thread polling it (a delay never
/// completes early because its host went away). Moved between real time and
/// a test dispatcher's virtual clock, it keeps the time it had left instead.
#[must_use = "a Delay does nothing unless awaited"]
pub struct Delay {
    target: Target,
    registration: Option<(Arc<dyn TimerService>, TimerKey)>,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    /// Resolved against the timers' clock on first poll.
    After(Duration),
    At(Instant),
    /// A duration too long for an `Instant`: never completes.
    Never,
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some((timers, key)) = &self.registration {
            if timers.is_open() && timers.serves_current_poll() {
                if let Some(ready) = timers.poll(*key, cx.waker()) {
                    if ready.is_ready() {
                        self.registration = None;
                    }
                    return ready;
                }
            }
            // Its host shut down, or it is polled where its loop's timers
            // would not fire it (another thread, a `block_on` blocking the
            // loop): keep the same deadline on this thread's timers (never
            // complete early), or the same time left on another clock.
            let (old, key) = self.registration.take().expect("checked above");
            old.cancel(key);
            let timers = service::current();
            self.keep_time_left(&*old, &*timers);
            return self.register_on(timers, cx);
        }
        let timers = service::current();
        self.register_on(timers, cx)
    }
}

impl Delay {
    /// Resolves the target against `timers` and registers it there, or on
    /// the fallback timers when those cannot take it from here (a loop's
    /// timers polled off its thread, a clock that closed meanwhile).
    fn register_on(&mut self, timers: Arc<dyn TimerService>, cx: &Context<'_>) -> Poll<()> {
        let deadline = match self.target {
            Target::After(duration) => {
                let now = timers.now();
                let Some(deadline) = now.checked_add(duration) else {
                    // Beyond what an `Instant` can hold: never.
                    self.target = Target::Never;
                    return Poll::Pending;
                };
                self.target = Target::At(deadline);
                if deadline <= now {
                    return Poll::Ready(());
                }
                deadline
            }
            Target::At(deadline) => deadline,
            Target::Never => return Poll::Pending,
        };
        let (timers, until) = match timers.insert_until(deadline, cx.waker()) {
            Until::Unreachable => {
                let fallback = service::fallback();
                self.keep_time_left(&*timers, &*fallback);
                let Target::At(deadline) = self.target else {
                    return Poll::Pending;
                };
                let until = fallback.insert_until(deadline, cx.waker());
                (fallback, until)
            }
            until => (timers, until),
        };
        match until {
            Until::Passed => Poll::Ready(()),
            Until::Waiting(key) => {
                self.registration = Some((timers, key));
                Poll::Pending
            }
            Until::Unreachable => unreachable!("the fallback timers take timers from any thread"),
        }
    }

    /// Moving from the `old` timers to the `new` ones: on another clock (a
    /// test dispatcher's virtual one on either side) the same `Instant`
    /// means another time, so the delay keeps the time it had left instead,
    /// and completes neither early nor hours late. Between real clocks it
    /// keeps its deadline (never completes early).
    fn keep_time_left(&mut self, old: &dyn TimerService, new: &dyn TimerService) {
        let Target::At(deadline) = self.target else {
            return;
        };
        if old.is_real_time() && new.is_real_time() {
            return;
        }
        let left = deadline.saturating_duration_since(old.now());
        self.target = new
            .now()
            .checked_add(left)
            .map_or(Target::Never, Target::At);
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        if let Some((timers, key)) = self.registration.take() {
            timers.cancel(key);
        }
    }
}

impl fmt::Debug for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delay")
            .field("target", &self.target)
            .field("registered", &self.registration.is_some())
            .finish()
    }
}

/// [`timeout`] ran out before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl Error for Elapsed {}

/// Runs `future` for at most `duration` (on the same timers as [`delay`]).
///
/// The future is polled first, so one that is ready at once wins even with a
/// zero duration. When time runs out, the future is dropped and
/// `Err(Elapsed)` returned.
///
/// ```
/// # use dispatchers::{delay, timeout, block_on};
/// # use std::time::Duration;
/// let slow = timeout(Duration::from_millis(1), delay(Duration::from_secs(60)));
/// assert!(block_on(slow).is_err());
/// ```
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    race(delay(duration), future).await
}

/// Runs `future` until `deadline` at most (see [`timeout`]).
pub async fn timeout_at<F: Future>(deadline: Instant, future: F) -> Result<F::Output, Elapsed> {
    race(delay_until(deadline), future).await
}

async fn race<F: Future>(mut timer: Delay, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    poll_fn(|cx| {
        if let Poll::Ready(value) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(value));
        }
        match Pin::new(&mut timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
