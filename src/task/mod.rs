//! Tasks: spawning on async-task, [`Task`], [`JoinError`], [`Runnable`], the
//! live-task sets of host loops and panic capture.

mod builder;
mod header;
mod header_word;
mod join;
mod live;
mod orphans;
mod output;
mod runnable;
mod spawn;

pub use builder::TaskBuilder;
pub use join::{JoinError, Task};
pub(crate) use live::{LiveTasks, close_here as close_live_set_here};
pub(crate) use orphans::{HostWakeUp, cancel_orphans, has_orphans, wake_on_delivery};
pub use runnable::Runnable;
pub(crate) use runnable::{cancel_all_here, cancel_together, run_queued_cancellations};
