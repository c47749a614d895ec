//! The selection drops the factories it did not pick; one whose destructor
//! panics must not make `Dispatchers::main()` panic or lose Main. One test:
//! the selection is process-wide and happens once.

use std::error::Error;
use std::sync::Arc;

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

#[test]
fn reading_main_never_panics_even_when_a_factory_drop_does() {
    let host = LoopHost::new("the-host");
    host.register_as_main(10).unwrap();
    register_main_factory(Arc::new(PanicsOnDrop)).unwrap();
    let first = std::panic::catch_unwind(Dispatchers::main).map(|m| m.name().to_owned());
    let second = std::panic::catch_unwind(Dispatchers::main).map(|m| m.name().to_owned());
    assert_eq!(first.ok().as_deref(), Some("the-host"));
    assert_eq!(second.ok().as_deref(), Some("the-host"));
}
