//! Plain settings for each command, built by `cli.rs` and read by `commands/`. No clap types.

use std::path::PathBuf;
use std::time::Duration;

use crate::output::{Format, FrameStyle};

/// What to profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A running process.
    Pid(u32),
    /// A command we launch: program and arguments, verbatim.
    Command(Vec<String>),
}

/// Settings of `sampler record`.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// What to profile.
    pub target: Target,
    /// Samples per second.
    pub rate_hz: f64,
    /// How long to sample (None: until the target exits or Ctrl-C).
    pub duration: Option<Duration>,
    /// Where to write (None: a name from the program and the time).
    pub output: Option<PathBuf>,
    /// The output format.
    pub format: Format,
    /// How frames are written.
    pub style: FrameStyle,
    /// Keep idle threads.
    pub include_idle: bool,
    /// Keep only the thread holding the GIL.
    pub gil_only: bool,
    /// Do not pause the target.
    pub nonblocking: bool,
    /// Keep file names whole.
    pub full_filenames: bool,
    /// Root each stack at its thread.
    pub threads: bool,
    /// Follow the target's descendants too, each stack rooted at its process.
    pub subprocesses: bool,
}

/// Settings of `sampler dump`.
#[derive(Debug, Clone)]
pub struct DumpConfig {
    /// The process to dump.
    pub pid: u32,
    /// Print JSON instead of text.
    pub json: bool,
    /// Do not pause the target.
    pub nonblocking: bool,
    /// Keep file names whole.
    pub full_filenames: bool,
    /// Show each frame's arguments and locals.
    pub locals: bool,
    /// Dump the process's descendants too.
    pub subprocesses: bool,
}

/// Settings of `sampler top`.
#[derive(Debug, Clone)]
pub struct TopConfig {
    /// What to profile.
    pub target: Target,
    /// Samples per second.
    pub rate_hz: f64,
    /// How often the view is redrawn.
    pub refresh: Duration,
    /// Keep idle threads.
    pub include_idle: bool,
    /// Keep only the thread holding the GIL.
    pub gil_only: bool,
    /// Do not pause the target.
    pub nonblocking: bool,
    /// Keep file names whole.
    pub full_filenames: bool,
    /// Follow the target's descendants too.
    pub subprocesses: bool,
}

/// A parsed command line.
#[derive(Debug, Clone)]
pub enum Command {
    /// `sampler record`.
    Record(RecordConfig),
    /// `sampler dump`.
    Dump(DumpConfig),
    /// `sampler top`.
    Top(TopConfig),
}
