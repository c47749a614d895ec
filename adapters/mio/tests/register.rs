//! Registering mio hosts as sources of `Dispatchers::main()`.
//!
//! Main is selected once per process, so this file holds a single test.

use std::io;
use std::time::{Duration, Instant};

use dispatchers::{Budget, Dispatchers, LoopHost, RegisterError, spawn_on_main};
use dispatchers_mio::{DEFAULT_PRIORITY, MioHost};
use mio::{Events, Poll, Token};

const WAKE: Token = Token(0);

#[test]
fn priorities_pick_main_and_late_registration_is_refused() -> io::Result<()> {
    assert_eq!(DEFAULT_PRIORITY, 50);

    let plain = LoopHost::new("plain-loop");
    plain.register_as_main(0).expect("registered");

    let mut first_poll = Poll::new()?;
    let tie_first = MioHost::with_name("mio-50-first", first_poll.registry(), WAKE)?;
    tie_first
        .register_as_main_with_priority(50)
        .expect("registered");

    // Equal priority (the default is 50), registered later: loses the tie.
    let default_poll = Poll::new()?;
    let default = MioHost::with_name("mio-default", default_poll.registry(), WAKE)?;
    default.register_as_main().expect("registered");

    let lower_poll = Poll::new()?;
    let lower = MioHost::with_name("mio-49", lower_poll.registry(), WAKE)?;
    lower
        .register_as_main_with_priority(49)
        .expect("registered");

    let main = Dispatchers::main();
    assert!(!main.is_missing());
    assert_eq!(main.name(), "mio-50-first");
    assert!(main.dispatcher() == tie_first.dispatcher().dispatcher());

    let late_poll = Poll::new()?;
    let late = MioHost::with_name("mio-late", late_poll.registry(), WAKE)?;
    match late.register_as_main_with_priority(1000) {
        Err(RegisterError::AlreadySelected { factory, selected }) => {
            assert_eq!(factory, "mio-late");
            assert_eq!(selected, "mio-50-first");
        }
        other => panic!("late registration: {other:?}"),
    }

    // spawn_on_main lands on the selected loop, and only there.
    let task = spawn_on_main(async { 42 });
    assert!(tie_first.engine().has_pending());
    assert!(!default.engine().has_pending() && !lower.engine().has_pending());
    let give_up = Instant::now() + Duration::from_secs(10);
    let mut events = Events::with_capacity(8);
    while !task.is_finished() {
        assert!(Instant::now() < give_up, "watchdog: the task never ran");
        first_poll.poll(&mut events, Some(tie_first.next_timeout_before(give_up)))?;
        tie_first.run_pending(Budget::unlimited());
    }
    assert_eq!(dispatchers::block_on(task).expect("task failed"), 42);
    Ok(())
}
