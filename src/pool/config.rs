//! The sizes of the `Default` and `IO` pools: computed from the number of
//! CPUs, overridden by environment variables, read once (on the first use of
//! either pool).

use std::sync::OnceLock;
use std::time::Duration;

/// Overrides the number of `Default` threads (at least 1).
pub(crate) const DEFAULT_THREADS_VAR: &str = "DISPATCHERS_DEFAULT_THREADS";
/// Overrides how many `IO` tasks may block at once (at least 1).
pub(crate) const IO_MAX_THREADS_VAR: &str = "DISPATCHERS_IO_MAX_THREADS";
/// Overrides how long an idle `IO` thread waits for a task before it exits,
/// in milliseconds (at least 1).
pub(crate) const IO_KEEP_ALIVE_VAR: &str = "DISPATCHERS_IO_KEEP_ALIVE_MS";

/// The `IO` keep-alive when not overridden (kotlinx's idle worker keep-alive).
pub(crate) const DEFAULT_IO_KEEP_ALIVE: Duration = Duration::from_secs(60);
/// The smallest `IO` cap when not overridden.
const MIN_IO_THREADS: usize = 64;

/// The pools' sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolConfig {
    /// `Default`'s threads: max(2, CPUs).
    pub(crate) default_threads: usize,
    /// `IO`'s cap on blocking tasks at once: max(64, CPUs).
    pub(crate) io_max_threads: usize,
    /// How long an idle `IO` thread lives.
    pub(crate) io_keep_alive: Duration,
}

impl PoolConfig {
    /// The configuration of this process, read from the environment on the
    /// first call.
    pub(crate) fn get() -> &'static PoolConfig {
        static CONFIG: OnceLock<PoolConfig> = OnceLock::new();
        CONFIG.get_or_init(|| PoolConfig::from_lookup(|key| std::env::var(key).ok()))
    }

    /// The configuration from the CPU count and the variables `lookup`
    /// returns; an unusable value is reported on stderr and ignored.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> PoolConfig {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let positive = |key: &str| -> Option<usize> {
            let value = lookup(key)?;
            match value.trim().parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    eprintln!(
                        "dispatchers: ignoring {key}={value:?}: expected a whole number of at \
                         least 1"
                    );
                    None
                }
            }
        };
        PoolConfig {
            default_threads: positive(DEFAULT_THREADS_VAR).unwrap_or(cpus.max(2)),
            io_max_threads: positive(IO_MAX_THREADS_VAR).unwrap_or(cpus.max(MIN_IO_THREADS)),
            io_keep_alive: positive(IO_KEEP_ALIVE_VAR)
                .map_or(DEFAULT_IO_KEEP_ALIVE, |ms| Duration::from_millis(ms as u64)),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_cpu_count() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let config = PoolConfig::from_lookup(|_| None);
        assert_eq!(config.default_threads, cpus.max(2));
        assert_eq!(config.io_max_threads, cpus.max(64));
        assert_eq!(config.io_keep_alive, DEFAULT_IO_KEEP_ALIVE);
    }

    #[test]
    fn variables_override_and_bad_values_are_ignored() {
        let config = PoolConfig::from_lookup(|key| match key {
            DEFAULT_THREADS_VAR => Some(" 3 ".into()),
            IO_MAX_THREADS_VAR => Some("0".into()),
            IO_KEEP_ALIVE_VAR => Some("250".into()),
            _ => None,
        });
        assert_eq!(config.default_threads, 3);
        assert_eq!(
            config.io_max_threads,
            PoolConfig::from_lookup(|_| None).io_max_threads
        );
        assert_eq!(config.io_keep_alive, Duration::from_millis(250));
    }
}
