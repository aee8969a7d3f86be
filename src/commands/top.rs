//! `sampler top`: sample on a thread of its own, count every sample into a [`FunctionStats`],
//! and show the counts live with [`crate::ui::top`] until the user quits.
//!
//! The sampling thread owns the [`Sampler`] (ptrace requires that one thread pauses and
//! resumes the target) and feeds a shared record behind a mutex; the calling thread draws
//! from it and reads keys. When the view closes, sampling stops, a launched command is
//! terminated as `record` does it, and one summary line goes to stderr.

use std::io::IsTerminal;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

use crate::commands::{command_line, open_target_with, open_tree_root};
use crate::config::{Target, TopConfig};
use crate::error::Error;
use crate::output::functions::{FunctionStats, Grouping, SortBy};
use crate::process::ChildStdio;
use crate::sampling::tree::ProcessTree;
use crate::sampling::{Sampler, Source, Stats, StopReason};
use crate::ui::top::{Exit, Feed, Header, Snapshot};

/// What the sampling thread hands back: the sampler (whose process may be our child) and how
/// sampling ended.
type Finished = (Box<dyn Source + Send>, anyhow::Result<(StopReason, Stats)>);

/// Runs `top`. Fails before touching the screen when stdout is not a terminal or the target
/// cannot be opened; `stop` (set by a SIGINT from outside) closes the view like `q`.
pub fn run(config: &TopConfig, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        return Err(Error::NotATerminal.into());
    }
    // The command must not read our keys nor write over the view.
    let (process, interpreter) = if config.sampling.subprocesses {
        open_tree_root(&config.target, &stop, ChildStdio::Null)?
    } else {
        let (process, interpreter) = open_target_with(&config.target, &stop, ChildStdio::Null)?;
        (process, Some(interpreter))
    };
    let header = Header {
        pid: process.pid(),
        command_line: match &config.target {
            Target::Command(argv) => argv.join(" "),
            Target::Pid(_) => command_line(&process),
        },
        python: match &interpreter {
            Some(interpreter) => interpreter.version.to_string(),
            None => "none yet (following its child processes)".into(),
        },
        rate_wanted: config.sampling.rate_hz,
        ..Header::default()
    };
    let sampler: Box<dyn Source + Send> = match interpreter {
        Some(interpreter) if !config.sampling.subprocesses => Box::new(Sampler::new(
            process,
            interpreter,
            config.sampling.options(None),
        )),
        interpreter => Box::new(ProcessTree::new(
            process,
            interpreter,
            config.sampling.options(None),
        )),
    };
    let live = Arc::new(Mutex::new(Live::default()));
    let thread = spawn_sampling(sampler, live.clone(), stop.clone())?;
    let feed = SamplingFeed {
        live,
        thread: &thread,
        header,
        interval: 1.0 / config.sampling.rate_hz,
    };
    // A panic in the view must not leave a launched command running: catch it, clean up,
    // and let it go on.
    let shown = std::panic::catch_unwind(AssertUnwindSafe(|| {
        crate::ui::top::run(&feed, config.refresh, &stop)
    }));
    // The terminal is ours again. Stop sampling and end a launched command, whatever happened.
    stop.store(true, Ordering::SeqCst);
    let (mut sampler, outcome) = thread
        .join()
        .map_err(|_| anyhow::anyhow!("the sampling thread panicked"))?;
    let child_status = sampler.target().finish_child(Duration::from_secs(1));
    let exit = match shown {
        Ok(shown) => shown.context("drawing the view")?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let (reason, stats) = outcome?;
    let ending = match (reason, child_status) {
        (_, Some(status)) => format!("; the command exited with {status}"),
        (StopReason::TargetExited, None) => "; the target exited".into(),
        _ if exit == Exit::Interrupted => "; interrupted".into(),
        _ => String::new(),
    };
    eprintln!(
        "sampler top: {} samples, {} errors, {:.1} s{ending}",
        stats.samples,
        stats.errors,
        stats.elapsed.as_secs_f64()
    );
    if let Some(err) = stats.last_error.filter(|_| stats.errors > 0) {
        log::info!("last sampling error: {err}");
    }
    Ok(())
}

/// What the sampling thread shares with the view.
#[derive(Default)]
struct Live {
    /// The function table and header tallies since the start or the last reset.
    stats: FunctionStats,
    /// The sampler's latest running counts (since the start).
    progress: Stats,
    /// `progress` at the last reset, subtracted for the header.
    base: Stats,
    /// Why sampling ended, once it has.
    ended: Option<String>,
    /// Set when sampling failed with an error or a panic.
    failed: bool,
    /// Set by the sampling thread when it finishes without panicking past its guard.
    done: bool,
}

/// The lock, even after a panic elsewhere poisoned it: the counts stay usable.
fn lock(live: &Mutex<Live>) -> MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts sampling on its own thread until `stop` is set or the target exits.
fn spawn_sampling(
    mut sampler: Box<dyn Source + Send>,
    live: Arc<Mutex<Live>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<Finished>> {
    let body = move || {
        // Keep the sampler even if sampling panics, so a launched command is still ended.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            sampler.run(
                &stop,
                &mut |sample| lock(&live).stats.add_sample(sample),
                &mut |stats| lock(&live).progress = stats.clone(),
            )
        }));
        let outcome = match result {
            Ok(Ok(ended)) => Ok(ended),
            Ok(Err(e)) => Err(anyhow::Error::new(e)),
            Err(_) => Err(anyhow::anyhow!("sampling panicked (a bug in sampler)")),
        };
        let ended = match &outcome {
            Ok((StopReason::TargetExited, _)) => Some(exit_message(sampler.as_mut())),
            Ok(_) => None,
            Err(e) => Some(format!("{e:#}")),
        };
        let mut shared = lock(&live);
        shared.ended = ended;
        shared.failed = outcome.is_err();
        shared.done = true;
        drop(shared);
        (sampler, outcome)
    };
    std::thread::Builder::new()
        .name("sampling".into())
        .spawn(body)
        .map_err(|e| Error::io("cannot start the sampling thread", e).into())
}

/// How the target ended, for the header.
fn exit_message(sampler: &mut dyn Source) -> String {
    let process = sampler.target();
    let pid = process.pid();
    if process.is_child() {
        // Normally known already; a child that is going away is reaped within moments.
        match process.wait_child(Duration::from_secs(1)) {
            Some(status) => format!("the command exited with {status}"),
            None => "the command exited".into(),
        }
    } else {
        format!("process {pid} exited")
    }
}

/// The view's window onto the sampling thread.
struct SamplingFeed<'a> {
    live: Arc<Mutex<Live>>,
    thread: &'a JoinHandle<Finished>,
    /// The parts of the header that do not change.
    header: Header,
    /// Seconds per sample.
    interval: f64,
}

impl Feed for SamplingFeed<'_> {
    fn snapshot(&self, grouping: Grouping, sort: SortBy) -> Snapshot {
        let live = lock(&self.live);
        let (now, base) = (&live.progress, &live.base);
        let elapsed = now.elapsed.saturating_sub(base.elapsed);
        let ticks = (now.samples + now.errors).saturating_sub(base.samples + base.errors);
        let rate_reached = if elapsed.is_zero() {
            0.0
        } else {
            ticks as f64 / elapsed.as_secs_f64()
        };
        Snapshot {
            header: Header {
                samples: now.samples.saturating_sub(base.samples),
                errors: now.errors.saturating_sub(base.errors),
                rate_reached,
                elapsed,
                totals: live.stats.totals(),
                threads: live.stats.threads(),
                // The target is sampled from the start, even before its first sample counts.
                processes: live.stats.processes().max(1),
                ended: live.ended.clone(),
                ..self.header.clone()
            },
            rows: live.stats.rows(grouping, sort),
            interval: self.interval,
        }
    }

    fn reset(&self) {
        let mut live = lock(&self.live);
        live.stats.reset();
        live.base = live.progress.clone();
    }

    fn failed(&self) -> bool {
        let live = lock(&self.live);
        live.failed || (self.thread.is_finished() && !live.done)
    }
}
