//! The game server example fed random bytes: its `--fuzz` mode adds clients
//! that send garbage (random bytes, endless lines, a client that never reads)
//! beside the well-behaved simulated clients, then checks that each of those
//! got every reply it expected and that the process's memory stayed bounded.
//!
//! The example is compiled into this test as a module, so the test needs no
//! prebuilt binary. One test: it registers the server's loop as Main.

#[path = "../examples/game_server/main.rs"]
#[allow(dead_code)]
mod game_server;

use std::sync::mpsc;
use std::time::Duration;

#[test]
fn ten_seconds_of_random_bytes_leave_every_client_served() {
    let (done, finished) = mpsc::channel();
    let server = std::thread::Builder::new()
        .name("game-server".into())
        .spawn(move || {
            let served = game_server::run_with_args(vec!["--fuzz".into(), "10".into()])
                .map_err(|e| e.to_string());
            let _ = done.send(());
            served
        })
        .unwrap();
    // 10 s of fuzzing, then the clients' goodbyes and the final save.
    if finished.recv_timeout(Duration::from_secs(180)).is_err() {
        eprintln!("watchdog: the fuzzed game server did not finish within 180 s");
        std::process::exit(101);
    }
    let served = server.join().expect("the server panicked");
    assert_eq!(served, Ok(true), "a well-behaved client was not served");
}
