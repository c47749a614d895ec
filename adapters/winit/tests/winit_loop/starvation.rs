//! A busy Main (a task that always yields) leaves room for the loop's
//! user events and window events.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use dispatchers::yield_now;
use winit::window::Window;

use crate::harness::{Harness, PATIENCE, wait};

pub fn busy_main_does_not_starve_user_events(harness: &Harness) {
    // Main always has work until a user event arrives: without a budget
    // per iteration, the event would never be delivered.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (busy_tx, busy) = mpsc::channel();
    let flood = harness.main().spawn(async move {
        let mut rounds = 0u64;
        while !flag.load(Ordering::SeqCst) {
            if rounds == 100 {
                busy_tx.send(()).unwrap();
            }
            rounds += 1;
            yield_now().await;
        }
        rounds
    });
    busy.recv_timeout(PATIENCE).unwrap();
    harness.on_loop(move |_| stop.store(true, Ordering::SeqCst));
    assert!(wait(flood) > 100);
}

pub fn busy_main_does_not_starve_window_events(harness: &Harness) {
    let window: Arc<Window> = harness.on_loop(|event_loop| {
        let attributes = Window::default_attributes()
            .with_title("dispatchers-winit test")
            .with_inner_size(winit::dpi::LogicalSize::new(64.0, 48.0));
        Arc::new(
            event_loop
                .create_window(attributes)
                .expect("create a window"),
        )
    });
    let id = window.id();
    let redraws = {
        let events = harness.window_events.clone();
        move || {
            events
                .lock()
                .unwrap()
                .iter()
                .filter(|(w, name)| *w == id && name == "RedrawRequested")
                .count()
        }
    };
    let before = redraws();
    let seen = Arc::new(AtomicBool::new(false));
    let (flag, count) = (seen.clone(), redraws.clone());
    let (asked_tx, asked) = mpsc::channel();
    let flood_window = window.clone();
    // The flood asks for a redraw and runs until the loop has delivered it.
    let flood = harness.main().spawn(async move {
        flood_window.request_redraw();
        asked_tx.send(()).unwrap();
        let mut rounds = 0u64;
        while count() == before {
            rounds += 1;
            yield_now().await;
        }
        flag.store(true, Ordering::SeqCst);
        rounds
    });
    asked.recv_timeout(PATIENCE).unwrap();
    wait(flood);
    assert!(seen.load(Ordering::SeqCst));
    harness.on_loop(move |_| drop(window));
}
