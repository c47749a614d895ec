//! A TCP game server with a fixed 20 Hz tick, on a mio event loop whose
//! thread is `Dispatchers::main()`.
//!
//! ```text
//! cargo run --example game_server
//! cargo run --example game_server -- --clients 32 --seconds 10
//! cargo run --example game_server -- --run-forever      # Ctrl-C to stop
//! cargo run --example game_server -- --fuzz 10          # + clients sending garbage
//! ```
//!
//! It needs no set-up: it listens on a free loopback port, starts its own
//! simulated clients, prints a stats line every second and exits by itself.
//!
//! What it shows:
//!
//! - a mio `Poll` loop becomes the Main thread with [`MioHost`]: it polls no
//!   longer than the host allows and calls `run_pending` after every poll;
//! - every client command is a task on Main. The game state is only touched
//!   on Main, so the tasks share it through an `Rc<RefCell<..>>`, with no
//!   locks, and are spawned with `spawn_on_main_local` (the loop thread's
//!   form of `spawn_on_main`, for `!Send` futures);
//! - `SAVE` (and an autosave every second) snapshots the world on Main, hops
//!   with `with_context` to a background dispatcher (a one-at-a-time view of
//!   the IO pool, `limited_parallelism(1)`) to write the file, and comes back
//!   to Main with the result;
//! - `delay` runs on the loop's own timers: a player who falls off the arena
//!   respawns after a delay, and the autosave task sleeps between saves;
//! - malformed input gets an `ERR` reply and the server goes on; a client
//!   that sends an endless line, or never reads its replies, is cut off
//!   instead of buffered for. `--fuzz S` adds clients that send random bytes
//!   for `S` seconds and checks that the well-behaved clients are all still
//!   served and that the process's memory stays bounded.
//!
//! The protocol is one line each way. Commands: `MOVE dx dy` (each in
//! -3..=3), `SAY text`, `SAVE`, `QUIT`. Every command gets exactly one reply,
//! starting with `OK` or `ERR`; lines starting with `EVENT` are news from the
//! game (joins, chat, falls) that a client may receive at any time.
//!
//! The files: `main.rs` runs the server and its clients and prints the
//! summary; `server.rs` is the mio loop (sockets, ticks, `run_pending`);
//! `game.rs` the game state and the command tasks on Main; `clients.rs` the
//! simulated players; `fuzz.rs` the clients that send garbage; `cli.rs` the
//! command line.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::error::Error;
use std::io;
use std::process::ExitCode;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use dispatchers::{Dispatcher, Dispatchers, block_on, spawn_on_main_local, with_context};
use dispatchers_mio::MioHost;
use mio::{Poll, Token};

mod cli;
mod clients;
mod fuzz;
mod game;
mod server;

use cli::Config;
use clients::{ClientReport, run_client};
use fuzz::{FuzzReport, mebibytes, resident_memory, run_fuzzer};
use game::{Game, autosave, save_world};
use server::{Server, millis};

/// Reserved for the host's wake-ups.
const WAKE: Token = Token(0);
/// The listening socket.
const LISTENER: Token = Token(1);

const TICK: Duration = Duration::from_millis(50); // 20 Hz
/// The longest command line the server accepts.
const MAX_LINE: usize = 256;
/// A client whose unfinished line grows past this is disconnected.
const MAX_INBOX: usize = 4096;
/// Clients sending random bytes, with `--fuzz`.
const FUZZERS: usize = 4;
/// With `--fuzz`, the run fails if the process grew by more than this.
const FUZZ_MEMORY_LIMIT: u64 = 64 * 1024 * 1024;
/// How long the server waits for clients to say goodbye, and for the final save.
const GRACE: Duration = Duration::from_secs(5);

const USAGE: &str = "usage: cargo run --example game_server -- \
                     [--clients N] [--seconds S] [--run-forever] [--fuzz S]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if let Err(message) = Config::from_args(args.clone()) {
        eprintln!("game_server: {message}\n{USAGE}");
        return ExitCode::from(2);
    }
    match run_with_args(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("game_server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the server as the command line `args` (without the program name)
/// asks; `Ok(true)` when every client got the replies it expected. The
/// repository's `tests/reliability_game_server.rs` runs it with `--fuzz 10`.
pub fn run_with_args(args: Vec<String>) -> Result<bool, Box<dyn Error>> {
    run(&Config::from_args(args)?)
}

/// Runs the server and its simulated clients; `Ok(true)` when every client
/// got the replies it expected.
fn run(config: &Config) -> Result<bool, Box<dyn Error>> {
    let memory_at_start = resident_memory();
    // The loop's host: from here on, this thread is Main.
    let poll = Poll::new()?;
    let host = MioHost::new(poll.registry(), WAKE)?;
    host.register_as_main()?;

    // Blocking work (the disk) runs off the loop, on a background dispatcher:
    // one save at a time, in order, on the IO pool.
    let storage: Dispatcher = Dispatchers::io().limited_parallelism(1)?;

    let save_path =
        std::env::temp_dir().join(format!("dispatchers-game-{}.txt", std::process::id()));
    let game = Rc::new(RefCell::new(Game::new(storage.clone(), save_path.clone())));
    spawn_on_main_local(autosave(game.clone())).detach();

    let mut server = Server::bind(poll, host, game.clone())?;
    let addr = server.listener.local_addr()?;
    let ends_at = config.run_for.map(|d| Instant::now() + d);
    println!(
        "game_server: listening on {addr}, {} simulated clients, tick {} Hz, {}",
        config.clients,
        1000 / TICK.as_millis(),
        match config.run_for {
            Some(d) => format!("stopping after {:.1} s", d.as_secs_f64()),
            None => "running until interrupted".to_owned(),
        }
    );
    let clients: Vec<_> = (0..config.clients)
        .map(|n| {
            thread::Builder::new()
                .name(format!("client-{n}"))
                .spawn(move || run_client(n, addr, ends_at))
        })
        .collect::<io::Result<_>>()?;
    let fuzzers: Vec<_> = match (config.fuzz, ends_at) {
        (true, Some(until)) => (0..FUZZERS)
            .map(|n| {
                thread::Builder::new()
                    .name(format!("fuzzer-{n}"))
                    .spawn(move || run_fuzzer(n, addr, until))
            })
            .collect::<io::Result<_>>()?,
        _ => Vec::new(),
    };

    // Play until time is up, then let the clients say goodbye.
    while ends_at.is_none_or(|t| Instant::now() < t) {
        server.turn()?;
    }
    let give_up = Instant::now() + GRACE;
    while !server.conns.is_empty() && Instant::now() < give_up {
        server.turn()?;
    }

    // A last save, through the same path as `SAVE`; the loop keeps turning
    // until the task is done.
    let final_save = spawn_on_main_local({
        let game = game.clone();
        async move { save_world(&game).await }
    });
    while !final_save.is_finished() && Instant::now() < give_up + GRACE {
        server.turn()?;
    }
    if !final_save.is_finished() {
        return Err("the final save did not finish in time".into());
    }
    let saved_bytes = block_on(final_save)??; // finished: `block_on` returns at once

    // Dropping the server closes the sockets and shuts the host down: the
    // tasks still waiting on Main (the autosave, asleep in its `delay`) are
    // cancelled.
    let (ticks, max_late) = (server.tick, server.max_late_ever);
    let cut_off = (
        server.cut_long_lines,
        server.cut_slow_readers,
        server.max_backlog,
    );
    drop(server);
    // An autosave cancelled by the shutdown may have been writing on the
    // storage dispatcher; it finishes there first. Saves run one at a time,
    // in order, so an empty hop behind them waits for it.
    block_on(with_context(&storage, async {}));
    let _ = std::fs::remove_file(&save_path);

    let mut all_well = true;
    let mut seen = ClientReport::default();
    for (n, client) in clients.into_iter().enumerate() {
        match client.join() {
            Ok(Ok(report)) => seen.add(&report),
            Ok(Err(error)) => {
                eprintln!("client-{n}: {error}");
                all_well = false;
            }
            Err(_) => {
                eprintln!("client-{n} panicked");
                all_well = false;
            }
        }
    }
    let g = game.borrow();
    println!(
        "done: {} ticks, {} commands ({} rejected), {} saves (the last {saved_bytes} bytes), \
         max lateness {}",
        ticks,
        g.commands,
        g.rejected,
        g.saves,
        millis(max_late),
    );
    println!(
        "clients: received {} OK, {} ERR and {} EVENT lines",
        seen.ok, seen.rejected, seen.events
    );
    if fuzzers.is_empty() {
        if all_well && (seen.ok, seen.rejected) != (g.commands, g.rejected) {
            eprintln!("the clients' counts differ from the server's");
            all_well = false;
        }
    } else {
        // The server's counts include the fuzzers' lines.
        if all_well && (seen.ok > g.commands || seen.rejected > g.rejected) {
            eprintln!("the clients saw more replies than the server sent");
            all_well = false;
        }
        let mut fuzzed = FuzzReport::default();
        for fuzzer in fuzzers {
            match fuzzer.join() {
                Ok(report) => fuzzed.add(&report),
                Err(_) => {
                    eprintln!("a fuzzer panicked");
                    all_well = false;
                }
            }
        }
        let (start, end) = (memory_at_start, resident_memory());
        println!(
            "fuzz: {FUZZERS} clients sent {} random bytes over {} connections; the server cut \
             off {} endless lines and {} clients that did not read (largest backlog {} bytes); \
             memory {} at start, {} at end",
            fuzzed.bytes,
            fuzzed.connections,
            cut_off.0,
            cut_off.1,
            cut_off.2,
            mebibytes(start),
            mebibytes(end),
        );
        if let (Some(start), Some(end)) = (start, end) {
            if end > start + FUZZ_MEMORY_LIMIT {
                eprintln!(
                    "memory grew by more than {}",
                    mebibytes(Some(FUZZ_MEMORY_LIMIT))
                );
                all_well = false;
            }
        }
        println!(
            "fuzz: every well-behaved client served: {}",
            if all_well { "yes" } else { "NO" }
        );
    }
    Ok(all_well)
}
