//! The synchronisation primitives of the lock-free parts (the host engine's
//! wake gate, the pools' permits), routed through one module so that
//! `RUSTFLAGS="--cfg loom"` swaps std's for loom's and the models in
//! `tests/loom_*.rs` check the real code.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
