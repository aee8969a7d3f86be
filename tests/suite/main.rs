//! The integration-test crate: live tests against every interpreter of the matrix, CLI tests
//! of the built binary, replay tests over recorded snapshots, and checks of the offset tables.

mod cli;
mod live;
mod offsets;
mod replay;
mod subprocesses;
#[allow(dead_code)]
mod support;
