//! [`DeadlineTimer`]: what wakes a [`MioHost`](crate::MioHost)'s poll at the
//! next `delay` deadline, with nanosecond precision.
//!
//! mio's poll timeouts have millisecond resolution (its epoll backend rounds
//! them up), so a poll that sleeps until a deadline returns up to a
//! millisecond late. On Linux and Android the host registers a timerfd
//! (`CLOCK_MONOTONIC`, the clock of [`Instant`](std::time::Instant)) on its own token, next to its
//! `mio::Waker`, and arms it at the next deadline: the poll waits without a
//! timeout and the timerfd ends it. mio keeps the token as the event's user
//! data and nothing else, so two sources on one token are fine, and the
//! timer's events are wake events like the waker's.
//!
//! mio registers sources edge-triggered, and the host never reads the
//! timerfd: an expired, unread timerfd cannot hide a later expiration,
//! because every arming (`timerfd_settime`) resets its expiration count and
//! every expiration notifies epoll anew. An arming that a cancelled `delay`
//! leaves behind at most ends one poll early, which the loop takes as any
//! spurious wake-up (it calls `run_pending`, which finds nothing due).
//!
//! Elsewhere [`DeadlineTimer::new`] fails, and the host keeps mio's
//! millisecond timeouts.

pub(crate) use imp::DeadlineTimer;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use std::cell::Cell;
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    use mio::unix::SourceFd;
    use mio::{Interest, Registry, Token};
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };

    /// A zero `it_value` disarms a timerfd; a zero `it_interval` makes it
    /// one-shot.
    const ZERO: Timespec = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };

    /// A one-shot timerfd registered on the host's token.
    pub(crate) struct DeadlineTimer {
        fd: OwnedFd,
        /// A clone of the `Poll`'s registry, to deregister the timerfd when
        /// the host is dropped (even after the `Poll`).
        registry: Registry,
        /// The deadline the timerfd is armed at, if any.
        armed: Cell<Option<Instant>>,
    }

    impl DeadlineTimer {
        /// A disarmed timer whose expirations arrive as readable events with
        /// `token` on the `Poll` of `registry`.
        pub(crate) fn new(registry: &Registry, token: Token) -> io::Result<DeadlineTimer> {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            let registry = registry.try_clone()?;
            registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
            Ok(DeadlineTimer {
                fd,
                registry,
                armed: Cell::new(None),
            })
        }

        /// Makes the timer expire at `deadline`, which `now` has not reached;
        /// a system call only when it is armed at another deadline.
        ///
        /// On error the poll must keep its own timeout.
        pub(crate) fn arm(&self, deadline: Instant, now: Instant) -> io::Result<()> {
            if self.armed.get() == Some(deadline) {
                return Ok(());
            }
            // Relative to `now`: `Instant` exposes no absolute time. The
            // wait is never zero (zero would disarm the timer).
            let wait = deadline
                .saturating_duration_since(now)
                .max(Duration::from_nanos(1));
            let wait = Timespec::try_from(wait).map_err(|_| io::ErrorKind::InvalidInput)?;
            self.set(wait)?;
            self.armed.set(Some(deadline));
            Ok(())
        }

        /// Disarms the timer (no deadline left); a system call only when it
        /// is armed at a deadline after `now` (a spent one-shot timer has
        /// nothing left to disarm).
        pub(crate) fn disarm(&self, now: Instant) {
            let Some(armed) = self.armed.take() else {
                return;
            };
            if armed > now && self.set(ZERO).is_err() {
                // Still armed: its wake-up will be a spurious one.
                self.armed.set(Some(armed));
            }
        }

        /// `timerfd_settime` of a one-shot expiration `value` from now
        /// (zero: disarmed); resets the expiration count.
        fn set(&self, value: Timespec) -> io::Result<()> {
            let new_value = Itimerspec {
                it_interval: ZERO,
                it_value: value,
            };
            timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &new_value)?;
            Ok(())
        }
    }

    impl Drop for DeadlineTimer {
        fn drop(&mut self) {
            // The registry is a clone, so this works after the `Poll` is
            // dropped too; the timerfd is closed right after.
            let _ = self
                .registry
                .deregister(&mut SourceFd(&self.fd.as_raw_fd()));
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    use std::io;
    use std::time::Instant;

    use mio::{Registry, Token};

    /// No timerfd here: never created, so the host keeps mio's timeouts.
    pub(crate) enum DeadlineTimer {}

    impl DeadlineTimer {
        /// Always [`io::ErrorKind::Unsupported`].
        pub(crate) fn new(_registry: &Registry, _token: Token) -> io::Result<DeadlineTimer> {
            Err(io::ErrorKind::Unsupported.into())
        }

        pub(crate) fn arm(&self, _deadline: Instant, _now: Instant) -> io::Result<()> {
            match *self {}
        }

        pub(crate) fn disarm(&self, _now: Instant) {
            match *self {}
        }
    }
}
