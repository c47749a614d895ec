//! A `!Send` task that holds a value and waits forever: cancelled, it drops
//! the value (a guard whose destructor does something) on its own thread.

use dispatchers::{Dispatcher, Task};

/// Spawns on `on`, from the thread it runs its tasks on, a `!Send` task that
/// holds `held` and never completes.
pub fn spawn_local_holding<T: 'static>(on: &Dispatcher, held: T) -> Task<()> {
    on.spawn_local(async move {
        let _not_send = std::rc::Rc::new(());
        let _held = held;
        std::future::pending::<()>().await
    })
}
