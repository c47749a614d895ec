//! A hand-written game loop with no host library: a fixed 30 Hz tick that
//! gives the dispatcher a slice of each frame.
//!
//! - an input thread sends commands to the game with `spawn_on_main`;
//! - a spawner task on Main uses `delay` (the loop's own timers);
//! - saving hops to the IO pool with `with_context` and comes back;
//! - `Main.immediate` runs in place when already on the loop thread.
//!
//! Run: `cargo run --example tick_loop` (add `--ticks N` to change the
//! length; it exits by itself).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dispatchers::{Budget, Dispatchers, LoopHost, delay, spawn_on_main, with_context};

const TICK: Duration = Duration::from_millis(33);
/// The dispatcher gets at most this much of each 33 ms frame.
const DISPATCH_BUDGET: Duration = Duration::from_millis(4);

/// The game state; lives on the loop thread, shared with tasks on Main.
#[derive(Default)]
struct World {
    tick: u64,
    enemies: u32,
    commands: Vec<String>,
    saves: u32,
}

fn thread_name() -> String {
    thread::current().name().unwrap_or("unnamed").to_owned()
}

fn main() {
    let ticks = parse_ticks();
    let host = LoopHost::new("tick-loop");
    host.register_as_main(0)
        .expect("register the loop before the first use of Main");
    let world = Arc::new(Mutex::new(World::default()));
    println!("loop thread: {}", thread_name());

    spawn_enemy_spawner(&world);
    let input = spawn_input_thread(world.clone());
    let saves_done = Arc::new(AtomicUsize::new(0));

    let start = Instant::now();
    let mut next_tick = start;
    let (mut ran, mut timers) = (0, 0);
    for tick in 1..=ticks {
        // 1. The game's own work for this frame.
        world.lock().unwrap().tick = tick;
        if tick % 30 == 0 {
            spawn_save(&world, &saves_done);
        }
        if tick % 15 == 0 {
            // Already on the loop thread: immediate runs this in place, now.
            let immediate = Dispatchers::main().immediate();
            let task = immediate.spawn(async move {
                if tick == 15 {
                    println!("immediate: ran in place on {}", thread_name());
                }
            });
            assert!(task.is_finished(), "no queue, no wait");
            task.detach();
        }
        // 2. A budgeted slice for tasks and timers.
        let in_frame = host.run_pending(Budget::unlimited().max_time(DISPATCH_BUDGET));
        // 3. Sleep until the next tick; tasks dispatched meanwhile still run.
        next_tick += TICK;
        let between = host.run_until_instant(next_tick);
        ran += in_frame.ran + between.ran;
        timers += in_frame.timers_fired + between.timers_fired;
        if tick % 10 == 0 {
            let w = world.lock().unwrap();
            println!(
                "tick {tick:>3}: last 10 ticks ran {ran:>2} tasks, {timers} timers; \
                 enemies {}, commands {}, saves {}",
                w.enemies,
                w.commands.len(),
                w.saves
            );
            (ran, timers) = (0, 0);
        }
    }
    input.join().expect("the input thread");
    // Let the last save come back before reporting.
    host.run_until(async {
        while saves_done.load(Ordering::SeqCst) < (ticks / 30) as usize {
            delay(Duration::from_millis(5)).await;
        }
    });

    let w = world.lock().unwrap();
    println!(
        "done after {:.2?}: {} ticks, {} enemies spawned, {} commands, {} saves",
        start.elapsed(),
        w.tick,
        w.enemies,
        w.commands.len(),
        w.saves
    );
    println!(
        "last commands: {:?}",
        &w.commands[w.commands.len().saturating_sub(3)..]
    );
}

/// A task on Main that spawns an enemy every 250 ms, on the loop's timers.
fn spawn_enemy_spawner(world: &Arc<Mutex<World>>) {
    let world = world.clone();
    spawn_on_main(async move {
        loop {
            delay(Duration::from_millis(250)).await;
            let mut w = world.lock().unwrap();
            w.enemies += 1;
            if w.enemies == 1 {
                println!("spawner: first enemy, on {}", thread_name());
            }
        }
    })
    .detach();
}

/// Another thread delivers player input to the loop with `spawn_on_main`.
fn spawn_input_thread(world: Arc<Mutex<World>>) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            for i in 0..20 {
                thread::sleep(Duration::from_millis(40));
                let world = world.clone();
                let command = format!("move {i}");
                let from = thread_name();
                spawn_on_main(async move {
                    if i == 0 {
                        println!("command sent from {from}, handled on {}", thread_name());
                    }
                    world.lock().unwrap().commands.push(command);
                })
                .detach();
            }
        })
        .expect("spawn the input thread")
}

/// Saving blocks (a file write): hop to the IO pool, then back to Main.
fn spawn_save(world: &Arc<Mutex<World>>, done: &Arc<AtomicUsize>) {
    let (world, done) = (world.clone(), done.clone());
    spawn_on_main(async move {
        let snapshot = {
            let w = world.lock().unwrap();
            format!("tick={} enemies={}", w.tick, w.enemies)
        };
        let written = with_context(&Dispatchers::io(), async move {
            thread::sleep(Duration::from_millis(20)); // a slow disk
            (snapshot.len(), thread_name())
        })
        .await;
        println!(
            "save: wrote {} bytes on {}, back on {}",
            written.0,
            written.1,
            thread_name()
        );
        world.lock().unwrap().saves += 1;
        done.fetch_add(1, Ordering::SeqCst);
    })
    .detach();
}

fn parse_ticks() -> u64 {
    let mut args = std::env::args().skip(1);
    let mut ticks = 90;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ticks" => {
                ticks = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| usage("--ticks takes a number"));
            }
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    ticks
}

fn usage(problem: &str) -> ! {
    eprintln!("tick_loop: {problem}\nusage: cargo run --example tick_loop [-- --ticks N]");
    std::process::exit(2);
}
