//! A guard that joins a child task when dropped: for the tests of a
//! destructor that waits (with `block_on`) for another task cancelled by the
//! same shutdown.

use std::sync::{Arc, Mutex, mpsc};

use dispatchers::{Task, block_on};

/// When dropped, waits for the task in its slot and reports whether it
/// resolved as cancelled.
pub struct JoinsOnDrop(pub Arc<Mutex<Option<Task<()>>>>, pub mpsc::Sender<bool>);

impl Drop for JoinsOnDrop {
    fn drop(&mut self) {
        let child = self.0.lock().unwrap().take();
        let cancelled = child.is_some_and(|child| block_on(child).is_err_and(|e| e.is_cancelled()));
        let _ = self.1.send(cancelled);
    }
}
