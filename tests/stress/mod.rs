//! The stress suite every host runs: counted, bounded in time by watchdogs
//! (a hang fails the run), never timed.
//!
//! A host's test file starts its loop on a thread of its own, wraps it in a
//! [`StressHost`] and calls [`run_all`]:
//!
//! ```ignore
//! #[path = "../../../tests/stress/mod.rs"]
//! mod stress;
//!
//! #[test]
//! fn stress() {
//!     stress::run_all(start_my_host());
//! }
//! ```
//!
//! The phases, in order, on one loop (winit allows one per process):
//!
//! 1. [`dispatch_storm`]: 4 threads dispatch tasks onto Main, some with a
//!    random `delay`, some whose `Task` is dropped while they sleep, some
//!    detached. Every task runs exactly once, on the loop thread; none whose
//!    `Task` was dropped ever runs; every future is dropped.
//! 2. [`ping_pong`]: one task on Main hops to IO and back with
//!    `with_context`, again and again; it always comes back to the loop thread.
//! 3. [`panic_storm`]: panicking tasks mixed with normal ones. The loop
//!    survives, each panic is reported exactly once (to its `Task`, or to the
//!    panic handler for a detached task), every normal task completes.
//! 4. [`shutdown_policy`]: the loop ends with tasks queued, asleep on timers,
//!    suspended forever (`Send`, `!Send`, `Main.immediate`), hopping to IO,
//!    awaited by IO, and dispatched from another thread during the shutdown.
//!    Every `Task` resolves; every future is dropped, `!Send` ones on the
//!    loop thread; the shutdown does not wait for a blocked IO task.
//!
//! # Sizes
//!
//! Release builds run the full sizes (4 × 250,000 dispatches, 100,000 round
//! trips, 10,000 panics); debug builds (`cargo test` on CI) a tenth of the
//! dispatches and round trips and the same 10,000 panics. See [`Sizes`].

#![allow(dead_code)]

mod load;
mod shutdown;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, ThreadId};
use std::time::Duration;

use dispatchers::{MainDispatcher, Task, block_on, timeout};

pub use load::{dispatch_storm, panic_storm, ping_pong};
pub use shutdown::shutdown_policy;

/// A phase that takes longer than this is hung, not slow (debug builds on a
/// busy 2-core machine included).
const PHASE_LIMIT: Duration = Duration::from_secs(600);
/// One wait for one task.
const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// A running host loop, as the stress suite drives it.
pub struct StressHost {
    /// For messages.
    pub name: &'static str,
    /// The host's Main dispatcher (from its engine).
    pub main: MainDispatcher,
    request_stop: Arc<dyn Fn() + Send + Sync>,
    join: Option<Box<dyn FnOnce() + Send>>,
}

impl StressHost {
    /// `request_stop` must make the loop return soon (from any thread, the
    /// loop's own included) and not wait; `join` must wait until the loop has
    /// returned and its host engine has shut down (dropped).
    pub fn new(
        name: &'static str,
        main: MainDispatcher,
        request_stop: impl Fn() + Send + Sync + 'static,
        join: impl FnOnce() + Send + 'static,
    ) -> Self {
        StressHost {
            name,
            main,
            request_stop: Arc::new(request_stop),
            join: Some(Box::new(join)),
        }
    }
}

/// How much each phase does.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub producers: usize,
    pub per_producer: usize,
    pub round_trips: usize,
    pub panics: usize,
}

impl Sizes {
    /// 4 × 250,000 dispatches and 100,000 round trips in release builds; a
    /// tenth of both in debug builds. 10,000 panics in both.
    pub fn for_this_build() -> Self {
        if cfg!(debug_assertions) {
            Sizes {
                producers: 4,
                per_producer: 25_000,
                round_trips: 10_000,
                panics: 10_000,
            }
        } else {
            Sizes {
                producers: 4,
                per_producer: 250_000,
                round_trips: 100_000,
                panics: 10_000,
            }
        }
    }
}

/// Runs every phase against `host`, ending with the loop stopped.
pub fn run_all(mut host: StressHost) {
    let sizes = Sizes::for_this_build();
    let name = host.name;
    report(name, &format!("sizes {sizes:?}"));
    {
        let _watchdog = watchdog(name, "dispatch storm");
        dispatch_storm(name, &host.main, sizes);
    }
    {
        let _watchdog = watchdog(name, "with_context ping-pong");
        ping_pong(name, &host.main, sizes.round_trips);
    }
    {
        let _watchdog = watchdog(name, "panic storm");
        panic_storm(name, &host.main, sizes.panics);
    }
    {
        let _watchdog = watchdog(name, "shutdown policy");
        shutdown_policy(&mut host);
    }
}

/// One line of figures, straight to stderr (shown with `--nocapture`).
fn report(host: &str, line: &str) {
    eprintln!("stress[{host}]: {line}");
}

// ---------------------------------------------------------------------------
// Shared helpers.
// ---------------------------------------------------------------------------

/// Counts the drops of the futures it is moved into.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Awaits `task` from the calling thread, failing instead of hanging.
fn wait<T>(task: Task<T>) -> T {
    block_on(timeout(WAIT_LIMIT, task))
        .expect("watchdog: the host did not finish the task in time")
        .expect("the task failed")
}

/// Runs `f` in a task on Main and returns its result.
fn on_main<T: Send + 'static>(main: &MainDispatcher, f: impl FnOnce() -> T + Send + 'static) -> T {
    wait(main.spawn(async move { f() }))
}

fn loop_thread(main: &MainDispatcher) -> ThreadId {
    on_main(main, || thread::current().id())
}

/// Polls `done` until it holds; the phase's watchdog fails a run where it
/// never does.
fn wait_until(mut done: impl FnMut() -> bool) {
    while !done() {
        thread::sleep(Duration::from_millis(1));
    }
}

/// Ends the process with a failure unless dropped within [`PHASE_LIMIT`].
#[must_use = "the watchdog stops when dropped"]
struct Watchdog {
    _disarm: mpsc::Sender<()>,
}

fn watchdog(host: &'static str, phase: &'static str) -> Watchdog {
    let (disarm, armed) = mpsc::channel::<()>();
    thread::Builder::new()
        .name("stress-watchdog".into())
        .spawn(move || {
            if armed.recv_timeout(PHASE_LIMIT) == Err(mpsc::RecvTimeoutError::Timeout) {
                eprintln!(
                    "stress[{host}]: watchdog: {phase} did not finish within {PHASE_LIMIT:?}; \
                     failing"
                );
                std::process::exit(101);
            }
        })
        .expect("cannot start the watchdog");
    Watchdog { _disarm: disarm }
}

/// A small deterministic random source (xorshift).
struct Dice(u64);

impl Dice {
    fn new(seed: u64) -> Self {
        Dice(0x9E37_79B9_7F4A_7C15 ^ (seed + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9))
    }

    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}
