//! The selection drops the factories it did not pick; a destructor that
//! reads `Dispatchers::main()` must get the selected Main (not deadlock), and
//! one that panics must not make `Dispatchers::main()` panic or lose Main.
//! One test: the selection is process-wide and happens once.

use std::error::Error;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use dispatchers::{
    Dispatchers, LoopHost, MainDispatcher, MainDispatcherFactory, register_main_factory,
};

/// Never selected; panics when dropped.
struct PanicsOnDrop;

impl MainDispatcherFactory for PanicsOnDrop {
    fn load_priority(&self) -> i32 {
        -1
    }

    fn create_dispatcher(
        &self,
        _all: &[Arc<dyn MainDispatcherFactory>],
    ) -> Result<MainDispatcher, Box<dyn Error + Send + Sync>> {
        Err("never tried: a higher priority works".into())
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("factory drop");
    }
}

/// Never selected; reads Main when dropped and reports what it saw.
struct ReadsMainOnDrop(mpsc::Sender<String>);

impl MainDispatcherFactory for ReadsMainOnDrop {
    fn load_priority(&self) -> i32 {
        -2
    }

    fn create_dispatcher(
        &self,
        _all: &[Arc<dyn MainDispatcherFactory>],
    ) -> Result<MainDispatcher, Box<dyn Error + Send + Sync>> {
        Err("never tried: a higher priority works".into())
    }
}

impl Drop for ReadsMainOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(Dispatchers::main().name().to_owned());
    }
}

#[test]
fn factory_destructors_may_read_main_or_panic() {
    let host = LoopHost::new("the-host");
    host.register_as_main(10).unwrap();
    let (seen_tx, seen_rx) = mpsc::channel();
    register_main_factory(Arc::new(ReadsMainOnDrop(seen_tx))).unwrap();
    register_main_factory(Arc::new(PanicsOnDrop)).unwrap();
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
