//! The integration-test crate: live tests against every interpreter of the matrix, CLI tests
//! of the built binary, replay tests over recorded snapshots, checks of the offset tables, and
//! the `top` view in a real terminal (tmux).

mod cli;
mod formats;
mod live;
mod offsets;
mod replay;
mod subprocesses;
#[allow(dead_code)]
mod support;
mod top;
