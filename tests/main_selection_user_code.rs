//! The selection runs user code outside the registry's lock: the name of the
//! dispatcher it picked (`Dispatch::name`, read to name what backs Main in
//! later errors) and the destructors of the factories it lets go of. Either
//! may register a factory or read `Dispatchers::main()`, and gets an answer
//! (the registration refused; the missing Main during the selection, the
//! selected one after) instead of a deadlock. One test: the selection is
//! process-wide and happens once.

#[path = "support/failing_factory.rs"]
mod failing_factory;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::error::Error;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use dispatchers::{
    Dispatch, Dispatcher, Dispatchers, MainDispatcher, MainDispatcherFactory, Runnable,
    register_main_factory,
};
use failing_factory::{FailingFactory, register_another_factory};
use watchdog::watchdog;

/// What one call of [`Chatty::name`] saw: whether its registration was
/// refused as too late, and whether Main was the missing dispatcher.
type Seen = (bool, bool);

/// A dispatcher whose `name` registers a factory and reads Main, every time,
/// and logs what it saw.
struct Chatty(Arc<Mutex<Vec<Seen>>>);

impl Dispatch for Chatty {
    fn dispatch(&self, runnable: Runnable) {
        drop(runnable);
    }

    fn name(&self) -> &str {
        let refused = register_another_factory().is_some();
        let missing = Dispatchers::main().is_missing();
        self.0.lock().unwrap().push((refused, missing));
        "chatty"
    }
}

/// Backs Main with a [`Chatty`].
struct ChattyFactory(Arc<Mutex<Vec<Seen>>>);

impl MainDispatcherFactory for ChattyFactory {
    fn load_priority(&self) -> i32 {
        0
    }

    fn create_dispatcher(
        &self,
        _all: &[Arc<dyn MainDispatcherFactory>],
    ) -> Result<MainDispatcher, Box<dyn Error + Send + Sync>> {
        Ok(MainDispatcher::new(Dispatcher::new(Chatty(self.0.clone()))))
    }
}

#[test]
fn user_code_of_the_selection_may_use_the_registry() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    register_main_factory(Arc::new(ChattyFactory(seen.clone()))).unwrap();
    // Never tried (Chatty works); its destructor runs once Main is stored.
    let (dropped_tx, dropped) = mpsc::channel();
    register_main_factory(Arc::new(FailingFactory {
        priority: -1,
        error: "never tried: a higher priority works",
        hint: None,
        on_drop: Some(Box::new(move || {
            let missing = Dispatchers::main().is_missing();
            let _ = dropped_tx.send((register_another_factory(), missing));
        })),
    }))
    .unwrap();
    let main = watchdog("the selection", Duration::from_secs(30), Dispatchers::main);
    assert!(!main.is_missing());
    assert_eq!(
        dropped.try_recv(),
        Ok((Some("chatty".to_owned()), false)),
        "the destructor ran before Dispatchers::main() returned, and saw Main"
    );
    let during_the_selection = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        !during_the_selection.is_empty(),
        "the selection reads the name"
    );
    for (refused, missing) in during_the_selection {
        assert!(refused, "registering while Main is selected is refused");
        assert!(
            missing,
            "reading Main while it is selected gets the missing one"
        );
    }
    // Once selected, the same calls see Main.
    assert_eq!(main.name(), "chatty");
    assert_eq!(seen.lock().unwrap().as_slice(), [(true, false)]);
}
