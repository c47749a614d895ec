//! A failed `CalloopHost::insert` hands the source back and leaves the loop
//! usable: the program can go on without the dispatcher, or retry.
//!
//! The failure is made real by lowering the file-descriptor limit so that
//! the wake-up ping (an eventfd) cannot be created. This file holds a single
//! test: the limit is per process.
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;
use std::time::Duration;

use calloop::EventLoop;
use calloop::timer::{TimeoutAction, Timer};
use dispatchers::block_on;
use dispatchers_calloop::CalloopHost;
use rustix::process::{Resource, getrlimit, setrlimit};

#[test]
fn a_failed_insert_leaves_the_loop_usable() {
    let mut event_loop: EventLoop<'static, u32> = EventLoop::try_new().unwrap();
    let handle = event_loop.handle();
    // A source of the program's own, which must keep working.
    handle
        .insert_source(Timer::immediate(), |_, _, fired| {
            *fired += 1;
            TimeoutAction::Drop
        })
        .unwrap();

    // No new file descriptor from here on: the lowest free one is the limit.
    let saved = getrlimit(Resource::Nofile);
    let lowest_free = std::fs::File::open("/dev/null").unwrap().as_raw_fd() as u64;
    setrlimit(
        Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(lowest_free),
            maximum: saved.maximum,
        },
    )
    .unwrap();
    let result = CalloopHost::insert(&handle);
    setrlimit(Resource::Nofile, saved).unwrap();

    let err = result.expect_err("the ping needs a file descriptor");
    // The source comes back, and with it the tasks queued on it.
    let source = err.inserted;
    let queued = source.dispatcher().spawn(async { 1 });

    // The loop still runs the program's own sources.
    let mut fired = 0;
    event_loop
        .dispatch(Duration::from_millis(100), &mut fired)
        .expect("the loop keeps working after a failed insert");
    assert_eq!(fired, 1);

    // And the source can be inserted again once descriptors are available.
    let host = CalloopHost::insert_source(&handle, source).unwrap();
    while !queued.is_finished() {
        event_loop
            .dispatch(Duration::from_secs(1), &mut fired)
            .unwrap();
    }
    assert_eq!(block_on(queued).unwrap(), 1);
    drop(host);
}
