//! [`DispatchersApp`]: an `ApplicationHandler` that runs Main's tasks and
//! timers around the application's own callbacks.

use std::fmt;
use std::time::Instant;

use winit::application::ApplicationHandler;
use winit::event::{DeviceEvent, DeviceId, StartCause, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow};
use winit::window::WindowId;

use crate::event::HostEvent;
use crate::host::WinitHost;

/// Runs an application (`A: ApplicationHandler<T>`) on an
/// `EventLoop<HostEvent<T>>`, with Main's tasks and timers alongside.
///
/// Every callback goes to the application unchanged, [`HostEvent::User`]
/// events unwrapped to its `user_event`. Around them:
///
/// - **When Main runs.** On [`HostEvent::Wake`] (tasks were dispatched) and
///   in `about_to_wait` (before the application's own `about_to_wait`) when
///   tasks are queued or a `delay` is due. At most one
///   [budget](WinitHost::with_budget) of work per loop iteration: what is
///   left runs in the next iteration, after the window and device events
///   that arrived meanwhile, so input is never starved.
/// - **How long the loop sleeps.** At the end of `about_to_wait`, the
///   control flow becomes the earlier of the application's own and Main's:
///   `Poll` while tasks are queued, `WaitUntil` the next `delay`'s
///   deadline, else `Wait`. Idle, the loop sleeps until an event comes.
///   The application's control flow is put back at the start of each
///   iteration (`new_events`), so `event_loop.control_flow()` shows the
///   application what it set itself, and so is the `StartCause` it
///   receives: a wake-up for Main (a `delay`'s deadline, queued tasks)
///   reaches it as `WaitCancelled` with its own `requested_resume`, never as
///   `ResumeTimeReached` or `Poll` it did not ask for. A run that exits
///   (`run_app_on_demand`, or a `pump_app_events` that returns
///   `PumpStatus::Exit`) ends with the application's flow back on the loop
///   (in `exiting`, before the application's own), and a flow set on the
///   event loop between two runs is the application's and is kept. Between
///   two `pump_app_events` that do not exit, the loop still holds the
///   combined flow: one set there is kept when it differs from it (the same
///   value cannot be told apart, and is taken for the combined one).
/// - **Exit.** After the application's `exiting`, the engine shuts down
///   (unless [`WinitHost::with_shutdown_on_exit`] said otherwise): queued
///   and sleeping tasks are cancelled, later dispatches rejected.
pub struct DispatchersApp<A, T: 'static = ()> {
    host: WinitHost<T>,
    app: A,
    /// Main ran its budget in this loop iteration.
    ran_this_iteration: bool,
    /// The control flow the application set, once known.
    app_flow: Option<ControlFlow>,
    /// The control flow `about_to_wait` left the loop with (the earlier of
    /// the application's and Main's): if the loop still shows it in the next
    /// `new_events`, nobody changed it meanwhile.
    combined_flow: Option<ControlFlow>,
}

impl<A: ApplicationHandler<T>, T: 'static> DispatchersApp<A, T> {
    /// Wraps `app`; same as [`WinitHost::wrap`].
    pub fn new(host: WinitHost<T>, app: A) -> Self {
        DispatchersApp {
            host,
            app,
            ran_this_iteration: false,
            app_flow: None,
            combined_flow: None,
        }
    }
}

impl<A, T: 'static> DispatchersApp<A, T> {
    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, mutably.
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// The host.
    pub fn host(&self) -> &WinitHost<T> {
        &self.host
    }

    /// The host and the application.
    pub fn into_parts(self) -> (WinitHost<T>, A) {
        (self.host, self.app)
    }

    /// Runs one budget of Main's work, unless this iteration had it already.
    fn run_main(&mut self) {
        if !self.ran_this_iteration {
            self.ran_this_iteration = true;
            self.host.engine().run_pending(self.host.budget());
        }
    }
}

impl<A: ApplicationHandler<T>, T: 'static> ApplicationHandler<HostEvent<T>>
    for DispatchersApp<A, T>
{
    fn new_events(&mut self, event_loop: &ActiveEventLoop, cause: StartCause) {
        self.ran_this_iteration = false;
        let mut cause = cause;
        match (self.app_flow, self.combined_flow.take()) {
            // The loop slept on the combined flow: give the application its
            // own flow back, and the cause as its own flow would have had it.
            (Some(app), Some(combined)) if event_loop.control_flow() == combined => {
                event_loop.set_control_flow(app);
                cause = app_cause(cause, app, Instant::now());
            }
            // The first iteration, or the flow was set between two runs
            // (`run_app_on_demand`): it is the application's.
            _ => self.app_flow = Some(event_loop.control_flow()),
        }
        self.app.new_events(event_loop, cause);
    }

    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        self.app.resumed(event_loop);
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: HostEvent<T>) {
        match event {
            HostEvent::Wake => self.run_main(),
            HostEvent::User(event) => self.app.user_event(event_loop, event),
        }
    }

    fn window_event(
        &mut self,
        event_loop: &ActiveEventLoop,
        window_id: WindowId,
        event: WindowEvent,
    ) {
        self.app.window_event(event_loop, window_id, event);
    }

    fn device_event(
        &mut self,
        event_loop: &ActiveEventLoop,
        device_id: DeviceId,
        event: DeviceEvent,
    ) {
        self.app.device_event(event_loop, device_id, event);
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        if self.host.is_due(Instant::now()) {
            self.run_main();
        }
        self.app.about_to_wait(event_loop);
        let app_flow = event_loop.control_flow();
        self.app_flow = Some(app_flow);
        let combined = earliest(app_flow, self.host.control_flow());
        self.combined_flow = Some(combined);
        event_loop.set_control_flow(combined);
    }

    fn suspended(&mut self, event_loop: &ActiveEventLoop) {
        self.app.suspended(event_loop);
    }

    fn exiting(&mut self, event_loop: &ActiveEventLoop) {
        // The run ends: the loop shows the application's flow again, and
        // whatever it holds at the next run's start is the application's,
        // even a flow equal to the combined one it was left with.
        if let (Some(app), Some(_)) = (self.app_flow, self.combined_flow.take()) {
            event_loop.set_control_flow(app);
        }
        self.app.exiting(event_loop);
        if self.host.shutdown_on_exit() {
            self.host.engine().shutdown();
        }
    }

    fn memory_warning(&mut self, event_loop: &ActiveEventLoop) {
        self.app.memory_warning(event_loop);
    }
}

impl<A: fmt::Debug, T: 'static> fmt::Debug for DispatchersApp<A, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatchersApp")
            .field("host", &self.host)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

/// What woke the loop, as the application's own control flow `app` would
/// have had it: a wake-up that came early for Main's sake is a cancelled
/// wait, not the application's timer or its `Poll`. As winit does, whether
/// the application's deadline was reached is decided with `now` (a cause's
/// `start` is when the wait began).
fn app_cause(cause: StartCause, app: ControlFlow, now: Instant) -> StartCause {
    let start = match cause {
        StartCause::Init => return cause,
        StartCause::ResumeTimeReached { start, .. } | StartCause::WaitCancelled { start, .. } => {
            start
        }
        StartCause::Poll => now,
    };
    match app {
        ControlFlow::Poll => StartCause::Poll,
        ControlFlow::WaitUntil(resume) if now >= resume => StartCause::ResumeTimeReached {
            start,
            requested_resume: resume,
        },
        ControlFlow::WaitUntil(resume) => StartCause::WaitCancelled {
            start,
            requested_resume: Some(resume),
        },
        ControlFlow::Wait => StartCause::WaitCancelled {
            start,
            requested_resume: None,
        },
    }
}

/// The control flow that wakes the loop at the earlier of `a` and `b`.
fn earliest(a: ControlFlow, b: ControlFlow) -> ControlFlow {
    use ControlFlow::{Poll, Wait, WaitUntil};
    match (a, b) {
        (Poll, _) | (_, Poll) => Poll,
        (WaitUntil(x), WaitUntil(y)) => WaitUntil(x.min(y)),
        (WaitUntil(t), Wait) | (Wait, WaitUntil(t)) => WaitUntil(t),
        (Wait, Wait) => Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_wakes_at_the_first_deadline() {
        use ControlFlow::{Poll, Wait, WaitUntil};
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        assert_eq!(earliest(Wait, Wait), Wait);
        assert_eq!(earliest(Wait, WaitUntil(now)), WaitUntil(now));
        assert_eq!(earliest(WaitUntil(later), Wait), WaitUntil(later));
        assert_eq!(earliest(WaitUntil(later), WaitUntil(now)), WaitUntil(now));
        assert_eq!(earliest(WaitUntil(now), WaitUntil(later)), WaitUntil(now));
        assert_eq!(earliest(Poll, WaitUntil(now)), Poll);
        assert_eq!(earliest(Wait, Poll), Poll);
    }

    #[test]
    fn a_wake_up_for_main_is_a_cancelled_wait_to_the_application() {
        // As winit reports them: `start` is when the wait began.
        let began = Instant::now();
        let mine = began + Duration::from_secs(10);
        let mains = began + Duration::from_millis(5);
        let woke = mains + Duration::from_micros(50);
        // Main's deadline came first: not the application's timer.
        let cause = StartCause::ResumeTimeReached {
            start: began,
            requested_resume: mains,
        };
        assert_eq!(
            app_cause(cause, ControlFlow::WaitUntil(mine), woke),
            StartCause::WaitCancelled {
                start: began,
                requested_resume: Some(mine)
            }
        );
        assert_eq!(
            app_cause(cause, ControlFlow::Wait, woke),
            StartCause::WaitCancelled {
                start: began,
                requested_resume: None
            }
        );
        // The application's own deadline, reached: its timer, although the
        // wait began before it.
        let own = StartCause::ResumeTimeReached {
            start: began,
            requested_resume: mine,
        };
        let at_mine = mine + Duration::from_micros(50);
        assert_eq!(app_cause(own, ControlFlow::WaitUntil(mine), at_mine), own);
        // Main woke the loop after the application's deadline had passed too.
        let late = StartCause::ResumeTimeReached {
            start: began,
            requested_resume: mains,
        };
        assert_eq!(
            app_cause(late, ControlFlow::WaitUntil(mains), woke),
            StartCause::ResumeTimeReached {
                start: began,
                requested_resume: mains
            }
        );
        let now = woke;
        // Main's Poll (tasks queued) while the application waits.
        assert_eq!(
            app_cause(StartCause::Poll, ControlFlow::Wait, now),
            StartCause::WaitCancelled {
                start: now,
                requested_resume: None
            }
        );
        // The application's own Poll is its own; Main's Poll after the
        // application's deadline is its timer.
        assert_eq!(
            app_cause(StartCause::Poll, ControlFlow::WaitUntil(now), now),
            StartCause::ResumeTimeReached {
                start: now,
                requested_resume: now
            }
        );
        assert_eq!(
            app_cause(StartCause::Poll, ControlFlow::Poll, now),
            StartCause::Poll
        );
        // An event that cut the wait short shows the application's deadline.
        let event = StartCause::WaitCancelled {
            start: began,
            requested_resume: Some(mains),
        };
        assert_eq!(
            app_cause(event, ControlFlow::WaitUntil(mine), now),
            StartCause::WaitCancelled {
                start: began,
                requested_resume: Some(mine)
            }
        );
        assert_eq!(
            app_cause(StartCause::Init, ControlFlow::Wait, now),
            StartCause::Init
        );
    }
}
