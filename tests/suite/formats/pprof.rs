//! The pprof format (tests to come).
