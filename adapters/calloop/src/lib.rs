//! The Main dispatcher of a [calloop](https://docs.rs/calloop) event loop,
//! for the [`dispatchers`] crate.
//!
//! [`CalloopHost::insert`] puts one event source into your `EventLoop`. From
//! then on, any thread can run async code on the loop's thread (through the
//! host's [`dispatcher`](CalloopHost::dispatcher), or `spawn_on_main` once
//! [registered](CalloopHost::register_as_main)), and `delay`s polled there
//! sleep on the loop's own timer: no extra thread. Your other sources keep
//! running beside it; each loop iteration gives the dispatcher a bounded
//! [budget](HostSource::with_budget).
//!
//! ```
//! use calloop::EventLoop;
//! use calloop::channel::{Event, channel};
//! use dispatchers::{delay, spawn_on_main};
//! use dispatchers_calloop::CalloopHost;
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut event_loop: EventLoop<Option<String>> = EventLoop::try_new()?;
//! let host = CalloopHost::insert(&event_loop.handle())?;
//! // At start-up, before the first use of `Dispatchers::main()`:
//! host.register_as_main()?;
//!
//! // A source of your own, beside the dispatcher.
//! let (sender, receiver) = channel::<String>();
//! event_loop.handle().insert_source(receiver, |event, _, answer| {
//!     if let Event::Msg(text) = event {
//!         *answer = Some(text);
//!     }
//! })?;
//!
//! // Any thread can run code on the loop's thread.
//! std::thread::spawn(move || {
//!     spawn_on_main(async move {
//!         delay(Duration::from_millis(10)).await; // the loop's own timer
//!         let here = std::thread::current().name().map(str::to_owned);
//!         sender.send(format!("hello from {here:?}")).unwrap();
//!     })
//!     .detach();
//! });
//!
//! let mut answer = None;
//! while answer.is_none() {
//!     event_loop.dispatch(None, &mut answer)?;
//! }
//! assert_eq!(answer.unwrap(), format!("hello from {:?}", std::thread::current().name()));
//! # Ok(())
//! # }
//! ```
//!
//! # Lifetime
//!
//! The [`HostSource`] owns the loop's `HostEngine`, so the engine lives on
//! the loop's thread and dies with the source. Removing the source
//! ([`CalloopHost::remove`]) or dropping the loop shuts the engine down:
//! queued tasks and tasks waiting on its timers are cancelled, and later
//! dispatches are rejected (their `Task` resolves to a cancelled
//! `JoinError`). Dropping the [`CalloopHost`] handle removes nothing. A task
//! that holds a `LoopHandle` keeps the loop's sources alive in a cycle; hold
//! a `WeakLoopHandle` in tasks.
//!
//! # Implementation notes
//!
//! - **Wake-up**: the engine's wake-up closure pings a calloop `Ping`
//!   (an eventfd on Linux); the engine's wake gate coalesces dispatches, so
//!   a burst between two iterations costs one ping
//!   ([`CalloopHost::host_wakes`] counts them).
//! - **Timers**: the source keeps one calloop `Timer` at the engine's
//!   earliest deadline, re-armed in `EventSource::before_sleep`
//!   (`NEEDS_EXTRA_LIFECYCLE_EVENTS`), which calloop calls before every
//!   poll. This sees every `delay` registered on the loop's thread, including
//!   those polled outside the source's callback (a `Main.immediate` task
//!   started from another source's callback), and it never asks calloop to
//!   re-register the source (calloop 0.14 appends the source to its
//!   lifecycle list again on each re-registration). calloop's timer wheel
//!   sets the poll's timeout, which `polling` turns into a timerfd on Linux:
//!   sub-millisecond.
//! - **Measured**: 10,000 `delay`s of 1 to 50 ms started together on Main;
//!   lateness of each resumption past its deadline. Release build, Linux,
//!   2 cores shared with other builds (load about 1.2), three rounds each
//!   (ranges); reproduce with
//!   `cargo test -p dispatchers-calloop --release --test timer_precision -- --ignored --nocapture`:
//!
//!   | way | p50 | p99 | max | max once started |
//!   |---|---|---|---|---|
//!   | `before_sleep` re-arm (this crate) | 18-22 µs | 0.14-3.2 ms | 1.4-3.6 ms | 92-113 µs |
//!   | `Timer` re-armed by `PostAction::Reregister` | 17-19 µs | 0.14-0.25 ms | 1.5-1.6 ms | 72-114 µs |
//!   | one calloop `Timer` source per delay | 0.9-3.4 ms | 17.7-19 ms | 19.5-21 ms | 12-14 ms |
//!
//!   "Max once started" leaves out the delays due in the first 10 ms, while
//!   the 10,000 first polls still fill the queue: timers that fire then wake
//!   tasks that queue behind them (1024 tasks per iteration), which is what
//!   the max and, depending on the run, the p99 measure. Both ways of
//!   driving one timer from the engine's heap are equally precise (the same
//!   wheel and timerfd wake the loop; the p99 difference is that burst,
//!   it moves from run to run). The `before_sleep` way is kept because it
//!   is also *correct* for `delay`s polled outside the source's callback,
//!   which the other way only sees at the next wake-up, and it re-arms
//!   without a re-registration (an `epoll_ctl` each). The milliseconds of one
//!   `Timer` source per delay are consistent with calloop's timer wheel,
//!   which scans all its entries to cancel each fired source it removes.
//! - **Budget**: one iteration runs at most [`DEFAULT_BUDGET`] (1024 tasks,
//!   5 ms); what is left re-pings the loop, so it comes back after its other
//!   sources.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod host;
mod source;

pub use host::{CalloopHost, DEFAULT_LOAD_PRIORITY};
pub use source::{DEFAULT_BUDGET, HostSource};
