//! The selection drops the factories it did not pick; a destructor that
//! reads `Dispatchers::main()` must get the selected Main (not deadlock), and
//! one that panics must not make `Dispatchers::main()` panic or lose Main.
//! One test: the selection is process-wide and happens once.

#[path = "support/failing_factory.rs"]
mod failing_factory;

use std::sync::{Arc, mpsc};
use std::time::Duration;

use dispatchers::{Dispatchers, LoopHost, register_main_factory};
use failing_factory::FailingFactory;

/// A factory never tried (a higher priority works) that runs `on_drop` when
/// the selection drops it.
fn never_tried(priority: i32, on_drop: impl FnOnce() + Send + Sync + 'static) -> FailingFactory {
    FailingFactory {
        priority,
        error: "never tried: a higher priority works",
        hint: None,
        on_drop: Some(Box::new(on_drop)),
    }
}

#[test]
fn factory_destructors_may_read_main_or_panic() {
    let host = LoopHost::new("the-host");
    host.register_as_main(10).unwrap();
    let (seen_tx, seen_rx) = mpsc::channel();
    // Reads Main when dropped and reports what it saw.
    register_main_factory(Arc::new(never_tried(-2, move || {
        let _ = seen_tx.send(Dispatchers::main().name().to_owned());
    })))
    .unwrap();
    register_main_factory(Arc::new(never_tried(-1, || panic!("factory drop")))).unwrap();
    // On another thread, so that a deadlock fails the test instead of
    // hanging it.
    let (names_tx, names_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let name = || {
            std::panic::catch_unwind(Dispatchers::main)
                .map(|m| m.name().to_owned())
                .ok()
        };
        let _ = names_tx.send((name(), name()));
    });
    let names = names_rx.recv_timeout(Duration::from_secs(30));
    let expected = Some("the-host".to_owned());
    assert_eq!(names, Ok((expected.clone(), expected.clone())));
    assert_eq!(seen_rx.recv_timeout(Duration::from_secs(30)).ok(), expected);
}
