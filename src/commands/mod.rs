//! One file per user-facing job; each wires the pipeline stages together. This module holds
//! what they share: opening the target and waiting for its interpreter.

pub mod diff;
pub mod dump;
pub mod record;
pub mod top;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::Target;
use crate::error::{Error, Recovery, Result};
use crate::process::{ChildStdio, Process};
use crate::python::Interpreter;

/// How long a launched command may take to start its interpreter.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an attached process may take to finish initialising.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(1);

/// Attaches to or launches the target and waits (bounded) until its interpreter can be read.
/// A launched command shares our terminal.
pub fn open_target(target: &Target, stop: &AtomicBool) -> anyhow::Result<(Process, Interpreter)> {
    open_target_with(target, stop, ChildStdio::Inherit)
}

/// [`open_target`], with a launched command's standard streams going to `stdio`.
pub fn open_target_with(
    target: &Target,
    stop: &AtomicBool,
    stdio: ChildStdio,
) -> anyhow::Result<(Process, Interpreter)> {
    let mut process = match target {
        Target::Pid(pid) => Process::attach(*pid)?,
        Target::Command(argv) => Process::launch_with(argv, stdio)?,
    };
    let timeout = if process.is_child() {
        LAUNCH_TIMEOUT
    } else {
        ATTACH_TIMEOUT
    };
    let interpreter = wait_for_interpreter(&mut process, timeout, stop)?;
    Ok((process, interpreter))
}

/// Attaches to or launches the root of a process tree (`--subprocesses`). Its interpreter comes
/// back when it is a Python process already. A root that is not Python (a shell, a launcher) is
/// no error, since its descendants may be; a launched command is not waited for, as the
/// [`crate::sampling::tree::ProcessTree`] attaches to it once it runs Python. Lasting errors
/// (permissions, an unsupported version) fail as for a single process.
pub fn open_tree_root(
    target: &Target,
    stop: &AtomicBool,
    stdio: ChildStdio,
) -> anyhow::Result<(Process, Option<Interpreter>)> {
    match target {
        Target::Command(argv) => Ok((Process::launch_with(argv, stdio)?, None)),
        Target::Pid(pid) => {
            let mut process = Process::attach(*pid)?;
            match wait_for_interpreter(&mut process, ATTACH_TIMEOUT, stop) {
                Ok(interpreter) => Ok((process, Some(interpreter))),
                Err(Error::NotPython { .. }) => Ok((process, None)),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Retries attaching with growing pauses (1 ms up to 50 ms) until the interpreter has a thread,
/// the timeout passes, or the process exits. A launched command may still be a wrapper (a
/// shell, pyenv's shim) that has not exec'd Python yet, so "not Python" is retried for it.
fn wait_for_interpreter(
    process: &mut Process,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<Interpreter> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(1);
    loop {
        let attempt = Interpreter::attach(process).and_then(|i| i.threads(process).map(|_| i));
        let err = match attempt {
            Ok(interpreter) => return Ok(interpreter),
            Err(e) => e,
        };
        if !process.is_alive() {
            return Err(match process.exit_status() {
                Some(status) => Error::CommandExited(status.to_string()),
                None => Error::ProcessGone(process.pid()),
            });
        }
        let retry = match &err {
            Error::NotPython { .. } | Error::InterpreterNotFound { .. } | Error::Binary { .. } => {
                process.is_child()
            }
            e => e.recovery() == Recovery::SkipSample,
        };
        if !retry || Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
            return Err(err);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// The target's command line as one string, for titles and messages.
pub fn command_line(process: &Process) -> String {
    process
        .cmdline()
        .map(|args| args.join(" "))
        .unwrap_or_else(|_| format!("pid {}", process.pid()))
}
