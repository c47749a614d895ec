//! A `Delay` that moves between real time and a test dispatcher's virtual
//! clock (its scheduler shut down, a `block_on` on the test thread, its host
//! shut down) keeps the time it had left: the same `Instant` means another
//! time on the other clock.
#![cfg(feature = "test-util")]

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use dispatchers::test_util::TestDispatcher;
use dispatchers::{Delay, Dispatchers, LoopHost, block_on, delay};

#[path = "support/watchdog.rs"]
mod watchdog;
use watchdog::watchdog;

#[test]
fn a_short_virtual_delay_does_not_complete_at_once_when_its_scheduler_shuts_down() {
    watchdog("shutdown", Duration::from_secs(10), || {
        let after_delay = Arc::new(AtomicBool::new(false));
        let flag = after_delay.clone();
        let test = TestDispatcher::new();
        let _guard = test.install();
        // Real time runs ahead of the virtual clock, which stays at zero,
        // by more than the delay. The delay is long enough that no stall of
        // this thread between the shutdown and the check below lets it pass.
        std::thread::sleep(Duration::from_secs(2));
        Dispatchers::unconfined()
            .spawn(async move {
                delay(Duration::from_secs(1)).await;
                flag.store(true, Ordering::SeqCst);
            })
            .detach();
        test.shutdown();
        assert_eq!(test.current_time(), Duration::ZERO);
        assert!(
            !after_delay.load(Ordering::SeqCst),
            "delay(1s) completed at once though virtual time never moved"
        );
        // It still completes, in real time, after what it had left.
        while !after_delay.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

#[test]
fn block_on_a_virtual_delay_waits_what_it_had_left_in_real_time() {
    watchdog("block_on", Duration::from_secs(10), || {
        let test = TestDispatcher::new();
        let _guard = test.install();
        // The virtual clock runs a day ahead of real time.
        test.advance_time_by(Duration::from_secs(86_400));
        let mut sleeper = Box::pin(delay(Duration::from_millis(20)));
        let polled = sleeper
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        assert!(polled.is_pending());
        assert_eq!(test.pending_timers(), 1, "registered in virtual time");
        // Virtual time cannot move while block_on blocks the test thread: the
        // delay waits on real timers, for its 20 ms (not a day and 20 ms).
        block_on(sleeper);
    });
}

#[test]
fn a_real_delay_moved_to_a_virtual_clock_ahead_of_real_time_does_not_complete_early() {
    watchdog("host to virtual", Duration::from_secs(10), || {
        let sleeper = {
            let host = LoopHost::new("clocks-host");
            let (sender, receiver) = mpsc::channel::<Pin<Box<Delay>>>();
            let task = host.dispatcher().spawn(async move {
                let mut sleeper = Box::pin(delay(Duration::from_secs(3600)));
                poll_fn(|cx| {
                    assert!(sleeper.as_mut().poll(cx).is_pending());
                    Poll::Ready(())
                })
                .await;
                sender.send(sleeper).unwrap();
            });
            host.run_until(task).unwrap();
            assert_eq!(host.engine().pending_timers(), 1);
            receiver.recv().unwrap()
            // The host shuts down here.
        };
        let mut sleeper = sleeper;
        let started = Instant::now();
        let test = TestDispatcher::new();
        let _guard = test.install();
        // The virtual clock runs two hours ahead of real time.
        test.advance_time_by(Duration::from_secs(7200));
        let polled = sleeper
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        assert!(
            polled.is_pending(),
            "delay(1h) completed after {:?} of real time and no virtual time",
            started.elapsed()
        );
        assert_eq!(test.pending_timers(), 1, "moved to the virtual clock");
        test.advance_time_by(Duration::from_secs(3599));
        assert!(
            sleeper
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        test.advance_time_by(Duration::from_secs(2));
        assert!(
            sleeper
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_ready()
        );
    });
}
