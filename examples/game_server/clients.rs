//! Simulated clients: plain blocking sockets on threads of their own.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::MAX_LINE;

/// Simulated clients give up on a server silent for this long.
const CLIENT_IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What one client saw.
#[derive(Default)]
pub(super) struct ClientReport {
    pub(super) ok: u64,
    pub(super) rejected: u64,
    pub(super) events: u64,
}

impl ClientReport {
    pub(super) fn add(&mut self, other: &ClientReport) {
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
pub(super) fn run_client(
    n: usize,
    server: SocketAddr,
    until: Option<Instant>,
) -> io::Result<ClientReport> {
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
pub(super) struct Dice(u64);

impl Dice {
    pub(super) fn new(seed: u64) -> Self {
        Dice(0x9E37_79B9_7F4A_7C15 ^ (seed + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9))
    }

    pub(super) fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}
