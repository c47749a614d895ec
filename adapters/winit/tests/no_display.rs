//! Failing to build the event loop: errors as values with a hint, never a
//! panic out of the library, and a registered factory that reports why.
//!
//! winit allows one attempt to build an event loop per process, so each test
//! re-runs itself in a child process (without `DISPLAY`, `WAYLAND_DISPLAY`
//! and `WAYLAND_SOCKET`) and checks there. They need no display.

use std::process::Command;
use std::thread;

use dispatchers::Dispatchers;
use dispatchers_winit::{HostEvent, WinitError, WinitFactory, WinitHost};
use winit::error::EventLoopError;
use winit::event_loop::EventLoop;
use winit::platform::x11::EventLoopBuilderExtX11;

/// Set in the child process.
const CHILD: &str = "DISPATCHERS_WINIT_NO_DISPLAY_CHILD";

/// Runs `check` in a child process of this test binary with no display in
/// its environment; this process only checks that the child passed.
fn in_child_without_display(test: &str, check: fn()) {
    if std::env::var_os(CHILD).is_some() {
        check();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .output()
        .expect("cannot run the test binary again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the child process failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test:\n{stdout}"
    );
}

#[test]
fn without_a_display_build_fails_with_a_hint() {
    in_child_without_display("without_a_display_build_fails_with_a_hint", || {
        WinitFactory::new().register().unwrap();

        let built = thread::spawn(|| {
            let mut builder = EventLoop::<HostEvent>::with_user_event();
            builder.with_any_thread(true);
            WinitHost::build(&mut builder)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        })
        .join()
        .expect("build must return the error, not panic");
        assert!(built.contains("DISPLAY"), "{built}");
        assert!(built.contains("xvfb-run -a"), "{built}");

        // winit allows one attempt per process; the second says so.
        let again = thread::spawn(|| {
            let mut builder = EventLoop::<HostEvent>::with_user_event();
            builder.with_any_thread(true);
            WinitHost::build(&mut builder).map(|_| ()).unwrap_err()
        })
        .join()
        .unwrap();
        assert!(
            matches!(
                again,
                WinitError::EventLoop(EventLoopError::RecreationAttempt)
            ),
            "{again:?}"
        );
        assert!(
            again.to_string().contains("one event loop per process"),
            "{again}"
        );

        // Main falls through the winit factory, which names the reason and
        // the hint.
        let main = Dispatchers::main();
        assert!(main.is_missing());
        let message = std::panic::catch_unwind(|| main.is_dispatch_needed())
            .unwrap_err()
            .downcast::<String>()
            .map(|m| *m)
            .unwrap();
        for expected in [
            "dispatchers-winit (load_priority 100): cannot build the winit event loop",
            "DISPLAY",
            "hint: set DISPLAY",
            "xvfb-run -a",
        ] {
            assert!(
                message.contains(expected),
                "missing {expected:?} in:\n{message}"
            );
        }
    });
}

#[test]
fn off_the_main_thread_without_any_thread_is_an_error() {
    in_child_without_display("off_the_main_thread_without_any_thread_is_an_error", || {
        // Silence winit's own panic message: it is caught and returned.
        std::panic::set_hook(Box::new(|_| {}));
        let error = thread::spawn(|| {
            WinitHost::build(&mut EventLoop::<HostEvent>::with_user_event())
                .map(|_| ())
                .unwrap_err()
        })
        .join()
        .expect("build must return the error, not panic");
        let _ = std::panic::take_hook();
        assert!(
            matches!(error, WinitError::EventLoopPanicked(_)),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("with_any_thread(true)"),
            "{error}"
        );
    });
}

#[test]
fn public_types_are_send_and_sync_where_expected() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<WinitFactory>();
    send::<dispatchers_winit::UserEventProxy<u32>>();
    send_sync::<WinitError>();
    send::<HostEvent<u32>>();
}
