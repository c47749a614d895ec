//! The game: state on Main, commands as tasks on Main.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use dispatchers::{Dispatcher, Dispatchers, delay, with_context};

use super::MAX_LINE;

const ARENA: i32 = 16;
const RESPAWN_AFTER: Duration = Duration::from_millis(300);
const AUTOSAVE_EVERY: Duration = Duration::from_secs(1);

pub(super) type PlayerId = u64;

/// The game state. It lives on the loop's thread (Main) only, so the tasks
/// share it through an `Rc<RefCell<..>>`. A task never holds a borrow across
/// an `.await`: between two awaits it has the state to itself.
pub(super) type Shared = Rc<RefCell<Game>>;

pub(super) struct Game {
    pub(super) players: BTreeMap<PlayerId, Player>,
    /// Final scores of the players who left.
    departed: Vec<(String, u64)>,
    next_player: PlayerId,
    storage: Dispatcher,
    save_path: PathBuf,
    saves_started: u64,
    /// Commands handled (each got an `OK` reply).
    pub(super) commands: u64,
    /// Lines answered with `ERR`.
    pub(super) rejected: u64,
    pub(super) saves: u64,
}

pub(super) struct Player {
    name: String,
    x: i32,
    y: i32,
    score: u64,
    /// Lines waiting for the socket (the loop writes them after the tasks ran).
    pub(super) outbox: String,
    pub(super) quitting: bool,
}

impl Game {
    pub(super) fn new(storage: Dispatcher, save_path: PathBuf) -> Self {
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

    pub(super) fn join(&mut self) -> PlayerId {
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

    pub(super) fn leave(&mut self, id: PlayerId) {
        if let Some(player) = self.players.remove(&id) {
            self.broadcast(id, &format!("EVENT {} left", player.name));
            self.departed.push((player.name, player.score));
        }
    }

    pub(super) fn quit(&mut self, id: PlayerId) {
        if let Some(player) = self.players.get_mut(&id) {
            player.quitting = true;
        }
    }

    /// Queues a line for `id` (a no-op if the player has left meanwhile).
    pub(super) fn reply(&mut self, id: PlayerId, line: &str) {
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
    pub(super) fn tick(&mut self) {
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
pub(super) async fn handle_line(game: Shared, id: PlayerId, line: Vec<u8>) {
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
pub(super) async fn save_world(game: &Shared) -> io::Result<usize> {
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
        // the last whole save on disk even if the process dies mid-write.
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
pub(super) async fn autosave(game: Shared) {
    loop {
        delay(AUTOSAVE_EVERY).await;
        if let Err(error) = save_world(&game).await {
            eprintln!("autosave failed: {error}");
        }
    }
}
