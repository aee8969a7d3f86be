//! Linux: `process_vm_readv` for memory, ptrace (seize + interrupt) for pausing, `/proc` for
//! threads, maps and the executable. The only file that talks to the OS about the target.

use std::cell::Cell;
use std::io::IoSliceMut;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use smallvec::SmallVec;

use super::maps::MapRange;
use super::{ReadMemory, ReadRequest, RemoteAddr};
use crate::error::{Error, Result};

/// A live process we sample: attached by pid or launched by us.
pub struct Process {
    pid: u32,
    child: Option<Child>,
    exit_status: Option<ExitStatus>,
    /// Set when a pause's `waitpid` reaped our child, so its status is not lost.
    reaped: Cell<Option<ExitStatus>>,
    /// `/proc/PID/stat`, kept open: whether the process still exists is asked at every tick,
    /// and one `pread` answers it.
    stat: std::cell::OnceCell<Option<std::fs::File>>,
}

/// Where a launched command's standard streams go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChildStdio {
    /// Ours: the command shares our terminal (or pipes).
    #[default]
    Inherit,
    /// `/dev/null` for all three, for when we own the terminal (`top`): the command can
    /// neither read our keys nor write over the screen.
    Null,
}

/// One kernel thread of the target and its scheduler state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsThread {
    /// The kernel thread id.
    pub tid: u32,
    /// True when the kernel reports the thread running or runnable (`R`).
    pub running: bool,
}

/// The scheduler states of one process's threads, read sample after sample for little: each
/// thread's `/proc/PID/task/TID/stat` stays open and is read again with one `pread`, and the
/// thread list itself (`/proc/PID/task`, several calls) is read again only every
/// [`ThreadStates::LIST_INTERVAL`], or at once when the interpreter knows a thread the list
/// lacks ([`ThreadStates::include`]).
pub struct ThreadStates {
    pid: u32,
    files: Vec<(u32, std::fs::File)>,
    listed_at: Option<Instant>,
    /// Thread ids asked for by [`ThreadStates::include`] that the last listing lacked (stale
    /// thread states, not threads): not worth another listing until the next periodic one.
    absent: Vec<u32>,
    buf: Vec<u8>,
}

impl ThreadStates {
    /// How long a thread list is trusted for finding new threads (exited ones drop out at once).
    pub const LIST_INTERVAL: Duration = Duration::from_millis(250);

    /// States for `pid`'s threads; nothing is read yet.
    pub fn new(pid: u32) -> ThreadStates {
        ThreadStates {
            pid,
            files: Vec::new(),
            listed_at: None,
            absent: Vec::new(),
            buf: vec![0; 512],
        }
    }

    /// Every known thread with its state now, sorted by id. Fails only when the process is
    /// gone (or its threads cannot be listed at all).
    pub fn read(&mut self, process: &Process) -> Result<Vec<OsThread>> {
        self.read_skipping(process, |_| false)
    }

    /// [`ThreadStates::read`], except that the threads for which `skip` holds are not read:
    /// they are reported running (a thread known to hold the GIL is, whatever its state file
    /// says).
    pub fn read_skipping(
        &mut self,
        process: &Process,
        skip: impl Fn(u32) -> bool,
    ) -> Result<Vec<OsThread>> {
        let due = self.list_if_due(process)?;
        let threads = self.read_open(&skip);
        if threads.is_empty() && !due {
            // Every thread gone: a fresh listing tells whether the process is.
            self.list(process)?;
            return Ok(self.read_open(&skip));
        }
        Ok(threads)
    }

    /// The listed threads' ids (listed again first when the listing is due), sorted.
    pub fn tids(&mut self, process: &Process) -> Result<Vec<u32>> {
        self.list_if_due(process)?;
        Ok(self.files.iter().map(|(tid, _)| *tid).collect())
    }

    /// Lists the threads when the last listing is older than [`Self::LIST_INTERVAL`]; true
    /// when it did.
    fn list_if_due(&mut self, process: &Process) -> Result<bool> {
        let due = self
            .listed_at
            .is_none_or(|at| at.elapsed() >= Self::LIST_INTERVAL);
        if due {
            self.list(process)?;
        }
        Ok(due)
    }

    /// When some of `tids` (threads the interpreter knows) are not among the listed threads,
    /// lists them again and returns the states now; `None` when nothing new was asked for.
    pub fn include(&mut self, process: &Process, tids: &[u32]) -> Result<Option<Vec<OsThread>>> {
        let known =
            |tid: &u32| self.files.iter().any(|(t, _)| t == tid) || self.absent.contains(tid);
        if tids.iter().all(known) {
            return Ok(None);
        }
        self.list(process)?;
        let threads = self.read_open(&|_| false);
        self.absent = tids
            .iter()
            .copied()
            .filter(|tid| threads.iter().all(|t| t.tid != *tid))
            .collect();
        Ok(Some(threads))
    }

    /// Reads every open stat file once, except those of the threads `skip` picks (reported
    /// running); threads that exited drop out.
    fn read_open(&mut self, skip: &dyn Fn(u32) -> bool) -> Vec<OsThread> {
        use std::os::unix::fs::FileExt;
        let mut threads = Vec::with_capacity(self.files.len());
        let buf = &mut self.buf;
        self.files.retain(|(tid, file)| {
            if skip(*tid) {
                threads.push(OsThread {
                    tid: *tid,
                    running: true,
                });
                return true;
            }
            let state = file
                .read_at(buf, 0)
                .ok()
                .and_then(|n| live_state(&buf[..n]));
            if let Some(state) = state {
                threads.push(OsThread {
                    tid: *tid,
                    running: state == b'R',
                });
            }
            state.is_some()
        });
        threads
    }

    /// Lists the threads again, keeping the files already open.
    fn list(&mut self, process: &Process) -> Result<()> {
        let tids = process.tids()?;
        self.files
            .retain(|(tid, _)| tids.binary_search(tid).is_ok());
        for tid in tids {
            if self.files.iter().all(|(t, _)| *t != tid) {
                let path = format!("/proc/{}/task/{tid}/stat", self.pid);
                // A thread that exits between the listing and the open is simply left out.
                if let Ok(file) = std::fs::File::open(path) {
                    self.files.push((tid, file));
                }
            }
        }
        self.files.sort_by_key(|(tid, _)| *tid);
        self.listed_at = Some(Instant::now());
        self.absent.clear();
        Ok(())
    }
}

/// The paused threads; dropping this value resumes them (detaches ptrace).
pub struct Pause<'a> {
    tids: Vec<Pid>,
    /// The process's pid: only its leader thread's exit status is the process's.
    leader: Pid,
    /// Where the exit status goes when the launched child dies while paused and its zombie
    /// is collected here.
    reaped: &'a Cell<Option<ExitStatus>>,
}

impl Drop for Pause<'_> {
    fn drop(&mut self) {
        for tid in &self.tids {
            if let Err(e) = ptrace::detach(*tid, None) {
                log::debug!("detaching thread {tid}: {e}");
                // Only a thread that died while stopped (SIGKILL) cannot be detached. Its
                // zombie waits for us, its tracer, before its parent can reap it: collect it.
                if let Some(status) = collect_exit(*tid).filter(|_| *tid == self.leader) {
                    self.reaped.set(Some(status));
                }
            }
        }
    }
}

/// Waits (without blocking) for a traced thread that died; its exit status, when its zombie
/// was there to collect.
fn collect_exit(tid: Pid) -> Option<ExitStatus> {
    waitpid(tid, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL))
        .ok()
        .and_then(exit_status)
}

/// The exit status a wait reported, when it reported an exit (normal or by a signal).
fn exit_status(status: WaitStatus) -> Option<ExitStatus> {
    match status {
        WaitStatus::Exited(_, code) => Some(ExitStatus::from_raw(code << 8)),
        WaitStatus::Signaled(_, sig, _) => Some(ExitStatus::from_raw(sig as i32)),
        _ => None,
    }
}

/// What happened when we tried to stop one thread.
enum StopOutcome {
    Stopped,
    Gone(Option<ExitStatus>),
}

impl Process {
    /// Attaches to an existing process. Fails at once when no such process exists.
    pub fn attach(pid: u32) -> Result<Process> {
        if pid == 0 || !PathBuf::from(format!("/proc/{pid}")).exists() {
            return Err(Error::NoSuchProcess(pid));
        }
        Ok(Process {
            pid,
            child: None,
            exit_status: None,
            reaped: Cell::new(None),
            stat: std::cell::OnceCell::new(),
        })
    }

    /// Starts `argv` as a child that shares our stdin, stdout and stderr.
    pub fn launch(argv: &[String]) -> Result<Process> {
        Process::launch_with(argv, ChildStdio::Inherit)
    }

    /// Starts `argv` as a child whose standard streams are `stdio`.
    pub fn launch_with(argv: &[String], stdio: ChildStdio) -> Result<Process> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| Error::corrupt("empty command line"))?;
        let mut command = Command::new(program);
        command.args(args);
        if stdio == ChildStdio::Null {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        let child = command
            .spawn()
            .map_err(|e| Error::io(format!("could not start `{program}`"), e))?;
        Ok(Process {
            pid: child.id(),
            child: Some(child),
            exit_status: None,
            reaped: Cell::new(None),
            stat: std::cell::OnceCell::new(),
        })
    }

    /// The target's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// True when we launched the target.
    pub fn is_child(&self) -> bool {
        self.child.is_some()
    }

    /// True while the process exists (and, for our child, has not been reaped).
    pub fn is_alive(&mut self) -> bool {
        if let Some(child) = &mut self.child {
            if self.exit_status.is_none() {
                self.exit_status = self.reaped.take();
            }
            if self.exit_status.is_none() {
                match child.try_wait() {
                    Ok(Some(status)) => self.exit_status = Some(status),
                    Ok(None) => {}
                    // Reaped elsewhere without a status we could keep: it is gone all the same.
                    Err(_) => return false,
                }
            }
            return self.exit_status.is_none();
        }
        let stat = self
            .stat
            .get_or_init(|| std::fs::File::open(format!("/proc/{}/stat", self.pid)).ok());
        let Some(stat) = stat else {
            return process_exists(self.pid);
        };
        let mut buf = [0u8; 512];
        // Once the process is reaped the open file reads as an error.
        match std::os::unix::fs::FileExt::read_at(stat, &mut buf, 0) {
            Ok(n) => live_state(&buf[..n]).is_some(),
            Err(_) => false,
        }
    }

    /// The exit status of a launched child, once it has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit_status
    }

    /// Ends a launched child that is still running: SIGTERM, then SIGKILL after `grace`.
    /// Returns its exit status. Does nothing for an attached process.
    pub fn finish_child(&mut self, grace: Duration) -> Option<ExitStatus> {
        let pid = self.pid;
        if self.exit_status.is_none() {
            self.exit_status = self.reaped.take();
        }
        let child = self.child.as_mut()?;
        if self.exit_status.is_none() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), nix::sys::signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    self.exit_status = Some(status);
                    return self.exit_status;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            self.exit_status = child.wait().ok();
        }
        self.exit_status
    }

    /// Waits for a launched child to exit by itself, up to `timeout`.
    pub fn wait_child(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while self.is_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.exit_status
    }

    /// The path of the target's executable (`/proc/PID/exe`).
    pub fn exe(&self) -> Result<PathBuf> {
        std::fs::read_link(format!("/proc/{}/exe", self.pid)).map_err(|e| self.proc_error("exe", e))
    }

    /// The target's command line.
    pub fn cmdline(&self) -> Result<Vec<String>> {
        let raw = std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .map_err(|e| self.proc_error("cmdline", e))?;
        Ok(raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect())
    }

    /// The target's memory map.
    pub fn maps(&self) -> Result<Vec<MapRange>> {
        let text = std::fs::read_to_string(format!("/proc/{}/maps", self.pid))
            .map_err(|e| self.proc_error("maps", e))?;
        Ok(super::maps::parse(&text))
    }

    /// A path through which a file the target has mapped can be opened from here, even when the
    /// target lives in another mount namespace (a container).
    pub fn file_path(&self, path: &str) -> PathBuf {
        let through_root = PathBuf::from(format!("/proc/{}/root{}", self.pid, path));
        if through_root.exists() {
            through_root
        } else {
            PathBuf::from(path)
        }
    }

    /// The kernel thread ids of the target, sorted.
    pub fn tids(&self) -> Result<Vec<u32>> {
        let dir = std::fs::read_dir(format!("/proc/{}/task", self.pid))
            .map_err(|e| self.proc_error("task", e))?;
        let mut tids: Vec<u32> = dir
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .collect();
        tids.sort_unstable();
        Ok(tids)
    }

    /// Pauses the given threads (ptrace seize + interrupt) until the returned guard is dropped.
    /// Threads that exit meanwhile are skipped. Only running threads need pausing: a sleeping
    /// thread's stack cannot change, and interrupting it would wake it (its blocking call
    /// returns EINTR after the stop), which costs the target and makes it look busy.
    pub fn pause(&self, tids: &[u32]) -> Result<Pause<'_>> {
        let mut pause = Pause {
            tids: Vec::new(),
            leader: Pid::from_raw(self.pid as i32),
            reaped: &self.reaped,
        };
        for &tid in tids {
            let tid = Pid::from_raw(tid as i32);
            match self.stop_thread(tid)? {
                StopOutcome::Stopped => pause.tids.push(tid),
                StopOutcome::Gone(Some(status)) if tid == pause.leader => {
                    self.reaped.set(Some(status))
                }
                StopOutcome::Gone(_) => {}
            }
        }
        Ok(pause)
    }

    /// Pauses every thread of the target, running or not (for one-off consistent reads such as
    /// recording a snapshot).
    pub fn pause_all(&self) -> Result<Pause<'_>> {
        self.pause(&self.tids()?)
    }

    /// Seizes `tid` and waits until it is stopped for us or gone.
    ///
    /// Any ptrace stop clears a pending `PTRACE_INTERRUPT`. So when the first stop we see is
    /// the delivery of a signal meant for the target (it may have been dequeued just as we
    /// seized), the signal is passed on and the interrupt asked for again; waiting without
    /// asking again would wait until the thread happened to stop by itself, which may be
    /// never. A thread that dies meanwhile is waited for too, so that its zombie is not kept
    /// from its parent by us, its tracer.
    fn stop_thread(&self, tid: Pid) -> Result<StopOutcome> {
        match ptrace::seize(tid, ptrace::Options::PTRACE_O_TRACEEXIT) {
            Ok(()) => {}
            Err(Errno::ESRCH) => return Ok(StopOutcome::Gone(None)),
            // A thread that is exiting refuses with EPERM too; only a live one means no rights.
            Err(Errno::EPERM) if !process_exists(tid.as_raw() as u32) => {
                return Ok(StopOutcome::Gone(None))
            }
            Err(e) => return Err(self.ptrace_error(e)),
        }
        if let Err(e) = ptrace::interrupt(tid) {
            let _ = ptrace::detach(tid, None);
            return match e {
                Errno::ESRCH => Ok(StopOutcome::Gone(collect_exit(tid))),
                e => Err(self.ptrace_error(e)),
            };
        }
        loop {
            match waitpid(tid, Some(WaitPidFlag::WSTOPPED | WaitPidFlag::__WALL)) {
                // Our interrupt (`PTRACE_EVENT_STOP`, also how a group stop shows under seize),
                // or the thread's exit event: either way it is stopped now.
                Ok(WaitStatus::PtraceEvent(..)) | Ok(WaitStatus::PtraceSyscall(_)) => {
                    return Ok(StopOutcome::Stopped)
                }
                // A signal meant for the target, SIGSTOP included: deliver it and ask again.
                // Errors mean the thread died (SIGKILL); the next wait reports it.
                Ok(WaitStatus::Stopped(_, sig)) => {
                    if ptrace::cont(tid, sig).is_ok() {
                        let _ = ptrace::interrupt(tid);
                    }
                }
                Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                    return Ok(StopOutcome::Gone(exit_status(status)))
                }
                Ok(WaitStatus::Continued(_)) | Ok(WaitStatus::StillAlive) => continue,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    let _ = ptrace::detach(tid, None);
                    return Ok(StopOutcome::Gone(None));
                }
            }
        }
    }

    fn ptrace_error(&self, e: Errno) -> Error {
        match e {
            Errno::EPERM => Error::PermissionDenied {
                pid: self.pid,
                what: "ptrace refused".into(),
            },
            Errno::ESRCH => Error::ProcessGone(self.pid),
            _ if !process_exists(self.pid) => Error::ProcessGone(self.pid),
            other => Error::io(
                format!("could not pause process {}", self.pid),
                other.into(),
            ),
        }
    }

    fn proc_error(&self, what: &str, e: std::io::Error) -> Error {
        match e.kind() {
            std::io::ErrorKind::NotFound => Error::ProcessGone(self.pid),
            std::io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                pid: self.pid,
                what: format!("/proc/{}/{what}", self.pid),
            },
            _ => Error::io(format!("reading /proc/{}/{what}", self.pid), e),
        }
    }
}

impl ReadMemory for Process {
    fn read(&self, addr: RemoteAddr, buf: &mut [u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len();
        let remote = [RemoteIoVec {
            base: addr.0 as usize,
            len,
        }];
        let mut local = [IoSliceMut::new(buf)];
        match process_vm_readv(Pid::from_raw(self.pid as i32), &mut local, &remote) {
            Ok(n) if n == len => Ok(()),
            Ok(_) | Err(Errno::EFAULT) | Err(Errno::EIO) | Err(Errno::EINVAL) => {
                Err(Error::Read { addr, len })
            }
            Err(Errno::ESRCH) => Err(Error::ProcessGone(self.pid)),
            Err(Errno::EPERM) => Err(Error::PermissionDenied {
                pid: self.pid,
                what: "process_vm_readv refused".into(),
            }),
            Err(e) => Err(Error::io(
                format!("reading memory of process {}", self.pid),
                e.into(),
            )),
        }
    }

    fn read_many(&self, requests: &mut [ReadRequest]) {
        let mut start = 0;
        while start < requests.len() {
            let end = (start + IOV_MAX).min(requests.len());
            let batch = &mut requests[start..end];
            match self.read_batch(batch) {
                Some(filled) => {
                    for r in &mut batch[..filled] {
                        r.ok = true;
                    }
                    // The kernel stops at the first buffer it cannot fill: that one failed,
                    // and the batch goes on after it.
                    if let Some(failed) = batch.get_mut(filled) {
                        failed.ok = false;
                    }
                    start += filled + 1;
                }
                None => {
                    // The process is gone or refuses us: nothing more will succeed.
                    for r in &mut requests[start..] {
                        r.ok = false;
                    }
                    return;
                }
            }
        }
    }
}

/// Most buffers one `process_vm_readv` call takes (the kernel's `IOV_MAX`).
const IOV_MAX: usize = 1024;

impl Process {
    /// One `process_vm_readv` for a batch: how many of its buffers, from the first, were
    /// filled whole; `None` when the call failed for the whole process (gone, or refused).
    fn read_batch(&self, batch: &mut [ReadRequest]) -> Option<usize> {
        // A sample's batch has a dozen pieces or so: its lists stay on the stack.
        let remote: SmallVec<[RemoteIoVec; 32]> = batch
            .iter()
            .map(|r| RemoteIoVec {
                base: r.addr.0 as usize,
                len: r.buf.len(),
            })
            .collect();
        let mut local: SmallVec<[IoSliceMut; 32]> = batch
            .iter_mut()
            .map(|r| IoSliceMut::new(&mut r.buf))
            .collect();
        match process_vm_readv(Pid::from_raw(self.pid as i32), &mut local, &remote) {
            Ok(mut bytes) => {
                let mut filled = 0;
                for r in &remote {
                    if bytes < r.len {
                        break;
                    }
                    bytes -= r.len;
                    filled += 1;
                }
                Some(filled)
            }
            // The first buffer could not be read at all.
            Err(Errno::EFAULT | Errno::EIO | Errno::EINVAL) => Some(0),
            Err(_) => None,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A child we launched is never left running without us, nor left a zombie.
        if self.child.is_some() && self.exit_status.is_none() {
            self.finish_child(Duration::from_millis(500));
        }
    }
}

/// True when a process with this pid exists and is not a zombie.
pub fn process_exists(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(stat) => live_state(&stat).is_some(),
        Err(_) => false,
    }
}

/// The state letter of a `/proc/…/stat` line, unless it says the task has exited (zombie or
/// dead).
fn live_state(stat: &[u8]) -> Option<u8> {
    stat_state(stat).filter(|state| !matches!(state, b'Z' | b'X'))
}

/// The state letter of a `/proc/…/stat` line: the first field after the parenthesised command,
/// which may itself contain spaces and parentheses.
fn stat_state(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|b| *b == b')')?;
    stat.get(close + 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_state_survives_odd_command_names() {
        assert_eq!(stat_state(b"12 (python) S 1 2"), Some(b'S'));
        assert_eq!(stat_state(b"12 (a) b) R 1 2"), Some(b'R'));
        assert_eq!(stat_state(b"12 (x"), None);
    }

    #[test]
    fn reads_own_memory() {
        let me = Process::attach(std::process::id()).unwrap();
        let value: u64 = 0x1122_3344_5566_7788;
        let addr = RemoteAddr(std::ptr::addr_of!(value) as u64);
        assert_eq!(me.read_u64(addr).unwrap(), value);
        assert!(matches!(
            me.read_u64(RemoteAddr(8)),
            Err(Error::Read { .. })
        ));
    }

    /// Signals that arrive while we seize a thread make it stop for their delivery first; a
    /// pause must still end with the thread stopped for us, never wait forever, pass the
    /// signals on, and leave the thread running.
    #[test]
    fn pausing_a_thread_that_keeps_getting_signals_never_hangs() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{mpsc, Arc};
        // A busy shell that counts SIGUSR1s and prints the count on SIGTERM.
        let mut child = Command::new("sh")
            .args([
                "-c",
                "n=0; trap 'n=$((n+1))' USR1; trap 'echo $n; exit 0' TERM; echo ready; \
                 while :; do :; done",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        // Signals only once the handlers are in place.
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert_eq!(line, "ready\n");
        let target = Process::attach(pid).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut sent = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let _ = nix::sys::signal::kill(
                        Pid::from_raw(pid as i32),
                        nix::sys::signal::SIGUSR1,
                    );
                    sent += 1;
                    std::thread::sleep(Duration::from_micros(50));
                }
                sent
            })
        };
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..2000 {
                drop(target.pause(&[pid]).unwrap());
            }
            done.send(()).unwrap();
        });
        let outcome = finished.recv_timeout(Duration::from_secs(60));
        stop.store(true, Ordering::Relaxed);
        assert!(sender.join().unwrap() > 0);
        let state = std::fs::read(format!("/proc/{pid}/stat")).unwrap();
        let state = stat_state(&state).unwrap();
        let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), nix::sys::signal::SIGTERM);
        line.clear();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        child.wait().unwrap();
        assert!(outcome.is_ok(), "2000 pauses did not end within 60 s");
        assert!(
            matches!(state, b'R' | b'S'),
            "left in state {}",
            state as char
        );
        let counted: u32 = line.trim().parse().unwrap();
        assert!(counted > 0, "the signals reached the target");
    }

    #[test]
    fn missing_pid_is_reported() {
        assert!(matches!(
            Process::attach(0x3fff_fff0),
            Err(Error::NoSuchProcess(_))
        ));
    }
}
