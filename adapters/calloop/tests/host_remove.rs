//! `CalloopHost::remove` removes the host's own source, from its own loop
//! only.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

#[path = "../../../tests/support/watchdog.rs"]
mod watchdog;

use calloop::EventLoop;
use calloop::timer::{TimeoutAction, Timer};
use dispatchers::block_on;
use dispatchers_calloop::CalloopHost;

fn watchdog<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog::watchdog("calloop-remove", Duration::from_secs(10), test)
}

/// A loop whose one source, a repeating timer, counts its firings.
fn loop_with_a_ticker() -> EventLoop<'static, u32> {
    let event_loop: EventLoop<'static, u32> = EventLoop::try_new().unwrap();
    event_loop
        .handle()
        .insert_source(Timer::immediate(), |_, _, ticks| {
            *ticks += 1;
            TimeoutAction::ToDuration(Duration::from_millis(1))
        })
        .unwrap();
    event_loop
}

#[test]
fn removing_with_the_handle_of_another_loop_is_refused_and_removes_nothing() {
    watchdog(|| {
        let mut own: EventLoop<'static, ()> = EventLoop::try_new().unwrap();
        let mut other = loop_with_a_ticker();
        let host = CalloopHost::insert(&own.handle()).unwrap();
        let main = host.dispatcher();
        // Both sources sit in the first slot of their loop: same token.
        let refused = catch_unwind(AssertUnwindSafe(|| host.remove(&other.handle())));
        let message = *refused
            .expect_err("a handle of another loop")
            .downcast::<String>()
            .unwrap();
        assert!(message.contains("another loop"), "{message}");

        // The other loop's source still runs.
        let mut ticks = 0;
        while ticks < 2 {
            other.dispatch(Duration::from_secs(1), &mut ticks).unwrap();
        }
        // And so does the host.
        let task = main.spawn(async { "still here" });
        while !task.is_finished() {
            own.dispatch(Duration::from_secs(1), &mut ()).unwrap();
        }
        assert_eq!(block_on(task).unwrap(), "still here");
    });
}

#[test]
fn removing_with_its_own_handle_shuts_the_host_down() {
    watchdog(|| {
        let mut own = loop_with_a_ticker();
        let host = CalloopHost::insert(&own.handle()).unwrap();
        let main = host.dispatcher();
        host.remove(&own.handle());
        assert!(block_on(main.spawn(async {})).unwrap_err().is_cancelled());
        let mut ticks = 0;
        while ticks < 2 {
            own.dispatch(Duration::from_secs(1), &mut ticks).unwrap();
        }
    });
}

#[test]
fn removing_from_inside_its_own_task_shuts_the_host_down_after_the_iteration() {
    watchdog(|| {
        let mut own: EventLoop<'static, ()> = EventLoop::try_new().unwrap();
        let handle = own.handle();
        let host = CalloopHost::insert(&handle).unwrap();
        let main = host.dispatcher();
        let removing = main.spawn_local(async move {
            host.remove(&handle);
            "removed"
        });
        while !removing.is_finished() {
            own.dispatch(Duration::from_secs(1), &mut ()).unwrap();
        }
        assert_eq!(block_on(removing).unwrap(), "removed");
        assert!(main.is_closed());
    });
}

#[test]
fn removing_after_the_loop_is_gone_does_nothing() {
    watchdog(|| {
        let own: EventLoop<'static, ()> = EventLoop::try_new().unwrap();
        let host = CalloopHost::insert(&own.handle()).unwrap();
        drop(own);
        // A new loop, perhaps at the same address, with a source in the same
        // slot: not the host's loop.
        let mut other = loop_with_a_ticker();
        host.remove(&other.handle());
        let mut ticks = 0;
        while ticks < 2 {
            other.dispatch(Duration::from_secs(1), &mut ticks).unwrap();
        }
    });
}
