//! dispatchers-mio (work in progress).
