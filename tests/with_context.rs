//! `with_context`: the hop there and back, no hop when already there,
//! cancellation and panics across the hop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::ThreadId;
use std::time::Duration;

use dispatchers::{
    Dispatch, Dispatcher, LoopHost, Runnable, block_on, delay, try_with_context, with_context,
};

/// A dispatcher on a thread of its own that counts its dispatches.
struct Worker {
    tx: Mutex<mpsc::Sender<Runnable>>,
    dispatches: Arc<AtomicUsize>,
}

impl Dispatch for Worker {
    fn dispatch(&self, runnable: Runnable) {
        self.dispatches.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.lock().unwrap().send(runnable);
    }

    fn name(&self) -> &str {
        "worker"
    }
}

fn worker() -> (Dispatcher, ThreadId, Arc<AtomicUsize>) {
    let (tx, rx) = mpsc::channel::<Runnable>();
    let thread = std::thread::spawn(move || {
        for runnable in rx {
            runnable.run();
        }
    });
    let dispatches = Arc::new(AtomicUsize::new(0));
    let dispatcher = Dispatcher::new(Worker {
        tx: Mutex::new(tx),
        dispatches: dispatches.clone(),
    });
    (dispatcher, thread.thread().id(), dispatches)
}

struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn hops_to_the_target_and_resumes_on_the_callers_thread() {
    let host = LoopHost::new("loop");
    let main = host.dispatcher();
    let (worker, worker_thread, _) = worker();
    let task = main.spawn(async move {
        let inside = with_context(&worker, async { std::thread::current().id() }).await;
        (inside, std::thread::current().id())
    });
    let (inside, after) = host.run_until(task).unwrap();
    assert_eq!(inside, worker_thread);
    assert_eq!(after, std::thread::current().id());
}

#[test]
fn main_is_a_valid_target_by_deref() {
    let host = LoopHost::new("loop");
    let main = host.dispatcher();
    let loop_thread = std::thread::current().id();
    let (worker, _, _) = worker();
    let task = worker
        .spawn(async move { with_context(&main, async { std::thread::current().id() }).await });
    assert_eq!(host.run_until(task).unwrap(), loop_thread);
}

#[test]
fn no_hop_when_already_on_the_target() {
    let (worker, worker_thread, dispatches) = worker();
    let target = worker.clone();
    let task = worker
        .spawn(async move { with_context(&target, async { std::thread::current().id() }).await });
    assert_eq!(block_on(task).unwrap(), worker_thread);
    assert_eq!(
        dispatches.load(Ordering::SeqCst),
        1,
        "only the spawn dispatched"
    );
}

#[test]
fn no_hop_to_immediate_on_its_own_thread() {
    let host = LoopHost::new("loop");
    let immediate = host.dispatcher().immediate();
    let hop = with_context(&immediate, async { 5 });
    // Polled on the loop thread, it completes in place without the loop.
    let mut hop = std::pin::pin!(hop);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert_eq!(hop.as_mut().poll(&mut cx), std::task::Poll::Ready(5));
    assert!(!host.engine().has_pending());
}

#[test]
fn dropping_the_outer_future_cancels_the_inner_task() {
    let (worker, _, _) = worker();
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = DropCounter(drops.clone());
    let (started_tx, started_rx) = mpsc::channel();
    let hop = with_context(&worker, async move {
        let _guard = guard;
        started_tx.send(()).unwrap();
        delay(Duration::from_secs(3600)).await;
    });
    let outer = dispatchers::Dispatchers::unconfined().spawn(hop);
    started_rx.recv_timeout(Duration::from_secs(60)).unwrap();
    drop(outer);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while drops.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the inner future was dropped"
    );
}

#[test]
fn a_panic_inside_resumes_in_the_caller() {
    let (worker, _, _) = worker();
    let target = worker.clone();
    let caught = block_on(try_with_context(&target, async { panic!("inside") }));
    let err = caught.unwrap_err();
    assert!(err.is_panic());
    let payload = err.into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"inside"));

    let outer = block_on(unconfined_spawn(async move {
        with_context(&worker, async { panic!("again") }).await
    }));
    let err = outer.unwrap_err();
    assert!(
        err.is_panic(),
        "the caller's task panicked with the inner panic"
    );
    assert_eq!(err.to_string(), "task panicked: again");
}

fn unconfined_spawn<F>(f: F) -> dispatchers::Task<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    dispatchers::Dispatchers::unconfined().spawn(f)
}

#[test]
fn a_cancelled_hop_is_an_error_not_a_hang() {
    let host = LoopHost::new("loop");
    let main = host.dispatcher();
    drop(host);
    let result = block_on(try_with_context(&main, async { 1 }));
    assert!(result.unwrap_err().is_cancelled());
}

#[test]
fn a_hop_to_a_pool_that_shut_down_panics_saying_so() {
    let pool = dispatchers::ThreadPool::new_fixed(1, "closed-pool").unwrap();
    let target = pool.dispatcher();
    drop(pool);
    let outer = block_on(unconfined_spawn(async move {
        with_context(&target, async { 1 }).await
    }));
    let message = outer.unwrap_err().to_string();
    for part in ["'closed-pool'", "shut down", "a pool", "try_with_context"] {
        assert!(message.contains(part), "{part:?} missing in: {message}");
    }
}

#[test]
fn a_hop_to_immediate_resumes_through_immediate_not_the_callers_thread() {
    let host = LoopHost::new("loop");
    let immediate = host.dispatcher().immediate();
    let loop_thread = std::thread::current().id();
    let (worker, worker_thread, _) = worker();
    // An Unconfined caller started on the loop thread, whose own resumption
    // later happens on the worker thread.
    let caller = dispatchers::Dispatchers::unconfined().spawn(async move {
        with_context(&immediate, async move {
            let before = std::thread::current().id();
            // Suspend until the worker thread wakes us.
            worker.spawn(async {}).await.unwrap();
            (before, std::thread::current().id())
        })
        .await
    });
    let (before, after) = host.run_until(caller).unwrap();
    assert_eq!(before, loop_thread, "started in place");
    assert_eq!(
        after, loop_thread,
        "resumed through immediate, on the loop thread"
    );
    assert_ne!(after, worker_thread);
}
