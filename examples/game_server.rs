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
//!   to a background dispatcher with `with_context` to write the file, and
//!   comes back to Main with the result;
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

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use dispatchers::{
    Budget, Dispatcher, Dispatchers, block_on, delay, spawn_on_main_local, with_context,
};
use dispatchers_mio::MioHost;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// Reserved for the host's wake-ups.
const WAKE: Token = Token(0);
const LISTENER: Token = Token(1);

const TICK: Duration = Duration::from_millis(50); // 20 Hz
/// Print a stats line every this many ticks (once a second).
const REPORT_EVERY: u64 = 20;
/// How long tasks may run in one loop turn, so sockets and ticks are never
/// starved; what is left runs on the next turn.
const TASK_BUDGET: Duration = Duration::from_millis(10);
const ARENA: i32 = 16;
const RESPAWN_AFTER: Duration = Duration::from_millis(300);
const AUTOSAVE_EVERY: Duration = Duration::from_secs(1);
const MAX_LINE: usize = 256;
/// A client whose unfinished line grows past this is disconnected.
const MAX_INBOX: usize = 4096;
/// The most lines of one client that become tasks in one loop turn.
const LINES_PER_TURN: usize = 64;
/// A client whose unsent replies pile up past this (it does not read them)
/// is disconnected.
const MAX_OUTBOX: usize = 64 * 1024;
/// Clients sending random bytes, with `--fuzz`.
const FUZZERS: usize = 4;
/// With `--fuzz`, the run fails if the process grew by more than this.
const FUZZ_MEMORY_LIMIT: u64 = 64 * 1024 * 1024;
/// How long the server waits for clients to say goodbye, and for the final save.
const GRACE: Duration = Duration::from_secs(5);
/// Simulated clients give up on a server silent for this long.
const CLIENT_IO_TIMEOUT: Duration = Duration::from_secs(10);

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

    // Blocking work (the disk) runs off the loop, on a background dispatcher.
    let storage: Dispatcher = Dispatchers::io();

    let save_path =
        std::env::temp_dir().join(format!("dispatchers-game-{}.txt", std::process::id()));
    let game = Rc::new(RefCell::new(Game::new(storage, save_path.clone())));
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
    let _ = std::fs::remove_file(&save_path);

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

// ---------------------------------------------------------------------------
// The loop: network I/O, tasks, ticks.
// ---------------------------------------------------------------------------

/// The mio loop. It owns the sockets; the game state is shared with the tasks.
struct Server {
    poll: Poll,
    events: Events,
    host: MioHost,
    listener: TcpListener,
    conns: HashMap<Token, Conn>,
    /// Connections with input left over from the last turn.
    read_again: Vec<Token>,
    next_token: usize,
    game: Shared,
    tick: u64,
    next_tick: Instant,
    /// Since the last stats line.
    interval: Interval,
    max_late_ever: Duration,
    /// Connections closed for a line longer than [`MAX_INBOX`].
    cut_long_lines: u64,
    /// Connections closed for not reading their replies ([`MAX_OUTBOX`]).
    cut_slow_readers: u64,
    /// The most bytes one connection had waiting (in and out) after a turn.
    max_backlog: usize,
}

/// One client's socket and its unread/unwritten bytes.
struct Conn {
    stream: TcpStream,
    player: PlayerId,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
}

#[derive(Default)]
struct Interval {
    tasks: usize,
    timers: usize,
    max_late: Duration,
    commands_before: u64,
    rejected_before: u64,
    saves_before: u64,
}

impl Server {
    fn bind(poll: Poll, host: MioHost, game: Shared) -> io::Result<Server> {
        let mut listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Server {
            poll,
            events: Events::with_capacity(1024),
            host,
            listener,
            conns: HashMap::new(),
            read_again: Vec::new(),
            next_token: LISTENER.0 + 1,
            game,
            tick: 0,
            next_tick: Instant::now() + TICK,
            interval: Interval::default(),
            max_late_ever: Duration::ZERO,
            cut_long_lines: 0,
            cut_slow_readers: 0,
            max_backlog: 0,
        })
    }

    /// One turn of the loop: wait for sockets, wake-ups, timers or the next
    /// tick; read commands (each becomes a task); run the tasks; write the
    /// replies; tick when it is time.
    fn turn(&mut self) -> io::Result<()> {
        let timeout = self.host.next_timeout_before(self.next_tick);
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let ready: Vec<Token> = self
            .events
            .iter()
            .filter(|event| !self.host.is_wake_event(event)) // its tasks run below
            .map(|event| event.token())
            .collect();
        for token in ready {
            if token == LISTENER {
                self.accept();
            } else if !self.read_again.contains(&token) {
                self.read_commands(token);
            }
        }
        for token in std::mem::take(&mut self.read_again) {
            self.read_commands(token);
        }

        // Commands, timers that came due, and whatever other threads sent.
        let report = self
            .host
            .run_pending(Budget::unlimited().max_time(TASK_BUDGET));
        self.interval.tasks += report.ran;
        self.interval.timers += report.timers_fired;

        self.write_replies();

        let now = Instant::now();
        if now >= self.next_tick {
            self.on_tick(now - self.next_tick);
            self.next_tick += TICK;
            if self.next_tick < now {
                self.next_tick = now + TICK; // too far behind: skip, don't burst
            }
        }
        Ok(())
    }

    /// Accepts every pending connection; a failed one is reported and the
    /// server goes on.
    fn accept(&mut self) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    return;
                }
            };
            let token = Token(self.next_token);
            self.next_token += 1;
            // Readable for commands; writable for when a full socket buffer
            // drains (mio's events are edge-triggered: one per change).
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
                eprintln!("cannot register a connection: {e}");
                continue;
            }
            let player = self.game.borrow_mut().join();
            self.conns.insert(
                token,
                Conn {
                    stream,
                    player,
                    inbox: Vec::new(),
                    outbox: Vec::new(),
                },
            );
        }
    }

    /// Reads what the socket has, up to [`MAX_INBOX`] bytes ahead, and
    /// spawns a task on Main per complete line, at most [`LINES_PER_TURN`]:
    /// a client that floods the server waits for its turn (and, its socket
    /// full, is slowed down by TCP) instead of filling the queue. What is left
    /// is read again on the next turn.
    fn read_commands(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let mut buf = [0u8; 1024];
        let mut drained = false;
        let mut open = true;
        while conn.inbox.len() < MAX_INBOX {
            match conn.stream.read(&mut buf) {
                Ok(0) => open = false,
                Ok(n) => {
                    conn.inbox.extend_from_slice(&buf[..n]);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => drained = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => open = false,
            }
            break;
        }
        let mut lines = 0;
        while lines < LINES_PER_TURN {
            let Some(end) = conn.inbox.iter().position(|&b| b == b'\n') else {
                break;
            };
            let mut line: Vec<u8> = conn.inbox.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            // The command runs as a task on Main, after this turn's reads.
            spawn_on_main_local(handle_line(self.game.clone(), conn.player, line)).detach();
            lines += 1;
        }
        let unfinished_line = !conn.inbox.contains(&b'\n');
        if open && (!unfinished_line || !drained) {
            // mio's events are edge-triggered: no event comes for bytes
            // already waiting, so come back to them.
            self.read_again.push(token);
        }
        if unfinished_line && conn.inbox.len() >= MAX_INBOX {
            self.cut_long_lines += 1;
            let mut game = self.game.borrow_mut();
            game.rejected += 1;
            game.reply(conn.player, "ERR line too long, closing");
            game.quit(conn.player);
            conn.inbox.clear();
        }
        if !open {
            self.close(token);
        }
    }

    /// Moves the replies the tasks wrote into the sockets; closes the
    /// connections of players who quit once their last reply is out.
    fn write_replies(&mut self) {
        let mut finished = Vec::new();
        for (&token, conn) in &mut self.conns {
            let quitting = {
                let mut game = self.game.borrow_mut();
                let Some(player) = game.players.get_mut(&conn.player) else {
                    continue;
                };
                conn.outbox
                    .extend(std::mem::take(&mut player.outbox).into_bytes());
                player.quitting
            };
            let writable = loop {
                if conn.outbox.is_empty() {
                    break true;
                }
                match conn.stream.write(&conn.outbox) {
                    Ok(n) => drop(conn.outbox.drain(..n)),
                    // The socket's buffer is full: a WRITABLE event comes
                    // when it drains, and the next turn writes the rest.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break false,
                }
            };
            self.max_backlog = self.max_backlog.max(conn.inbox.len() + conn.outbox.len());
            if conn.outbox.len() > MAX_OUTBOX {
                // It does not read: cut it off rather than buffer for it.
                self.cut_slow_readers += 1;
                finished.push(token);
            } else if !writable || (quitting && conn.outbox.is_empty()) {
                finished.push(token);
            }
        }
        for token in finished {
            self.close(token);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.game.borrow_mut().leave(conn.player);
        }
    }

    fn on_tick(&mut self, late: Duration) {
        self.tick += 1;
        self.interval.max_late = self.interval.max_late.max(late);
        self.max_late_ever = self.max_late_ever.max(late);
        self.game.borrow_mut().tick();
        if self.tick % REPORT_EVERY == 0 {
            let game = self.game.borrow();
            let stats = &mut self.interval;
            println!(
                "tick {:>5} | clients {:>3} | commands {:>5} ({:>3} rejected) | tasks {:>5} \
                 | timers {:>3} | saves {:>3} | late max {}",
                self.tick,
                self.conns.len(),
                game.commands - stats.commands_before,
                game.rejected - stats.rejected_before,
                stats.tasks,
                stats.timers,
                game.saves - stats.saves_before,
                millis(stats.max_late),
            );
            *stats = Interval {
                commands_before: game.commands,
                rejected_before: game.rejected,
                saves_before: game.saves,
                ..Interval::default()
            };
        }
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

// ---------------------------------------------------------------------------
// The game: state on Main, commands as tasks on Main.
// ---------------------------------------------------------------------------

type PlayerId = u64;

/// The game state. It lives on the loop's thread (Main) only, so the tasks
/// share it through an `Rc<RefCell<..>>`. A task never holds a borrow across
/// an `.await`: between two awaits it has the state to itself.
type Shared = Rc<RefCell<Game>>;

struct Game {
    players: BTreeMap<PlayerId, Player>,
    /// Final scores of the players who left.
    departed: Vec<(String, u64)>,
    next_player: PlayerId,
    storage: Dispatcher,
    save_path: PathBuf,
    saves_started: u64,
    /// Commands handled (each got an `OK` reply).
    commands: u64,
    /// Lines answered with `ERR`.
    rejected: u64,
    saves: u64,
}

struct Player {
    name: String,
    x: i32,
    y: i32,
    score: u64,
    /// Lines waiting for the socket (the loop writes them after the tasks ran).
    outbox: String,
    quitting: bool,
}

impl Game {
    fn new(storage: Dispatcher, save_path: PathBuf) -> Self {
        Game {
            players: BTreeMap::new(),
            departed: Vec::new(),
            next_player: 1,
            storage,
            save_path,
            saves_started: 0,
            commands: 0,
            rejected: 0,
            saves: 0,
        }
    }

    fn join(&mut self) -> PlayerId {
        let id = self.next_player;
        self.next_player += 1;
        let name = format!("player-{id}");
        self.broadcast(id, &format!("EVENT {name} joined"));
        self.players.insert(
            id,
            Player {
                outbox: format!("EVENT welcome, you are {name}\n"),
                name,
                x: ARENA / 2,
                y: ARENA / 2,
                score: 0,
                quitting: false,
            },
        );
        id
    }

    fn leave(&mut self, id: PlayerId) {
        if let Some(player) = self.players.remove(&id) {
            self.broadcast(id, &format!("EVENT {} left", player.name));
            self.departed.push((player.name, player.score));
        }
    }

    fn quit(&mut self, id: PlayerId) {
        if let Some(player) = self.players.get_mut(&id) {
            player.quitting = true;
        }
    }

    /// Queues a line for `id` (a no-op if the player has left meanwhile).
    fn reply(&mut self, id: PlayerId, line: &str) {
        if let Some(player) = self.players.get_mut(&id) {
            player.outbox.push_str(line);
            player.outbox.push('\n');
        }
    }

    /// Queues a line for every player but `from`.
    fn broadcast(&mut self, from: PlayerId, line: &str) {
        for (&id, player) in &mut self.players {
            if id != from && !player.quitting {
                player.outbox.push_str(line);
                player.outbox.push('\n');
            }
        }
    }

    /// The world moves on: everyone in the arena scores a point.
    fn tick(&mut self) {
        for player in self.players.values_mut() {
            if (0..ARENA).contains(&player.x) && (0..ARENA).contains(&player.y) {
                player.score += 1;
            }
        }
    }

    fn snapshot(&self) -> String {
        let mut text = String::from("# name x y score\n");
        for player in self.players.values() {
            let (name, x, y, score) = (&player.name, player.x, player.y, player.score);
            let _ = writeln!(text, "{name} {x} {y} {score}");
        }
        for (name, score) in &self.departed {
            let _ = writeln!(text, "{name} - - {score}");
        }
        text
    }
}

enum Command {
    Move(i32, i32),
    Say(String),
    Save,
    Quit,
}

fn parse(line: &[u8]) -> Result<Command, String> {
    if line.len() > MAX_LINE {
        return Err(format!("line too long (max {MAX_LINE} bytes)"));
    }
    let line = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_owned())?;
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    match verb {
        "MOVE" => {
            let step = |s: Option<&str>| s.and_then(|s| s.parse::<i32>().ok());
            let mut args = rest.split_whitespace();
            match (step(args.next()), step(args.next()), args.next()) {
                (Some(dx), Some(dy), None) if dx.abs() <= 3 && dy.abs() <= 3 => {
                    Ok(Command::Move(dx, dy))
                }
                _ => Err("usage: MOVE dx dy, integers in -3..=3".to_owned()),
            }
        }
        "SAY" if !rest.trim().is_empty() => Ok(Command::Say(rest.trim().to_owned())),
        "SAY" => Err("usage: SAY text".to_owned()),
        "SAVE" if rest.is_empty() => Ok(Command::Save),
        "QUIT" if rest.is_empty() => Ok(Command::Quit),
        "" => Err("empty line".to_owned()),
        _ => Err(format!("unknown command {verb:?}")),
    }
}

/// One client line: a task on Main.
async fn handle_line(game: Shared, id: PlayerId, line: Vec<u8>) {
    let command = match parse(&line) {
        Ok(command) => command,
        Err(why) => {
            let mut game = game.borrow_mut();
            game.rejected += 1;
            game.reply(id, &format!("ERR {why}"));
            return;
        }
    };
    let reply = match command {
        Command::Move(dx, dy) => move_player(&game, id, dx, dy).await,
        Command::Say(text) => {
            let mut game = game.borrow_mut();
            let name = game.players.get(&id).map(|p| p.name.clone());
            if let Some(name) = name {
                game.broadcast(id, &format!("EVENT {name} says: {text}"));
            }
            "OK".to_owned()
        }
        Command::Save => match save_world(&game).await {
            Ok(bytes) => format!("OK saved {bytes} bytes"),
            Err(error) => format!("ERR save failed: {error}"),
        },
        Command::Quit => {
            game.borrow_mut().quit(id);
            "OK bye".to_owned()
        }
    };
    let mut game = game.borrow_mut();
    if reply.starts_with("OK") {
        game.commands += 1;
    } else {
        game.rejected += 1;
    }
    game.reply(id, &reply);
}

/// Moves a player; one who steps off the arena respawns in the middle after
/// [`RESPAWN_AFTER`], and the reply waits for it.
async fn move_player(game: &Shared, id: PlayerId, dx: i32, dy: i32) -> String {
    {
        let mut game = game.borrow_mut();
        let Some(player) = game.players.get_mut(&id) else {
            return "ERR you left".to_owned();
        };
        player.x += dx;
        player.y += dy;
        let (x, y) = (player.x, player.y);
        if (0..ARENA).contains(&x) && (0..ARENA).contains(&y) {
            return format!("OK at {x} {y}");
        }
        let news = format!("EVENT {} fell off the arena", player.name);
        game.broadcast(id, &news);
    } // the borrow ends before the await

    // On the loop's own timers: nothing sleeps, nothing else waits; the
    // task resumes from `run_pending` when the deadline comes.
    delay(RESPAWN_AFTER).await;

    let mut game = game.borrow_mut();
    let Some(player) = game.players.get_mut(&id) else {
        return "ERR you left".to_owned();
    };
    (player.x, player.y) = (ARENA / 2, ARENA / 2);
    format!("OK fell off; respawned at {} {}", player.x, player.y)
}

/// Snapshots the world on Main, writes it on the storage dispatcher, and
/// comes back to Main with the result.
async fn save_world(game: &Shared) -> io::Result<usize> {
    let (snapshot, path, storage, seq) = {
        let mut game = game.borrow_mut();
        game.saves_started += 1;
        let seq = game.saves_started;
        (
            game.snapshot(),
            game.save_path.clone(),
            game.storage.clone(),
            seq,
        )
    };
    let written = with_context(&storage, async move {
        // Blocking file I/O: fine here, off the loop. Write-then-rename keeps
        // the file whole even when saves overlap on a multi-threaded pool.
        let partial = path.with_extension(format!("part{seq}"));
        std::fs::write(&partial, &snapshot)?;
        std::fs::rename(&partial, &path)?;
        Ok::<_, io::Error>(snapshot.len())
    })
    .await;
    // Back on Main: the game state is ours again.
    debug_assert!(Dispatchers::main().is_current_thread());
    if written.is_ok() {
        game.borrow_mut().saves += 1;
    }
    written
}

/// Saves every [`AUTOSAVE_EVERY`], for as long as the loop runs.
async fn autosave(game: Shared) {
    loop {
        delay(AUTOSAVE_EVERY).await;
        if let Err(error) = save_world(&game).await {
            eprintln!("autosave failed: {error}");
        }
    }
}

// ---------------------------------------------------------------------------
// Simulated clients: plain blocking sockets on threads of their own.
// ---------------------------------------------------------------------------

/// What one client saw.
#[derive(Default)]
struct ClientReport {
    ok: u64,
    rejected: u64,
    events: u64,
}

impl ClientReport {
    fn add(&mut self, other: &ClientReport) {
        self.ok += other.ok;
        self.rejected += other.rejected;
        self.events += other.events;
    }
}

/// Lines a well-behaved server must answer with `ERR`, and survive.
const MALFORMED: &[&[u8]] = &[
    b"MOVE 1",
    b"MOVE north 2",
    b"MOVE 9 0",
    b"JUMP",
    b"SAY",
    b"",
    b"move 1 1",
    b"\xff\xfe MOVE 1 1",
];

/// Plays until `until` (forever if `None`), then quits.
fn run_client(n: usize, server: SocketAddr, until: Option<Instant>) -> io::Result<ClientReport> {
    let stream = StdTcpStream::connect(server)?;
    stream.set_read_timeout(Some(CLIENT_IO_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_IO_TIMEOUT))?;
    let mut client = Client {
        replies: BufReader::new(stream.try_clone()?),
        stream,
        report: ClientReport::default(),
    };
    let mut dice = Dice::new(n as u64);
    if n == 0 {
        client.send(&[b'X'; MAX_LINE + 1], false)?;
    }
    while until.is_none_or(|t| Instant::now() < t) {
        match dice.roll(100) {
            0..70 => {
                let step = |dice: &mut Dice| dice.roll(5) as i32 - 2;
                let line = format!("MOVE {} {}", step(&mut dice), step(&mut dice));
                client.send(line.as_bytes(), true)?;
            }
            70..82 => client.send(format!("SAY hello from client {n}").as_bytes(), true)?,
            82..86 => client.send(b"SAVE", true)?,
            _ => {
                let line = MALFORMED[dice.roll(MALFORMED.len() as u64) as usize];
                client.send(line, false)?;
            }
        }
        thread::sleep(Duration::from_millis(20 + dice.roll(40)));
    }
    client.send(b"QUIT", true)?;
    Ok(client.report)
}

struct Client {
    stream: StdTcpStream,
    replies: BufReader<StdTcpStream>,
    report: ClientReport,
}

impl Client {
    /// Sends one line and reads up to its reply, checking it is `OK` when
    /// `expect_ok`, `ERR` otherwise.
    fn send(&mut self, line: &[u8], expect_ok: bool) -> io::Result<()> {
        self.stream.write_all(line)?;
        self.stream.write_all(b"\n")?;
        loop {
            let mut reply = String::new();
            if self.replies.read_line(&mut reply)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
            if reply.starts_with("EVENT ") {
                self.report.events += 1;
                continue;
            }
            let ok = reply.starts_with("OK");
            if ok != expect_ok || !(ok || reply.starts_with("ERR")) {
                return Err(io::Error::other(format!(
                    "sent {:?}, got {:?}",
                    String::from_utf8_lossy(line),
                    reply.trim_end()
                )));
            }
            if ok {
                self.report.ok += 1;
            } else {
                self.report.rejected += 1;
            }
            return Ok(());
        }
    }
}

/// A tiny deterministic random source (xorshift), so runs are repeatable
/// without a dependency.
struct Dice(u64);

impl Dice {
    fn new(seed: u64) -> Self {
        Dice(0x9E37_79B9_7F4A_7C15 ^ (seed + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9))
    }

    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

// ---------------------------------------------------------------------------
// Fuzzing clients (`--fuzz`): random bytes, no manners.
// ---------------------------------------------------------------------------

/// What the fuzzers did.
#[derive(Default)]
struct FuzzReport {
    bytes: u64,
    connections: u64,
}

impl FuzzReport {
    fn add(&mut self, other: &FuzzReport) {
        self.bytes += other.bytes;
        self.connections += other.connections;
    }
}

/// Sends random bytes until `until`, connecting again whenever the server
/// cuts it off. Fuzzer 0 never reads its replies (the server must cut it
/// off rather than buffer for it); the others read and discard them.
fn run_fuzzer(n: usize, server: SocketAddr, until: Instant) -> FuzzReport {
    let mute = n == 0;
    let mut dice = Dice::new(1000 + n as u64);
    let mut report = FuzzReport::default();
    let mut replies = [0u8; 4096];
    while Instant::now() < until {
        let Ok(mut stream) = StdTcpStream::connect(server) else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(1)));
        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
        report.connections += 1;
        'connected: while Instant::now() < until {
            match stream.write(&garbage(&mut dice, mute)) {
                Ok(n) => report.bytes += n as u64,
                Err(e) if is_timeout(&e) => {}
                Err(_) => break 'connected, // cut off
            }
            if !mute {
                loop {
                    match stream.read(&mut replies) {
                        Ok(0) => break 'connected,
                        Ok(_) => {}
                        Err(e) if is_timeout(&e) => break,
                        Err(_) => break 'connected,
                    }
                }
            }
            thread::sleep(Duration::from_millis(1 + dice.roll(3)));
        }
    }
    report
}

/// Up to 256 random bytes with newlines among them (each line a task on
/// Main, and an `ERR` reply, mostly); once in a while a line longer than
/// the server accepts. The mute fuzzer sends empty lines, each worth an
/// `ERR` reply it never reads.
fn garbage(dice: &mut Dice, mute: bool) -> Vec<u8> {
    if mute {
        return vec![b'\n'; 512];
    }
    if dice.roll(64) == 0 {
        return vec![b'x'; MAX_INBOX + 1];
    }
    (0..1 + dice.roll(256))
        .map(|_| match dice.roll(16) {
            0 => b'\n',
            _ => dice.roll(256) as u8,
        })
        .collect()
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The process's resident memory, where the OS says (Linux).
fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

fn mebibytes(bytes: Option<u64>) -> String {
    match bytes {
        Some(bytes) => format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
        None => "unknown".to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Command line.
// ---------------------------------------------------------------------------

struct Config {
    clients: usize,
    /// `None`: run until interrupted.
    run_for: Option<Duration>,
    /// Add [`FUZZERS`] clients that send random bytes.
    fuzz: bool,
}

impl Config {
    fn from_args(args: Vec<String>) -> Result<Config, String> {
        let mut config = Config {
            clients: 8,
            run_for: Some(Duration::from_secs(4)),
            fuzz: false,
        };
        let mut forever = false;
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--clients" => {
                    config.clients = value()?
                        .parse()
                        .ok()
                        .filter(|n| (0..=500).contains(n))
                        .ok_or("--clients takes a number in 0..=500")?;
                }
                "--seconds" => {
                    let seconds: f64 = value()?
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e6)
                        .ok_or("--seconds takes a positive number")?;
                    config.run_for = Some(Duration::from_secs_f64(seconds));
                }
                "--run-forever" => forever = true,
                "--fuzz" => {
                    let seconds: f64 = value()?
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e6)
                        .ok_or("--fuzz takes a positive number of seconds")?;
                    config.run_for = Some(Duration::from_secs_f64(seconds));
                    config.fuzz = true;
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if forever {
            if config.fuzz {
                return Err("--fuzz runs for a set time: not with --run-forever".to_owned());
            }
            config.run_for = None;
        }
        Ok(config)
    }
}
