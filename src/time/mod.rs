//! Time: [`delay`](fn@delay), [`delay_until`], [`timeout`], [`timeout_at`].
//!
//! A delay polled by a host loop's task (or inside its `run_pending`)
//! registers in that host's timer heap, which lives on the loop's thread (no
//! lock; see `loop_timers.rs`):
//! the loop sleeps until the earliest deadline
//! ([`HostEngine::next_deadline`](crate::HostEngine::next_deadline)), fires it
//! in [`run_pending`](crate::HostEngine::run_pending), and the task resumes in
//! the same call, with no extra thread and no extra dispatch. Polled anywhere
//! else (a pool thread, `block_on`), it uses one shared fallback timer thread
//! (`dispatchers-timer`). Dropping the future cancels the timer.

mod delay;
pub(crate) mod heap;
pub(crate) mod loop_timers;
pub(crate) mod service;

pub use delay::{Delay, Elapsed, delay, delay_until, timeout, timeout_at};
