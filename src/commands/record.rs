//! `sampler record`: sample at a fixed rate, aggregate, write a profile.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::commands::{command_line, open_target, open_tree_root};
use crate::config::{RecordConfig, Target};
use crate::output::{check_writable, write_atomically, write_stdout, Profile, Recording};
use crate::process::Process;
use crate::python::Interpreter;
use crate::sampling::tree::ProcessTree;
use crate::sampling::{Sampler, Source, Stats, StopReason};
use crate::ui::progress::Progress;

/// Runs `record`. Ctrl-C (or `stop` being set) ends sampling and still writes the profile.
pub fn run(config: &RecordConfig, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let to_stdout = config.output.as_deref() == Some(Path::new("-"));
    if let Some(path) = config.output.as_ref().filter(|_| !to_stdout) {
        // Find out now, not after a long recording, that the file cannot be written.
        check_writable(path)?;
    }
    let (process, interpreter) = if config.sampling.subprocesses {
        open_tree_root(&config.target, &stop, crate::process::ChildStdio::Inherit)?
    } else {
        let (process, interpreter) = open_target(&config.target, &stop)?;
        (process, Some(interpreter))
    };
    let title = match &config.target {
        Target::Command(argv) => argv.join(" "),
        Target::Pid(_) => command_line(&process),
    };
    let output = config.output.clone().unwrap_or_else(|| {
        default_output(
            &config.target,
            &process_name(&title),
            config.format.extension(),
        )
    });
    let mut source = source(config, process, interpreter);
    let mut profile = Profile::new(config.style)
        .with_thread_roots(config.threads)
        .with_timeline(config.format.needs_timeline());
    let started = SystemTime::now();
    let start = Instant::now();
    let progress = Progress::new();
    let mut said_behind = false;
    let mut any_sample = false;
    let (reason, stats) = source.run(
        &stop,
        &mut |sample| {
            any_sample = true;
            profile.add_sample(sample, start.elapsed())
        },
        &mut |stats| {
            progress.update(stats);
            // Say once, while it happens, that the requested rate is out of reach.
            if !said_behind && stats.elapsed >= Duration::from_secs(1) {
                if let Some(message) = behind_message(stats, config.sampling.rate_hz) {
                    progress.println(&message);
                    said_behind = true;
                }
            }
        },
    )?;
    progress.finish();

    let child_status = {
        let process = source.target();
        if process.is_child() {
            if reason == StopReason::Interrupted {
                // The terminal's Ctrl-C reached the child too; give it a moment to exit itself.
                process.wait_child(Duration::from_secs(2));
            }
            process.finish_child(Duration::from_secs(1))
        } else {
            None
        }
    };

    let recording = Recording {
        title: title.clone(),
        rate_hz: config.sampling.rate_hz,
        ticks: stats.ticks,
        errors: stats.errors,
        duration: stats.elapsed,
        started,
        idle_included: config.sampling.include_idle,
        top: config.top,
    };
    let write = |w: &mut dyn Write| config.format.write(&profile, &recording, w);
    if to_stdout {
        write_stdout(write)?;
    } else {
        write_atomically(&output, write)?;
    }

    let mut summary = format!(
        "sampler: wrote {} to {}: {} samples, {} errors, {:.1} s",
        config.format.name(),
        if to_stdout {
            "standard output".to_string()
        } else {
            output.display().to_string()
        },
        stats.samples,
        stats.errors,
        stats.elapsed.as_secs_f64()
    );
    match (reason, child_status) {
        (_, Some(status)) => summary.push_str(&format!("; the command exited with {status}")),
        (StopReason::TargetExited, None) => summary.push_str("; the target exited"),
        (StopReason::Interrupted, None) => summary.push_str("; interrupted"),
        (StopReason::Duration, None) => {}
    }
    eprintln!("{summary}");
    if config.sampling.subprocesses && !any_sample {
        eprintln!(
            "sampler: no Python stacks were recorded (no Python process was found among pid {} \
             and its descendants)",
            source.target().pid()
        );
    } else if profile.is_empty() {
        eprintln!(
            "sampler: no Python stacks were recorded{}",
            if config.sampling.include_idle {
                ""
            } else {
                " (every thread was idle; --idle keeps idle threads)"
            }
        );
    }
    // A few late ticks on a busy machine are normal; say so once the rate really suffers.
    if !said_behind {
        if let Some(message) = behind_message(&stats, config.sampling.rate_hz) {
            eprintln!("{message}");
        }
    }
    if let Some(err) = stats.last_error.filter(|_| stats.errors > 0) {
        log::info!("last sampling error: {err}");
    }
    Ok(())
}

/// What to sample: the target alone, or (`--subprocesses`) the target and its descendants.
/// `interpreter` is `None` only for a process tree whose root is not Python (yet).
fn source(
    config: &RecordConfig,
    process: Process,
    interpreter: Option<Interpreter>,
) -> Box<dyn Source> {
    let mut options = config.sampling.options(config.duration);
    // No output of `record` tells active threads from idle ones.
    options.activity = false;
    if let Some(interpreter) = &interpreter {
        log::info!(
            "sampling pid {} (Python {}, offsets from {})",
            process.pid(),
            interpreter.version,
            interpreter.layout.source
        );
    }
    match interpreter {
        Some(interpreter) if !config.sampling.subprocesses => {
            Box::new(Sampler::new(process, interpreter, options))
        }
        interpreter => {
            log::info!("following pid {} and its descendants", process.pid());
            Box::new(ProcessTree::new(process, interpreter, options))
        }
    }
}

/// A note for the user when more than 5% of the ticks were skipped (a few late ticks on a busy
/// machine are normal).
fn behind_message(stats: &Stats, rate_hz: f64) -> Option<String> {
    let due = stats.ticks + stats.missed;
    (stats.missed * 20 > due).then(|| {
        format!(
            "sampler: cannot keep up with {rate_hz} Hz: {} of {due} samples skipped so far \
             ({:.0} Hz reached, up to {:.1} ms late); try a lower --rate",
            stats.missed,
            stats.ticks as f64 / stats.elapsed.as_secs_f64().max(1e-9),
            stats.worst_lateness.as_secs_f64() * 1e3
        )
    })
}

/// `app-2026-11-21T05-25-11.svg` from the program's name and the time.
fn default_output(target: &Target, name: &str, extension: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .trim_end_matches('Z')
        .replace(':', "-");
    let name = match target {
        Target::Pid(pid) if name.is_empty() => format!("pid{pid}"),
        _ => name.to_string(),
    };
    PathBuf::from(format!("{name}-{stamp}.{extension}"))
}

/// The script's name when the command runs a `.py` file, else the program's base name.
fn process_name(command_line: &str) -> String {
    let mut words = command_line.split_whitespace();
    let program = words.next().unwrap_or("");
    let script = command_line
        .split_whitespace()
        .skip(1)
        .find(|w| w.ends_with(".py"));
    let chosen = script.unwrap_or(program);
    Path::new(chosen)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falling_behind_is_reported_past_five_percent_only() {
        let stats = |ticks, missed| Stats {
            ticks,
            missed,
            elapsed: Duration::from_secs(1),
            worst_lateness: Duration::from_millis(3),
            ..Stats::default()
        };
        assert_eq!(behind_message(&stats(960, 40), 1000.0), None);
        let message = behind_message(&stats(900, 100), 1000.0).unwrap();
        assert!(message.contains("100 of 1000 samples skipped"), "{message}");
        assert!(
            message.contains("900 Hz reached") && message.contains("3.0 ms late"),
            "{message}"
        );
    }

    #[test]
    fn default_names_come_from_the_script() {
        assert_eq!(process_name("python3.12 /srv/app/main.py --port 8"), "main");
        assert_eq!(process_name("/usr/bin/gunicorn app:wsgi"), "gunicorn");
        assert_eq!(process_name(""), "");
        let p = default_output(&Target::Pid(7), "", "svg");
        let s = p.to_string_lossy();
        assert!(
            s.starts_with("pid7-") && s.ends_with(".svg") && !s.contains(':'),
            "{s}"
        );
    }
}
