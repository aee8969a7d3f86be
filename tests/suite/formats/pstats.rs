//! The pstats format (tests to come).
