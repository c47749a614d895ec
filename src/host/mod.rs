//! The host engine every adapter shares, and [`LoopHost`] for hand-written
//! loops.

mod budget;
mod engine;
mod engine_shared;
mod local_queue;
#[cfg(all(test, loom))]
mod loom_wake_while_running;
mod loop_host;
pub(crate) mod wake_gate;

pub use budget::{Budget, RunReport};
pub use engine::HostEngine;
pub(crate) use engine_shared::is_firing_timers;
pub use loop_host::LoopHost;
