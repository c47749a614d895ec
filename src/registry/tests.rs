//! Unit tests of the selection of Main and of the missing-Main message.

use super::*;

struct Fake {
    name: &'static str,
    priority: i32,
    outcome: Outcome,
}

enum Outcome {
    Works,
    Fails(&'static str),
    Panics,
}

impl MainDispatcherFactory for Fake {
    fn load_priority(&self) -> i32 {
        self.priority
    }

    fn create_dispatcher(
        &self,
        _all: &[Arc<dyn MainDispatcherFactory>],
    ) -> Result<MainDispatcher, Box<dyn Error + Send + Sync>> {
        match self.outcome {
            Outcome::Works => Ok(MainDispatcher::new(Dispatcher::new(Named(self.name)))),
            Outcome::Fails(why) => Err(why.into()),
            Outcome::Panics => panic!("factory exploded"),
        }
    }

    fn hint_on_error(&self) -> Option<String> {
        Some(format!("hint for {}", self.name))
    }

    fn name(&self) -> String {
        self.name.to_owned()
    }
}

struct Named(&'static str);

impl Dispatch for Named {
    fn dispatch(&self, runnable: Runnable) {
        drop(runnable);
    }

    fn name(&self) -> &str {
        self.0
    }
}

fn fake(name: &'static str, priority: i32, outcome: Outcome) -> Arc<dyn MainDispatcherFactory> {
    Arc::new(Fake {
        name,
        priority,
        outcome,
    })
}

#[test]
fn highest_priority_wins() {
    let main = select(vec![
        fake("low", 1, Outcome::Works),
        fake("high", 10, Outcome::Works),
        fake("mid", 5, Outcome::Works),
    ]);
    assert_eq!(main.name(), "high");
    assert!(!main.is_missing());
}

#[test]
fn ties_go_to_the_first_registered() {
    let main = select(vec![
        fake("first", 7, Outcome::Works),
        fake("second", 7, Outcome::Works),
    ]);
    assert_eq!(main.name(), "first");
}

#[test]
fn failing_and_panicking_factories_are_skipped() {
    let main = select(vec![
        fake("broken", 100, Outcome::Fails("no display")),
        fake("exploding", 50, Outcome::Panics),
        fake("fallback", 1, Outcome::Works),
    ]);
    assert_eq!(main.name(), "fallback");
}

/// Panics in every method but `name`.
struct Unruly;

impl MainDispatcherFactory for Unruly {
    fn load_priority(&self) -> i32 {
        panic!("priority exploded")
    }

    fn create_dispatcher(
        &self,
        _all: &[Arc<dyn MainDispatcherFactory>],
    ) -> Result<MainDispatcher, Box<dyn Error + Send + Sync>> {
        panic!("never called")
    }

    fn name(&self) -> String {
        "unruly".into()
    }
}

#[test]
fn a_factory_panicking_in_load_priority_is_skipped_and_reported() {
    let main = select(vec![Arc::new(Unruly), fake("ok", 0, Outcome::Works)]);
    assert_eq!(main.name(), "ok");
    let main = select(vec![Arc::new(Unruly)]);
    let message = std::panic::catch_unwind(|| main.is_dispatch_needed())
        .unwrap_err()
        .downcast::<String>()
        .map(|m| *m)
        .unwrap();
    assert!(
        message.contains("unruly: load_priority panicked: priority exploded"),
        "{message}"
    );
}

#[test]
fn missing_message_names_every_factory_error_hint_and_fix() {
    let main = select(vec![
        fake("winit-ish", 100, Outcome::Fails("no display")),
        fake("exploding", 50, Outcome::Panics),
    ]);
    assert!(main.is_missing());
    // Reading never panics.
    let _ = main.immediate();
    let _ = main.name();
    let message = std::panic::catch_unwind(|| main.is_dispatch_needed())
        .unwrap_err()
        .downcast::<String>()
        .map(|m| *m)
        .unwrap();
    for expected in [
        "winit-ish (load_priority 100): no display",
        "hint: hint for winit-ish",
        "exploding (load_priority 50): create_dispatcher panicked: factory exploded",
        "hint: hint for exploding",
        "register a host adapter at start-up",
        "LoopHost::new",
        "Dispatchers::set_main",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in:\n{message}"
        );
    }
    // winit-ish is tried (and listed) before exploding.
    assert!(message.find("winit-ish").unwrap() < message.find("exploding").unwrap());
}

#[test]
fn missing_panics_on_every_use() {
    let main = select(Vec::new());
    let message = |f: &dyn Fn()| {
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
        payload.downcast::<String>().map(|m| *m).unwrap()
    };
    let expected = "no main dispatcher factory was registered";
    assert!(message(&|| drop(main.spawn(async {}))).contains(expected));
    assert!(message(&|| drop(main.limited_parallelism(1))).contains(expected));
    assert!(message(&|| drop(main.immediate().spawn(async {}))).contains(expected));
    assert!(
        message(&|| {
            main.immediate().is_dispatch_needed();
        })
        .contains(expected)
    );
}
