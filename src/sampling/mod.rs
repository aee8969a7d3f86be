//! The fixed-rate loop: at each tick read the OS thread states, pause the target (unless
//! non-blocking), read every Python thread's stack, resume, and hand a [`Sample`] to the caller.
//! Errors are classified by [`Error::recovery`]: skip the sample, stop because the target
//! exited, or abort.

pub mod schedule;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Recovery, Result};
use crate::model::{Frame, Local, Sample, ThreadSample};
use crate::process::{pthread, OsThread, Process};
use crate::python::threading::ThreadNames;
use crate::python::{Interpreter, ThreadStack};

use schedule::Schedule;

/// How to take samples.
#[derive(Debug, Clone)]
pub struct SamplerOptions {
    /// Samples per second.
    pub rate_hz: f64,
    /// Stop after this long (None: until the target exits or we are told to stop).
    pub duration: Option<Duration>,
    /// Do not pause the target while reading.
    pub nonblocking: bool,
    /// Keep threads the OS reports idle.
    pub include_idle: bool,
    /// Keep only the thread holding the GIL.
    pub gil_only: bool,
    /// Keep file names whole instead of package-relative.
    pub full_filenames: bool,
    /// The depth cap.
    pub max_depth: usize,
    /// Seed of the interval jitter.
    pub seed: u64,
    /// Read every frame's arguments and locals (`dump --locals`).
    pub locals: bool,
}

/// A seed for the interval jitter that differs between runs.
pub fn time_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id())
}

/// Running counts, for the progress line and the summary.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Samples taken (each covers every thread).
    pub samples: u64,
    /// Samples dropped because of an error.
    pub errors: u64,
    /// Ticks skipped because sampling fell behind.
    pub missed: u64,
    /// The longest a sample was late.
    pub worst_lateness: Duration,
    /// Time since sampling began.
    pub elapsed: Duration,
    /// The last error, for the summary.
    pub last_error: Option<String>,
}

/// Why sampling ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `--duration` elapsed.
    Duration,
    /// The target exited.
    TargetExited,
    /// The user interrupted (Ctrl-C) or the caller asked to stop.
    Interrupted,
}

/// Samples one process.
pub struct Sampler {
    process: Process,
    interpreter: Interpreter,
    options: SamplerOptions,
    short_names: HashMap<Arc<str>, Option<Arc<str>>>,
    /// Offset of the kernel id in glibc's `struct pthread`, for versions that record only the
    /// pthread id (before 3.11); found on first use.
    pthread_tid_offset: Option<u64>,
    thread_names: ThreadNames,
}

impl Sampler {
    /// Prepares to sample `process` through its attached `interpreter`.
    pub fn new(process: Process, interpreter: Interpreter, options: SamplerOptions) -> Sampler {
        Sampler {
            process,
            interpreter,
            options,
            short_names: HashMap::new(),
            pthread_tid_offset: None,
            thread_names: ThreadNames::default(),
        }
    }

    /// The target.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// The attached interpreter.
    pub fn interpreter(&self) -> &Interpreter {
        &self.interpreter
    }

    /// Takes one sample now. Idle threads are left out unless the options keep them.
    pub fn sample(&mut self) -> Result<Sample> {
        let os_threads = self.process.os_threads()?;
        let stacks = {
            // Only running threads are paused; see `Process::pause`.
            let _pause = if self.options.nonblocking {
                None
            } else {
                let running: Vec<u32> = os_threads
                    .iter()
                    .filter(|t| t.running)
                    .map(|t| t.tid)
                    .collect();
                Some(self.process.pause(&running)?)
            };
            let stacks = self
                .interpreter
                .stacks(&self.process, self.options.max_depth)?;
            // Locals are read while the target is still paused, so they match the stacks.
            let locals: Vec<Vec<Vec<Local>>> = if self.options.locals {
                stacks
                    .iter()
                    .map(|s| {
                        s.frame_refs
                            .iter()
                            .map(|at| {
                                self.interpreter
                                    .locals(&self.process, *at)
                                    .unwrap_or_else(|e| {
                                        vec![Local {
                                            name: "<locals>".into(),
                                            value: format!("<unreadable: {e}>"),
                                            is_arg: false,
                                        }]
                                    })
                            })
                            .collect()
                    })
                    .collect()
            } else {
                vec![Vec::new(); stacks.len()]
            };
            (stacks, locals)
            // The pause guard drops here: the target runs again before we do anything else.
        };
        let (stacks, mut locals) = stacks;
        let native_ids = self.native_ids(&stacks, &os_threads);
        let idents: Vec<u64> = stacks.iter().map(|s| s.thread.thread_id).collect();
        let names = self
            .thread_names
            .get(&self.interpreter, &self.process, &idents);
        let mut threads = Vec::with_capacity(stacks.len());
        for (((stack, native), name), locals) in stacks
            .into_iter()
            .zip(native_ids)
            .zip(names)
            .zip(locals.drain(..))
        {
            // The GIL's holder is running Python code whatever the scheduler said a moment ago.
            let active = stack.holds_gil
                || native
                    .and_then(|tid| os_threads.iter().find(|t| t.tid == tid))
                    .map(|t| t.running)
                    .unwrap_or(true);
            if (!active && !self.options.include_idle)
                || (self.options.gil_only && !stack.holds_gil)
            {
                continue;
            }
            let mut frames = stack.frames;
            if !self.options.full_filenames {
                for frame in &mut frames {
                    frame.short_filename = self.short_name(frame);
                }
            }
            threads.push(ThreadSample {
                thread_id: stack.thread.thread_id,
                os_thread_id: native,
                active,
                holds_gil: stack.holds_gil,
                name,
                frames,
                locals,
            });
        }
        Ok(Sample {
            pid: self.process.pid(),
            command_line: None,
            threads,
        })
    }

    /// Samples at the configured rate until the duration ends, the target exits, or `stop` is
    /// set; every sample goes to `sink` and `progress` sees the counts after each tick.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        sink: &mut dyn FnMut(&Sample),
        progress: &mut dyn FnMut(&Stats),
    ) -> Result<(StopReason, Stats)> {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, self.options.rate_hz, self.options.seed);
        let mut stats = Stats::default();
        let end = self.options.duration.map(|d| start + d);
        let reason = loop {
            if stop.load(Ordering::Relaxed) {
                break StopReason::Interrupted;
            }
            match self.sample() {
                Ok(sample) => {
                    stats.samples += 1;
                    sink(&sample);
                }
                Err(e) => match self.classify(&e) {
                    Recovery::TargetExited => break StopReason::TargetExited,
                    Recovery::SkipSample => {
                        stats.errors += 1;
                        log::debug!("sample dropped: {e}");
                        stats.last_error = Some(e.to_string());
                    }
                    Recovery::Abort => return Err(e),
                },
            }
            let now = Instant::now();
            stats.elapsed = now - start;
            let due = schedule.next_after(now);
            stats.missed = schedule.missed;
            stats.worst_lateness = schedule.worst_lateness;
            progress(&stats);
            if end.is_some_and(|end| due >= end) {
                // Do not run past the duration: wait out the remainder and stop.
                sleep_until(end.unwrap_or(due), stop);
                break if stop.load(Ordering::Relaxed) {
                    StopReason::Interrupted
                } else {
                    StopReason::Duration
                };
            }
            sleep_until(due, stop);
            if !self.process.is_alive() {
                break StopReason::TargetExited;
            }
        };
        stats.elapsed = start.elapsed();
        Ok((reason, stats))
    }

    /// Every thread's kernel id: recorded by the interpreter (3.11+), or read from glibc's
    /// `struct pthread` at the offset found on first use (see [`crate::process::pthread`]).
    fn native_ids(&mut self, stacks: &[ThreadStack], os_threads: &[OsThread]) -> Vec<Option<u32>> {
        if stacks.iter().all(|s| s.thread.native_thread_id.is_some()) {
            return stacks.iter().map(|s| s.thread.native_thread_id).collect();
        }
        let pthreads: Vec<u64> = stacks.iter().map(|s| s.thread.thread_id).collect();
        if self.pthread_tid_offset.is_none() {
            let tids: Vec<u32> = os_threads.iter().map(|t| t.tid).collect();
            self.pthread_tid_offset =
                pthread::tid_offset(&self.process, &pthreads, self.process.pid(), &tids);
        }
        match self.pthread_tid_offset {
            Some(offset) => pthread::tids(&self.process, offset, &pthreads),
            None => vec![None; stacks.len()],
        }
    }

    /// An error's recovery, corrected for a target that has exited meanwhile (its memory reads
    /// fail in many ways while it is tearing down).
    fn classify(&mut self, e: &Error) -> Recovery {
        let recovery = e.recovery();
        if recovery != Recovery::TargetExited && !self.process.is_alive() {
            return Recovery::TargetExited;
        }
        recovery
    }

    fn short_name(&mut self, frame: &Frame) -> Option<Arc<str>> {
        let pid = self.process.pid();
        self.short_names
            .entry(frame.filename.clone())
            .or_insert_with(|| {
                shorten_filename(&frame.filename, |dir| {
                    let inside = format!("/proc/{pid}/root{dir}/__init__.py");
                    Path::new(&inside).exists() || Path::new(dir).join("__init__.py").exists()
                })
                .map(Arc::from)
            })
            .clone()
    }
}

/// The package-relative form of a file name: leading folders are dropped up to the outermost
/// folder that is a package (holds `__init__.py`), so `/usr/lib/python3.12/json/decoder.py`
/// becomes `json/decoder.py` and `/home/me/app.py` becomes `app.py`. Names that are not
/// absolute paths (`<string>`, `<frozen …>`) are kept.
pub fn shorten_filename(filename: &str, is_package: impl Fn(&str) -> bool) -> Option<String> {
    if !filename.starts_with('/') {
        return None;
    }
    let path = Path::new(filename);
    let mut root = path.parent()?;
    while let Some(parent) = root.parent() {
        if !is_package(&root.to_string_lossy()) {
            break;
        }
        root = parent;
    }
    path.strip_prefix(root)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

fn sleep_until(deadline: Instant, stop: &AtomicBool) {
    // Sleep in short slices so Ctrl-C is noticed quickly even at low rates.
    loop {
        let now = Instant::now();
        if now >= deadline || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_shorten_to_the_package() {
        let packages = ["/usr/lib/python3.12/json", "/site/pkg", "/site/pkg/sub"];
        let is_pkg = |d: &str| packages.contains(&d);
        let short = |f: &str| shorten_filename(f, is_pkg);
        assert_eq!(
            short("/usr/lib/python3.12/json/decoder.py").unwrap(),
            "json/decoder.py"
        );
        assert_eq!(
            short("/usr/lib/python3.12/threading.py").unwrap(),
            "threading.py"
        );
        assert_eq!(short("/site/pkg/sub/mod.py").unwrap(), "pkg/sub/mod.py");
        assert_eq!(short("/home/me/app.py").unwrap(), "app.py");
        assert_eq!(short("<frozen importlib._bootstrap>"), None);
        assert_eq!(short("<string>"), None);
    }
}
