//! Timers and hand-written wakers: a waker's `clone` and `wake` are user code,
//! which may panic or touch the same timers (drop another `Delay`). Neither
//! may stop the fallback timer thread, deadlock it, or trip a loop's timer
//! store.
//!
//! One binary of its own: the panic handler installed here is process-wide.
#![allow(unsafe_code)] // a `RawWaker` whose clone runs code (one `unsafe` block)

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Wake, Waker};
use std::time::Duration;

use dispatchers::{Budget, Delay, LoopHost, PanicSource, block_on, delay, set_panic_handler};

/// How long a step may take before the test calls it hung: far beyond what
/// any step needs, even on a slow, loaded machine.
const WATCHDOG: Duration = Duration::from_secs(20);

/// Runs `f` on a new thread; `None` if it did not finish within
/// [`WATCHDOG`] (the thread is then left hanging: the test fails anyway).
fn within_watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(f());
    });
    receiver.recv_timeout(WATCHDOG).ok()
}

/// A waker whose `wake` panics, after saying it was called.
struct PanickingWaker(Mutex<mpsc::Sender<()>>);

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        let _ = self.0.lock().unwrap().send(());
        panic!("user waker panicked in wake");
    }
}

#[test]
fn a_panicking_waker_does_not_stop_the_fallback_timer_thread() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    set_panic_handler(move |report| {
        if report.message() == Some("user waker panicked in wake") {
            sink.lock()
                .unwrap()
                .push((report.source(), report.name().map(str::to_owned)));
        }
    });

    // Off any loop: the delay registers on the fallback timers. (On a
    // thread of its own, like every step that uses the fallback timers: a
    // hang must not outlast the watchdog.)
    let woken = within_watchdog(|| {
        let (woken, on_wake) = mpsc::channel();
        let waker = Waker::from(Arc::new(PanickingWaker(Mutex::new(woken))));
        let mut doomed = Box::pin(delay(Duration::from_millis(1)));
        assert!(
            doomed
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        drop(waker);
        let woken = on_wake.recv_timeout(WATCHDOG).is_ok();
        drop(doomed);
        woken
    });
    assert_eq!(woken, Some(true), "the timer thread never woke the waker");

    // The timer thread survived the panic: a later delay still fires.
    let later = within_watchdog(|| block_on(delay(Duration::from_millis(10))));
    assert!(
        later.is_some(),
        "a 10 ms fallback delay never fired after a waker panicked on the timer thread"
    );
    // Reported before the timer thread moved on to the later delay.
    assert_eq!(
        *reports.lock().unwrap(),
        vec![(PanicSource::Waker, Some("dispatchers-timer".to_owned()))]
    );
}

thread_local! {
    /// The `Delay` a [`victim_dropping_waker`]'s clone drops.
    static VICTIM: RefCell<Option<Pin<Box<Delay>>>> = const { RefCell::new(None) };
}

/// Clones a [`victim_dropping_waker`]: drops this thread's [`VICTIM`], which
/// cancels its timer (on the very timers being polled).
fn clone_dropping_the_victim(_: *const ()) -> RawWaker {
    let victim = VICTIM.with(|v| v.borrow_mut().take());
    drop(victim);
    RawWaker::new(std::ptr::null(), &VICTIM_VTABLE)
}

fn do_nothing(_: *const ()) {}

static VICTIM_VTABLE: RawWakerVTable = RawWakerVTable::new(
    clone_dropping_the_victim,
    do_nothing,
    do_nothing,
    do_nothing,
);

/// A waker that does nothing when woken, but whose clone drops `victim`, a
/// `Delay` registered on the timers the waker is about to be given to.
fn victim_dropping_waker(victim: Pin<Box<Delay>>) -> Waker {
    VICTIM.with(|v| *v.borrow_mut() = Some(victim));
    // SAFETY: the vtable's functions never read the data pointer (null
    // here), and are thread-safe: they touch only a thread-local, and a
    // clone returns a waker with the same vtable.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VICTIM_VTABLE)) }
}

/// A 60 s delay, polled once with `cx` so that it is registered on the
/// timers `cx`'s poll uses.
fn registered(cx: &mut Context<'_>) -> Pin<Box<Delay>> {
    let mut sleeper = Box::pin(delay(Duration::from_secs(60)));
    assert!(sleeper.as_mut().poll(cx).is_pending());
    sleeper
}

/// Polls a fresh delay, then re-polls a registered one, each with a waker
/// whose clone drops another delay registered on the same timers (first
/// registered with `cx`); returns the two delays, pending.
fn poll_with_victim_dropping_wakers(cx: &mut Context<'_>) -> [Pin<Box<Delay>>; 2] {
    let victim_dropped = || VICTIM.with(|v| v.borrow().is_none());

    // A first poll registers the timer with a clone of the waker.
    let waker = victim_dropping_waker(registered(cx));
    let mut fresh = Box::pin(delay(Duration::from_secs(60)));
    assert!(
        fresh
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    assert!(victim_dropped(), "the clone ran");

    // A poll with another waker than the registered one stores a clone.
    let mut repolled = registered(cx);
    let waker = victim_dropping_waker(registered(cx));
    assert!(
        repolled
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    assert!(victim_dropped(), "the clone ran");
    [fresh, repolled]
}

#[test]
fn a_waker_clone_that_drops_a_fallback_delay_does_not_deadlock() {
    // Off any loop: every delay here registers on the fallback timers.
    let polled = within_watchdog(|| {
        let pending = poll_with_victim_dropping_wakers(&mut Context::from_waker(Waker::noop()));
        drop(pending);
    });
    assert!(
        polled.is_some(),
        "polling a delay deadlocked on the fallback timers"
    );
    // The timer thread is not stuck on the timers' lock either.
    let later = within_watchdog(|| block_on(delay(Duration::from_millis(10))));
    assert!(later.is_some(), "a 10 ms fallback delay never fired");
}

#[test]
fn a_waker_clone_that_drops_a_loop_delay_does_not_panic() {
    let ran = within_watchdog(|| {
        let host = LoopHost::new("time-wakers");
        // A Main task's delays register on the loop's timer store.
        let task = host.dispatcher().spawn(poll_fn(|cx| {
            Poll::Ready(poll_with_victim_dropping_wakers(cx))
        }));
        host.run_pending(Budget::unlimited());
        assert!(task.is_finished());
        let pending = block_on(task).expect("the task polled its delays without panicking");
        // The victims were cancelled; the two delays wait.
        let timers = host.engine().pending_timers();
        drop(pending);
        (timers, host.engine().pending_timers())
    });
    assert_eq!(ran, Some((2, 0)));
}
