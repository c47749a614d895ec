//! The selected dispatcher's `name()` panics when the selection reads it
//! (not before: `MainDispatcher::new` reads it too, and a factory whose
//! dispatcher panics there fails): `Dispatchers::main()` still returns the
//! selected Main (it never panics), and later errors name it by a
//! placeholder. One test: the selection is process-wide and happens once.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dispatchers::{
    Dispatch, Dispatcher, Dispatchers, MainDispatcher, MainDispatcherFactory, RegisterError,
    Runnable, register_main_factory,
};

/// Drops its runnables; its name panics from the second call on.
struct Nameless(AtomicUsize);

impl Dispatch for Nameless {
    fn dispatch(&self, runnable: Runnable) {
        drop(runnable);
    }

    fn name(&self) -> &str {
        if self.0.fetch_add(1, Ordering::SeqCst) > 0 {
            panic!("this dispatcher's name() panics");
        }
        "nameless"
    }
}

/// Backs Main with [`Nameless`].
struct NamelessFactory;

impl MainDispatcherFactory for NamelessFactory {
    fn load_priority(&self) -> i32 {
        0
    }

    fn create_dispatcher(
        &self,
        _all: &[Arc<dyn MainDispatcherFactory>],
    ) -> Result<MainDispatcher, Box<dyn Error + Send + Sync>> {
        Ok(MainDispatcher::new(Dispatcher::new(Nameless(
            AtomicUsize::new(0),
        ))))
    }
}

#[test]
fn a_selected_dispatcher_whose_name_panics_still_backs_main() {
    register_main_factory(Arc::new(NamelessFactory)).unwrap();
    let main = std::panic::catch_unwind(Dispatchers::main)
        .expect("Dispatchers::main() never panics, even when the dispatcher's name() does");
    assert!(!main.is_missing());
    match register_main_factory(Arc::new(NamelessFactory)) {
        Err(RegisterError::AlreadySelected { selected, .. }) => {
            assert!(selected.contains("name() panicked"), "{selected}")
        }
        other => panic!("a late registration is refused, got {other:?}"),
    }
}
