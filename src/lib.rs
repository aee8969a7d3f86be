//! `sampler`: a sampling profiler for CPython that reads the interpreter's memory from outside
//! the target process.
//!
//! One sample, in pipeline order (`docs/architecture.md` follows it in detail):
//!
//! 1. [`commands`] wires a user-facing job ([`commands::record`], [`commands::dump`],
//!    [`commands::top`]) from the plain settings in [`config`], which [`cli`] builds from the
//!    command line.
//! 2. [`process`] is the target: attach or launch, read memory ([`process::ReadMemory`];
//!    [`process::recall`] reads what the last sample read in one batch), pause and resume,
//!    list OS threads. [`binary`] finds the interpreter's ELF file in it.
//! 3. [`python`] knows CPython: [`python::Interpreter::attach`] picks the
//!    [`python::layout::Layout`] (offsets from [`python::offsets`] tables and
//!    [`python::debug_offsets`]), then [`python::Interpreter::stacks`] walks
//!    [`python::runtime`] → [`python::frames`] → [`python::code`].
//! 4. [`sampling`] runs the fixed-rate loop ([`sampling::schedule`]) and produces
//!    [`model::Sample`]s, of one process or, with `--subprocesses`, of a process and its
//!    descendants ([`sampling::tree`], over [`process::children`]).
//! 5. [`output`] aggregates them ([`output::collapsed`]) and writes a format
//!    ([`output::flamegraph`]); [`ui`] shows progress. `top` aggregates per function instead
//!    ([`output::functions`]) and shows the table live ([`ui::top`]).
//!
//! Errors are one enum, [`error::Error`], whose [`error::Error::recovery`] tells the loop what to
//! do next.

pub mod binary;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod model;
pub mod output;
pub mod process;
pub mod python;
pub mod sampling;
pub mod ui;
