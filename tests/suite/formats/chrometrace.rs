//! The chrometrace format (tests to come).
