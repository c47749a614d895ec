//! Turns: the place in the event order that the next dispatch on the owner
//! thread takes (the key of a timer being fired, or a turn reserved by
//! `reserve_turn`), and whether a task may run in place meanwhile.

use super::{Life, Scheduler, Turn};

impl Scheduler {
    /// Whether the calling thread runs this scheduler's tasks: the owner
    /// thread, while the scheduler is open (`is_current_thread`, which
    /// `immediate` asks before running a task in place). When a timer is
    /// being fired its turn is spent: a task run in place now is the one it
    /// woke.
    pub(crate) fn is_current_thread(&self) -> bool {
        if !self.is_owner_thread() {
            return false;
        }
        let mut state = self.lock();
        if !matches!(state.life, Life::Open) {
            return false;
        }
        if matches!(state.firing, Some((_, Turn::Timer))) {
            state.firing = None;
        }
        true
    }

    /// Whether an unconfined task may start or resume in place here: on the
    /// owner thread while open, except the task woken by a timer being fired
    /// (and a task started with [`reserve_turn`](Self::reserve_turn)), which
    /// is dispatched at that turn and run by the scheduler, outside any
    /// in-place run, so that what it spawns runs eagerly too.
    ///
    /// Nor where this scheduler is not the thread's clock (not installed, not
    /// inside `run_current` / `advance_*`): a `delay` polled there would wait
    /// in real time, so the task is queued instead.
    pub(crate) fn may_run_in_place(&self) -> bool {
        if !self.is_owner_thread() || !self.is_clock_here() {
            return false;
        }
        let state = self.lock();
        matches!(state.life, Life::Open) && state.firing.is_none()
    }

    /// Makes the next dispatch on the owner thread (and an unconfined start)
    /// take the next turn at the current time; [`release_turn`](Self::release_turn)
    /// forgets it if unused.
    pub(crate) fn reserve_turn(&self) {
        let mut state = self.lock();
        let now = state.now;
        let key = state.next_key(now);
        state.firing = Some((key, Turn::Reserved));
    }

    /// See [`reserve_turn`](Self::reserve_turn).
    pub(crate) fn release_turn(&self) {
        self.consume_firing();
    }

    /// Forgets the turn of a timer being fired, or a reserved one.
    pub(super) fn consume_firing(&self) {
        let mut state = self.lock();
        state.firing = None;
    }
}
