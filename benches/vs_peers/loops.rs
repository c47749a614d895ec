//! The running loops the metrics post work to, each on a thread of its own
//! that sleeps when idle: ours on a mio `Poll` (`MioHost`) or on a parked
//! thread (`LoopHost`), a tokio
//! current_thread runtime inside a `LocalSet`, and an async-executor
//! `Executor` run by one thread. Each stops and joins its thread on drop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use async_executor::Executor;
use dispatchers::{Budget, LoopHost, MainDispatcher};
use dispatchers_mio::MioHost;
use mio::{Events, Poll, Token};

use crate::harness::Signal;

/// A mio event loop with our host: `poll(next_timeout)`, then `run_pending`.
pub struct MioLoop {
    main: MainDispatcher,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MioLoop {
    pub fn start() -> MioLoop {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ours-mio-loop".into())
            .spawn(move || {
                let mut poll = Poll::new().expect("mio Poll");
                let host = MioHost::new(poll.registry(), Token(0)).expect("mio host");
                tx.send(host.dispatcher()).expect("bench thread waits");
                let mut events = Events::with_capacity(64);
                while !stopping.load(Ordering::Acquire) {
                    if let Err(e) = poll.poll(&mut events, host.next_timeout()) {
                        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "poll: {e}");
                    }
                    host.run_pending(Budget::unlimited());
                }
            })
            .expect("spawn the mio loop");
        let main = rx.recv().expect("the mio loop started");
        MioLoop {
            main,
            stop,
            thread: Some(thread),
        }
    }

    pub fn main(&self) -> &MainDispatcher {
        &self.main
    }
}

impl Drop for MioLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Any dispatch wakes the loop, which then sees the flag.
        self.main.spawn(async {}).detach();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A hand-written loop with our `LoopHost`, which sleeps with
/// `thread::park_timeout` (nanosecond timeouts) until work or a deadline.
pub struct ParkLoop {
    main: MainDispatcher,
    stop: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl ParkLoop {
    pub fn start() -> ParkLoop {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(Signal::new());
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ours-park-loop".into())
            .spawn(move || {
                let host = LoopHost::new("park-loop");
                tx.send(host.dispatcher()).expect("bench thread waits");
                host.run_until(stopping.wait());
            })
            .expect("spawn the park loop");
        let main = rx.recv().expect("the park loop started");
        ParkLoop {
            main,
            stop,
            thread: Some(thread),
        }
    }

    pub fn main(&self) -> &MainDispatcher {
        &self.main
    }
}

impl Drop for ParkLoop {
    fn drop(&mut self) {
        self.stop.set();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A tokio current_thread runtime (time enabled), blocked in a `LocalSet`
/// as a GUI or game thread would be; work comes in through its `Handle`.
pub struct TokioLoop {
    handle: tokio::runtime::Handle,
    stop: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl TokioLoop {
    pub fn start() -> TokioLoop {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(Signal::new());
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tokio-current-thread".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("tokio runtime");
                tx.send(rt.handle().clone()).expect("bench thread waits");
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, stopping.wait());
            })
            .expect("spawn the tokio loop");
        let handle = rx.recv().expect("the tokio loop started");
        TokioLoop {
            handle,
            stop,
            thread: Some(thread),
        }
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for TokioLoop {
    fn drop(&mut self) {
        self.stop.set();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An async-executor `Executor` run by one thread (`block_on(ex.run(..))`).
pub struct ExecutorLoop {
    executor: Arc<Executor<'static>>,
    stop: Arc<Signal>,
    threads: Vec<JoinHandle<()>>,
}

impl ExecutorLoop {
    /// The executor, run by `threads` threads.
    pub fn start(threads: usize) -> ExecutorLoop {
        let executor = Arc::new(Executor::new());
        let stop = Arc::new(Signal::new());
        let threads = (0..threads)
            .map(|i| {
                let executor = executor.clone();
                let stopping = stop.clone();
                std::thread::Builder::new()
                    .name(format!("async-executor-{i}"))
                    .spawn(move || {
                        futures_lite::future::block_on(executor.run(stopping.wait()));
                    })
                    .expect("spawn an executor thread")
            })
            .collect();
        ExecutorLoop {
            executor,
            stop,
            threads,
        }
    }

    pub fn executor(&self) -> &Arc<Executor<'static>> {
        &self.executor
    }
}

impl Drop for ExecutorLoop {
    fn drop(&mut self) {
        self.stop.set();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
