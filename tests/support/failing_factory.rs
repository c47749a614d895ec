//! [`FailingFactory`] and [`register_another_factory`], shared by the test
//! files that include it with
//! `#[path = "support/failing_factory.rs"] mod failing_factory;`.

use std::error::Error;
use std::sync::Arc;

use dispatchers::{MainDispatcher, MainDispatcherFactory, RegisterError, register_main_factory};

/// A factory whose `create_dispatcher` always fails, with `error` and
/// `hint`; `on_drop` runs when the registry drops it.
pub struct FailingFactory {
    pub priority: i32,
    pub error: &'static str,
    pub hint: Option<&'static str>,
    pub on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl MainDispatcherFactory for FailingFactory {
    fn load_priority(&self) -> i32 {
        self.priority
    }

    fn create_dispatcher(
        &self,
        _all: &[Arc<dyn MainDispatcherFactory>],
    ) -> Result<MainDispatcher, Box<dyn Error + Send + Sync>> {
        Err(self.error.into())
    }

    fn hint_on_error(&self) -> Option<String> {
        self.hint.map(str::to_owned)
    }
}

impl Drop for FailingFactory {
    fn drop(&mut self) {
        if let Some(on_drop) = self.on_drop.take() {
            on_drop();
        }
    }
}

/// Registers one more (failing) factory, as user code that the registry runs
/// may: `Some(what backs Main)` as the refusal names it once the selection
/// has begun, `None` when it was registered.
#[allow(dead_code)] // not every file that includes this one uses it
pub fn register_another_factory() -> Option<String> {
    let factory = FailingFactory {
        priority: 0,
        error: "registered by user code that the registry ran",
        hint: None,
        on_drop: None,
    };
    match register_main_factory(Arc::new(factory)) {
        Ok(()) => None,
        Err(RegisterError::AlreadySelected { selected, .. }) => Some(selected),
        Err(other) => panic!("refused for another reason: {other}"),
    }
}
