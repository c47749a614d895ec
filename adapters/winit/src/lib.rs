//! dispatchers-winit (work in progress).
