//! Test support: a virtual-time [`TestDispatcher`] and [`run_test`], after
//! kotlinx-coroutines-test.
//!
//! A test runs its body with [`run_test`]: the body and everything it spawns
//! on Main run on the test thread, in a deterministic order, and `delay` /
//! `timeout` wait on a virtual clock, so a test of a 10-minute timeout takes
//! microseconds and never depends on how loaded the machine is.
//!
//! # Packaging
//!
//! This module is compiled only with the cargo feature `test-util`. Enable
//! it for your tests alone, as a dev-dependency:
//!
//! ```toml
//! [dependencies]
//! dispatchers = "0.1"
//!
//! [dev-dependencies]
//! dispatchers = { version = "0.1", features = ["test-util"] }
//! ```
//!
//! Cargo enables the feature when it builds your tests, examples and
//! benches, and leaves it out of the library and binaries you ship.
//!
//! # A view model under test
//!
//! A search box publishes its query once the user has stopped typing for
//! 300 ms (a debounce, with `delay` on Main); its test types three letters
//! and checks what was searched, and when:
//!
//! ```
//! use dispatchers::test_util::run_test;
//! use dispatchers::{Task, delay, spawn_on_main_local};
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//!
//! /// Searches for the input once it has been stable for 300 ms.
//! #[derive(Default)]
//! struct SearchViewModel {
//!     debounce: RefCell<Option<Task<()>>>,
//!     searches: Rc<RefCell<Vec<String>>>,
//! }
//!
//! impl SearchViewModel {
//!     /// Called by the UI on every keystroke, on the main thread.
//!     fn on_input(&self, text: &str) {
//!         let searches = self.searches.clone();
//!         let text = text.to_owned();
//!         let task = spawn_on_main_local(async move {
//!             delay(Duration::from_millis(300)).await;
//!             searches.borrow_mut().push(text);
//!         });
//!         // Dropping the previous task cancels it: only the last input is searched.
//!         self.debounce.replace(Some(task));
//!     }
//!
//!     fn searches(&self) -> Vec<String> {
//!         self.searches.borrow().clone()
//!     }
//! }
//!
//! run_test(|scope| async move {
//!     let model = SearchViewModel::default();
//!     model.on_input("r");
//!     scope.advance_time_by(Duration::from_millis(100));
//!     model.on_input("ru");
//!     scope.advance_time_by(Duration::from_millis(100));
//!     model.on_input("rust");
//!
//!     scope.advance_time_by(Duration::from_millis(299));
//!     assert!(model.searches().is_empty());
//!
//!     // 300 ms after the last keystroke: the search is due, not yet run
//!     // (advance_time_by runs what is due strictly before its target) ...
//!     scope.advance_time_by(Duration::from_millis(1));
//!     assert!(model.searches().is_empty());
//!     // ... run_current runs it.
//!     scope.run_current();
//!     assert_eq!(model.searches(), ["rust"]);
//!     assert_eq!(scope.current_time(), Duration::from_millis(500));
//! });
//! ```
//!
//! # Virtual time
//!
//! A test dispatcher keeps a queue of *events*, each with a key (virtual
//! time, sequence number): a dispatched task at the current virtual time, a
//! `delay` at its deadline. They run in key order, so equal deadlines fire in
//! the order the delays started, and the clock moves to each event's time as
//! it runs. A task woken by its timer runs at its timer's turn.
//!
//! - [`TestScope::run_current`]: runs what is due now; the clock stays.
//! - [`TestScope::advance_time_by`]: runs what is due *strictly before*
//!   `now + d`, then sets the clock to `now + d` (what is due exactly then
//!   runs at the next `run_current`), as kotlinx's `advanceTimeBy`.
//! - [`TestScope::advance_until_idle`]: runs until no foreground work is
//!   left, moving the clock as far as needed.
//! - [`TestScope::current_time`] is the virtual time since the start;
//!   [`TestScope::now`] the same clock as an `Instant`, the one `delay_until`
//!   and `timeout_at` compare with on the test thread.
//!
//! Only the test thread uses virtual time: a `delay` polled on a pool thread
//! (inside `with_context(&Dispatchers::io(), ..)`, say) waits in real time,
//! and `Instant::now()` is always real. A dispatch from another thread is
//! queued at the current virtual time and runs on the test thread.
//!
//! So virtual time does not wait for real-time work: while the test thread
//! has nothing to run, [`run_test`] moves the clock to the next virtual
//! timer, even if a hop to a real pool would have finished first. A
//! `timeout` on the test thread around `with_context(&Dispatchers::io(), ..)`
//! elapses at once in real terms, as it does in kotlinx's `runTest`. Put the
//! timeout inside the hop (it then runs in real time), or leave it out of
//! the test.
//!
//! # Parallel tests
//!
//! `cargo test` runs the tests of a binary in parallel threads of one
//! process. [`run_test`] installs its dispatcher as Main with
//! [`Dispatchers::set_thread_main`](crate::Dispatchers::set_thread_main) and
//! binds its clock to the calling thread only: nothing process-wide changes,
//! so tests running side by side each see their own Main and their own
//! clock, and both are restored when the test ends.
//!
//! Code running on *other* threads (pool threads, threads the test spawns)
//! sees the process-wide Main ([`Dispatchers::set_main`](crate::Dispatchers::set_main)
//! or the registered factories), not the test's. Code under test that calls
//! `Dispatchers::main()` from a pool thread should capture the `Dispatcher`
//! on the main thread instead (`let main = Dispatchers::main();` before the
//! hop); failing that, such a test must set Main process-wide and run alone
//! (`cargo test -- --test-threads=1`, or a test binary of its own).
//!
//! # The end of a test
//!
//! When the body returns, [`run_test`] runs the dispatcher until idle; then
//! every task spawned through the [`TestScope`] must have completed. A task
//! that is still pending and that nothing can wake any more (no waker of it
//! is held anywhere) is *leaked*: the test fails at once, naming it (from
//! [`TestScope::spawn_named`] or [`TaskBuilder::name`](crate::TaskBuilder::name))
//! and the line that spawned it. A task still waiting on another thread is
//! waited for, up to the timeout. Tasks of [`TestScope::background`] are
//! cancelled instead; a panic in any scope task fails the test.
//!
//! A test that waits on something that never happens fails after its
//! timeout ([`DEFAULT_TIMEOUT`], 60 s of real time; see [`TestConfig`])
//! instead of hanging, with the pending tasks in the message.

mod dispatcher;
mod run;
mod scheduler;
mod scope;
mod tracked;

pub use dispatcher::{InstallGuard, TestDispatcher};
pub use run::{DEFAULT_TIMEOUT, TestConfig, run_test, run_test_with};
pub use scope::TestScope;

#[cfg(test)]
mod tests;
