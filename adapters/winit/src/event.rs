//! [`HostEvent`], the user-event type of an event loop that hosts Main, and
//! [`UserEventProxy`], which sends the application's own events through it.

use std::fmt;

use winit::event_loop::{EventLoopClosed, EventLoopProxy};

/// The user-event type of a winit event loop that hosts Main: the engine's
/// wake-up, or one of the application's own events.
///
/// Build the loop as `EventLoop<HostEvent<MyEvent>>` (or
/// `EventLoop<HostEvent>` when the application has no events of its own).
/// [`DispatchersApp`](crate::DispatchersApp) consumes [`Wake`](Self::Wake)
/// and hands every [`User`](Self::User) event to the application's
/// [`ApplicationHandler::user_event`](winit::application::ApplicationHandler::user_event)
/// unwrapped, so the application keeps implementing
/// `ApplicationHandler<MyEvent>`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostEvent<T = ()> {
    /// Sent by the host engine when tasks were dispatched to Main or the
    /// loop must come back to work it left over. Coalesced: a burst of
    /// dispatches between two loop iterations sends one.
    Wake,
    /// An event of the application, sent with a [`UserEventProxy`] (or an
    /// `EventLoopProxy<HostEvent<T>>` directly).
    User(T),
}

/// Sends the application's own events to an event loop that hosts Main: the
/// counterpart of `EventLoopProxy<T>` with the same `send_event` signature,
/// so code that held an `EventLoopProxy<MyEvent>` only changes the type name.
///
/// Get one from [`WinitHost::user_proxy`](crate::WinitHost::user_proxy) or
/// [`UserEventProxy::new`]. It is `Send` (and `Sync` where winit's proxy is)
/// when `T` is `Send`.
pub struct UserEventProxy<T: 'static> {
    proxy: EventLoopProxy<HostEvent<T>>,
}

impl<T: 'static> UserEventProxy<T> {
    /// Wraps a proxy of an `EventLoop<HostEvent<T>>`.
    pub fn new(proxy: EventLoopProxy<HostEvent<T>>) -> Self {
        UserEventProxy { proxy }
    }

    /// Sends `event` to the loop, where the application's `user_event`
    /// receives it.
    ///
    /// # Errors
    ///
    /// When the event loop no longer exists; the event is handed back.
    pub fn send_event(&self, event: T) -> Result<(), EventLoopClosed<T>> {
        self.proxy.send_event(HostEvent::User(event)).map_err(
            |EventLoopClosed(event)| match event {
                HostEvent::User(event) => EventLoopClosed(event),
                HostEvent::Wake => unreachable!("send_event hands back the event it was given"),
            },
        )
    }

    /// The wrapped winit proxy.
    pub fn inner(&self) -> &EventLoopProxy<HostEvent<T>> {
        &self.proxy
    }
}

impl<T: 'static> Clone for UserEventProxy<T> {
    fn clone(&self) -> Self {
        UserEventProxy {
            proxy: self.proxy.clone(),
        }
    }
}

impl<T: 'static> fmt::Debug for UserEventProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserEventProxy").finish_non_exhaustive()
    }
}
