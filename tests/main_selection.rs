//! Selection of `Dispatchers::main()` through the process-wide registry, and
//! the `set_main` / `set_thread_main` overrides. One test: the registry is
//! process-wide and selection happens once.

#[path = "support/failing_factory.rs"]
mod failing_factory;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dispatchers::{Dispatchers, HostFactory, LoopHost, RegisterError, register_main_factory};
use failing_factory::FailingFactory;

#[test]
fn selection_overrides_and_late_registration() {
    let low = LoopHost::new("low");
    let tied = LoopHost::new("tied");
    let overriding = LoopHost::new("override");
    let per_thread = LoopHost::new("per-thread");

    low.register_as_main(1).unwrap();
    // Equal priority 5: `Unavailable` registered first, tried first, fails.
    register_main_factory(Arc::new(FailingFactory {
        priority: 5,
        error: "no display",
        hint: Some("run under Xvfb"),
        on_drop: None,
    }))
    .unwrap();
    register_main_factory(Arc::new(HostFactory::new("tied", 5, tied.dispatcher()))).unwrap();

    // The highest priority, but its host was dropped before Main was first
    // used: skipped, rather than a Main that cancels every task.
    {
        let dropped = LoopHost::new("dropped");
        dropped.register_as_main(10).unwrap();
        let main = dropped.dispatcher();
        drop(dropped);
        assert!(main.is_closed());
    }

    let never_selected_dropped = Arc::new(AtomicBool::new(false));
    let dropped = never_selected_dropped.clone();
    register_main_factory(Arc::new(FailingFactory {
        priority: -1,
        error: "never tried: a higher priority works",
        hint: None,
        on_drop: Some(Box::new(move || dropped.store(true, Ordering::SeqCst))),
    }))
    .unwrap();

    let main = Dispatchers::main();
    assert!(!main.is_missing());
    assert!(
        never_selected_dropped.load(Ordering::SeqCst),
        "the registry lets go of its factories once Main is selected"
    );
    assert_eq!(main.name(), "tied");
    assert_eq!(
        Dispatchers::main().dispatcher(),
        tied.dispatcher().dispatcher(),
        "stable"
    );

    let late = low.register_as_main(100).unwrap_err();
    assert!(matches!(late, RegisterError::AlreadySelected { .. }));
    let message = late.to_string();
    assert!(message.contains("already selected ('tied')"), "{message}");
    assert!(message.contains("before the first use"), "{message}");

    Dispatchers::set_main(overriding.dispatcher());
    assert_eq!(Dispatchers::main().name(), "override");
    {
        let _guard = Dispatchers::set_thread_main(per_thread.dispatcher());
        assert_eq!(Dispatchers::main().name(), "per-thread");
        let other_thread = std::thread::spawn(|| Dispatchers::main().name().to_owned());
        assert_eq!(
            other_thread.join().unwrap(),
            "override",
            "per-thread stays on its thread"
        );
    }
    assert_eq!(Dispatchers::main().name(), "override");
    Dispatchers::reset_main();
    assert_eq!(
        Dispatchers::main().name(),
        "tied",
        "reset returns to the selection"
    );

    // spawn_on_main goes to the selected host.
    let task = std::thread::spawn(|| dispatchers::spawn_on_main(async { 42 }))
        .join()
        .unwrap();
    assert_eq!(tied.run_until(task).unwrap(), 42);
}
