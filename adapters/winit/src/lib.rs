//! `Dispatchers::main()` on a [winit](https://docs.rs/winit/0.30) 0.30 event
//! loop.
//!
//! Tasks spawned on Main run on the loop's thread between window events;
//! `delay` sleeps on the loop's own timing (`ControlFlow::WaitUntil`, no
//! extra thread); `with_context` hops to a background pool and comes back.
//! An idle loop sleeps until an event arrives: the host never spins.
//!
//! # Changes to an existing application
//!
//! 1. The loop's user-event type `MyEvent` becomes [`HostEvent<MyEvent>`]
//!    (`HostEvent` alone when the application has none); the application
//!    keeps implementing `ApplicationHandler<MyEvent>`.
//! 2. Build the loop with [`WinitHost::build`] (or make the host from a loop
//!    you built with [`WinitHost::new`]), and register it as Main.
//! 3. Run the application through the host: `host.run_app(event_loop, &mut
//!    app)` instead of `event_loop.run_app(&mut app)` (or
//!    `event_loop.run_app(&mut host.wrap(app))`, see [`DispatchersApp`]).
//! 4. Code that sent events with an `EventLoopProxy<MyEvent>` uses a
//!    [`UserEventProxy<MyEvent>`] ([`WinitHost::user_proxy`]), which has the
//!    same `send_event`.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use dispatchers::{delay, spawn_on_main_local};
//! use dispatchers_winit::{HostEvent, UserEventProxy, WinitHost};
//! use winit::application::ApplicationHandler;
//! use winit::event::WindowEvent;
//! use winit::event_loop::{ActiveEventLoop, EventLoop};
//! use winit::window::{Window, WindowId};
//!
//! /// The application's own events, as before.
//! enum MyEvent {
//!     Quit,
//! }
//!
//! struct App {
//!     window: Option<Window>,
//!     proxy: UserEventProxy<MyEvent>, // was EventLoopProxy<MyEvent>
//! }
//!
//! impl ApplicationHandler<MyEvent> for App {
//!     fn resumed(&mut self, event_loop: &ActiveEventLoop) {
//!         let window = event_loop
//!             .create_window(Window::default_attributes().with_title("ticking"))
//!             .expect("cannot create the window");
//!         let id = window.id();
//!         self.window = Some(window);
//!         // A task on Main (the loop's thread): it may hold !Send UI state.
//!         let proxy = self.proxy.clone();
//!         spawn_on_main_local(async move {
//!             for second in 1..=3 {
//!                 delay(Duration::from_secs(1)).await;
//!                 println!("{id:?}: {second} s");
//!             }
//!             let _ = proxy.send_event(MyEvent::Quit);
//!         })
//!         .detach();
//!     }
//!
//!     fn user_event(&mut self, event_loop: &ActiveEventLoop, event: MyEvent) {
//!         match event {
//!             MyEvent::Quit => event_loop.exit(),
//!         }
//!     }
//!
//!     fn window_event(&mut self, event_loop: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
//!         if let WindowEvent::CloseRequested = event {
//!             event_loop.exit();
//!         }
//!     }
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Fails, with a hint to set DISPLAY or use Xvfb, when there is no display.
//!     let (event_loop, host) = WinitHost::build(&mut EventLoop::<HostEvent<MyEvent>>::with_user_event())?;
//!     host.register_as_main()?; // load_priority 100
//!     let app = App { window: None, proxy: host.user_proxy() };
//!     host.run_app(event_loop, app)?;
//!     Ok(())
//! }
//! ```
//!
//! # Main
//!
//! [`WinitHost::register_as_main`] registers a [`WinitFactory`] with
//! [`DEFAULT_LOAD_PRIORITY`] (100), above the mio and calloop adapters (50):
//! a GUI owns the process's real main thread. Change it with
//! [`WinitHost::with_load_priority`]. When the loop could not be built (no
//! display), the factory fails with that reason and a hint, and Main falls
//! back to the next factory, or to the missing-Main message.
//!
//! # One loop per process
//!
//! winit allows one event loop per process (a second `build` fails), and a
//! loop serves one [`WinitHost`]. On X11 a loop built off the main thread
//! needs `EventLoopBuilderExtX11::with_any_thread(true)`: [`WinitHost::build`]
//! returns winit's panic about it as an error.
//!
//! # Fairness
//!
//! Main gets one [`Budget`](dispatchers::Budget) of work per loop iteration
//! ([`DEFAULT_BUDGET`]: 4 ms); the loop delivers the window and device events
//! that arrived meanwhile before Main runs again.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod app;
mod error;
mod event;
mod factory;
mod host;

pub use app::DispatchersApp;
pub use error::WinitError;
pub use event::{HostEvent, UserEventProxy};
pub use factory::{DEFAULT_LOAD_PRIORITY, WinitFactory};
pub use host::{DEFAULT_BUDGET, WinitHost};
