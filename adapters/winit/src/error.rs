//! [`WinitError`]: why a [`WinitHost`](crate::WinitHost) could not be made.

use std::error::Error;
use std::fmt;

use winit::error::EventLoopError;

/// What a user can do when the event loop cannot reach a display.
const DISPLAY_HINT: &str = "set DISPLAY to a running X server (or WAYLAND_DISPLAY \
     when winit's `wayland` feature is on), or run under a virtual one: `xvfb-run -a <command>` \
     (Debian/Ubuntu: apt-get install xvfb xauth)";

/// What a user can do after a second attempt to build an event loop.
const RECREATION_HINT: &str = "winit allows one event loop per process: build it once, at \
     start-up, and make its WinitHost from it";

/// What a user can do when the loop is built off the main thread.
const THREAD_HINT: &str = "build the event loop on the main thread, or allow another thread \
     with `winit::platform::x11::EventLoopBuilderExtX11::with_any_thread(true)` (Wayland: \
     `EventLoopBuilderExtWayland`)";

/// Why a [`WinitHost`](crate::WinitHost) could not be made.
///
/// Its `Display` ends with what to do about it (the same text as
/// [`hint`](Self::hint)).
#[derive(Debug)]
#[non_exhaustive]
pub enum WinitError {
    /// winit could not build the event loop: no display server reachable
    /// (`DISPLAY` unset, X server gone), or a second event loop in this
    /// process.
    EventLoop(EventLoopError),
    /// winit panicked while building the event loop (it does when the loop
    /// is built off the main thread without `with_any_thread(true)`); the
    /// panic was caught, this is its message.
    EventLoopPanicked(String),
    /// A [`WinitHost`](crate::WinitHost) is already alive in this process.
    /// winit allows one event loop per process, and a loop serves one host:
    /// tasks of a second host would never run.
    HostExists,
}

impl WinitError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            WinitError::EventLoop(EventLoopError::RecreationAttempt) => Some(RECREATION_HINT),
            WinitError::EventLoop(EventLoopError::Os(_) | EventLoopError::NotSupported(_)) => {
                Some(DISPLAY_HINT)
            }
            WinitError::EventLoop(_) => None,
            WinitError::EventLoopPanicked(_) => Some(THREAD_HINT),
            WinitError::HostExists => Some(
                "keep the WinitHost you made (or get its dispatcher with \
                 WinitHost::dispatcher); drop it before making another",
            ),
        }
    }

    /// The error without the hint.
    pub(crate) fn reason(&self) -> String {
        match self {
            WinitError::EventLoop(error) => format!("cannot build the winit event loop: {error}"),
            WinitError::EventLoopPanicked(message) => {
                format!("winit panicked building the event loop: {message}")
            }
            WinitError::HostExists => String::from("a WinitHost is already alive in this process"),
        }
    }
}

impl fmt::Display for WinitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())?;
        if let Some(hint) = self.hint() {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl Error for WinitError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            WinitError::EventLoop(error) => Some(error),
            _ => None,
        }
    }
}
