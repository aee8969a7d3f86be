//! The diff format (tests to come).
