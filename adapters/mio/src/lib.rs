//! `Dispatchers.Main` for a [mio](https://docs.rs/mio) event loop.
//!
//! [`MioHost`] turns the thread that polls a [`mio::Poll`] into a host of the
//! [`dispatchers`] crate: futures spawned on its Main dispatcher (from any
//! thread) run on the loop's thread, `delay` sleeps on the loop's own timers,
//! and `with_context` hops to background dispatchers and comes back.
//!
//! The loop needs three additions:
//!
//! 1. create a [`MioHost`] on a token reserved for it (it registers a
//!    [`mio::Waker`] there) and, at start-up, [`register_as_main`](MioHost::register_as_main);
//! 2. poll with [`next_timeout`](MioHost::next_timeout) (or
//!    [`next_timeout_before`](MioHost::next_timeout_before) your next tick),
//!    and skip the host's events ([`is_wake_event`](MioHost::is_wake_event));
//! 3. call [`run_pending`](MioHost::run_pending) after every poll.
//!
//! # Example
//!
//! ```
//! use dispatchers::{Budget, delay, spawn_on_main};
//! use dispatchers_mio::MioHost;
//! use mio::{Events, Poll, Token};
//! use std::time::Duration;
//!
//! const WAKE: Token = Token(0); // reserved for the host
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut poll = Poll::new()?;
//! let host = MioHost::new(poll.registry(), WAKE)?;
//! host.register_as_main()?; // before the first use of Dispatchers::main()
//!
//! // Any thread can run code on the loop's thread:
//! let loop_thread = std::thread::current().id();
//! let task = std::thread::spawn(move || {
//!     spawn_on_main(async move {
//!         delay(Duration::from_millis(20)).await; // on the loop's timers
//!         std::thread::current().id() == loop_thread
//!     })
//! })
//! .join()
//! .expect("the spawning thread panicked");
//!
//! // The loop: poll no longer than the host allows, then run what is due.
//! let mut events = Events::with_capacity(256);
//! while !task.is_finished() {
//!     poll.poll(&mut events, host.next_timeout())?;
//!     for event in events.iter() {
//!         if host.is_wake_event(event) {
//!             continue; // its tasks run below
//!         }
//!         // ... accept, read and write your sockets
//!     }
//!     // A game can cap this: Budget::unlimited().max_time(Duration::from_millis(2)).
//!     host.run_pending(Budget::unlimited());
//! }
//! assert!(dispatchers::block_on(task)?, "the task ran on the loop's thread");
//! # Ok(())
//! # }
//! ```
//!
//! A fixed-rate loop (a game server ticking at 20 Hz) polls with
//! `Some(host.next_timeout_before(next_tick))` instead and ticks when
//! `next_tick` has passed; the repository's `game_server` example is a
//! complete one.
//!
//! # Timer precision
//!
//! On Linux and Android the host wakes the poll at `delay` deadlines with a
//! timerfd registered on its token, armed with nanosecond precision by
//! [`next_timeout`](MioHost::next_timeout): `delay`s are as precise as the
//! loop thread's scheduling. Elsewhere the poll's timeout ends the sleep, and
//! mio rounds it up to whole milliseconds: `delay`s resume up to about a
//! millisecond late.
//!
//! # Portability
//!
//! Wherever mio has a [`mio::Waker`] (epoll, kqueue, IOCP, `poll(2)`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod host;
mod timer;

pub use host::{DEFAULT_PRIORITY, MioHost};
