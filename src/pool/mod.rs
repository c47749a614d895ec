//! Background pools and limited views.

use std::num::NonZeroUsize;

use crate::dispatch::Dispatcher;

pub(crate) fn limited_view(_inner: Dispatcher, _n: NonZeroUsize) -> Dispatcher {
    todo!("limited view")
}
