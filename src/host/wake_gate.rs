//! The wake gate: one atomic word that coalesces host wake-ups and closes the
//! queue on shutdown without losing a runnable.
//!
//! # Protocol
//!
//! The word holds a signed *pending count* (shifted left by one) and a
//! `CLOSED` bit (bit 0). The count is the number of pushes announced to the
//! gate minus the number of runnables the loop has taken out and reported.
//!
//! - A producer **first** pushes its runnable into the queue, **then** calls
//!   [`WakeGate::on_push`] (one `fetch_add`). If the count it replaced was
//!   zero, nobody has been told about pending work yet: the producer must wake
//!   the host. Any other count means a wake is already on its way (or the loop
//!   is draining and will see the push), so the wake is coalesced.
//! - The loop pops until the queue is empty, then reports how many it took with
//!   [`WakeGate::on_drained`] (one `fetch_sub`). If the count is still above
//!   zero, pushes were announced that it has not popped yet: it drains again.
//!   Otherwise the count is zero (or transiently negative, when it popped an
//!   item whose producer has not announced it yet: that producer will then
//!   read a negative count and, rightly, not wake anyone).
//! - Shutdown sets `CLOSED` with a `fetch_or` and drains. A producer whose
//!   `fetch_add` reads `CLOSED` drains the queue itself, rejecting what it
//!   finds.
//!
//! Every step is a read-modify-write of the same word, so all of them are
//! totally ordered and each sees the pushes announced before it (`AcqRel`):
//! there is no store/load pair that would need `SeqCst` (the pattern behind
//! calloop's lost wake-ups, calloop #171 and #227). The loom models at the
//! end of this file check it with two producers racing the drain and racing shutdown.

use crate::sync::{AtomicUsize, Ordering};

const CLOSED: usize = 1;
const ONE: usize = 2;

/// What a producer must do after announcing a push.
#[must_use = "a producer must wake the host or reject when told to"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushOutcome {
    /// The first pending item since the loop last emptied the queue: wake the host.
    Wake,
    /// A wake is already pending (or the loop is draining): nothing to do.
    Coalesced,
    /// The gate is closed: the queue must be drained and its items rejected.
    Closed,
}

/// The atomic word described in the module docs.
#[derive(Debug)]
pub(crate) struct WakeGate {
    state: AtomicUsize,
}

impl WakeGate {
    /// An open gate with nothing pending.
    pub(crate) fn new() -> Self {
        WakeGate {
            state: AtomicUsize::new(0),
        }
    }

    /// Announces one push that is already in the queue.
    pub(crate) fn on_push(&self) -> PushOutcome {
        let prev = self.state.fetch_add(ONE, Ordering::AcqRel);
        if prev & CLOSED != 0 {
            PushOutcome::Closed
        } else if count(prev) == 0 {
            PushOutcome::Wake
        } else {
            PushOutcome::Coalesced
        }
    }

    /// Reports that the loop took `taken` items out of the queue and found it
    /// empty; returns how many announced items are still in the queue.
    ///
    /// Zero or less means the loop may stop: every push announced from now on
    /// wakes the host.
    pub(crate) fn on_drained(&self, taken: usize) -> isize {
        let delta = taken.wrapping_mul(ONE);
        let prev = self.state.fetch_sub(delta, Ordering::AcqRel);
        count(prev) - taken as isize
    }

    /// The number of announced items not yet reported drained (may be
    /// transiently negative, see the module docs).
    pub(crate) fn pending(&self) -> isize {
        count(self.state.load(Ordering::Acquire))
    }

    /// Closes the gate; returns `true` for the call that closed it.
    pub(crate) fn close(&self) -> bool {
        self.state.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED == 0
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }
}

/// The signed pending count stored above the `CLOSED` bit.
fn count(state: usize) -> isize {
    (state as isize) >> 1
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn first_push_wakes_then_coalesces() {
        let gate = WakeGate::new();
        assert_eq!(gate.on_push(), PushOutcome::Wake);
        assert_eq!(gate.on_push(), PushOutcome::Coalesced);
        assert_eq!(gate.on_drained(2), 0);
        assert_eq!(gate.on_push(), PushOutcome::Wake);
    }

    #[test]
    fn popped_before_announced_goes_negative_without_waking() {
        let gate = WakeGate::new();
        // The loop popped an item whose producer has not announced it yet.
        assert_eq!(gate.on_drained(1), -1);
        assert_eq!(gate.on_push(), PushOutcome::Coalesced);
        assert_eq!(gate.pending(), 0);
        assert_eq!(gate.on_push(), PushOutcome::Wake);
    }

    #[test]
    fn closed_gate_rejects() {
        let gate = WakeGate::new();
        assert!(gate.close());
        assert!(!gate.close());
        assert!(gate.is_closed());
        assert_eq!(gate.on_push(), PushOutcome::Closed);
    }
}

/// Models of the protocol under loom: every interleaving of two producers
/// racing the loop's drain (and shutdown) is explored.
///
/// Run with `RUSTFLAGS="--cfg loom" cargo test --release -p dispatchers --lib loom`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use concurrent_queue::ConcurrentQueue;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, AtomicUsize};

    /// A queued item: `LOCAL` marks a `!Send` task of the loop thread, which
    /// only the loop thread may cancel.
    type Item = u32;
    const LOCAL: Item = 1 << 31;

    /// The engine's use of the gate (`HostEngine::run_pending`,
    /// `EngineShared::dispatch`, `EngineShared::cancel_queued`). The host is a
    /// wake token: producers set it, and the loop consumes it before it
    /// drains (as reading an eventfd or receiving the waker's poll event does).
    struct Model {
        queue: ConcurrentQueue<Item>,
        gate: WakeGate,
        /// `EngineShared::drained`.
        drained: AtomicBool,
        wakes: AtomicUsize,
        woken: AtomicBool,
        ran: AtomicUsize,
        /// Cancelled by the loop's shutdown.
        cancelled: AtomicUsize,
        /// Rejected by a producer after the shutdown drained the queue.
        rejected: AtomicUsize,
        /// Local items a producer popped: it can neither run nor drop them.
        local_stolen: AtomicUsize,
    }

    impl Model {
        fn new() -> Arc<Self> {
            Arc::new(Model {
                queue: ConcurrentQueue::unbounded(),
                gate: WakeGate::new(),
                drained: AtomicBool::new(false),
                wakes: AtomicUsize::new(0),
                woken: AtomicBool::new(false),
                ran: AtomicUsize::new(0),
                cancelled: AtomicUsize::new(0),
                rejected: AtomicUsize::new(0),
                local_stolen: AtomicUsize::new(0),
            })
        }

        /// `EngineShared::dispatch` from a producer thread.
        fn dispatch(&self, item: Item) {
            self.queue.push(item).unwrap();
            match self.gate.on_push() {
                PushOutcome::Wake => {
                    self.wakes.fetch_add(1, Ordering::SeqCst);
                    self.woken.store(true, Ordering::SeqCst);
                }
                PushOutcome::Coalesced => {}
                PushOutcome::Closed => self.reject_queued(),
            }
        }

        /// `EngineShared::reject_queued`: a producer's side of a closed gate.
        fn reject_queued(&self) {
            if !self.drained.load(Ordering::Acquire) {
                return; // the loop's shutdown will cancel it
            }
            while let Ok(item) = self.queue.pop() {
                self.rejected.fetch_add(1, Ordering::SeqCst);
                if item & LOCAL != 0 {
                    self.local_stolen.fetch_add(1, Ordering::SeqCst);
                }
            }
        }

        /// The host wakes (consuming the token), then one `run_pending`
        /// drains until the gate says nothing is left.
        fn run_pending(&self) {
            self.woken.store(false, Ordering::SeqCst);
            loop {
                let mut taken = 0;
                while self.queue.pop().is_ok() {
                    taken += 1;
                    self.ran.fetch_add(1, Ordering::SeqCst);
                }
                if self.gate.on_drained(taken) <= 0 {
                    break;
                }
            }
        }

        /// `HostEngine::shutdown`, then `EngineShared::cancel_queued`.
        fn shutdown(&self) {
            assert!(self.gate.close());
            for _ in 0..4 {
                let taken = self.cancel_at_most(self.queue.len());
                if self.gate.on_drained(taken) <= 0 {
                    break;
                }
            }
            self.drained.store(true, Ordering::Release);
            let _ = self.gate.on_drained(0);
            self.cancel_at_most(self.queue.len());
        }

        fn cancel_at_most(&self, n: usize) -> usize {
            let mut taken = 0;
            while taken < n {
                if self.queue.pop().is_err() {
                    break;
                }
                taken += 1;
                self.cancelled.fetch_add(1, Ordering::SeqCst);
            }
            taken
        }
    }

    fn builder() -> loom::model::Builder {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder
    }

    /// For the shutdown models: several threads may pop at once there, and
    /// concurrent-queue's pop spins on a slot being written, which needs more
    /// branches (and a tighter preemption bound to finish in seconds).
    fn shutdown_builder() -> loom::model::Builder {
        let mut builder = builder();
        builder.preemption_bound = Some(2);
        builder.max_branches = 100_000;
        builder
    }

    /// Two producers, each dispatching one item.
    fn spawn_producers(model: &Arc<Model>) -> Vec<loom::thread::JoinHandle<()>> {
        (0..2)
            .map(|i| {
                let model = model.clone();
                loom::thread::spawn(move || model.dispatch(i))
            })
            .collect()
    }

    fn join(producers: Vec<loom::thread::JoinHandle<()>>) {
        for p in producers {
            p.join().unwrap();
        }
    }

    /// Every one of `items` was run, cancelled by the loop or rejected by
    /// its producer: exactly one of the three.
    fn assert_each_accounted_once(model: &Model, items: usize) {
        let ran = model.ran.load(Ordering::SeqCst);
        let cancelled = model.cancelled.load(Ordering::SeqCst);
        let rejected = model.rejected.load(Ordering::SeqCst);
        assert_eq!(
            ran + cancelled + rejected,
            items,
            "ran {ran} + cancelled {cancelled} + rejected {rejected}"
        );
    }

    /// The loop drains once while two producers push. Afterwards, every item
    /// was either run, or is still queued with a wake token the loop has not
    /// consumed yet: no item is stranded without a wake.
    #[test]
    fn no_lost_wakeup_with_two_producers_racing_the_drain() {
        builder().check(|| {
            let model = Model::new();
            let producers = spawn_producers(&model);
            model.run_pending();
            join(producers);
            let ran = model.ran.load(Ordering::SeqCst);
            if ran < 2 {
                // Something is left: an unconsumed wake must be on its way.
                assert!(
                    model.woken.load(Ordering::SeqCst),
                    "items left with no wake: ran {ran}"
                );
                // The host wakes and drains the rest.
                model.run_pending();
            }
            assert_eq!(model.ran.load(Ordering::SeqCst), 2);
            assert_eq!(model.gate.pending(), 0);
            assert!(model.queue.is_empty());
        });
    }

    /// Coalescing: two pushes before any drain cost exactly one wake.
    #[test]
    fn a_burst_costs_one_wake() {
        builder().check(|| {
            let model = Model::new();
            let producers = spawn_producers(&model);
            join(producers);
            assert_eq!(model.wakes.load(Ordering::SeqCst), 1);
            model.run_pending();
            assert_eq!(model.ran.load(Ordering::SeqCst), 2);
        });
    }

    /// Dispatch racing shutdown: every item is run, cancelled by the loop or
    /// rejected by its producer, exactly once, and nothing stays queued. A
    /// local item queued before the shutdown (the loop's own `!Send` task) is
    /// never popped by a producer: only the loop may cancel it.
    #[test]
    fn dispatch_racing_shutdown_leaves_local_tasks_to_the_loop() {
        shutdown_builder().check(|| {
            let model = Model::new();
            // Queued by the loop thread itself (a local task it woke).
            model.dispatch(LOCAL);
            let producers = spawn_producers(&model);
            model.shutdown();
            join(producers);
            assert_each_accounted_once(&model, 3);
            assert_eq!(model.local_stolen.load(Ordering::SeqCst), 0);
            assert!(model.queue.is_empty());
        });
    }

    /// The same race with the loop draining first, as a loop does when its
    /// last iteration runs just before the shutdown.
    #[test]
    fn dispatch_racing_drain_then_shutdown_loses_nothing() {
        shutdown_builder().check(|| {
            let model = Model::new();
            let producers = spawn_producers(&model);
            model.run_pending();
            model.shutdown();
            join(producers);
            assert_each_accounted_once(&model, 2);
            assert!(model.queue.is_empty());
        });
    }
}
