//! [`run_test`] and [`run_test_with`]: run a test body on a fresh test
//! dispatcher installed as the thread's Main, then check that nothing was
//! left behind.

use std::fmt;
use std::future::Future;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::dispatcher::TestDispatcher;
use super::scheduler::{Scheduler, Until};
use super::scope::TestScope;
use super::tracked::{PendingTask, Registry};
use crate::task::{JoinError, Task, TaskBuilder};

/// How long a test may take in real time by default: 60 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The name of the body's task.
const BODY: &str = "run_test body";

/// Options of [`run_test_with`].
///
/// ```
/// use dispatchers::test_util::{TestConfig, TestDispatcher, run_test_with};
/// use std::time::Duration;
///
/// let config = TestConfig::new()
///     .timeout(Duration::from_secs(5))
///     .dispatcher(TestDispatcher::unconfined());
/// run_test_with(config, |scope| async move {
///     assert!(scope.test_dispatcher().is_unconfined());
/// });
/// ```
#[derive(Clone, Debug)]
pub struct TestConfig {
    timeout: Duration,
    dispatcher: Option<TestDispatcher>,
}

impl TestConfig {
    /// The defaults: a [`DEFAULT_TIMEOUT`] and a fresh standard
    /// [`TestDispatcher`].
    pub fn new() -> Self {
        TestConfig {
            timeout: DEFAULT_TIMEOUT,
            dispatcher: None,
        }
    }

    /// How long the whole test may take in *real* time (the body, then the
    /// tasks it left). A test waiting on something outside virtual time
    /// (another thread, a channel nobody sends on) fails when it runs out
    /// instead of hanging. The limit is checked between tasks: a task that
    /// blocks the thread is not interrupted.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs the test on `dispatcher` (for instance
    /// [`TestDispatcher::unconfined()`]), which must have been created on the
    /// thread that calls [`run_test_with`]. It is shut down at the end of
    /// the test.
    pub fn dispatcher(mut self, dispatcher: TestDispatcher) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig::new()
    }
}

/// Runs a test body on a fresh [`TestDispatcher`] (the default
/// [`TestConfig`]); see [`run_test_with`].
///
/// ```
/// use dispatchers::test_util::run_test;
/// use dispatchers::{delay, spawn_on_main};
/// use std::time::Duration;
///
/// run_test(|scope| async move {
///     let answer = spawn_on_main(async {
///         delay(Duration::from_secs(60)).await; // virtual: no real wait
///         42
///     });
///     assert_eq!(answer.await.unwrap(), 42);
///     assert_eq!(scope.current_time(), Duration::from_secs(60));
/// });
/// ```
///
/// # Panics
///
/// When the test fails: see [`run_test_with`].
#[track_caller]
pub fn run_test<F, Fut>(body: F) -> Fut::Output
where
    F: FnOnce(TestScope) -> Fut,
    Fut: Future + 'static,
    Fut::Output: 'static,
{
    run_test_with(TestConfig::new(), body)
}

/// Runs a test body on a test dispatcher, as kotlinx's `runTest` does:
///
/// 1. installs the dispatcher as Main *for the calling thread* and its
///    virtual clock as the clock of `delay` / `timeout` on this thread (so
///    tests running in parallel threads don't see each other's Main; code on
///    other threads, such as pool threads, sees the process-wide Main);
/// 2. spawns the body on it (as a local task: the body need not be `Send`)
///    and runs the dispatcher, moving virtual time forward whenever nothing
///    is due, until the body completes;
/// 3. runs it until idle, and until every task spawned through
///    [`TestScope::spawn`] and friends has completed (one still waiting on
///    another thread is waited for, up to the timeout; one that nothing can
///    wake any more fails the test at once);
/// 4. cancels what is left (the scope's [`background`](TestScope::background)
///    tasks, queued tasks and timers), restores the previous Main and clock,
///    and returns the body's output.
///
/// # Panics
///
/// The test fails (this panics) when:
///
/// - the body panics: its panic is resumed here;
/// - a task spawned through the scope panics (at once, with its name and
///   message);
/// - after the body completed and the dispatcher went idle, a task spawned
///   through the scope is still pending and nothing can wake it any more
///   (a *leaked* task, named in the message with the place it was spawned);
/// - the test takes longer than the timeout in real time (default
///   [`DEFAULT_TIMEOUT`]): the body, or a task of the scope, waits on
///   something outside virtual time, or a foreground loop never goes idle.
///   The message names the pending tasks.
///
/// It also panics when the configured dispatcher was created on another
/// thread.
#[track_caller]
pub fn run_test_with<F, Fut>(config: TestConfig, body: F) -> Fut::Output
where
    F: FnOnce(TestScope) -> Fut,
    Fut: Future + 'static,
    Fut::Output: 'static,
{
    let started = Instant::now();
    let dispatcher = config.dispatcher.unwrap_or_default();
    assert!(
        dispatcher.scheduler().is_owner_thread(),
        "run_test: the TestDispatcher of the TestConfig was created on another thread; \
         create it on the thread that calls run_test_with"
    );
    let scope = TestScope::new(dispatcher.clone());
    let installed = dispatcher.install();
    let body = body(scope.clone());
    // The body starts from the queue, not in place (even when unconfined):
    // outside any in-place run, the tasks it spawns on the unconfined flavour
    // start eagerly.
    let scheduler = dispatcher.scheduler();
    scheduler.reserve_turn();
    let body = TaskBuilder::new()
        .name(BODY)
        .spawn_local(dispatcher.foreground_dispatcher(), body);
    scheduler.release_turn();
    let driver = Driver {
        scheduler: dispatcher.scheduler().clone(),
        registry: scope.registry().clone(),
        timeout: config.timeout,
        deadline: started.checked_add(config.timeout),
    };
    let outcome = driver.run(body);
    drop(installed);
    match outcome {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => match error.try_into_panic() {
            Ok(payload) => resume_unwind(payload),
            Err(error) => panic!("run_test: the test body was cancelled ({error})"),
        },
        Err(failure) => panic!("{failure}"),
    }
}

/// Why a test failed (other than its body panicking).
enum Failure {
    TaskPanicked(String),
    Leaked(Vec<PendingTask>),
    TimedOut {
        timeout: Duration,
        body_done: bool,
        /// Foreground work was still queued: a loop that never goes idle.
        busy: bool,
        pending: Vec<PendingTask>,
        queue: String,
    },
}

struct Driver {
    scheduler: Arc<Scheduler>,
    registry: Arc<Registry>,
    timeout: Duration,
    deadline: Option<Instant>,
}

impl Driver {
    /// Runs the test to its end and cleans up; the body's result or why the
    /// test failed.
    fn run<T>(&self, mut body: Task<T>) -> Result<Result<T, JoinError>, Failure> {
        let outcome = self.until_body_done(&mut body).and_then(|output| {
            if output.is_ok() {
                self.until_children_done()?;
            }
            Ok(output)
        });
        self.scheduler.cancel_all(|| {
            self.registry.wake_all();
            drop(body);
        });
        outcome
    }

    fn until_body_done<T>(&self, body: &mut Task<T>) -> Result<Result<T, JoinError>, Failure> {
        loop {
            self.check(false)?;
            if body.is_finished() {
                let mut cx = Context::from_waker(Waker::noop());
                if let Poll::Ready(output) = Pin::new(&mut *body).poll(&mut cx) {
                    return Ok(output);
                }
            }
            // In (time, sequence) order, background work included: the body
            // may wait on it.
            if !self.scheduler.run_next(Until::Any) {
                self.scheduler.park_until(self.deadline);
            }
        }
    }

    fn until_children_done(&self) -> Result<(), Failure> {
        loop {
            self.check(true)?;
            if self.scheduler.run_next(Until::Idle) {
                continue;
            }
            // Read the tasks before the queue: a task woken from another
            // thread is queued before its waker is released.
            let pending = self.registry.pending_foreground();
            if !self.scheduler.is_idle() {
                continue;
            }
            if pending.is_empty() {
                return Ok(());
            }
            if pending.iter().any(|task| task.stuck) {
                return Err(Failure::Leaked(pending));
            }
            // They wait on something else: background work or another thread.
            if !self.scheduler.run_next(Until::Any) {
                self.scheduler.park_until(self.deadline);
            }
        }
    }

    /// Fails on a panicked task or a passed deadline.
    fn check(&self, body_done: bool) -> Result<(), Failure> {
        if let Some(message) = self.registry.first_failure() {
            return Err(Failure::TaskPanicked(message));
        }
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            let mut pending = self.registry.pending_foreground();
            let busy = !self.scheduler.is_idle();
            if busy {
                // Whether a task is queued is not known here: claim nothing.
                pending.iter_mut().for_each(|task| task.stuck = false);
            }
            return Err(Failure::TimedOut {
                timeout: self.timeout,
                body_done,
                busy,
                pending,
                queue: self.scheduler.describe_queue(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::TaskPanicked(message) => write!(f, "run_test: {message}"),
            Failure::Leaked(pending) => {
                writeln!(
                    f,
                    "run_test: the test body completed, but {} spawned through the test scope \
                     {} still pending and the test dispatcher is idle:",
                    count(pending.len()),
                    if pending.len() == 1 { "is" } else { "are" },
                )?;
                list(f, pending)?;
                write!(
                    f,
                    "Await each task in the test body, drop its Task to cancel it, or spawn it \
                     with scope.background() to have it cancelled at the end of the test."
                )
            }
            Failure::TimedOut {
                timeout,
                body_done,
                busy,
                pending,
                queue,
            } => {
                write!(
                    f,
                    "run_test: the test did not complete within {timeout:?} of real time; "
                )?;
                if *body_done {
                    writeln!(f, "the test body completed, but tasks it spawned did not.")?;
                } else {
                    writeln!(f, "the test body did not complete.")?;
                }
                if *busy {
                    writeln!(
                        f,
                        "The test dispatcher never went idle: foreground work keeps scheduling \
                         more (an endless loop of delays?); {queue}."
                    )?;
                } else {
                    writeln!(
                        f,
                        "It waits on something outside virtual time (another thread, a channel \
                         nobody sends on, a real-time timer); {queue}."
                    )?;
                }
                if !pending.is_empty() {
                    writeln!(f, "Pending tasks spawned through the test scope:")?;
                    list(f, pending)?;
                }
                write!(
                    f,
                    "To give the test more real time: run_test_with(TestConfig::new().timeout(..), ..)."
                )
            }
        }
    }
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 task".to_owned()
    } else {
        format!("{n} tasks")
    }
}

fn list(f: &mut fmt::Formatter<'_>, pending: &[PendingTask]) -> fmt::Result {
    for task in pending {
        write!(f, "  - {}", task.description)?;
        if task.stuck {
            writeln!(
                f,
                ": nothing holds its waker any more, so it can never complete"
            )?;
        } else {
            writeln!(f)?;
        }
    }
    Ok(())
}
