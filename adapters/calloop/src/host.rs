//! [`CalloopHost`]: the handle a program keeps after inserting the Main
//! dispatcher's event source into its calloop loop.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use calloop::{
    EventSource, InsertError, LoopHandle, Poll, PostAction, Readiness, RegistrationToken, Token,
    TokenFactory,
};
use dispatchers::{HostFactory, MainDispatcher, RegisterError, register_main_factory};

use crate::source::{HostSource, loop_id};

/// The `load_priority` of [`CalloopHost::register_as_main`]: above a plain
/// [`LoopHost`](dispatchers::LoopHost) registered with 0, so an app that has
/// a calloop loop gets it as Main unless it asks otherwise.
pub const DEFAULT_LOAD_PRIORITY: i32 = 50;

/// A calloop loop's Main dispatcher: the handle of the [`HostSource`]
/// inserted into the loop.
///
/// The engine lives inside the source, owned by the loop. Dropping this
/// handle does **not** remove the source (like calloop's
/// [`RegistrationToken`]); the engine shuts down when the source leaves the
/// loop: [`remove`](Self::remove), `LoopHandle::remove(host.token())`, or the
/// loop dropped. From then on queued tasks and tasks waiting on the loop's
/// timers are cancelled, and later dispatches are rejected: their `Task`
/// resolves to a cancelled `JoinError`.
///
/// ```
/// use calloop::EventLoop;
/// use dispatchers_calloop::CalloopHost;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let event_loop: EventLoop<()> = EventLoop::try_new()?;
/// let host = CalloopHost::insert(&event_loop.handle())?;
/// let main = host.dispatcher(); // Send + Sync: hand it to other threads
/// # drop(main);
/// # Ok(())
/// # }
/// ```
pub struct CalloopHost {
    token: RegistrationToken,
    main: MainDispatcher,
    wakes: Arc<AtomicU64>,
    /// The loop the source is registered with (see `source::loop_id`).
    loop_id: Arc<AtomicUsize>,
}

impl CalloopHost {
    /// Inserts a [`HostSource`] named `"calloop"` with the default budget
    /// into the loop of `handle`. Call it on the loop's thread.
    ///
    /// # Errors
    ///
    /// When the wake-up ping (an eventfd) cannot be created, out of file
    /// descriptors: the loop is left as it was, and the error hands the
    /// source back (with the tasks already queued on it) to insert again
    /// later. Or when calloop cannot register the source (an `epoll_ctl`
    /// failure); calloop 0.14 then leaves the loop unusable.
    /// The source is `!Send`, and so is the error: where an error must be
    /// `Send` (`anyhow`, `Box<dyn Error + Send + Sync>`), keep its
    /// `calloop::Error` (`err.error`, or `calloop::Error::from(err)`).
    pub fn insert<Data>(handle: &LoopHandle<'_, Data>) -> Result<Self, InsertError<HostSource>> {
        Self::insert_source(handle, HostSource::new("calloop"))
    }

    /// Inserts `source` (built with a name or budget of your own) into the
    /// loop of `handle`.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert): the error hands `source` back.
    pub fn insert_source<Data>(
        handle: &LoopHandle<'_, Data>,
        mut source: HostSource,
    ) -> Result<Self, InsertError<HostSource>> {
        // The ping first: a registration that fails inside calloop leaves
        // the loop broken (see `HostSource::prepare`); this leaves it as it was.
        if let Err(error) = source.prepare() {
            return Err(InsertError {
                inserted: source,
                error: error.into(),
            });
        }
        let main = source.dispatcher();
        let wakes = source.wake_counter();
        let loop_id = source.loop_id();
        let token = handle.insert_source(source, |_report, &mut (), _data| {})?;
        Ok(CalloopHost {
            token,
            main,
            wakes,
            loop_id,
        })
    }

    /// The loop's Main dispatcher (with its `immediate` view).
    pub fn dispatcher(&self) -> MainDispatcher {
        self.main.clone()
    }

    /// Registers this loop as a source of `Dispatchers::main()` with the
    /// documented default `load_priority` [`DEFAULT_LOAD_PRIORITY`] (50).
    /// Call it at start-up, before the first use of Main.
    ///
    /// # Errors
    ///
    /// [`RegisterError::AlreadySelected`] when Main was already selected.
    pub fn register_as_main(&self) -> Result<(), RegisterError> {
        self.register_as_main_with_priority(DEFAULT_LOAD_PRIORITY)
    }

    /// Registers this loop as a source of `Dispatchers::main()` with
    /// `load_priority` `priority` (higher wins; equal priorities in
    /// registration order).
    ///
    /// # Errors
    ///
    /// [`RegisterError::AlreadySelected`] when Main was already selected.
    pub fn register_as_main_with_priority(&self, priority: i32) -> Result<(), RegisterError> {
        register_main_factory(Arc::new(HostFactory::new(
            self.main.name(),
            priority,
            self.main.clone(),
        )))
    }

    /// The source's token in the loop. `LoopHandle::disable` pauses the
    /// dispatcher (tasks wait in the queue; `delay`s don't fire) and `enable`
    /// resumes it; `LoopHandle::remove` shuts it down, as
    /// [`remove`](Self::remove) does. Avoid `LoopHandle::update`: calloop
    /// 0.14 adds the source to its list of `before_sleep` hooks again on each
    /// re-registration (harmless here, but each one costs a call per
    /// iteration).
    pub fn token(&self) -> RegistrationToken {
        self.token
    }

    /// How many times the engine woke the loop (pinged). Dispatches are
    /// coalesced: a burst between two loop iterations costs one.
    pub fn host_wakes(&self) -> u64 {
        self.wakes.load(Ordering::Relaxed)
    }

    /// Removes the source from the loop of `handle` (the loop it was inserted
    /// into), which shuts the engine down. From inside a task running on this
    /// loop, the engine shuts down once the current iteration leaves the
    /// source. Nothing to do when the source has already left its loop (the
    /// loop dropped, or the source removed through its token).
    ///
    /// # Panics
    ///
    /// When `handle` belongs to another loop: calloop would remove whatever
    /// source of that loop has the same token (tokens are slot numbers), and
    /// leave this one running.
    pub fn remove<Data>(self, handle: &LoopHandle<'_, Data>) {
        let registered = self.loop_id.load(Ordering::Relaxed);
        if registered == 0 {
            return;
        }
        assert!(
            loop_id_of(handle) == Some(registered),
            "CalloopHost::remove: `handle` belongs to another loop than the one the \
             dispatcher '{}' was inserted into; pass a handle of that loop \
             (nothing was removed)",
            self.main.name()
        );
        handle.remove(self.token);
    }
}

/// The identity (`source::loop_id`) of the loop of `handle`, learnt by
/// inserting a source that only records it, and removing it at once; `None`
/// if calloop refuses the insertion.
fn loop_id_of<Data>(handle: &LoopHandle<'_, Data>) -> Option<usize> {
    let seen = Rc::new(Cell::new(None));
    let token = handle
        .insert_source(LoopProbe(seen.clone()), |(), &mut (), _| {})
        .ok()?;
    handle.remove(token);
    seen.get()
}

/// An event source with nothing to wait for: it records the identity of the
/// loop it is registered with.
struct LoopProbe(Rc<Cell<Option<usize>>>);

impl EventSource for LoopProbe {
    type Event = ();
    type Metadata = ();
    type Ret = ();
    type Error = std::io::Error;

    fn process_events<F>(
        &mut self,
        _readiness: Readiness,
        _token: Token,
        _callback: F,
    ) -> Result<PostAction, Self::Error>
    where
        F: FnMut((), &mut ()),
    {
        Ok(PostAction::Continue)
    }

    fn register(&mut self, poll: &mut Poll, _tokens: &mut TokenFactory) -> calloop::Result<()> {
        self.0.set(Some(loop_id(poll)));
        Ok(())
    }

    fn reregister(&mut self, poll: &mut Poll, tokens: &mut TokenFactory) -> calloop::Result<()> {
        self.register(poll, tokens)
    }

    fn unregister(&mut self, _poll: &mut Poll) -> calloop::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for CalloopHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CalloopHost")
            .field("name", &self.main.name())
            .field("token", &self.token)
            .field("host_wakes", &self.host_wakes())
            .finish()
    }
}
