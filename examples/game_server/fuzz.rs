//! Fuzzing clients (`--fuzz`): random bytes, no manners.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::MAX_INBOX;
use super::clients::Dice;

/// What the fuzzers did.
#[derive(Default)]
pub(super) struct FuzzReport {
    pub(super) bytes: u64,
    pub(super) connections: u64,
}

impl FuzzReport {
    pub(super) fn add(&mut self, other: &FuzzReport) {
        self.bytes += other.bytes;
        self.connections += other.connections;
    }
}

/// Sends random bytes until `until`, connecting again whenever the server
/// cuts it off. Fuzzer 0 never reads its replies (the server must cut it
/// off rather than buffer for it); the others read and discard them.
pub(super) fn run_fuzzer(n: usize, server: SocketAddr, until: Instant) -> FuzzReport {
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
pub(super) fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

pub(super) fn mebibytes(bytes: Option<u64>) -> String {
    match bytes {
        Some(bytes) => format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
        None => "unknown".to_owned(),
    }
}
