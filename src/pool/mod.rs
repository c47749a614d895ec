//! Background pools: [`Dispatchers::default()`](crate::Dispatchers::default),
//! [`Dispatchers::io()`](crate::Dispatchers::io), `limited_parallelism`
//! views, and fixed pools of your own ([`ThreadPool`]).
//!
//! | pool | threads | for |
//! |---|---|---|
//! | `Default` | max(2, CPUs), named `dispatchers-default-N`, started on demand, kept | CPU-bound work |
//! | `IO` | up to max(64, CPUs) blocking tasks at once, on threads named `dispatchers-io-N` started on demand and retired after 60 s idle | blocking calls |
//! | [`ThreadPool`] | `n`, named `{name}-N`, started at once, joined on drop | work you want on threads of your own |
//!
//! ```
//! use dispatchers::{Dispatchers, block_on, with_context};
//!
//! let report = block_on(async {
//!     let text = with_context(&Dispatchers::io(), async {
//!         // a blocking read would go here
//!         String::from("3 5 8")
//!     })
//!     .await;
//!     with_context(&Dispatchers::default(), async move {
//!         text.split(' ').map(|n| n.parse::<u32>().unwrap()).sum::<u32>()
//!     })
//!     .await
//! });
//! assert_eq!(report, 16);
//! ```
//!
//! # Limited views
//!
//! [`Dispatcher::limited_parallelism(n)`](crate::Dispatcher::limited_parallelism)
//! returns a view that runs at most `n` of its tasks at once on the
//! dispatcher below it. The view has its own queue and at most `n` *workers*
//! on the dispatcher below, each holding one permit; a worker runs the view's
//! tasks one after the other and, after a batch of 32, goes to the back of
//! the queue below so that a busy view does not starve its neighbours. A
//! view of `Default` caps within `Default`'s threads; a view of `IO` is
//! elastic: its `n` is independent of IO's cap (it runs on blocking threads
//! of its own, started as needed), as in kotlinx. `limited_parallelism(0)`
//! is an error; `Unconfined` refuses views; Main is already sequential and
//! returns itself.
//!
//! # Configuration
//!
//! The sizes are read once, from the environment, on the first use of
//! `Default` or `IO`:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DISPATCHERS_DEFAULT_THREADS` | max(2, CPUs) | `Default`'s threads |
//! | `DISPATCHERS_IO_MAX_THREADS` | max(64, CPUs) | how many `IO` tasks may block at once (not its views') |
//! | `DISPATCHERS_IO_KEEP_ALIVE_MS` | 60000 | how long an idle `IO` thread waits for work before it exits |
//!
//! A value that is not a whole number of at least 1 is ignored, with a
//! message on stderr. Fixed pools take their options from
//! [`ThreadPoolBuilder`].
//!
//! # Why `Default` and `IO` don't share threads
//!
//! kotlinx runs both on one scheduler, so that `withContext(IO)` from
//! `Default` may stay on the same thread. Measured here (the ignored test
//! `measure_default_io_sharing` in `tests/pools.rs`: release build, a busy
//! 2-core machine, three rounds), against `IO` emulated on `Default`'s
//! threads (a view of `Default` with IO's cap):
//!
//! | | separate threads (this design) | shared threads |
//! |---|---|---|
//! | `Default` → `IO` → `Default` round trip of an empty task | 23–29 µs | 1.5–2 µs |
//! | a `Default` task's wait to start while `IO` runs 4 tasks blocking 50 ms | 12–23 µs | 95 ms |
//!
//! Sharing saves the two thread wake-ups of a hop, about 25 µs; for scale,
//! writing and reading back a 4 KiB file, about the smallest blocking call
//! worth a hop, took 160 µs. Its price is the second row: blocking tasks
//! hold the very threads CPU work needs. kotlinx avoids that price with a
//! scheduler that notices a worker entering a blocking task and hands its
//! CPU permit to another thread (worker states, permit transfer, work
//! stealing). Without that machinery, sharing would let any blocking call
//! stall `Default`. So `Default` and `IO` keep separate thread sets
//! (`dispatchers-default-N`, `dispatchers-io-N`): a blocking call can never
//! slow `Default` down, for about 25 µs per hop, which is small next to the
//! calls that belong on `IO`.
//!
//! # Lock-free parts
//!
//! Two protocols, each one atomic word of read-modify-writes, documented in
//! its module and checked with loom
//! (`RUSTFLAGS="--cfg loom" cargo test --release --lib pool::`):
//! the hand-off between a pool's queue and its threads (no lost task when a
//! thread retires as a task arrives) and the permits of a limited view (no
//! lost task, never more than `n` running).

mod config;
mod fixed;
mod global;
mod handoff;
mod limited;
mod permits;
mod workers;

pub use fixed::{DEFAULT_SHUTDOWN_TIMEOUT, ThreadPool, ThreadPoolBuilder};
pub(crate) use limited::limited_view;

#[cfg(all(test, not(loom)))]
mod tests;
