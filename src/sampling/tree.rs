//! `--subprocesses`: sampling a process and all its descendants, including those started after
//! sampling began.
//!
//! [`ProcessTree`] is a [`Source`], so [`Source::run`] samples it exactly as it samples a
//! single [`Sampler`]: at each tick every followed Python process is sampled in turn by its own
//! `Sampler` (each paused only while its own stacks are read), and every sample carries its
//! process's command line so that the output can root its stacks at the process.
//!
//! Between ticks, at least every [`POLL_INTERVAL`], [`ProcessTree::poll`] lists the root's
//! descendants ([`children`]) and attaches to the new Python ones; attaching (reading the
//! ELF files) happens only there, never on a tick. A descendant younger than [`SETTLE`] is
//! left for the next poll: to run a program, a Python process forks a copy of itself, and
//! that copy would show its parent's stacks until it `exec`s. What is not Python is left
//! alone quietly; a pid is looked at again when its [`Identity`] changes (an `exec`, or a
//! reused pid), and only a few times in between, in case it was caught while its dynamic
//! loader was still mapping `libpython` (`retry_delay`).
//!
//! A descendant that exits is dropped without an error. Since a Python process that is
//! finalising fails reads for a while before it exits (and may give a sample or two in
//! between), a process's dropped samples are held back and counted only once the process is
//! still alive [`HOLD_ERRORS`] after the first of them, or when sampling ends. The root's exit ends sampling, even
//! while descendants are alive, as for a single process.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Dropped, Sampler, SamplerOptions, Source};
use crate::error::{Error, Recovery, Result};
use crate::model::Sample;
use crate::process::children::{self, Identity, Stat};
use crate::process::Process;
use crate::python::Interpreter;

/// How often the tree looks for new, changed and exited descendants.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long a process must outlive a dropped sample for it to count as an error.
pub const HOLD_ERRORS: Duration = Duration::from_secs(1);
/// How old a descendant must be (since its fork) to be attached.
pub const SETTLE: Duration = Duration::from_millis(50);
/// How many more times a process that is not Python is looked at before it is left alone
/// until its identity changes.
const NOT_PYTHON_RETRIES: u32 = 4;
/// Backoff doublings for a Python process that cannot be read yet (up to 1.6 s apart).
const MAX_DOUBLINGS: u32 = 4;

/// Why attaching to a process failed, as far as following it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttachFailure {
    /// No interpreter in it (a shell, `sleep`, a program still being loaded).
    NotPython,
    /// Python, but not readable yet (starting up, or its interpreter not found yet).
    NotReady,
    /// Never readable as it is (permissions, an unsupported version).
    Refused,
    /// It has exited.
    Gone,
}

impl AttachFailure {
    fn of(e: &Error) -> AttachFailure {
        match e {
            Error::NotPython { .. } => AttachFailure::NotPython,
            Error::InterpreterNotFound { .. } | Error::Binary { .. } => AttachFailure::NotReady,
            e => match e.recovery() {
                Recovery::SkipSample => AttachFailure::NotReady,
                Recovery::TargetExited => AttachFailure::Gone,
                Recovery::Abort => AttachFailure::Refused,
            },
        }
    }
}

/// How long to wait before attaching again after the `attempts`-th failure in a row of the
/// same kind (and the same identity), or `None` to wait for the identity to change. A process that is not Python
/// gets a few more looks over about 1.5 s, which covers an `exec` caught before the loader
/// mapped `libpython`; one that is Python but not readable yet is retried with a backoff.
fn retry_delay(failure: AttachFailure, attempts: u32) -> Option<Duration> {
    let backoff = POLL_INTERVAL * (1 << attempts.saturating_sub(1).min(MAX_DOUBLINGS));
    match failure {
        AttachFailure::NotPython if attempts <= NOT_PYTHON_RETRIES => Some(backoff),
        AttachFailure::NotReady => Some(backoff),
        _ => None,
    }
}

/// After a failed attach: the new run of failures (a different kind from the last one starts
/// a new count) and how long to wait before the next attempt (see [`retry_delay`]).
fn after_failure(
    last: Option<(AttachFailure, u32)>,
    failure: AttachFailure,
) -> ((AttachFailure, u32), Option<Duration>) {
    let attempts = match last {
        Some((kind, n)) if kind == failure => n.saturating_add(1),
        _ => 1,
    };
    ((failure, attempts), retry_delay(failure, attempts))
}

/// A process and its descendants, sampled together.
pub struct ProcessTree {
    root: u32,
    options: SamplerOptions,
    /// Every process followed, the root included (it is never removed), by pid.
    members: BTreeMap<u32, Member>,
    next_poll: Instant,
    /// Held-back errors that a poll released, for the next tick to report.
    released: Dropped,
}

/// One process of the tree.
struct Member {
    identity: Option<Identity>,
    command_line: Arc<str>,
    state: State,
}

enum State {
    /// Not (yet) attached: tried again at `retry_at`, or only once its identity changes.
    /// `failed` is the last failure and how many of that kind came in a row: a process that
    /// goes from "not Python" to "not ready" is making progress and starts a new count.
    Waiting {
        process: Process,
        failed: Option<(AttachFailure, u32)>,
        retry_at: Option<Instant>,
    },
    /// Attached and sampled at every tick.
    Sampled {
        sampler: Box<Sampler>,
        /// Dropped samples not counted yet, and when the first of them was dropped.
        held: Dropped,
        held_since: Option<Instant>,
    },
}

impl Member {
    /// A process seen for the first time (or changed): to be attached at the next poll.
    fn new(process: Process, identity: Option<Identity>, now: Instant) -> Member {
        let command_line = process
            .cmdline()
            .map(|args| args.join(" "))
            .unwrap_or_default();
        Member {
            identity,
            command_line: Arc::from(command_line),
            state: State::Waiting {
                process,
                failed: None,
                retry_at: Some(now),
            },
        }
    }

    fn process(&mut self) -> &mut Process {
        match &mut self.state {
            State::Waiting { process, .. } => process,
            State::Sampled { sampler, .. } => sampler.process(),
        }
    }

    fn into_process(self) -> Process {
        self.state.into_process()
    }
}

impl State {
    fn sampled(process: Process, interpreter: Interpreter, options: &SamplerOptions) -> State {
        State::Sampled {
            sampler: Box::new(Sampler::new(process, interpreter, options.clone())),
            held: Dropped::default(),
            held_since: None,
        }
    }

    fn into_process(self) -> Process {
        match self {
            State::Waiting { process, .. } => process,
            State::Sampled { sampler, .. } => sampler.into_process(),
        }
    }
}

impl ProcessTree {
    /// Follows `root` (attached or launched) and its descendants. Pass the root's interpreter
    /// when it is already attached; otherwise the first poll tries, and later polls try again
    /// when it `exec`s (a shell that runs Python), while its descendants are followed anyway.
    pub fn new(
        root: Process,
        interpreter: Option<Interpreter>,
        options: SamplerOptions,
    ) -> ProcessTree {
        let now = Instant::now();
        let pid = root.pid();
        let identity = children::stat_of(pid).map(|stat| children::identity(&stat));
        let mut member = Member::new(root, identity, now);
        if let Some(interpreter) = interpreter {
            let process = member.state.into_process();
            member.state = State::sampled(process, interpreter, &options);
        }
        ProcessTree {
            root: pid,
            options,
            members: BTreeMap::from([(pid, member)]),
            next_poll: now,
            released: Dropped::default(),
        }
    }

    /// The root process.
    pub fn root(&mut self) -> &mut Process {
        self.members
            .get_mut(&self.root)
            .expect("the root is never removed")
            .process()
    }

    /// How many processes are sampled now (attached Python processes).
    pub fn sampled(&self) -> usize {
        self.members
            .values()
            .filter(|m| matches!(m.state, State::Sampled { .. }))
            .count()
    }

    /// Looks for new, changed and exited descendants now, and attaches to the Python ones
    /// that are due. Fails only for the root, when it cannot be read for a reason that will
    /// not pass (permissions, an unsupported version).
    pub fn poll(&mut self) -> Result<()> {
        let now = Instant::now();
        self.next_poll = now + POLL_INTERVAL;
        let processes = children::scan();
        let stats: HashMap<u32, &Stat> = processes.iter().map(|s| (s.pid, s)).collect();
        let mut wanted = vec![self.root];
        wanted.extend(children::descendants(self.root, &processes));
        let wanted_set: HashSet<u32> = wanted.iter().copied().collect();

        // Processes that exited or left the tree (adopted elsewhere when their parent died).
        let left: Vec<u32> = self
            .members
            .keys()
            .copied()
            .filter(|pid| *pid != self.root && !wanted_set.contains(pid))
            .collect();
        for pid in left {
            self.forget(pid, stats.contains_key(&pid));
        }

        let mut root_error = None;
        for pid in wanted {
            // Only the root can be missing (the loop notices its exit); descendants come from
            // the same scan.
            let Some(stat) = stats.get(&pid) else {
                continue;
            };
            let identity = children::identity(stat);
            let member = match self.members.remove(&pid) {
                Some(member)
                    if member
                        .identity
                        .as_ref()
                        .is_some_and(|old| !old.is_replaced_by(&identity)) =>
                {
                    member
                }
                Some(member) => {
                    log::debug!("process {pid} changed (exec): looking at it afresh");
                    Member::new(member.into_process(), Some(identity), now)
                }
                None => match Process::attach(pid) {
                    Ok(process) => Member::new(process, Some(identity), now),
                    Err(_) => continue,
                },
            };
            // Only a member about to be attached needs its age. The root was launched or named
            // by the user: it is no copy of a Python parent about to exec something else.
            let due =
                matches!(member.state, State::Waiting { retry_at: Some(due), .. } if due <= now);
            let settled =
                !due || pid == self.root || children::age(stat).is_none_or(|age| age >= SETTLE);
            let (member, error) = self.update(pid, member, settled, now);
            self.members.insert(pid, member);
            if pid == self.root {
                root_error = error;
            }
        }
        root_error.map_or(Ok(()), Err)
    }

    /// Attaches to a waiting member when it is due and `settled` (old enough); counts a sampled
    /// member's held errors once it has outlived them long enough. Returns the root's lasting
    /// attach error.
    fn update(
        &mut self,
        pid: u32,
        member: Member,
        settled: bool,
        now: Instant,
    ) -> (Member, Option<Error>) {
        let Member {
            identity,
            mut command_line,
            state,
        } = member;
        let mut error = None;
        let state = match state {
            State::Waiting {
                process,
                failed,
                retry_at: Some(due),
            } if due <= now && settled => match attach(&process) {
                Ok(interpreter) => {
                    // Read in the middle of an `exec`, the command line comes out empty:
                    // by now the program runs, and has one.
                    if command_line.is_empty() {
                        if let Ok(args) = process.cmdline() {
                            command_line = Arc::from(args.join(" "));
                        }
                    }
                    log::info!(
                        "following process {pid} ({command_line}): Python {}",
                        interpreter.version
                    );
                    State::sampled(process, interpreter, &self.options)
                }
                Err(e) => {
                    let failure = AttachFailure::of(&e);
                    let (failed, delay) = after_failure(failed, failure);
                    match failure {
                        // The root's exit is for the sampling loop to notice.
                        AttachFailure::Gone => {}
                        AttachFailure::Refused if pid == self.root => error = Some(e),
                        AttachFailure::Refused => {
                            log::info!("not following process {pid} ({command_line}): {e}")
                        }
                        _ => log::debug!("process {pid} ({command_line}), {failed:?}: {e}"),
                    }
                    State::Waiting {
                        process,
                        failed: Some(failed),
                        retry_at: delay.map(|d| now + d),
                    }
                }
            },
            State::Sampled {
                sampler,
                held,
                held_since: Some(since),
            } if now.duration_since(since) >= HOLD_ERRORS => {
                self.released.absorb(held);
                State::Sampled {
                    sampler,
                    held: Dropped::default(),
                    held_since: None,
                }
            }
            state => state,
        };
        let member = Member {
            identity,
            command_line,
            state,
        };
        (member, error)
    }

    /// Samples every attached process once, the root first, handing each sample (with its
    /// command line) to `sink` together with its sampler. A descendant that has exited is
    /// dropped quietly, and one that can no longer be read for a lasting reason is no longer
    /// followed; the root's exit or lasting error is returned. The dropped samples counted now
    /// are returned (see the module docs for why they are held back).
    pub fn sample_each(&mut self, sink: &mut dyn FnMut(&Sample, &Sampler)) -> Result<Dropped> {
        let now = Instant::now();
        let dropped = std::mem::take(&mut self.released);
        let root = self.root;
        let order =
            std::iter::once(root).chain(self.members.keys().copied().filter(|p| *p != root));
        let pids: Vec<u32> = order.collect();
        for pid in pids {
            let Some(member) = self.members.get_mut(&pid) else {
                continue;
            };
            let State::Sampled {
                sampler,
                held,
                held_since,
            } = &mut member.state
            else {
                continue;
            };
            let error = match sampler.sample() {
                Ok(mut sample) => {
                    sample.command_line = Some(member.command_line.clone());
                    sink(&sample, sampler);
                    sampler.recycle(sample);
                    continue;
                }
                Err(e) => e,
            };
            match sampler.classify(&error) {
                Recovery::SkipSample => {
                    log::debug!("sample of process {pid} dropped: {error}");
                    held.add(&error);
                    held_since.get_or_insert(now);
                }
                _ if pid == root => return Err(error),
                Recovery::TargetExited => self.forget(pid, false),
                Recovery::Abort => {
                    log::info!("no longer following process {pid}: {error}");
                    self.stop_following(pid);
                }
            }
        }
        Ok(dropped)
    }

    /// Stops following a descendant that exited or, still `alive`, left the tree. The samples
    /// it dropped count only in the second case.
    fn forget(&mut self, pid: u32, alive: bool) {
        let Some(member) = self.members.remove(&pid) else {
            return;
        };
        if let State::Sampled { held, .. } = member.state {
            if alive {
                log::info!("no longer following process {pid}: it left the tree");
                self.released.absorb(held);
            } else {
                log::info!("no longer following process {pid}: it exited");
            }
        }
    }

    /// Leaves a descendant alone until its identity changes.
    fn stop_following(&mut self, pid: u32) {
        if let Some(mut member) = self.members.remove(&pid) {
            let process = member.state.into_process();
            member.state = State::Waiting {
                process,
                failed: None,
                retry_at: None,
            };
            self.members.insert(pid, member);
        }
    }
}

/// Attaches to a process's interpreter, which must have a thread already.
fn attach(process: &Process) -> Result<Interpreter> {
    Interpreter::attach(process).and_then(|i| i.threads(process).map(|_| i))
}

impl Source for ProcessTree {
    fn options(&self) -> &SamplerOptions {
        &self.options
    }

    fn target(&mut self) -> &mut Process {
        self.root()
    }

    fn tick(&mut self, sink: &mut dyn FnMut(&Sample)) -> Result<Dropped> {
        self.sample_each(&mut |sample, _| sink(sample))
    }

    fn maintain(&mut self) -> Result<bool> {
        if Instant::now() < self.next_poll {
            return Ok(false);
        }
        self.poll()?;
        Ok(true)
    }

    /// The held errors of the processes that are still alive.
    fn finish(&mut self) -> Dropped {
        let mut dropped = std::mem::take(&mut self.released);
        for member in self.members.values_mut() {
            if let State::Sampled { sampler, held, .. } = &mut member.state {
                if held.count > 0 && sampler.process().is_alive() {
                    dropped.absorb(std::mem::take(held));
                }
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn a_program_that_is_not_python_gets_a_few_looks_then_rest() {
        let delays: Vec<Option<Duration>> = (1..=6)
            .map(|n| retry_delay(AttachFailure::NotPython, n))
            .collect();
        assert_eq!(delays, vec![ms(100), ms(200), ms(400), ms(800), None, None]);
    }

    #[test]
    fn python_that_is_not_ready_is_retried_with_a_capped_backoff() {
        let delays: Vec<Option<Duration>> = [1, 2, 3, 5, 6, 100, u32::MAX]
            .into_iter()
            .map(|n| retry_delay(AttachFailure::NotReady, n))
            .collect();
        assert_eq!(
            delays,
            vec![
                ms(100),
                ms(200),
                ms(400),
                ms(1600),
                ms(1600),
                ms(1600),
                ms(1600)
            ]
        );
        assert_eq!(retry_delay(AttachFailure::Refused, 1), None);
    }

    #[test]
    fn a_process_that_becomes_python_starts_a_new_count() {
        use AttachFailure::*;
        let mut last = None;
        let mut delays = Vec::new();
        for failure in [
            NotPython, NotPython, NotPython, NotReady, NotReady, NotPython,
        ] {
            let (failed, delay) = after_failure(last, failure);
            last = Some(failed);
            delays.push(delay);
        }
        assert_eq!(
            delays,
            vec![ms(100), ms(200), ms(400), ms(100), ms(200), ms(100)]
        );
        assert_eq!(last, Some((NotPython, 1)));
    }

    #[test]
    fn attach_errors_are_sorted_by_what_to_do_next() {
        let not_python = Error::NotPython {
            pid: 1,
            exe: "/bin/sh".into(),
        };
        assert_eq!(AttachFailure::of(&not_python), AttachFailure::NotPython);
        assert_eq!(
            AttachFailure::of(&Error::NotInitialised),
            AttachFailure::NotReady
        );
        let not_found = Error::InterpreterNotFound {
            pid: 1,
            binary: "python".into(),
            reason: "still loading".into(),
        };
        assert_eq!(AttachFailure::of(&not_found), AttachFailure::NotReady);
        let version = Error::UnsupportedVersion {
            found: "3.5.0".into(),
            supported: "…".into(),
        };
        assert_eq!(AttachFailure::of(&version), AttachFailure::Refused);
        assert_eq!(
            AttachFailure::of(&Error::ProcessGone(1)),
            AttachFailure::Gone
        );
        assert_eq!(retry_delay(AttachFailure::Gone, 1), None);
    }

    #[test]
    fn a_tree_of_non_python_processes_samples_nothing_and_keeps_its_root() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let root = Process::attach(std::process::id()).unwrap();
        let mut tree = ProcessTree::new(root, None, super::super::tests::options());
        tree.poll().unwrap();
        let mut seen = 0;
        let dropped = tree.sample_each(&mut |_, _| seen += 1).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!((seen, dropped.count, tree.sampled()), (0, 0, 0));
        assert!(tree.members.contains_key(&child.id()), "the child is known");
        assert_eq!(tree.root().pid(), std::process::id());
        tree.poll().unwrap();
        assert!(!tree.members.contains_key(&child.id()), "and forgotten");
    }
}
