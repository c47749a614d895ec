//! What a pool's shutdown cancels: a `limited_parallelism` view behaves as
//! the pool does with its own tasks (what is queued and not started, and
//! every later dispatch, is cancelled; `Dispatcher::is_closed` tells), and a
//! chain of cancellations, each caused by the previous one's destructor,
//! runs in a loop rather than nested.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use dispatchers::{Dispatcher, ThreadPool, block_on};

/// Waits (10 s at most) until `dispatcher` says it is closed.
fn wait_closed(dispatcher: &Dispatcher) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dispatcher.is_closed() {
        assert!(Instant::now() < deadline, "the pool never closed");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_view_cancels_its_queued_and_later_tasks_once_its_pool_shut_down() {
    let pool = ThreadPool::new_fixed(1, "closing").unwrap();
    let pool_dispatcher = pool.dispatcher();
    let view = pool.limited_parallelism(1).unwrap();
    assert!(!view.is_closed());

    // Holds the pool's only thread, inside the view's worker, until told.
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let running = view.spawn(async move {
        started_tx.send(()).unwrap();
        go_rx.recv().unwrap();
    });
    started_rx.recv().unwrap();

    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let queued = view.spawn(async move {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let shutdown = std::thread::spawn(move || pool.shutdown_timeout(Duration::from_secs(30)));
    wait_closed(&pool_dispatcher);
    assert!(view.is_closed(), "a view of a closed pool is closed");
    let counter = ran.clone();
    let later = view.spawn(async move {
        counter.fetch_add(10, Ordering::SeqCst);
    });

    go_tx.send(()).unwrap();
    assert!(
        shutdown.join().unwrap(),
        "the running task finished in time"
    );
    block_on(running).unwrap();
    assert!(block_on(queued).unwrap_err().is_cancelled());
    assert!(block_on(later).unwrap_err().is_cancelled());
    assert_eq!(ran.load(Ordering::SeqCst), 0, "neither ran");
}

#[test]
fn is_closed_follows_the_pool_and_its_views() {
    let pool = ThreadPool::new_fixed(2, "closed-flag").unwrap();
    let dispatcher = pool.dispatcher();
    let view = pool.limited_parallelism(1).unwrap();
    let nested = view.limited_parallelism(1).unwrap();
    assert!(!dispatcher.is_closed() && !view.is_closed() && !nested.is_closed());
    assert!(pool.shutdown_timeout(Duration::from_secs(30)));
    assert!(dispatcher.is_closed() && view.is_closed() && nested.is_closed());
    assert!(block_on(nested.spawn(async {})).unwrap_err().is_cancelled());
}

/// A one-shot link: dropping the `Sender` wakes the `Receiver`'s task.
#[derive(Default)]
struct Link {
    closed: bool,
    waker: Option<Waker>,
}

struct Sender(Arc<Mutex<Link>>);

struct Receiver(Arc<Mutex<Link>>);

fn link() -> (Sender, Receiver) {
    let link = Arc::new(Mutex::new(Link::default()));
    (Sender(link.clone()), Receiver(link))
}

impl Drop for Sender {
    fn drop(&mut self) {
        let waker = {
            let mut link = self.0.lock().unwrap();
            link.closed = true;
            link.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Future for Receiver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut link = self.0.lock().unwrap();
        if link.closed {
            return Poll::Ready(());
        }
        link.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Runs `depth` `!Send` tasks on a single-thread pool, the `i`-th holding
/// what `payload(i, pool, sender)` makes of the sender that wakes the next
/// one; then shuts the pool down and drops the first sender on the pool's
/// thread, so that the first cancellation wakes the second task, which the
/// closed pool rejects and cancels in its turn, and so on. Returns once the
/// pool's thread exited.
fn cancel_a_chain<P: 'static>(
    depth: usize,
    payload: impl Fn(usize, &Dispatcher, Sender) -> P + Send + 'static,
) {
    let pool = ThreadPool::new_single_thread("chain").unwrap();
    let dispatcher = pool.dispatcher();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let spawner = dispatcher.clone();
    pool.spawn(async move {
        let (first_tx, mut rx) = link();
        for i in 0..depth {
            let (tx, next_rx) = link();
            let payload = payload(i, &spawner, tx);
            spawner
                .spawn_local(async move {
                    let _payload = payload;
                    rx.await;
                })
                .detach();
            rx = next_rx;
        }
        drop(rx);
        // Runs after every task of the chain polled once (one thread, FIFO).
        spawner
            .spawn_local(async move {
                let _first = first_tx;
                ready_tx.send(()).unwrap();
                go_rx.recv().unwrap();
            })
            .detach();
    })
    .detach();
    ready_rx.recv().unwrap();
    let shutdown = std::thread::spawn(move || pool.shutdown_timeout(Duration::from_secs(60)));
    wait_closed(&dispatcher);
    // The blocker returns on the closed pool and drops sender 0.
    go_tx.send(()).unwrap();
    assert!(shutdown.join().unwrap(), "the pool's thread exited");
}

/// Counts drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Nested, 1,000 cancellations overflowed a debug build's stack; this chain
/// is 20 times longer.
#[test]
fn a_chain_of_cancellations_does_not_grow_the_stack() {
    const CHAIN: usize = 20_000;
    let dropped = Arc::new(AtomicUsize::new(0));
    let counter = dropped.clone();
    cancel_a_chain(CHAIN, move |_, _, next| (Counted(counter.clone()), next));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        CHAIN,
        "every future dropped"
    );
}

/// Spawns a cleanup task on its (closed) dispatcher when dropped and waits
/// for it: the task is rejected and must resolve as cancelled.
struct WaitsForCleanup(Dispatcher, mpsc::Sender<bool>);

impl Drop for WaitsForCleanup {
    fn drop(&mut self) {
        let cleanup = self.0.spawn_local(async {});
        let cancelled = dispatchers::block_on(cleanup).is_err_and(|e| e.is_cancelled());
        let _ = self.1.send(cancelled);
    }
}

/// The last future of a chain spawns on the closed pool when dropped, and
/// blocks until that task resolves: its cancellation is queued behind the
/// running one, and `block_on` must run it while the destructor waits.
#[test]
fn a_destructor_that_waits_for_a_cancellation_returns_at_any_depth() {
    for depth in [1, 8, 50] {
        let (done_tx, done_rx) = mpsc::channel();
        cancel_a_chain(depth, move |i, spawner, next| {
            let cleanup =
                (i + 1 == depth).then(|| WaitsForCleanup(spawner.clone(), done_tx.clone()));
            (cleanup, next)
        });
        assert_eq!(
            done_rx.recv_timeout(Duration::from_secs(30)),
            Ok(true),
            "the destructor's wait for a rejected task never ended (depth {depth})"
        );
    }
}

/// Drops the sender that wakes the next task while it holds `lock`.
struct WakesUnderLock(Arc<Mutex<()>>, Option<Sender>);

impl Drop for WakesUnderLock {
    fn drop(&mut self) {
        let _held = self.0.lock().unwrap();
        drop(self.1.take());
    }
}

/// Says whether `lock` was free when it was dropped.
struct TriesLock(Arc<Mutex<()>>, mpsc::Sender<bool>);

impl Drop for TriesLock {
    fn drop(&mut self) {
        let _ = self.1.send(self.0.try_lock().is_ok());
    }
}

/// A cancellation caused by a destructor runs after it, never inside it:
/// the destructor may hold a lock the next one needs.
#[test]
fn a_cancellation_never_runs_inside_the_destructor_that_caused_it() {
    let lock = Arc::new(Mutex::new(()));
    let (free_tx, free_rx) = mpsc::channel();
    cancel_a_chain(2, move |i, _, next| match i {
        0 => (Some(WakesUnderLock(lock.clone(), Some(next))), None),
        _ => (None, Some((TriesLock(lock.clone(), free_tx.clone()), next))),
    });
    assert_eq!(free_rx.recv_timeout(Duration::from_secs(30)), Ok(true));
}

/// A `Send` task's future is dropped on the reaper thread; its destructor
/// spawns a cleanup task on the closed pool and waits for it. The cleanup's
/// cancellation must not go to the reaper's own channel, behind the
/// destructor that waits for it.
#[test]
fn a_destructor_on_the_reaper_that_waits_for_a_cancellation_returns() {
    struct SpawnsCleanup(Dispatcher, mpsc::Sender<bool>);

    impl Drop for SpawnsCleanup {
        fn drop(&mut self) {
            let cleanup = self.0.spawn(async {});
            let cancelled = dispatchers::block_on(cleanup).is_err_and(|e| e.is_cancelled());
            let _ = self.1.send(cancelled);
        }
    }

    let pool = ThreadPool::new_single_thread("reaped").unwrap();
    let dispatcher = pool.dispatcher();
    let (done_tx, done_rx) = mpsc::channel();
    let (polled_tx, polled_rx) = mpsc::channel();
    let (wake, waiting) = link();
    let payload = SpawnsCleanup(dispatcher.clone(), done_tx);
    dispatcher
        .spawn(async move {
            let _payload = payload;
            polled_tx.send(()).unwrap();
            waiting.await;
        })
        .detach();
    polled_rx.recv().unwrap();
    assert!(pool.shutdown_timeout(Duration::from_secs(30)));
    // Wakes the task on the closed pool: rejected, and reaped.
    drop(wake);
    assert_eq!(
        done_rx.recv_timeout(Duration::from_secs(30)),
        Ok(true),
        "the destructor on the reaper never saw its cleanup resolve"
    );
}
