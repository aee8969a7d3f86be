//! The fixed-rate loop: at each tick read the OS thread states, pause the target (unless
//! non-blocking), read every Python thread's stack, resume, and hand a [`Sample`] to the caller.
//! Errors are classified by [`Error::recovery`]: skip the sample, stop because the target
//! exited, or abort.
//!
//! [`Source::run`] is the one loop (schedule, stop flag, duration, counts). What it samples at
//! each tick is a [`Source`]: one process ([`Sampler`]) or a process and its descendants
//! ([`tree::ProcessTree`], `--subprocesses`).

pub mod schedule;
pub mod tree;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Recovery, Result};
use crate::model::{Local, Sample, ThreadSample};
use crate::process::recall::Recall;
use crate::process::{pthread, OsThread, Process, ReadMemory, ThreadStates};
use crate::python::frames::Extras;
use crate::python::threading::ThreadNames;
use crate::python::{Check, CheckBuffers, Confirm, Interpreter, ThreadStack};

use schedule::Schedule;

/// Each thread's stack, and each of its frames' locals (empty unless asked for).
type StacksAndLocals = (Vec<ThreadStack>, Vec<Vec<Vec<Local>>>);

/// [`StacksAndLocals`], each thread's kernel id, and the states of the process's threads.
type Stacks = (
    Vec<ThreadStack>,
    Vec<Vec<Vec<Local>>>,
    Vec<Option<u32>>,
    Vec<OsThread>,
);

/// When a sample pauses the target's running threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pausing {
    /// Read without pausing, check that no thread called or returned meanwhile
    /// ([`crate::python::stacks_moved`]), and take a sample that raced again with the running
    /// threads paused. Every sample is consistent, and nearly all cost the target nothing.
    /// Reading locals always pauses: values change without a call or a return.
    #[default]
    OnRace,
    /// Pause the running threads for every sample: all of them are read at one instant, at a
    /// cost to the target of a ptrace stop and restart each time.
    Always,
    /// Never pause (`--nonblocking`): a sample that raced is read once more, unpaused, and
    /// kept as it is if it raced again.
    Never,
}

/// How to take samples.
#[derive(Debug, Clone)]
pub struct SamplerOptions {
    /// Samples per second.
    pub rate_hz: f64,
    /// Stop after this long (None: until the target exits or we are told to stop).
    pub duration: Option<Duration>,
    /// When the target's running threads are paused for a sample.
    pub pausing: Pausing,
    /// Keep threads the OS reports idle.
    pub include_idle: bool,
    /// Tell active threads from idle ones even when idle ones are kept (`ThreadSample::active`,
    /// which `top` and `dump` show). Without it, and with idle threads kept, the threads'
    /// states are not read in the non-blocking mode and every thread counts as active.
    pub activity: bool,
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
    /// Ticks taken, whether their samples were kept or dropped.
    pub ticks: u64,
    /// Ticks whose samples were kept (each sample covers every thread of a process).
    pub samples: u64,
    /// Samples dropped because of an error: whole ticks of a single process, or one process's
    /// sample in a tick of a process tree.
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

/// Process samples that a tick dropped without failing as a whole (in a process tree, one
/// process's error does not stop the others), for the error count.
#[derive(Debug, Default)]
pub struct Dropped {
    /// How many.
    pub count: u64,
    /// The last one's error.
    pub last: Option<String>,
}

impl Dropped {
    /// Counts one more.
    pub fn add(&mut self, error: &Error) {
        self.count += 1;
        self.last = Some(error.to_string());
    }

    /// Takes over `other`'s counts.
    pub fn absorb(&mut self, other: Dropped) {
        self.count += other.count;
        if other.last.is_some() {
            self.last = other.last;
        }
    }
}

/// What [`Source::run`] samples at each tick: one process ([`Sampler`]) or a process and its
/// descendants ([`tree::ProcessTree`]). Callers of either use `source.run(stop, sink,
/// progress)` alike.
pub trait Source {
    /// The sampling options (rate, duration, seed, and what every sample keeps).
    fn options(&self) -> &SamplerOptions;

    /// The target: the process whose exit ends sampling.
    fn target(&mut self) -> &mut Process;

    /// Takes one tick's samples and hands each to `sink`. An `Err` concerns the whole tick
    /// and goes through [`Source::classify`]; the samples dropped without failing the tick are
    /// returned.
    fn tick(&mut self, sink: &mut dyn FnMut(&Sample)) -> Result<Dropped>;

    /// Work between ticks (a process tree looks for new processes here). Called before the
    /// first tick and at least every 50 ms while waiting for the next; an error aborts.
    /// Returns true when it did some (and so took time).
    fn maintain(&mut self) -> Result<bool> {
        Ok(false)
    }

    /// Called once when sampling has ended: samples dropped but not reported yet.
    fn finish(&mut self) -> Dropped {
        Dropped::default()
    }

    /// An error's recovery, corrected for a target that has exited meanwhile (its memory reads
    /// fail in many ways while it is tearing down).
    fn classify(&mut self, e: &Error) -> Recovery {
        let recovery = e.recovery();
        if recovery != Recovery::TargetExited && !self.target().is_alive() {
            return Recovery::TargetExited;
        }
        recovery
    }

    /// Samples at the options' rate until the duration ends, the target exits, or `stop` is
    /// set; every sample goes to `sink` and `progress` sees the counts after each tick. This
    /// is the one sampling loop, whatever the source.
    fn run(
        &mut self,
        stop: &AtomicBool,
        sink: &mut dyn FnMut(&Sample),
        progress: &mut dyn FnMut(&Stats),
    ) -> Result<(StopReason, Stats)> {
        self.maintain()?;
        let options = self.options();
        let start = Instant::now();
        let mut schedule = Schedule::new(start, options.rate_hz, options.seed);
        let end = options.duration.map(|d| start + d);
        tighten_timer_slack(options.rate_hz);
        let mut last_alive_check = start;
        let mut stats = Stats::default();
        // A dropped sample counts once the next tick finds the target still there: a process
        // that is finishing fails reads just before it exits, and that is no error.
        let mut pending = Dropped::default();
        let reason = loop {
            if stop.load(Ordering::Relaxed) {
                break StopReason::Interrupted;
            }
            stats.ticks += 1;
            match self.tick(sink) {
                Ok(dropped) => {
                    stats.samples += 1;
                    stats.count_dropped(std::mem::take(&mut pending));
                    stats.count_dropped(dropped);
                }
                Err(e) => match self.classify(&e) {
                    Recovery::TargetExited => break StopReason::TargetExited,
                    Recovery::SkipSample => {
                        log::debug!("sample dropped: {e}");
                        stats.count_dropped(std::mem::take(&mut pending));
                        pending.add(&e);
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
            if let Some(end) = end.filter(|end| due >= *end) {
                // Do not run past the duration: wait out the remainder and stop.
                wait_until(end, now, stop, self)?;
                break if stop.load(Ordering::Relaxed) {
                    StopReason::Interrupted
                } else {
                    StopReason::Duration
                };
            }
            let now = wait_until(due, now, stop, self)?;
            // A tick on a process that has exited fails and is classified as such; this check
            // is for sources whose ticks outlive their target (a process tree), and is
            // rate-limited because it costs a system call.
            if now - last_alive_check >= ALIVE_CHECK {
                last_alive_check = now;
                if !self.target().is_alive() {
                    break StopReason::TargetExited;
                }
            }
        };
        if reason != StopReason::TargetExited {
            stats.count_dropped(pending);
        }
        stats.count_dropped(self.finish());
        stats.elapsed = start.elapsed();
        Ok((reason, stats))
    }
}

impl Stats {
    fn count_dropped(&mut self, dropped: Dropped) {
        self.errors += dropped.count;
        if dropped.last.is_some() {
            self.last_error = dropped.last;
        }
    }
}

/// Samples one process.
pub struct Sampler {
    process: Process,
    interpreter: Interpreter,
    options: SamplerOptions,
    /// Offset of the kernel id in glibc's `struct pthread`, for versions that record only the
    /// pthread id (before 3.11); found on first use.
    pthread_tid_offset: Option<u64>,
    thread_names: ThreadNames,
    thread_states: ThreadStates,
    /// Where the last sample read, read again in one batch when the next starts.
    recall: Recall,
    /// The stack check's lists, kept between samples.
    checks: CheckBuffers,
    /// Samples read without pausing that raced (a thread's frame moved while it was read, or
    /// the read failed), and how many of those raced again when read once more at once (kept
    /// as they were in the [`Pausing::Never`] mode, taken paused in [`Pausing::OnRace`]).
    raced: (u64, u64),
    /// [`Pausing::OnRace`]: how often reads without pausing race, and so how to take the next
    /// sample.
    races: RaceWatch,
    /// Samples taken paused, in the [`Pausing::OnRace`] mode.
    paused: u64,
}

/// [`Pausing::OnRace`]'s choice for one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Read without pausing; keep the read unless it raced.
    Unpaused,
    /// Read without pausing only to follow the rate of races, then take the sample paused.
    Probe,
    /// Take the sample paused straight away.
    Paused,
}

/// How often reads without pausing race, for [`Pausing::OnRace`]: a plain mean of the first
/// [`WARMUP`] reads, a moving average after. While more than [`STORMY`] of them race (or the
/// rate is not known yet), samples are taken paused, one in [`PROBE_EVERY`] probed unpaused
/// first (every one during the warm-up).
#[derive(Debug, Default)]
struct RaceWatch {
    rate: f64,
    /// Reads without pausing so far, up to [`WARMUP`].
    reads: u32,
    /// Samples taken since the last read without pausing.
    since_read: u32,
}

impl RaceWatch {
    /// How to take the next sample.
    fn next(&mut self) -> Take {
        let warming = self.reads < WARMUP;
        if !warming && self.rate <= STORMY {
            return Take::Unpaused;
        }
        if !warming && self.since_read + 1 < PROBE_EVERY {
            self.since_read += 1;
            return Take::Paused;
        }
        Take::Probe
    }

    /// Counts a read without pausing, and whether it raced.
    fn read(&mut self, raced: bool) {
        self.since_read = 0;
        self.reads = (self.reads + 1).min(WARMUP);
        let weight = (1.0 / f64::from(self.reads)).max(RACE_WEIGHT);
        self.rate += (f64::from(u8::from(raced)) - self.rate) * weight;
    }
}

/// Above this share of reads racing, [`Pausing::OnRace`] pauses for every sample.
const STORMY: f64 = 0.3;
/// The weight of one read in the moving average of races: the last [`WARMUP`] reads count
/// most.
const RACE_WEIGHT: f64 = 1.0 / WARMUP as f64;
/// While every sample is paused, one in this many is also read without pausing first, to see
/// whether races have calmed down.
const PROBE_EVERY: u32 = 16;
/// The first samples are all read without pausing first, and all taken paused, until the
/// rate of races is known: the average of this many reads.
const WARMUP: u32 = 8;

impl Sampler {
    /// Prepares to sample `process` through its attached `interpreter`.
    pub fn new(process: Process, mut interpreter: Interpreter, options: SamplerOptions) -> Sampler {
        if !options.full_filenames {
            interpreter.shorten_file_names(process.pid());
        }
        // Frame addresses serve locals only; the words of a stack, the full check only.
        interpreter.extras = Extras {
            refs: options.locals,
            marks: options.pausing == Pausing::OnRace && !options.locals,
        };
        Sampler {
            interpreter,
            options,
            pthread_tid_offset: None,
            thread_names: ThreadNames::default(),
            thread_states: ThreadStates::new(process.pid()),
            recall: Recall::default(),
            checks: CheckBuffers::default(),
            raced: (0, 0),
            races: RaceWatch::default(),
            paused: 0,
            process,
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
        let (stacks, mut locals, native_ids, mut os_threads) = match self.options.pausing {
            Pausing::OnRace if !self.options.locals => self.read_optimistically()?,
            Pausing::Never => self.read_without_pausing()?,
            _ => self.read_pausing()?,
        };
        // A thread newer than the last listing of the threads: list them again now.
        let known: Vec<u32> = native_ids.iter().flatten().copied().collect();
        if let Some(fresh) = self.thread_states.include(&self.process, &known)? {
            os_threads = fresh;
        }
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
            let ThreadStack {
                thread,
                frames,
                marks,
                frame_refs,
                holds_gil,
                ..
            } = stack;
            self.interpreter.give_back(marks, frame_refs);
            let os_thread = native.map(|tid| os_threads.iter().find(|t| t.tid == tid));
            // A thread state whose kernel thread is not in the process describes no thread:
            // a stale copy of a parent's thread in a child forked before 3.7.
            if os_thread == Some(None) {
                continue;
            }
            // The GIL's holder is running Python code whatever the scheduler said a moment ago.
            let active = holds_gil || os_thread.flatten().map(|t| t.running).unwrap_or(true);
            if (!active && !self.options.include_idle) || (self.options.gil_only && !holds_gil) {
                continue;
            }
            threads.push(ThreadSample {
                thread_id: thread.thread_id,
                os_thread_id: native,
                active,
                holds_gil,
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

    /// The pausing mode's reads: the threads' states first, to pause the running ones.
    fn read_pausing(&mut self) -> Result<Stacks> {
        let os_threads = self.thread_states.read(&self.process)?;
        // Only running threads are paused; see `Process::pause`. A thread that was asleep a
        // moment ago may wake while we read it, though, and then what we read can be torn. A
        // sample that fails that way is taken again with every thread paused: only a failure
        // with the whole process still counts.
        let running: Vec<u32> = os_threads
            .iter()
            .filter(|t| t.running)
            .map(|t| t.tid)
            .collect();
        let (process, interpreter, options, recall) = (
            &self.process,
            &mut self.interpreter,
            &self.options,
            &mut self.recall,
        );
        let (stacks, locals) = match Self::read_stacks(
            process,
            interpreter,
            options,
            recall,
            Some(&running),
            Confirm::Paused,
        ) {
            Err(e) if running.len() < os_threads.len() && e.recovery() == Recovery::SkipSample => {
                log::debug!("sample taken again with every thread paused, after: {e}");
                let every: Vec<u32> = os_threads.iter().map(|t| t.tid).collect();
                Self::read_stacks(
                    process,
                    interpreter,
                    options,
                    recall,
                    Some(&every),
                    Confirm::Paused,
                )?
            }
            stacks => stacks?,
        };
        let tids: Vec<u32> = os_threads.iter().map(|t| t.tid).collect();
        let native_ids = self.native_ids(&stacks, &tids);
        Ok((stacks, locals, native_ids, os_threads))
    }

    /// [`Pausing::OnRace`]: the stacks read without pausing, then checked
    /// (`stacks_moved`); a sample that raced, or whose read failed (a walk through frames that
    /// changed under it), is read again at once, and taken with the running threads paused
    /// only when that races too.
    ///
    /// A raced sample stands for the moment its read began, and whatever replaces it is of a
    /// later moment, after the call or return it raced with: the function entered gains that
    /// sample from the one left. Taken again within microseconds, the replacement lands in
    /// the function that came next, every function gains at its start about what it loses at
    /// its end, and shares stay right. Pausing first takes tens of microseconds: enough to
    /// step over a short function entirely, which then loses at its end what it never gains
    /// back (a 45 µs function beside a 105 µs one read 2.6 points low at 1000 Hz).
    ///
    /// The check compares words read twice, and a stack that changes and changes back between
    /// the two reads can pass it. That takes code that calls and returns in the same places
    /// many times within a few microseconds, the kind that makes most reads race. So while
    /// more than [`STORMY`] of the reads race (a moving average), every sample is taken
    /// paused; one in [`PROBE_EVERY`] is also read without pausing afterwards, only to follow
    /// the rate, and its result is set aside. The first [`WARMUP`] samples are read both ways.
    /// The probe comes after the sample, not before: it would delay the sample by as long as
    /// it takes, which is longer in some functions than in others.
    fn read_optimistically(&mut self) -> Result<Stacks> {
        let take = self.races.next();
        if take != Take::Unpaused {
            self.paused += 1;
            let sample = self.read_pausing();
            if take == Take::Probe {
                self.probe();
            }
            return sample;
        }
        if let Some(read) = self.read_and_count()? {
            return self.unpaused_threads(read);
        }
        if let Ok(again) = self.read_unpaused(Confirm::Check) {
            if !self.moved(&again.0, Check::Full) {
                return self.unpaused_threads(again);
            }
        }
        self.raced.1 += 1;
        self.paused += 1;
        self.read_pausing()
    }

    /// [`Pausing::OnRace`]'s probe: a read without pausing, only to see whether it races.
    /// An error (the target gone or unreadable) is left for the next sample to report.
    fn probe(&mut self) {
        let _ = self.read_and_count();
    }

    /// [`Pausing::OnRace`]: the stacks read without pausing and fully checked, the outcome
    /// counted in the rate of races. `None` when the read raced or failed the way a race can
    /// make it fail; an error of another kind is returned.
    fn read_and_count(&mut self) -> Result<Option<StacksAndLocals>> {
        let read = match self.read_unpaused(Confirm::Check) {
            Err(e) if e.recovery() != Recovery::SkipSample => return Err(e),
            read => read.ok(),
        };
        let clean = read.filter(|(stacks, _)| !self.moved(stacks, Check::Full));
        let raced = clean.is_none();
        self.races.read(raced);
        if raced {
            self.raced.0 += 1;
        }
        Ok(clean)
    }

    /// [`Pausing::Never`]: the stacks read first, then checked (`stacks_moved`). A thread that
    /// calls or returns while its stack is copied can leave a stack that mixes two moments (or
    /// a chain that makes no sense, and the read fails), so a sample that raced is read again
    /// at once (from a fresh batch). A second race is kept as it is: dropping it would leave
    /// out call-heavy code more than the rest; a second failure drops the sample.
    fn read_without_pausing(&mut self) -> Result<Stacks> {
        // The quick check: a second race is kept anyway, and on code that calls and returns
        // in the same places within microseconds most reads race whatever the check.
        let first = self.read_unpaused(Confirm::Check);
        let raced = match &first {
            Ok((stacks, _)) => self.moved(stacks, Check::Quick),
            Err(e) => e.recovery() == Recovery::SkipSample,
        };
        if !raced {
            return self.unpaused_threads(first?);
        }
        self.raced.0 += 1;
        // Kept whatever its check says, so nothing confirms the code objects it trusts: it
        // reads every one again.
        let second = self.read_unpaused(Confirm::Nothing)?;
        if self.moved(&second.0, Check::Quick) {
            self.raced.1 += 1;
        }
        self.unpaused_threads(second)
    }

    /// Every thread's stack, read without pausing. `confirm` is [`Confirm::Check`] when the
    /// stacks will be checked ([`Sampler::moved`]) and the sample dropped or taken again if
    /// they moved, [`Confirm::Nothing`] otherwise.
    fn read_unpaused(&mut self, confirm: Confirm) -> Result<StacksAndLocals> {
        Self::read_stacks(
            &self.process,
            &mut self.interpreter,
            &self.options,
            &mut self.recall,
            None,
            confirm,
        )
    }

    /// True when a thread called or returned while `stacks` were read without pausing (see
    /// `python::stacks_moved`), or when the sample used cached code objects unread and the
    /// interpreter made a code object meanwhile (see `python::code::CodeVersions`).
    fn moved(&mut self, stacks: &[ThreadStack], check: Check) -> bool {
        let checker = self.recall.checker(&self.process);
        let watch = self.interpreter.watched();
        let moved = crate::python::stacks_moved(&checker, stacks, check, &mut self.checks, watch);
        !self.interpreter.code_confirmed() || moved
    }

    /// The threads' kernel ids and states for stacks read without pausing: the states of the
    /// threads that do not hold the GIL are read after the stacks (the holder is running,
    /// whatever its state file says); with `--idle` and no reader of activity, none are.
    fn unpaused_threads(&mut self, (stacks, locals): StacksAndLocals) -> Result<Stacks> {
        let tids = self.thread_states.tids(&self.process)?;
        let native_ids = self.native_ids(&stacks, &tids);
        let read_none = self.options.include_idle && !self.options.activity;
        let holders: Vec<u32> = stacks
            .iter()
            .zip(&native_ids)
            .filter(|(stack, _)| stack.holds_gil)
            .filter_map(|(_, tid)| *tid)
            .collect();
        let os_threads = self
            .thread_states
            .read_skipping(&self.process, |tid| read_none || holders.contains(&tid))?;
        Ok((stacks, locals, native_ids, os_threads))
    }

    /// Reads every thread's stack (and locals when asked) with the threads `pause` paused, or
    /// without pausing anything when `pause` is `None`. What the last sample read is read
    /// again in one batch first (see [`Recall`]). `confirm` is [`Confirm::Paused`] exactly
    /// when pausing.
    fn read_stacks(
        process: &Process,
        interpreter: &mut Interpreter,
        options: &SamplerOptions,
        recall: &mut Recall,
        pause: Option<&[u32]>,
        confirm: Confirm,
    ) -> Result<StacksAndLocals> {
        debug_assert_eq!(pause.is_some(), confirm == Confirm::Paused);
        let _pause = match pause {
            Some(tids) => Some(process.pause(tids)?),
            None => None,
        };
        // Read without pausing, the sample is checked afterwards.
        recall.read_through(process, pause.is_none(), |mem| {
            Self::read_recalled(mem, interpreter, options, confirm)
        })
        // The pause guard drops here: the target runs again before we do anything else.
    }

    /// [`Sampler::read_stacks`] once the target is paused.
    fn read_recalled(
        process: &dyn ReadMemory,
        interpreter: &mut Interpreter,
        options: &SamplerOptions,
        confirm: Confirm,
    ) -> Result<StacksAndLocals> {
        let stacks = interpreter.stacks_confirmed(process, options.max_depth, confirm)?;
        // Locals are read while the target is still paused, so they match the stacks.
        let locals = if options.locals {
            stacks
                .iter()
                .map(|s| {
                    s.frame_refs
                        .iter()
                        .map(|at| {
                            interpreter.locals(process, *at).unwrap_or_else(|e| {
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
        Ok((stacks, locals))
    }

    /// Hands a sample back once it has been used, for the next one to reuse its frame lists
    /// (see [`Interpreter::recycle`]).
    pub fn recycle(&mut self, sample: Sample) {
        self.interpreter
            .recycle(sample.threads.into_iter().map(|t| (t.thread_id, t.frames)));
    }

    /// Gives the process back (a process tree keeps its root's handle when the root `exec`s).
    pub fn into_process(self) -> Process {
        self.process
    }

    /// Every thread's kernel id: recorded by the interpreter (3.11+), or read from glibc's
    /// `struct pthread` at the offset found on first use (see [`crate::process::pthread`]).
    fn native_ids(&mut self, stacks: &[ThreadStack], tids: &[u32]) -> Vec<Option<u32>> {
        if stacks.iter().all(|s| s.thread.native_thread_id.is_some()) {
            return stacks.iter().map(|s| s.thread.native_thread_id).collect();
        }
        let pthreads: Vec<u64> = stacks.iter().map(|s| s.thread.thread_id).collect();
        if self.pthread_tid_offset.is_none() {
            self.pthread_tid_offset =
                pthread::tid_offset(&self.process, &pthreads, self.process.pid(), tids);
        }
        match self.pthread_tid_offset {
            Some(offset) => pthread::tids(&self.process, offset, &pthreads),
            None => vec![None; stacks.len()],
        }
    }
}

impl Source for Sampler {
    fn options(&self) -> &SamplerOptions {
        &self.options
    }

    fn target(&mut self) -> &mut Process {
        &mut self.process
    }

    fn tick(&mut self, sink: &mut dyn FnMut(&Sample)) -> Result<Dropped> {
        let sample = self.sample()?;
        sink(&sample);
        self.recycle(sample);
        Ok(Dropped::default())
    }

    fn finish(&mut self) -> Dropped {
        let (raced, again) = self.raced;
        let pid = self.process.pid();
        match self.options.pausing {
            Pausing::Never if raced > 0 => log::info!(
                "pid {pid}: {raced} samples raced with a call or return while they were read; \
                 {again} of them raced again and were kept"
            ),
            Pausing::OnRace if raced > 0 => log::info!(
                "pid {pid}: {raced} samples raced with a call or return while they were read \
                 without pausing, {again} of them again when read at once; {} samples were \
                 taken paused",
                self.paused
            ),
            _ => {}
        }
        Dropped::default()
    }
}

/// How often the loop checks, between ticks, that the target is still there.
const ALIVE_CHECK: Duration = Duration::from_millis(25);

/// Waits shorter than this are not slept: putting the thread to sleep and waking it costs
/// more than the wait (and the kernel may stretch a short sleep), so the tick comes a moment
/// early instead.
const MIN_SLEEP: Duration = Duration::from_micros(50);

/// Waits until `deadline`, in slices of at most 50 ms so that Ctrl-C is noticed quickly even
/// at low rates and the source's between-ticks work gets its turn. `now` is the time it is
/// called at; returns the time it returns at (`now` again when it did not sleep: at high
/// rates most ticks come straight after the last, and a clock read is worth saving).
fn wait_until<S: Source + ?Sized>(
    deadline: Instant,
    mut now: Instant,
    stop: &AtomicBool,
    source: &mut S,
) -> Result<Instant> {
    loop {
        if source.maintain()? {
            now = Instant::now();
        }
        if now + MIN_SLEEP >= deadline || stop.load(Ordering::Relaxed) {
            return Ok(now);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
        now = Instant::now();
    }
}

/// Lets this thread's sleeps end within a hundredth of the sampling interval (between 1 and
/// 50 µs, the kernel's default) so that high rates are kept. Failing to is harmless.
fn tighten_timer_slack(rate_hz: f64) {
    if rate_hz.is_finite() && rate_hz > 0.0 {
        let slack_ns = (1e9 / rate_hz / 100.0).clamp(1_000.0, 50_000.0);
        let _ = nix::sys::prctl::set_timerslack(slack_ns as libc::c_ulong);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options for tests: 100 Hz, every thread, no duration.
    pub(crate) fn options() -> SamplerOptions {
        SamplerOptions {
            rate_hz: 100.0,
            duration: None,
            pausing: Pausing::Always,
            include_idle: true,
            activity: true,
            gil_only: false,
            full_filenames: false,
            max_depth: 128,
            seed: 1,
            locals: false,
        }
    }

    /// The takes of `n` samples whose reads race as `races` says (by sample number), and the
    /// rate after them.
    fn takes(n: usize, races: impl Fn(usize) -> bool) -> (Vec<Take>, f64) {
        let mut watch = RaceWatch::default();
        let takes = (0..n)
            .map(|i| {
                let take = watch.next();
                if take != Take::Paused {
                    watch.read(races(i));
                }
                take
            })
            .collect();
        (takes, watch.rate)
    }

    #[test]
    fn on_race_probes_first_then_reads_unpaused_while_races_are_rare() {
        // One read in 50 races, as on cpu_split at 1000 Hz.
        let (takes, rate) = takes(200, |i| i % 50 == 49);
        assert!(takes[..8].iter().all(|t| *t == Take::Probe), "{takes:?}");
        assert!(takes[8..].iter().all(|t| *t == Take::Unpaused), "{takes:?}");
        assert!(rate < STORMY, "{rate}");
    }

    #[test]
    fn on_race_pauses_every_sample_while_most_reads_race_and_probes_one_in_16() {
        let (takes, rate) = takes(8 + 16 * 10, |_| true);
        assert!(takes[..8].iter().all(|t| *t == Take::Probe));
        for (i, take) in takes[8..].iter().enumerate() {
            let want = if i % 16 == 15 {
                Take::Probe
            } else {
                Take::Paused
            };
            assert_eq!(*take, want, "sample {}", i + 8);
        }
        assert!(rate > 0.9, "{rate}");
        // Once the races stop, the probes bring the rate down and reads go unpaused again.
        let mut watch = RaceWatch::default();
        for _ in 0..8 {
            watch.next();
            watch.read(true);
        }
        let mut samples = 0;
        loop {
            match watch.next() {
                Take::Unpaused => break,
                Take::Probe => watch.read(false),
                Take::Paused => {}
            }
            samples += 1;
            assert!(samples < 16 * 40, "never calm again");
        }
        assert!(watch.rate <= STORMY);
        // Each probe takes 1/8 of the way down: from 1.0 to 0.3, ten probes.
        assert_eq!(samples, 16 * 10, "{samples}");
    }

    #[test]
    fn on_race_two_races_in_a_row_do_not_pause_every_sample_but_three_do() {
        // Warm and calm, then races in a row (cpu_split's phase drifting past a call).
        let (two, _) = takes(60, |i| (30..32).contains(&i));
        assert!(two[8..].iter().all(|t| *t == Take::Unpaused), "{two:?}");
        let (three, _) = takes(60, |i| (30..33).contains(&i));
        assert_eq!(three[33], Take::Paused, "{three:?}");
    }

    /// A source that replays a script of tick outcomes, then reports the target gone.
    struct Scripted {
        options: SamplerOptions,
        process: Process,
        ticks: std::vec::IntoIter<Result<Dropped>>,
    }

    impl Source for Scripted {
        fn options(&self) -> &SamplerOptions {
            &self.options
        }
        fn target(&mut self) -> &mut Process {
            &mut self.process
        }
        fn tick(&mut self, _: &mut dyn FnMut(&Sample)) -> Result<Dropped> {
            self.ticks
                .next()
                .unwrap_or(Err(Error::ProcessGone(std::process::id())))
        }
    }

    fn run_script(ticks: Vec<Result<Dropped>>) -> (StopReason, Stats) {
        let mut source = Scripted {
            options: SamplerOptions {
                rate_hz: 1000.0,
                ..options()
            },
            // Ourselves: alive throughout, so only the script decides.
            process: Process::attach(std::process::id()).unwrap(),
            ticks: ticks.into_iter(),
        };
        let stop = AtomicBool::new(false);
        source.run(&stop, &mut |_| {}, &mut |_| {}).unwrap()
    }

    #[test]
    fn a_failed_sample_just_before_the_target_exits_is_no_error() {
        let torn = || Err(Error::corrupt("torn"));
        let ok = || Ok(Dropped::default());
        // Fails, then the target is gone: the failure was its exit.
        let (reason, stats) = run_script(vec![ok(), torn()]);
        assert_eq!(reason, StopReason::TargetExited);
        assert_eq!((stats.samples, stats.errors), (1, 0));
        // Fails, then samples again: that failure counts, with its message.
        let (_, stats) = run_script(vec![ok(), torn(), ok(), torn(), torn()]);
        assert_eq!((stats.samples, stats.errors), (2, 2));
        assert!(stats.last_error.unwrap().contains("torn"));
    }
}
