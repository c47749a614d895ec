//! With no factory registered, Main is the `MissingMainDispatcher`: reading it
//! is fine, using it panics with a message that says what to do.

use dispatchers::{Dispatchers, spawn_on_main};

#[test]
fn missing_main_panics_on_use_with_a_helpful_message() {
    let main = Dispatchers::main();
    assert!(main.is_missing());
    let _immediate = main.immediate();
    assert_eq!(main.name(), "Main (missing)");

    let panic = std::panic::catch_unwind(|| spawn_on_main(async {}).detach()).unwrap_err();
    let message = panic.downcast::<String>().unwrap();
    assert!(
        message.contains("Dispatchers::main() is missing"),
        "{message}"
    );
    assert!(
        message.contains("no main dispatcher factory was registered"),
        "{message}"
    );
    assert!(
        message.contains("register a host adapter at start-up"),
        "{message}"
    );
    assert!(message.contains("dispatchers_mio::MioHost"), "{message}");

    let panic = std::panic::catch_unwind(|| {
        dispatchers::spawn_on_main_local(async {}).detach();
    })
    .unwrap_err();
    let message = panic.downcast::<String>().unwrap();
    assert!(
        message.contains("Dispatchers::main() is missing"),
        "{message}"
    );
}
