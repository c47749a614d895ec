//! `register_as_main`: the calloop host's place in the selection of
//! `Dispatchers::main()`. One test in its own binary: selection happens once
//! per process.

use std::sync::mpsc;
use std::time::Duration;

use calloop::EventLoop;
use dispatchers::{Dispatchers, LoopHost, RegisterError, spawn_on_main};
use dispatchers_calloop::{CalloopHost, HostSource};

#[test]
fn the_default_priority_wins_over_a_plain_loop_and_a_lower_calloop_host() {
    let mut event_loop: EventLoop<()> = EventLoop::try_new().unwrap();
    let plain = LoopHost::new("plain-loop");
    plain.register_as_main(0).unwrap();
    let chosen =
        CalloopHost::insert_source(&event_loop.handle(), HostSource::new("chosen")).unwrap();
    chosen.register_as_main().unwrap();
    let lower = CalloopHost::insert_source(&event_loop.handle(), HostSource::new("lower")).unwrap();
    lower.register_as_main_with_priority(10).unwrap();

    let main = Dispatchers::main();
    assert!(!main.is_missing());
    assert_eq!(main.name(), "chosen");
    assert_eq!(*main, *chosen.dispatcher());

    // `spawn_on_main` from another thread runs on this loop.
    let (sent, received) = mpsc::channel();
    std::thread::spawn(move || {
        spawn_on_main(async move {
            sent.send(std::thread::current().id()).unwrap();
        })
        .detach();
    })
    .join()
    .unwrap();
    // At most 10 s (a watchdog, not a timing assumption).
    let ran_on = (0..100)
        .find_map(|_| {
            event_loop
                .dispatch(Duration::from_millis(100), &mut ())
                .unwrap();
            received.try_recv().ok()
        })
        .expect("the task never ran on the loop");
    assert_eq!(ran_on, std::thread::current().id());

    // Registering after the selection is an error, not a silent no-op.
    let late = lower.register_as_main_with_priority(1000);
    assert!(matches!(late, Err(RegisterError::AlreadySelected { .. })));
}
