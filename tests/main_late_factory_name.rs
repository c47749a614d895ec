//! A factory registered after the selection is refused, with an error that
//! names it: its `name` is user code, and so is its destructor, which runs
//! when the refused factory is let go. Either may register another factory
//! or read `Dispatchers::main()`, and gets an answer instead of a deadlock.
//! One test: the selection is process-wide and happens once.

#[path = "support/failing_factory.rs"]
mod failing_factory;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dispatchers::{
    Dispatchers, LoopHost, MainDispatcher, MainDispatcherFactory, RegisterError,
    register_main_factory,
};
use failing_factory::register_another_factory;
use watchdog::watchdog;

/// What a call into [`Nosy`] saw: which call, what backs Main according to
/// the refusal of the factory it registered, and the name of Main it read.
type Seen = (&'static str, Option<String>, String);

/// Registers a factory and reads Main, as user code may.
fn use_the_registry(call: &'static str) -> Seen {
    let refused = register_another_factory();
    (call, refused, Dispatchers::main().name().to_owned())
}

/// A factory whose `name` and destructor use the registry, and log what
/// they saw.
struct Nosy(Arc<Mutex<Vec<Seen>>>);

impl MainDispatcherFactory for Nosy {
    fn load_priority(&self) -> i32 {
        100
    }

    fn create_dispatcher(
        &self,
        _all: &[Arc<dyn MainDispatcherFactory>],
    ) -> Result<MainDispatcher, Box<dyn Error + Send + Sync>> {
        Err("registered too late to be tried".into())
    }

    fn name(&self) -> String {
        self.0.lock().unwrap().push(use_the_registry("name"));
        "nosy".into()
    }
}

impl Drop for Nosy {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(use_the_registry("drop"));
    }
}

#[test]
fn a_late_factorys_name_and_destructor_may_use_the_registry() {
    let host = LoopHost::new("the-host");
    host.register_as_main(0).unwrap();
    assert_eq!(Dispatchers::main().name(), "the-host");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let nosy = Nosy(seen.clone());
    let refused = watchdog("a late registration", Duration::from_secs(30), move || {
        register_main_factory(Arc::new(nosy))
    });
    assert_eq!(
        refused,
        Err(RegisterError::AlreadySelected {
            factory: "nosy".into(),
            selected: "the-host".into(),
        })
    );
    let the_host = || "the-host".to_owned();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("name", Some(the_host()), the_host()),
            ("drop", Some(the_host()), the_host())
        ]
    );
}
