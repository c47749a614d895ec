//! [`Gate`], shared by the test files that include it with
//! `#[path = "support/gate.rs"] mod gate;`.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A barrier whose wait gives up after a timeout (so a broken pool fails the
/// test instead of hanging it).
pub struct Gate {
    arrived: Mutex<usize>,
    all_in: Condvar,
    parties: usize,
}

impl Gate {
    pub fn new(parties: usize) -> Arc<Self> {
        Arc::new(Gate {
            arrived: Mutex::new(0),
            all_in: Condvar::new(),
            parties,
        })
    }

    /// Arrives and waits for every party; `false` on timeout.
    pub fn arrive_and_wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.all_in.notify_all();
        while *arrived < self.parties {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            arrived = self.all_in.wait_timeout(arrived, deadline - now).unwrap().0;
        }
        true
    }
}
