//! Loom models of the pool hand-off protocol (see the parent module's docs):
//! producers racing a thread that retires, and racing a close.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release -p dispatchers --lib loom`.

use super::*;
use crate::sync::{Arc, AtomicUsize};
use loom::thread;

/// Runs a thread's loop until it retires or the queue closes; counts the
/// tasks it ran.
fn work(q: &WorkQueue<u32>, ran: &AtomicUsize, keep_alive: Option<Duration>) {
    loop {
        match q.next(keep_alive) {
            Next::Run(_) => {
                ran.fetch_add(1, Ordering::AcqRel);
            }
            Next::Retire => return,
            Next::Closed => {
                q.exit_closed();
                return;
            }
        }
    }
}

fn builder(preemptions: usize) -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder
}

/// The one live thread of a pool capped at one retires (its keep-alive
/// passes at once) while a producer pushes: the task runs, on that thread
/// (it saw the push) or on the thread the push started (it saw the
/// retirement); never lost.
#[test]
fn retiring_thread_racing_a_push_loses_nothing() {
    builder(3).check(|| {
        let q = Arc::new(WorkQueue::new(1, 1));
        let ran = Arc::new(AtomicUsize::new(0));
        let old = {
            let (q, ran) = (q.clone(), ran.clone());
            thread::spawn(move || work(&q, &ran, Some(Duration::ZERO)))
        };
        match q.push(1) {
            // The started thread: it also retires once idle.
            Pushed::StartThread => work(&q, &ran, Some(Duration::ZERO)),
            Pushed::WokeIdle | Pushed::Queued => {}
            Pushed::Rejected(_) => unreachable!("never closed"),
        }
        old.join().unwrap();
        assert_eq!(ran.load(Ordering::Acquire), 1);
        assert_eq!(q.live_threads(), 0);
    });
}

/// Runs a thread's loop with no keep-alive; the thread that runs the
/// `total`-th task closes the queue, which ends every thread. A lost task
/// leaves a thread asleep forever: loom reports the deadlock.
fn work_until(q: &WorkQueue<u32>, ran: &AtomicUsize, total: usize) {
    loop {
        match q.next(None) {
            Next::Run(_) => {
                if ran.fetch_add(1, Ordering::AcqRel) + 1 == total {
                    q.close();
                }
            }
            Next::Retire => unreachable!("no keep-alive"),
            Next::Closed => {
                q.exit_closed();
                return;
            }
        }
    }
}

/// Two sleeping threads, one producer pushing twice: both tasks reach a
/// thread.
#[test]
fn sleeping_threads_get_every_task() {
    builder(2).check(|| {
        let q = Arc::new(WorkQueue::new(2, 2));
        let ran = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (q, ran) = (q.clone(), ran.clone());
                thread::spawn(move || work_until(&q, &ran, 2))
            })
            .collect();
        for task in 0..2 {
            match q.push(task) {
                Pushed::WokeIdle | Pushed::Queued => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(ran.load(Ordering::Acquire), 2);
        assert_eq!(q.live_threads(), 0);
    });
}

/// One sleeping thread, two producers racing: both tasks reach it.
#[test]
fn racing_producers_reach_a_sleeping_thread() {
    builder(2).check(|| {
        let q = Arc::new(WorkQueue::new(1, 1));
        let ran = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (q, ran) = (q.clone(), ran.clone());
            thread::spawn(move || work_until(&q, &ran, 2))
        };
        let producer = {
            let q = q.clone();
            thread::spawn(move || assert!(!matches!(q.push(1), Pushed::Rejected(_))))
        };
        assert!(!matches!(q.push(2), Pushed::Rejected(_)));
        producer.join().unwrap();
        thread.join().unwrap();
        assert_eq!(ran.load(Ordering::Acquire), 2);
    });
}

/// A close racing a push: the task either runs or is handed back to be
/// cancelled (rejected, or taken out after the close), exactly once; the
/// thread always exits.
#[test]
fn close_racing_a_push_runs_or_cancels_once() {
    builder(3).check(|| {
        let q = Arc::new(WorkQueue::new(1, 1));
        let ran = Arc::new(AtomicUsize::new(0));
        let cancelled = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (q, ran) = (q.clone(), ran.clone());
            thread::spawn(move || work(&q, &ran, None))
        };
        let producer = {
            let (q, cancelled) = (q.clone(), cancelled.clone());
            thread::spawn(move || {
                if let Pushed::Rejected(_) = q.push(1) {
                    cancelled.fetch_add(1, Ordering::AcqRel);
                }
            })
        };
        q.close();
        while q.take_closed().is_some() {
            cancelled.fetch_add(1, Ordering::AcqRel);
        }
        producer.join().unwrap();
        thread.join().unwrap();
        let ran = ran.load(Ordering::Acquire);
        let cancelled = cancelled.load(Ordering::Acquire);
        assert_eq!(ran + cancelled, 1, "ran {ran}, cancelled {cancelled}");
    });
}
