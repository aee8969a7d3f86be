//! The summary format (tests to come).
