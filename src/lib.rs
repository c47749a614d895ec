//! kotlinx.coroutines-style dispatchers on top of an event loop you already
//! have.
//!
//! A program that owns an event loop it cannot give up (a winit GUI loop, a
//! mio server loop, a calloop loop, a game's tick loop) installs a *host* for
//! that loop; from then on any thread can run async code on the loop's thread
//! with [`spawn_on_main`], hop to a background pool and back with
//! [`with_context`], and sleep on the loop's own timers with [`delay`].
//!
//! # A tour
//!
//! A hand-written loop uses [`LoopHost`] (the adapter crates
//! `dispatchers-mio`, `dispatchers-calloop` and `dispatchers-winit` do the
//! same for their hosts):
//!
//! ```
//! use dispatchers::{Budget, Dispatchers, LoopHost, delay, spawn_on_main, yield_now};
//! use std::time::Duration;
//!
//! let host = LoopHost::new("game");
//! # let _guard = Dispatchers::set_thread_main(host.dispatcher());
//! // At start-up, before the first use of Main (load_priority 0):
//! host.register_as_main(0).ok();
//!
//! // From any thread:
//! let greeting = std::thread::spawn(|| {
//!     spawn_on_main(async {
//!         delay(Duration::from_millis(10)).await; // the loop's own timers
//!         yield_now().await;                      // back of the loop's queue
//!         format!("hello from {:?}", std::thread::current().name())
//!     })
//! })
//! .join()
//! .unwrap();
//!
//! // The loop: run what is due, sleep until the next deadline or wake-up.
//! let text = host.run_until(greeting).unwrap();
//! assert!(text.starts_with("hello from"));
//! ```
//!
//! # Main, and how it is chosen
//!
//! [`Dispatchers::main()`] is selected once, on first use, from the
//! [`MainDispatcherFactory`]s registered with [`register_main_factory`]:
//! highest [`load_priority`](MainDispatcherFactory::load_priority) first,
//! equal priorities in registration order (see the [`registry`] module). With
//! none usable it is the [`MissingMainDispatcher`], which panics on use with
//! a message naming each factory tried and what to do. [`Dispatchers::set_main`]
//! overrides the selection (apps, tests); [`Dispatchers::set_thread_main`]
//! does so for one thread.
//!
//! # Ordering rules
//!
//! 1. **Main is FIFO.** Tasks dispatched to Main run in the order their
//!    dispatches reached the queue; from one thread, in dispatch order.
//! 2. **`Main.immediate` on the main thread runs in place:** `spawn` on
//!    [`MainDispatcher::immediate`] from the loop thread runs the task up to
//!    its first suspension before `spawn` returns; a resume on the loop thread
//!    runs in place too. From any other thread it is a dispatch to Main.
//! 3. **Nested in-place runs are queued, not nested.** An in-place run
//!    requested while one is already running on the thread (Unconfined or
//!    immediate) runs right after it, FIFO, before control returns to the
//!    outermost caller (the per-thread trampoline; a million nested resumes
//!    use constant stack).
//! 4. **`yield_now` always dispatches**, even on immediate: the task goes
//!    behind everything already queued on Main.
//! 5. **Timers fire first.** `run_pending` fires the due timers (earliest
//!    deadline first, equal deadlines in registration order), then runs the
//!    queue; the woken tasks queue behind the tasks already queued and run in
//!    the same call. While it runs the queue it fires the timers that came
//!    due meanwhile every 64 tasks, so a steady stream of dispatches cannot
//!    hold a timer back.
//!
//! # Panics and cancellation
//!
//! A panicking task never unwinds through a host loop: the panic goes to its
//! [`Task`] (`JoinError::is_panic`), or, for a detached task, to the global
//! handler ([`set_panic_handler`]); [`set_panic_policy`] can make either
//! abort the process instead. Dropping a [`Task`] cancels its future.
//!
//! When a host shuts down ([`HostEngine::shutdown`], or dropping the host),
//! every task of its Main (queued, sleeping on its timers, or suspended on
//! anything else) is cancelled on the loop thread: its `Task` resolves to a
//! cancelled [`JoinError`], a `Send` future is dropped, and a `!Send` future
//! is never dropped on another thread. A later dispatch to it is rejected
//! the same way. `RELIABILITY.md` lists the guarantees and the tests behind
//! them.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod block_on;
mod context;
mod dispatch;
mod error;
mod host;
mod immediate;
mod main_dispatcher;
mod panic;
pub mod registry;
pub(crate) mod sync;
mod task;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;
mod thread_id;
pub mod time;
mod unconfined;

pub mod pool;

pub use block_on::block_on;
pub use context::{try_with_context, with_context, yield_now};
pub use dispatch::{Dispatch, Dispatcher};
pub use error::{ParallelismError, RegisterError, SpawnLocalError};
pub use host::{Budget, HostEngine, LoopHost, RunReport};
pub use main_dispatcher::{
    Dispatchers, MainDispatcher, ThreadMainGuard, spawn_on_main, spawn_on_main_local,
};
pub use panic::{
    PanicPolicy, PanicReport, PanicSource, panic_policy, reset_panic_handler, set_panic_handler,
    set_panic_policy,
};
pub use pool::{ThreadPool, ThreadPoolBuilder};
pub use registry::{
    HostFactory, MainDispatcherFactory, MissingMainDispatcher, register_main_factory,
};
pub use task::{JoinError, Runnable, Task, TaskBuilder};
pub use time::{Delay, Elapsed, delay, delay_until, timeout, timeout_at};
