//! The panic policy (`set_panic_policy`): the default sends a panic to its
//! `Task` (or the handler), the abort policies end the process. An abort is
//! tested in a child process: the test binary runs itself again, with an
//! environment variable that selects the scenario, and checks how the child
//! ended.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dispatchers::{
    Budget, LoopHost, PanicPolicy, PanicSource, TaskBuilder, block_on, panic_policy,
    reset_panic_handler, set_panic_handler, set_panic_policy,
};

/// Selects the child's scenario.
const CHILD: &str = "DISPATCHERS_PANIC_POLICY_CHILD";
/// A child that runs longer than this is hung.
const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// How a child ended, and what it wrote to stderr.
struct ChildEnd {
    status: ExitStatus,
    stderr: String,
}

impl ChildEnd {
    /// Ended by `SIGABRT` (`std::process::abort`).
    fn aborted(&self) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            self.status.signal() == Some(6)
        }
        #[cfg(not(unix))]
        {
            !self.status.success()
        }
    }
}

/// Runs this test binary again, only `test`, with the scenario `scenario`;
/// kills it (failing) if it outlives [`CHILD_LIMIT`].
fn run_child(test: &str, scenario: &str) -> ChildEnd {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, scenario)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the child");
    let mut stderr = child.stderr.take().unwrap();
    let reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + CHILD_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("cannot wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog: the child '{scenario}' hung");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let stderr = reader.join().unwrap();
    ChildEnd { status, stderr }
}

fn scenario() -> Option<String> {
    std::env::var(CHILD).ok()
}

#[test]
fn the_default_policy_sends_panics_to_their_task() {
    assert_eq!(panic_policy(), PanicPolicy::ToTask);
    assert_eq!(PanicPolicy::default(), PanicPolicy::ToTask);
}

/// `Abort`: the first panic of any task, awaited or not, is reported and
/// ends the process.
#[test]
fn abort_policy_ends_the_process_at_an_awaited_tasks_panic() {
    if scenario().as_deref() == Some("abort") {
        set_panic_policy(PanicPolicy::Abort);
        let host = LoopHost::new("child");
        let task = TaskBuilder::new()
            .name("doomed")
            .spawn(&host.dispatcher(), async { panic!("boom") });
        host.run_pending(Budget::unlimited());
        eprintln!("CHILD SURVIVED");
        drop(task);
        return;
    }
    let end = run_child(
        "abort_policy_ends_the_process_at_an_awaited_tasks_panic",
        "abort",
    );
    assert!(end.aborted(), "{:?}\n{}", end.status, end.stderr);
    assert!(
        end.stderr.contains("task 'doomed' panicked: boom"),
        "{}",
        end.stderr
    );
    assert!(
        end.stderr
            .contains("aborting the process (panic policy Abort)"),
        "{}",
        end.stderr
    );
    assert!(!end.stderr.contains("CHILD SURVIVED"));
}

/// `AbortUnhandled`: an awaited task's panic still goes to its `Task`; a
/// detached task's panic is reported by the handler, then ends the process.
#[test]
fn abort_unhandled_policy_ends_the_process_at_a_detached_tasks_panic() {
    if scenario().as_deref() == Some("abort-unhandled") {
        set_panic_policy(PanicPolicy::AbortUnhandled);
        set_panic_handler(|report| eprintln!("HANDLER: {report}"));
        let host = LoopHost::new("child");
        let main = host.dispatcher();
        let awaited = main.spawn(async { panic!("handled boom") });
        let error = host.run_until(awaited).unwrap_err();
        assert!(error.is_panic());
        eprintln!("AWAITED PANIC WENT TO ITS TASK");
        TaskBuilder::new()
            .name("orphan")
            .spawn(&main, async { panic!("unhandled boom") })
            .detach();
        host.run_pending(Budget::unlimited());
        eprintln!("CHILD SURVIVED");
        return;
    }
    let end = run_child(
        "abort_unhandled_policy_ends_the_process_at_a_detached_tasks_panic",
        "abort-unhandled",
    );
    assert!(end.aborted(), "{:?}\n{}", end.status, end.stderr);
    let text = &end.stderr;
    assert!(text.contains("AWAITED PANIC WENT TO ITS TASK"), "{text}");
    assert!(
        text.contains("HANDLER: detached task 'orphan' panicked: unhandled boom"),
        "{text}"
    );
    assert!(text.contains("panic policy AbortUnhandled"), "{text}");
    assert!(!text.contains("CHILD SURVIVED"), "{text}");
}

/// Counts its drops, then panics.
struct ExplodesOnDrop(Arc<AtomicUsize>, &'static str);

impl Drop for ExplodesOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("{}", self.1);
    }
}

/// A destructor that panics when the loop drops the future (it finished, or
/// the shutdown cancelled it): the panic goes to the `Task`, like a panic of
/// the future's poll, and never unwinds through the loop or the shutdown.
#[test]
fn a_panicking_destructor_goes_to_the_task_and_not_through_the_loop() {
    let drops = Arc::new(AtomicUsize::new(0));
    let host = LoopHost::new("loop");
    let main = host.dispatcher();
    let guard = ExplodesOnDrop(drops.clone(), "destructor boom after finishing");
    let finished = main.spawn(async move {
        let _guard = guard;
        7
    });
    let guard = ExplodesOnDrop(drops.clone(), "destructor boom at shutdown");
    let cancelled = main.spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
    host.run_pending(Budget::unlimited());
    assert!(finished.is_finished());
    let error = block_on(finished).unwrap_err();
    assert_eq!(
        error.to_string(),
        "task panicked: destructor boom after finishing"
    );
    drop(host); // the shutdown cancels the other task: its destructor panics
    assert!(cancelled.is_finished());
    let error = block_on(cancelled).unwrap_err();
    assert_eq!(
        error.to_string(),
        "task panicked: destructor boom at shutdown"
    );
    assert_eq!(drops.load(Ordering::SeqCst), 2, "each dropped once");
}

/// A task cancelled by dropping its `Task` while it is suspended: its
/// destructor's panic goes to the handler, as a detached task's (nobody
/// awaits it), under the default policy; the loop and the process go on.
/// Under `Abort` it ends the process, as any panic. In a child process: the
/// handler is process-wide.
#[test]
fn a_panicking_destructor_of_a_task_cancelled_by_its_task_handle_is_reported() {
    let name = "a_panicking_destructor_of_a_task_cancelled_by_its_task_handle_is_reported";
    if let Some(scenario) = scenario() {
        if scenario == "abort" {
            set_panic_policy(PanicPolicy::Abort);
        }
        set_panic_handler(|report| {
            eprintln!(
                "REPORTED {:?} {:?}: {:?}",
                report.source(),
                report.name(),
                report.message()
            );
        });
        let drops = Arc::new(AtomicUsize::new(0));
        let host = LoopHost::new("child");
        let guard = ExplodesOnDrop(drops.clone(), "destructor boom");
        let task = TaskBuilder::new()
            .name("exploding")
            .spawn(&host.dispatcher(), async move {
                let _guard = guard;
                std::future::pending::<()>().await
            });
        host.run_pending(Budget::unlimited());
        drop(task);
        host.run_pending(Budget::unlimited());
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once");
        // The loop goes on.
        let after = host.dispatcher().spawn(async { 5 });
        assert_eq!(host.run_until(after).unwrap(), 5);
        eprintln!("CHILD SURVIVED");
        return;
    }
    let end = run_child(name, "default");
    assert!(end.status.success(), "{:?}\n{}", end.status, end.stderr);
    assert!(
        end.stderr
            .contains(r#"REPORTED DetachedTask Some("exploding"): Some("destructor boom")"#),
        "{}",
        end.stderr
    );
    assert!(end.stderr.contains("CHILD SURVIVED"), "{}", end.stderr);

    let end = run_child(name, "abort");
    assert!(end.aborted(), "{:?}\n{}", end.status, end.stderr);
    assert!(end.stderr.contains("destructor boom"), "{}", end.stderr);
    assert!(!end.stderr.contains("CHILD SURVIVED"));
}

/// A task's output that nobody takes (its task detached, or its `Task`
/// dropped after the task finished), whose destructor panics: reported to
/// the handler as a detached task's panic; the loop and the process go on.
/// In a child process: the handler is process-wide.
#[test]
fn a_panicking_destructor_of_an_output_nobody_takes_is_reported() {
    if scenario().is_some() {
        set_panic_handler(|report| {
            eprintln!("REPORTED {:?}: {:?}", report.source(), report.message());
        });
        let drops = Arc::new(AtomicUsize::new(0));
        let host = LoopHost::new("child");
        let main = host.dispatcher();
        let output = ExplodesOnDrop(drops.clone(), "detached output boom");
        main.spawn(async move { output }).detach();
        host.run_pending(Budget::unlimited());
        let output = ExplodesOnDrop(drops.clone(), "dropped output boom");
        let task = main.spawn(async move { output });
        host.run_pending(Budget::unlimited());
        assert!(task.is_finished());
        drop(task);
        assert_eq!(drops.load(Ordering::SeqCst), 2, "each dropped once");
        let after = main.spawn(async { 5 });
        assert_eq!(host.run_until(after).unwrap(), 5);
        eprintln!("CHILD SURVIVED");
        return;
    }
    let end = run_child(
        "a_panicking_destructor_of_an_output_nobody_takes_is_reported",
        "output",
    );
    assert!(end.status.success(), "{:?}\n{}", end.status, end.stderr);
    for boom in ["detached output boom", "dropped output boom"] {
        let line = format!("REPORTED DetachedTask: Some({boom:?})");
        assert!(
            end.stderr.contains(&line),
            "{line} missing in:\n{}",
            end.stderr
        );
    }
    assert!(end.stderr.contains("CHILD SURVIVED"), "{}", end.stderr);
}

/// The default policy in a process that keeps going: each panic reaches its
/// `Task` or the handler exactly once, and the loop keeps running. (The
/// per-host version, 10,000 panics, is the stress suite's panic storm.)
#[test]
fn under_the_default_policy_each_panic_is_reported_once_and_the_loop_goes_on() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    set_panic_handler(move |report| {
        if report
            .message()
            .is_some_and(|m| m.starts_with("policy-test"))
        {
            sink.lock()
                .unwrap()
                .push((report.source(), report.message().map(str::to_owned)));
        }
    });
    let host = LoopHost::new("loop");
    let main = host.dispatcher();
    let awaited: Vec<_> = (0..50)
        .map(|i| main.spawn(async move { panic!("policy-test awaited {i}") }))
        .collect();
    for i in 0..50 {
        main.spawn(async move { panic!("policy-test detached {i}") })
            .detach();
    }
    // A detached task whose destructor panics: reported like its panic.
    let guard = ExplodesOnDrop(Arc::new(AtomicUsize::new(0)), "policy-test destructor");
    main.spawn(async move {
        let _guard = guard;
    })
    .detach();
    let normal = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let normal = normal.clone();
        main.spawn(async move {
            normal.fetch_add(1, Ordering::SeqCst);
        })
        .detach();
    }
    host.run_pending(Budget::unlimited());
    for (i, task) in awaited.into_iter().enumerate() {
        assert!(task.is_finished());
        let error = block_on(task).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("task panicked: policy-test awaited {i}")
        );
    }
    reset_panic_handler();
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 51, "only the detached ones, once each");
    for (i, (source, message)) in reports.iter().take(50).enumerate() {
        assert_eq!(*source, PanicSource::DetachedTask);
        assert_eq!(
            message.as_deref(),
            Some(&*format!("policy-test detached {i}"))
        );
    }
    assert_eq!(reports[50].1.as_deref(), Some("policy-test destructor"));
    assert_eq!(normal.load(Ordering::SeqCst), 50);
}
