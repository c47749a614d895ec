//! Tasks: spawning on async-task, [`Task`], [`JoinError`], [`Runnable`] and
//! panic capture.

mod builder;
mod header;
mod join;
mod runnable;
mod spawn;

pub use builder::TaskBuilder;
pub use join::{JoinError, Task};
pub use runnable::Runnable;
