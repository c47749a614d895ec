//! What every metric shares: the run's configuration and sizes, the clock,
//! statistics (percentiles, medians of rounds), the round-robin order of the
//! contenders (each run from the same allocator state), a `Signal` that any
//! runtime can await, and a seeded random number generator.

use std::future::{Future, poll_fn};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard, OnceLock};
use std::task::{Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::alloc;

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The full table (a few minutes).
    Full,
    /// Smaller sizes and fewer rounds: under a minute.
    Quick,
    /// Tiny sizes, one round: checks that every metric runs.
    Smoke,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Quick => "quick",
            Mode::Smoke => "smoke",
        }
    }
}

/// The command line, parsed.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub rounds: usize,
    pub only: Option<Vec<String>>,
    pub json: Option<PathBuf>,
    pub plot: Option<PathBuf>,
}

impl Config {
    /// Parses the arguments (cargo adds `--bench` under `cargo bench`;
    /// without it the binary runs as a test, in smoke mode).
    pub fn from_args(args: impl Iterator<Item = String>) -> Result<Config, String> {
        let mut bench = false;
        let mut mode = None;
        let mut rounds = None;
        let mut only = None;
        let mut json = None;
        let mut plot = None;
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--bench" => bench = true,
                "--quick" => mode = Some(Mode::Quick),
                "--smoke" => mode = Some(Mode::Smoke),
                "--full" => mode = Some(Mode::Full),
                "--rounds" => {
                    let v = value("--rounds")?;
                    rounds = Some(
                        v.parse::<usize>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| format!("--rounds {v}: not a positive number"))?,
                    );
                }
                "--only" => {
                    only = Some(
                        value("--only")?
                            .split(',')
                            .map(str::to_owned)
                            .collect::<Vec<_>>(),
                    )
                }
                "--json" => json = Some(PathBuf::from(value("--json")?)),
                "--plot" => plot = Some(PathBuf::from(value("--plot")?)),
                // What libtest-style runners may pass; nothing to filter here.
                "--nocapture" | "--test" | "-q" | "--quiet" => {}
                other if other.starts_with("--") => {
                    return Err(format!(
                        "unknown option {other} (known: --quick --smoke --full --rounds N \
                         --only a,b --json PATH --plot PATH)"
                    ));
                }
                _ => {}
            }
        }
        let mode = mode.unwrap_or(if bench { Mode::Full } else { Mode::Smoke });
        let rounds = rounds.unwrap_or(match mode {
            Mode::Full => 7,
            Mode::Quick => 3,
            Mode::Smoke => 1,
        });
        Ok(Config {
            mode,
            rounds,
            only,
            json,
            plot,
        })
    }

    /// Whether the metric family `name` runs.
    pub fn runs(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| o == name))
    }

    /// `full`, `quick` or `smoke`, by mode.
    pub fn size(&self, full: usize, quick: usize, smoke: usize) -> usize {
        match self.mode {
            Mode::Full => full,
            Mode::Quick => quick,
            Mode::Smoke => smoke,
        }
    }
}

static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds on a monotonic clock shared by every thread of the process
/// (never 0).
pub fn now_ns() -> u64 {
    BASE.elapsed().as_nanos() as u64 + 1
}

/// Makes sure the clock's base is set before any measurement.
pub fn init_clock() {
    LazyLock::force(&BASE);
}

/// The `p`-th percentile (0..=100) of `samples`, which it sorts.
pub fn percentile(samples: &mut [u64], p: f64) -> u64 {
    assert!(!samples.is_empty(), "no samples");
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

/// The median of per-round results.
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "no rounds");
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `rounds` rounds of every contender, rotating which goes first each
/// round; returns each contender's per-round results, in `names` order.
///
/// Each run starts with the allocator's free memory handed back to the
/// system ([`alloc::trim`]). Otherwise a run that allocates and frees a
/// million tasks goes faster or slower by what the run before it left in
/// the allocator: measured on the calloop host's throughput, our tasks ran
/// at 8.6 M/s after a run of ours and 6.2 M/s after one of calloop's
/// executor, which went 5.4 M/s after ours and 4.4 M/s after its own, so
/// the ratio depended on the order of the contenders.
pub fn alternate<R>(
    rounds: usize,
    names: &[&str],
    mut run: impl FnMut(usize, usize) -> R,
) -> Vec<Vec<R>> {
    let mut results: Vec<Vec<R>> = names.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..names.len() {
            let which = (round + k) % names.len();
            alloc::trim();
            results[which].push(run(which, round));
        }
    }
    results
}

/// Waits until `done` returns `Some`: spins briefly, then yields the CPU;
/// panics after `limit` (a lost wake-up must not hang the run).
pub fn wait_for<T>(limit: Duration, what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        if let Some(value) = done() {
            return value;
        }
        spins += 1;
        if spins < 200 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
            if spins % 1024 == 0 && start.elapsed() > limit {
                panic!("vs_peers: {what} did not happen within {limit:?}");
            }
        }
    }
}

/// Runs `f` on a fresh thread named `name` (for profilers) and returns its
/// output; a panic there is re-raised here.
pub fn on_thread<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn_scoped(s, f)
            .expect("spawn a bench thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Sleeps about `micros` µs plus up to as much again at random: long
/// enough that a loop thread goes back to sleep between two samples, and
/// unaligned with any periodic activity.
pub fn gap(rng: &mut Rng, micros: u64) {
    std::thread::sleep(Duration::from_micros(micros + rng.below(micros.max(1))));
}

/// A one-shot flag that a future of any runtime can await and a thread can
/// block on; [`reset`](Self::reset) re-arms it.
pub struct Signal {
    set: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
    changed: Condvar,
}

impl Signal {
    pub const fn new() -> Self {
        Signal {
            set: AtomicBool::new(false),
            wakers: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.lock());
        self.changed.notify_all();
        for waker in wakers {
            waker.wake();
        }
    }

    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        self.set.store(false, Ordering::SeqCst);
        self.lock().clear();
    }

    /// Completes once set.
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.is_set() {
                return Poll::Ready(());
            }
            let mut wakers = self.lock();
            if self.is_set() {
                return Poll::Ready(());
            }
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }

    /// Blocks the thread until set; panics after `limit`.
    pub fn wait_blocking(&self, limit: Duration, what: &str) {
        let start = Instant::now();
        let mut guard = self.lock();
        while !self.is_set() {
            let left = limit
                .checked_sub(start.elapsed())
                .unwrap_or_else(|| panic!("vs_peers: {what} did not finish within {limit:?}"));
            guard = self
                .changed
                .wait_timeout(guard, left.min(Duration::from_millis(100)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Where a remote task records the moment it ran (0: not yet), and where
/// its poster waits for it.
///
/// The poster waits parked, off the CPU. On this two-vCPU guest the woken
/// loop thread often shares the poster's CPU, and a poster that spins there
/// (even with `yield_now`) takes the CPU back from the task it measures:
/// measured part by part, the task's poll stalled for 3 to 7 µs between our
/// task wrapper and the first line of its future. The poster is woken by
/// [`record`](Self::record), after the task has read the clock, so its
/// wake-up is not in the measurement.
pub struct Stamp {
    value: AtomicU64,
    /// The thread that waits on this stamp, once it has.
    waiter: OnceLock<Thread>,
}

impl Stamp {
    pub const fn new() -> Self {
        Stamp {
            value: AtomicU64::new(0),
            waiter: OnceLock::new(),
        }
    }

    pub fn clear(&self) {
        self.value.store(0, Ordering::SeqCst);
    }

    /// Records `value` (non-zero) and wakes the waiting poster.
    pub fn record(&self, value: u64) {
        self.value.store(value, Ordering::Release);
        if let Some(waiter) = self.waiter.get() {
            waiter.unpark();
        }
    }

    /// The recorded value, taken (the stamp reads 0 again), or `None`.
    pub fn take(&self) -> Option<u64> {
        match self.value.swap(0, Ordering::Acquire) {
            0 => None,
            v => Some(v),
        }
    }

    /// Parks the calling thread until a value is recorded, and takes it.
    ///
    /// # Panics
    ///
    /// After `limit` without a value (`what` says what did not happen), or
    /// when another thread than the first one waits on this stamp.
    pub fn wait(&self, limit: Duration, what: &str) -> u64 {
        let me = std::thread::current();
        let waiter = self.waiter.get_or_init(|| me.clone());
        assert_eq!(waiter.id(), me.id(), "one thread waits on a stamp");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = self.take() {
                return value;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("vs_peers: {what} did not happen within {limit:?}");
            }
            // In slices: the very first wait registers the waiter while the
            // task may be recording, and the two may miss each other once.
            std::thread::park_timeout((deadline - now).min(Duration::from_millis(10)));
        }
    }
}

/// xorshift64*: the same seed gives every contender the same sequence.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A small CPU-bound job (about a hundred dependent multiply-xorshifts).
#[inline(never)]
pub fn small_cpu_job(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..100 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
    }
    std::hint::black_box(x)
}

/// Per-round percentiles of latency samples (ns), and every sample kept for
/// the plot.
#[derive(Debug, Default, Clone)]
pub struct LatencyRounds {
    pub p50: Vec<f64>,
    pub p90: Vec<f64>,
    pub p99: Vec<f64>,
    pub all: Vec<u64>,
}

impl LatencyRounds {
    pub fn push_round(&mut self, mut samples: Vec<u64>) {
        self.p50.push(percentile(&mut samples, 50.0) as f64);
        self.p90.push(percentile(&mut samples, 90.0) as f64);
        self.p99.push(percentile(&mut samples, 99.0) as f64);
        self.all.extend_from_slice(&samples);
    }

    pub fn p50(&self) -> f64 {
        median(&self.p50)
    }

    pub fn p90(&self) -> f64 {
        median(&self.p90)
    }

    pub fn p99(&self) -> f64 {
        median(&self.p99)
    }
}

/// One round's samples after another.
impl FromIterator<Vec<u64>> for LatencyRounds {
    fn from_iter<I: IntoIterator<Item = Vec<u64>>>(rounds: I) -> Self {
        let mut stats = LatencyRounds::default();
        for samples in rounds {
            stats.push_round(samples);
        }
        stats
    }
}
