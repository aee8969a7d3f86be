//! The `sampler` binary: parse the command line, run the command, report errors as one line
//! with a hint, and exit 0 (success), 1 (profiling error) or 2 (usage error, from clap).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;

use sampler::cli::Cli;
use sampler::config::Command;
use sampler::error::Error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .init();
    let result = match cli.into_command() {
        Command::Record(config) => sampler::commands::record::run(&config, interrupt_flag()),
        Command::Dump(config) => sampler::commands::dump::run(&config, &mut std::io::stdout()),
        // On its screen Ctrl-C is a key; the flag is for a SIGINT sent from elsewhere.
        Command::Top(config) => sampler::commands::top::run(&config, interrupt_flag()),
        Command::Diff(config) => sampler::commands::diff::run(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`sampler dump | head`) is not an error worth a message.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let chain: Vec<String> = err.chain().map(|e| e.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            if let Some(hint) = err.downcast_ref::<Error>().and_then(hint) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(1)
        }
    }
}

/// A flag that Ctrl-C (SIGINT) sets, to stop sampling cleanly.
fn interrupt_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        log::warn!("Ctrl-C will not stop sampling cleanly: {e}");
    }
    stop
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

/// The ways out of a refused ptrace or memory read, naming the Yama setting only where the
/// kernel has it.
fn permission_hint() -> String {
    let mut hint = String::from(
        "run as root (sudo), or give sampler CAP_SYS_PTRACE (in a container: --cap-add \
         SYS_PTRACE); if a debugger (gdb, strace) is attached, detach it or use --nonblocking",
    );
    if let Ok(scope) = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope") {
        let scope = scope.trim();
        if scope != "0" {
            hint.push_str(&format!(
                "; kernel.yama.ptrace_scope is {scope}: only root may read another process, \
                 but `sampler record -- COMMAND` may read the command it starts"
            ));
        }
    }
    hint
}

/// What the user can do about an error, when there is something.
fn hint(err: &Error) -> Option<String> {
    Some(match err {
        Error::NoSuchProcess(_) => "check the pid with `ps`; the process may have exited".into(),
        Error::PermissionDenied { .. } => permission_hint(),
        Error::NotPython { .. } => {
            format!(
                "--pid must be a running Python process ({})",
                sampler::python::layout::supported_range()
            )
        }
        Error::UnsupportedVersion { supported, .. } => {
            format!("sampler reads {supported}; run the program on one of those")
        }
        Error::InterpreterNotFound { .. } => {
            "run with -v for what was tried; a stripped or embedded interpreter may need symbols"
                .into()
        }
        Error::ProcessGone(_) => "the target exited; nothing was left to sample".into(),
        Error::CommandExited(_) => format!(
            "the command after `--` must run a Python program ({}), for example \
             `python3 app.py`, and live long enough to be sampled",
            sampler::python::layout::supported_range()
        ),
        Error::NotATerminal => "run it in a terminal, not through a pipe or into a file; \
             `sampler record -f raw` writes a profile without one"
            .into(),
        Error::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => "nothing is at that path: check it (a command \
                 without a `/` is looked up in PATH; an output file's folder must exist)"
                .into(),
            std::io::ErrorKind::PermissionDenied => {
                "check the permissions of that path (for an output file, of its folder too)".into()
            }
            _ => return None,
        },
        Error::NotCollapsed(_) => "diff compares two profiles written by `sampler record -f raw`, \
             e.g. `sampler diff before.txt after.txt -o diff.svg`"
            .into(),
        _ => return None,
    })
}
