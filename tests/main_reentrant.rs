//! A factory that reads `Dispatchers::main()` inside `create_dispatcher` gets
//! an answer (the missing dispatcher, saying why) instead of a deadlock.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dispatchers::{
    Dispatchers, LoopHost, MainDispatcher, MainDispatcherFactory, register_main_factory,
};

struct Curious {
    saw_missing: Arc<AtomicBool>,
}

impl MainDispatcherFactory for Curious {
    fn load_priority(&self) -> i32 {
        10
    }

    fn create_dispatcher(
        &self,
        _all: &[Arc<dyn MainDispatcherFactory>],
    ) -> Result<MainDispatcher, Box<dyn Error + Send + Sync>> {
        let main = Dispatchers::main();
        self.saw_missing.store(main.is_missing(), Ordering::SeqCst);
        Err("depends on Main".into())
    }
}

#[test]
fn reading_main_inside_a_factory_does_not_deadlock() {
    let host = LoopHost::new("fallback");
    host.register_as_main(0).unwrap();
    let saw_missing = Arc::new(AtomicBool::new(false));
    register_main_factory(Arc::new(Curious {
        saw_missing: saw_missing.clone(),
    }))
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tx.send(Dispatchers::main().name().to_owned()).unwrap();
    });
    let selected = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("selection deadlocked");
    assert_eq!(selected, "fallback");
    assert!(saw_missing.load(Ordering::SeqCst));
}
