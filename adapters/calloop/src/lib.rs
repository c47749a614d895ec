//! dispatchers-calloop (work in progress).
