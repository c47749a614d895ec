//! Tasks: output, names, `JoinError`, `spawn_local` misuse, auto traits.

use std::rc::Rc;

use dispatchers::{
    Dispatcher, Dispatchers, HostEngine, JoinError, LoopHost, MainDispatcher, Task, TaskBuilder,
    block_on,
};

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn public_types_have_the_auto_traits_users_rely_on() {
    assert_send_sync_clone::<Dispatcher>();
    assert_send_sync_clone::<MainDispatcher>();
    assert_send_sync::<Task<u32>>();
    assert_send_sync::<JoinError>();
    assert_send_sync::<dispatchers::Runnable>();
    assert_send_sync::<dispatchers::Delay>();
    assert_send::<dispatchers::RegisterError>();
    // A Task of a !Send output is !Send, but the handle to it is still Sync
    // (it only hands the output to whoever awaits).
    fn unpin<T: Unpin>() {}
    unpin::<Task<Rc<u8>>>();
}

#[test]
fn a_named_task_carries_its_name_into_errors() {
    let host = LoopHost::new("loop");
    let main = host.dispatcher();
    let task = TaskBuilder::new()
        .name("save-game")
        .spawn(&main, async { panic!("disk full") });
    assert_eq!(task.name(), Some("save-game"));
    let err = host.run_until(task).unwrap_err();
    assert_eq!(err.task_name(), Some("save-game"));
    assert_eq!(err.to_string(), "task 'save-game' panicked: disk full");
    assert!(format!("{err:?}").contains("save-game"));
}

#[test]
fn into_panic_on_a_cancellation_panics_with_a_clear_message() {
    let engine = HostEngine::new("loop", || {});
    let main = engine.dispatcher();
    engine.shutdown();
    let err = block_on(main.spawn(async {})).unwrap_err();
    assert!(err.is_cancelled() && !err.is_panic());
    let err = err.try_into_panic().unwrap_err();
    let message = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| err.into_panic()))
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
    assert!(
        message.contains("into_panic called on task was cancelled"),
        "{message}"
    );
}

#[test]
fn spawn_local_off_the_loop_thread_is_an_error_that_returns_the_future() {
    let host = LoopHost::new("loop");
    let main = host.dispatcher();
    let error = std::thread::spawn(move || {
        let state = Rc::new(5);
        let error = main.try_spawn_local(async move { *state }).unwrap_err();
        let message = error.to_string();
        // The future comes back, unharmed and runnable.
        assert_eq!(block_on(error.into_inner()), 5);
        message
    })
    .join()
    .unwrap();
    assert!(
        error.contains("can only be spawned on the thread"),
        "{error}"
    );
    assert!(error.contains("'loop'"), "{error}");
}

#[test]
fn spawn_local_off_the_loop_thread_panics_with_the_same_message() {
    let host = LoopHost::new("loop");
    let main = host.dispatcher();
    let panic = std::thread::spawn(move || {
        let _guard = Dispatchers::set_thread_main(main);
        dispatchers::spawn_on_main_local(async {}).detach();
    })
    .join()
    .unwrap_err();
    let message = panic.downcast::<String>().unwrap();
    assert!(
        message.contains("!Send future can only be spawned"),
        "{message}"
    );
}

#[test]
fn spawn_on_main_local_runs_not_send_state_on_the_loop_thread() {
    let host = LoopHost::new("loop");
    let _guard = Dispatchers::set_thread_main(host.dispatcher());
    let counter = Rc::new(std::cell::Cell::new(0));
    let local = counter.clone();
    let task = dispatchers::spawn_on_main_local(async move {
        dispatchers::yield_now().await;
        local.set(local.get() + 1);
        "done"
    });
    assert_eq!(host.run_until(task).unwrap(), "done");
    assert_eq!(counter.get(), 1);
}

#[test]
fn a_not_send_task_is_never_dropped_on_a_foreign_thread() {
    let host = LoopHost::new("loop");
    let main = host.dispatcher();
    let drops = Rc::new(std::cell::Cell::new(0));
    struct LocalDrop(Rc<std::cell::Cell<u32>>);
    impl Drop for LocalDrop {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let guard = LocalDrop(drops.clone());
    let task = main.spawn_local(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    });
    host.run_pending(dispatchers::Budget::unlimited());
    // Cancel by dropping the handle: the future is dropped by the loop, on
    // its own thread.
    drop(task);
    host.run_pending(dispatchers::Budget::unlimited());
    assert_eq!(drops.get(), 1);
}
