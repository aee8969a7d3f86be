//! The library's error type, and what the sampling loop does about each kind of error.
//!
//! Every failure the library can meet is one variant here. The sampling loop never matches
//! on message strings: it asks [`Error::recovery`] whether to abort, drop the sample, or stop
//! because the target is gone.

use crate::process::RemoteAddr;

/// Everything that can go wrong while attaching to or sampling a target.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No process has this pid.
    #[error("no process with pid {0}")]
    NoSuchProcess(u32),
    /// The process existed but has exited.
    #[error("the target process {0} has exited")]
    ProcessGone(u32),
    /// The OS refused access to the target's memory or to ptrace.
    #[error("permission denied reading process {pid}: {what}")]
    PermissionDenied {
        /// The target.
        pid: u32,
        /// What was refused.
        what: String,
    },
    /// The target runs no CPython interpreter we could find.
    #[error("process {pid} is not a Python process (its executable is {exe})")]
    NotPython {
        /// The target.
        pid: u32,
        /// The executable found in `/proc/PID/exe`.
        exe: String,
    },
    /// A Python binary was found but its interpreter state could not be located.
    #[error("found {binary} in process {pid} but could not locate the interpreter: {reason}")]
    InterpreterNotFound {
        /// The target.
        pid: u32,
        /// The python executable or libpython.
        binary: String,
        /// What was tried.
        reason: String,
    },
    /// A CPython version outside the supported range.
    #[error("unsupported Python version {found} (supported: {supported})")]
    UnsupportedVersion {
        /// The version the target runs.
        found: String,
        /// The supported range, for the message.
        supported: String,
    },
    /// A launched command exited before a Python interpreter could be read in it.
    #[error("the command exited ({0}) before a Python interpreter could be found in it")]
    CommandExited(String),
    /// The interpreter is still starting up (no interpreter state or thread yet).
    #[error("the interpreter is not initialised yet")]
    NotInitialised,
    /// A remote read failed (unmapped address, racing memory).
    #[error("could not read {len} bytes at {addr} in the target")]
    Read {
        /// Start of the read.
        addr: RemoteAddr,
        /// Bytes requested.
        len: usize,
    },
    /// Remote memory held something that cannot be right (racing or garbage memory).
    #[error("implausible data in the target: {0}")]
    Corrupt(String),
    /// A profile given to `diff` is not collapsed stacks.
    #[error("{0}")]
    NotCollapsed(String),
    /// An ELF file could not be parsed.
    #[error("could not parse {path}: {reason}")]
    Binary {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// An offsets table shipped with the profiler is broken (a bug in the profiler).
    #[error("offsets table {table}: {reason}")]
    Offsets {
        /// The table's name.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// `top` was started with its output going somewhere other than a terminal.
    #[error("sampler top draws on a terminal, but its standard output is not one")]
    NotATerminal,
    /// Some other I/O failure (files, /proc).
    #[error("{context}")]
    Io {
        /// What we were doing.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What the sampling loop does after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Stop profiling and report the error.
    Abort,
    /// Drop this sample (count it as an error) and carry on.
    SkipSample,
    /// The target exited: stop sampling and write what we have.
    TargetExited,
}

impl Error {
    /// Classifies the error for the sampling loop.
    pub fn recovery(&self) -> Recovery {
        match self {
            Error::NoSuchProcess(_) | Error::ProcessGone(_) | Error::CommandExited(_) => {
                Recovery::TargetExited
            }
            Error::Read { .. } | Error::Corrupt(_) | Error::NotInitialised => Recovery::SkipSample,
            Error::PermissionDenied { .. }
            | Error::NotPython { .. }
            | Error::InterpreterNotFound { .. }
            | Error::UnsupportedVersion { .. }
            | Error::Binary { .. }
            | Error::Offsets { .. }
            | Error::NotATerminal
            | Error::NotCollapsed(_)
            | Error::Io { .. } => Recovery::Abort,
        }
    }

    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(msg: impl Into<String>) -> Error {
        Error::Corrupt(msg.into())
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
