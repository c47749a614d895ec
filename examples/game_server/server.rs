//! The mio loop: network I/O, tasks, ticks.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dispatchers::{Budget, spawn_on_main_local};
use dispatchers_mio::MioHost;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::game::{PlayerId, Shared, handle_line};
use super::{LISTENER, MAX_INBOX, TICK};

/// Print a stats line every this many ticks (once a second).
const REPORT_EVERY: u64 = 20;
/// How long tasks may run in one loop turn, so sockets and ticks are never
/// starved; what is left runs on the next turn.
const TASK_BUDGET: Duration = Duration::from_millis(10);
/// The most lines of one client that become tasks in one loop turn.
const LINES_PER_TURN: usize = 64;
/// A client whose unsent replies pile up past this (it does not read them)
/// is disconnected.
const MAX_OUTBOX: usize = 64 * 1024;

/// The mio loop. It owns the sockets; the game state is shared with the tasks.
pub(super) struct Server {
    poll: Poll,
    events: Events,
    host: MioHost,
    pub(super) listener: TcpListener,
    pub(super) conns: HashMap<Token, Conn>,
    /// Connections with input left over from the last turn.
    read_again: Vec<Token>,
    next_token: usize,
    game: Shared,
    pub(super) tick: u64,
    next_tick: Instant,
    /// Since the last stats line.
    interval: Interval,
    pub(super) max_late_ever: Duration,
    /// Connections closed for a line longer than [`MAX_INBOX`].
    pub(super) cut_long_lines: u64,
    /// Connections closed for not reading their replies ([`MAX_OUTBOX`]).
    pub(super) cut_slow_readers: u64,
    /// The most bytes one connection had waiting (in and out) after a turn.
    pub(super) max_backlog: usize,
}

/// One client's socket and its unread/unwritten bytes.
pub(super) struct Conn {
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
    pub(super) fn bind(poll: Poll, host: MioHost, game: Shared) -> io::Result<Server> {
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
    pub(super) fn turn(&mut self) -> io::Result<()> {
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

pub(super) fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
