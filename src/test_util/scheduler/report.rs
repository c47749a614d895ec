//! The scheduler's clock and queue, described for `run_test`'s failure
//! reports.

use std::fmt::Write as _;

use super::{Event, Scheduler};

impl Scheduler {
    /// The clock and what is queued, for failure reports.
    pub(crate) fn describe_queue(&self) -> String {
        const NAMED: usize = 5;
        let state = self.lock();
        let mut tasks = Vec::new();
        let mut timers = Vec::new();
        for (key, event) in &state.events {
            match event {
                Event::Task { runnable, .. } => tasks.push(runnable.name().map(str::to_owned)),
                Event::Timer { owner, .. } => timers.push((key.0, owner.clone())),
            }
        }
        let mut out = format!(
            "virtual time is at {:?}; queued: {} task(s)",
            state.now,
            tasks.len()
        );
        let names: Vec<_> = tasks
            .iter()
            .flatten()
            .take(NAMED)
            .map(|name| format!("'{name}'"))
            .collect();
        if !names.is_empty() {
            let more = if tasks.len() > names.len() {
                ", ..."
            } else {
                ""
            };
            let _ = write!(out, " ({}{more})", names.join(", "));
        }
        let _ = write!(out, ", {} timer(s)", timers.len());
        if let Some((time, owner)) = timers.first() {
            let _ = write!(out, " (next at {time:?}");
            if let Some(owner) = owner {
                let _ = write!(out, ", set by '{owner}'");
            }
            out.push(')');
        }
        out
    }
}
