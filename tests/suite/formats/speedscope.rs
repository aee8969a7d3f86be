//! The speedscope format (tests to come).
