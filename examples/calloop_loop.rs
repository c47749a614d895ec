//! A calloop loop with the Main dispatcher living beside the loop's own
//! sources:
//!
//! - a calloop `Timer` source beats every 100 ms (the app's own timer);
//! - a calloop `channel` delivers the tasks' results into the loop's state;
//! - a "network" thread hands jobs to the loop with `spawn_on_main`;
//! - each job hops to the `Default` pool with `with_context` for its number
//!   crunching and comes back to Main;
//! - a countdown task on Main sleeps with `delay`, on the loop's own timer.
//!
//! Every line says which thread it ran on. Run:
//! `cargo run --example calloop_loop` (it exits by itself in about a second).

#![forbid(unsafe_code)]

use std::error::Error;
use std::thread;
use std::time::{Duration, Instant};

use calloop::EventLoop;
use calloop::channel::{self, Event};
use calloop::timer::{TimeoutAction, Timer};
use dispatchers::{Dispatchers, delay, spawn_on_main, with_context};
use dispatchers_calloop::CalloopHost;

const JOBS: u64 = 3;
const HEARTBEAT: Duration = Duration::from_millis(100);
/// The example gives up (and exits with an error) after this long.
const WATCHDOG: Duration = Duration::from_secs(10);

/// What tasks send back to the loop through the calloop channel.
enum Report {
    Job {
        job: u64,
        sum: u64,
        crunched_on: String,
    },
    CountdownDone,
}

/// The loop's state: calloop hands it to every callback.
#[derive(Default)]
struct App {
    heartbeats: u32,
    jobs_done: u64,
    countdown_done: bool,
    timed_out: bool,
}

impl App {
    fn finished(&self) -> bool {
        self.timed_out || (self.jobs_done == JOBS && self.countdown_done)
    }
}

fn thread_name() -> String {
    thread::current().name().unwrap_or("unnamed").to_owned()
}

fn main() -> Result<(), Box<dyn Error>> {
    let start = Instant::now();
    let mut event_loop: EventLoop<App> = EventLoop::try_new()?;
    let handle = event_loop.handle();

    // The dispatcher: one event source in the loop. Register it before the
    // first use of Main, so that `spawn_on_main` lands here.
    let host = CalloopHost::insert(&handle)?;
    host.register_as_main()?;
    println!(
        "[{}] loop thread, Main = {:?}",
        thread_name(),
        host.dispatcher().name()
    );

    // A calloop channel beside the dispatcher: results come back through it.
    let (results, results_source) = channel::channel::<Report>();
    handle.insert_source(results_source, |event, _, app| {
        let Event::Msg(report) = event else { return };
        match report {
            Report::Job {
                job,
                sum,
                crunched_on,
            } => {
                app.jobs_done += 1;
                println!(
                    "[{}] channel: job {job} = {sum} (crunched on {crunched_on})",
                    thread_name()
                );
            }
            Report::CountdownDone => {
                app.countdown_done = true;
                println!("[{}] channel: countdown done", thread_name());
            }
        }
    })?;

    // A calloop Timer beside the dispatcher: the app's own heartbeat.
    handle.insert_source(Timer::from_duration(HEARTBEAT), |_, _, app| {
        app.heartbeats += 1;
        println!("[{}] timer: heartbeat {}", thread_name(), app.heartbeats);
        TimeoutAction::ToDuration(HEARTBEAT)
    })?;
    handle.insert_source(Timer::from_duration(WATCHDOG), |_, _, app| {
        app.timed_out = true;
        TimeoutAction::Drop
    })?;

    spawn_countdown(results.clone());
    let network = spawn_network_thread(results);

    let signal = event_loop.get_signal();
    let mut app = App::default();
    event_loop.run(None, &mut app, |app| {
        if app.finished() {
            signal.stop();
        }
    })?;
    network.join().expect("the network thread");

    if app.timed_out {
        return Err(format!("gave up after {WATCHDOG:?}").into());
    }
    println!(
        "[{}] done in {:.2?}: {} jobs, {} heartbeats, {} wake-ups of the loop by the dispatcher",
        thread_name(),
        start.elapsed(),
        app.jobs_done,
        app.heartbeats,
        host.host_wakes()
    );
    // Dropping the loop drops the dispatcher's source: the engine shuts down
    // and later dispatches to this Main are cancelled.
    drop(event_loop);
    Ok(())
}

/// A task on Main that counts down on the loop's own timer.
fn spawn_countdown(results: channel::Sender<Report>) {
    spawn_on_main(async move {
        for n in (1..=3).rev() {
            println!("[{}] countdown {n}", thread_name());
            delay(Duration::from_millis(200)).await;
        }
        results.send(Report::CountdownDone).ok();
    })
    .detach();
}

/// Another thread receives jobs and hands each one to the loop.
fn spawn_network_thread(results: channel::Sender<Report>) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name("network".into())
        .spawn(move || {
            for job in 1..=JOBS {
                thread::sleep(Duration::from_millis(120));
                println!("[{}] job {job} received, handing it to Main", thread_name());
                let results = results.clone();
                spawn_on_main(async move {
                    println!("[{}] job {job}: accepted on Main", thread_name());
                    // CPU work goes to the Default pool; we come back to Main.
                    let (sum, crunched_on) = with_context(&Dispatchers::default(), async move {
                        let sum: u64 = (1..=job * 1_000_000).sum();
                        (sum, thread_name())
                    })
                    .await;
                    println!("[{}] job {job}: back on Main", thread_name());
                    results
                        .send(Report::Job {
                            job,
                            sum,
                            crunched_on,
                        })
                        .ok();
                })
                .detach();
            }
        })
        .expect("spawn the network thread")
}
