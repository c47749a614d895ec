//! A `!Send` task of the loop thread, sent back to it from another thread
//! while Main is running (its `HostEvent::Wake` is then received in the same
//! loop iteration, after Main has had its turn), is still cancelled soon: the
//! wake-up of the delivery must not be swallowed by the once-per-iteration
//! rule. A test binary of its own: winit allows one event loop per process.

#[path = "../../../tests/support/drops_elsewhere.rs"]
mod drops_elsewhere;
mod support;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use drops_elsewhere::{DropProbe, DropsElsewhere};

#[test]
fn a_task_sent_back_while_main_runs_is_cancelled_without_another_dispatch() {
    if !support::display_available("orphans") {
        return;
    }
    let _watchdog = support::watchdog("the orphans test", Duration::from_secs(120));
    let mut running = support::start_plain_loop();
    let (probe, drops) = mpsc::channel();
    let (loop_thread_tx, loop_thread) = mpsc::channel();
    // A Main task, run by the loop on its `HostEvent::Wake`: it spawns a
    // `!Send` task whose runnable another thread drops, and waits until it
    // has. The delivery sends its `Wake` while Main's budget is running.
    running
        .main
        .spawn(async move {
            let _ = loop_thread_tx.send(thread::current().id());
            let (dispatcher, dropped) = DropsElsewhere::start();
            // Built here: the future is dropped without ever being polled.
            let probe = DropProbe(probe);
            dispatcher
                .spawn_local(async move {
                    let _not_send = std::rc::Rc::new(());
                    let _probe = probe;
                    std::future::pending::<()>().await;
                })
                .detach();
            dropped
                .recv_timeout(Duration::from_secs(60))
                .expect("the other thread dropped the runnable");
        })
        .detach();
    let loop_thread = loop_thread
        .recv_timeout(Duration::from_secs(60))
        .expect("Main ran the task");
    // Nothing else is dispatched to Main: the delivery's own wake-up must
    // bring the loop to cancel the task.
    let dropped_on = drops.recv_timeout(Duration::from_secs(5));
    running.stop();
    assert_eq!(
        dropped_on,
        Ok(loop_thread),
        "the task sent back was not cancelled on the loop thread within 5 s \
         (its wake-up came in the iteration where Main had run, and was dropped)"
    );
}
