//! Plain settings for each command, built by `cli.rs` and read by `commands/`. No clap types.

use std::path::PathBuf;
use std::time::Duration;

use crate::output::{Format, FrameStyle};
use crate::python::frames::MAX_DEPTH;
use crate::sampling::{Pausing, SamplerOptions};

/// What to profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A running process.
    Pid(u32),
    /// A command we launch: program and arguments, verbatim.
    Command(Vec<String>),
}

/// How `record` and `top` sample: the settings they share.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// Samples per second.
    pub rate_hz: f64,
    /// Keep idle threads.
    pub include_idle: bool,
    /// Keep only the thread holding the GIL.
    pub gil_only: bool,
    /// When to pause the target.
    pub pausing: Pausing,
    /// Keep file names whole.
    pub full_filenames: bool,
    /// Follow the target's descendants too, each stack rooted at its process.
    pub subprocesses: bool,
}

impl Sampling {
    /// The sampler's options for these settings, sampling for `duration` (None: until the
    /// target exits or sampling is stopped).
    pub fn options(&self, duration: Option<Duration>) -> SamplerOptions {
        SamplerOptions {
            rate_hz: self.rate_hz,
            duration,
            pausing: self.pausing,
            include_idle: self.include_idle,
            activity: true,
            gil_only: self.gil_only,
            full_filenames: self.full_filenames,
            max_depth: MAX_DEPTH,
            seed: crate::sampling::time_seed(),
            locals: false,
        }
    }
}

/// Settings of `sampler record`.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// What to profile.
    pub target: Target,
    /// How to sample.
    pub sampling: Sampling,
    /// How long to sample (None: until the target exits or Ctrl-C).
    pub duration: Option<Duration>,
    /// Where to write (None: a name from the program and the time).
    pub output: Option<PathBuf>,
    /// The output format.
    pub format: Format,
    /// Rows of the `summary` table.
    pub top: usize,
    /// How frames are written.
    pub style: FrameStyle,
    /// Root each stack at its thread.
    pub threads: bool,
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
    /// How to sample.
    pub sampling: Sampling,
    /// How often the view is redrawn.
    pub refresh: Duration,
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
    /// `sampler diff`.
    Diff(DiffConfig),
}

/// What `sampler diff` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffFormat {
    /// A differential flame graph (SVG).
    Flamegraph,
    /// A text table of the frames whose share moved most.
    Summary,
}

/// Settings of `sampler diff`.
#[derive(Debug, Clone)]
pub struct DiffConfig {
    /// The profile before the change (collapsed stacks).
    pub before: PathBuf,
    /// The profile after the change.
    pub after: PathBuf,
    /// Where to write; `-` or None (summary only) for standard output.
    pub output: Option<PathBuf>,
    /// What to write.
    pub format: DiffFormat,
    /// Rows of the summary table.
    pub top: usize,
}
