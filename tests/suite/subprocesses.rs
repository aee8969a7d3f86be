//! Live tests of `-s/--subprocesses` on every interpreter: a `multiprocessing` pool (children
//! before 3.14, grandchildren under the forkserver from 3.14), Python started by a shell after
//! sampling began, and processes that exit while they are sampled.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    collapsed, for_each_python, forward_lines, marker_line, record_raw, run_sampler, sampler,
    script, summary_count, text, Target,
};

/// The innermost frame of a collapsed stack.
fn leaf(stack: &str) -> &str {
    stack.rsplit(';').next().unwrap_or_default()
}

/// The pid in a stack's `process PID "…"` root frame.
fn root_pid(stack: &str) -> Option<u32> {
    stack
        .strip_prefix("process ")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// The processes whose stacks contain `needle`.
fn pids_with(stacks: &[(String, u64)], needle: &str) -> BTreeSet<u32> {
    stacks
        .iter()
        .filter(|(stack, _)| stack.contains(needle))
        .filter_map(|(stack, _)| root_pid(stack))
        .collect()
}

/// `record -s --pid PID -d SECONDS -f raw`: its stderr and its stacks.
fn record_tree(pid: u32, seconds: &str) -> (String, Vec<(String, u64)>) {
    let (rec, stacks) = record_raw(&["-s", "--pid", &pid.to_string(), "-d", seconds]);
    (text(&rec.stderr), stacks)
}

/// The error count of `record`'s summary line.
fn errors_in(summary: &str) -> u64 {
    summary_count(summary, "errors")
}

#[test]
fn pool_workers_are_recorded_and_dumped_under_their_processes() {
    for_each_python(|py| {
        let dir = tempfile::tempdir().unwrap();
        let pids_file = dir.path().join("pids");
        let target = Target::start(py, "mp_pool.py", &[pids_file.to_str().unwrap()]);
        let workers: Vec<u32> = std::fs::read_to_string(&pids_file)
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(workers.len(), 3, "{workers:?}");
        let pid = target.pid.to_string();

        let (_, stacks) = record_tree(target.pid, "1");
        assert!(
            stacks.iter().all(|(s, _)| root_pid(s).is_some()),
            "every stack is rooted at its process: {stacks:?}"
        );
        for worker in &workers {
            let root = format!("process {worker} \"");
            let spinning = stacks.iter().any(|(s, _)| {
                s.starts_with(&root) && leaf(s).starts_with("spin_in_worker (mp_pool.py:")
            });
            assert!(spinning, "worker {worker} not spinning in {stacks:?}");
        }

        let dump = run_sampler(&["dump", "-s", "--pid", &pid, "--json"]);
        assert!(dump.status.success(), "{}", text(&dump.stderr));
        let dump: Value = serde_json::from_slice(&dump.stdout).expect("JSON");
        let processes = dump.as_array().expect("an array of processes");
        assert_eq!(processes[0]["pid"], target.pid, "the root comes first");
        for worker in &workers {
            let process = processes
                .iter()
                .find(|p| p["pid"] == *worker)
                .unwrap_or_else(|| panic!("worker {worker} not in {dump}"));
            assert!(
                process["command_line"].as_str().unwrap().contains("python"),
                "{process}"
            );
            // In its loop, or in the liveness check the loop makes now and then.
            let spins = process["threads"].as_array().unwrap().iter().any(|t| {
                let name = |i: usize| t["frames"][i]["name"].as_str();
                let in_loop = match name(0) {
                    Some("spin_in_worker") => true,
                    Some("gone") => name(1) == Some("spin_in_worker"),
                    _ => false,
                };
                in_loop && t["os_thread_id"] == *worker
            });
            assert!(spins, "{process}");
        }

        let shown = run_sampler(&["dump", "-s", "--pid", &pid]);
        assert!(shown.status.success(), "{}", text(&shown.stderr));
        let shown = text(&shown.stdout);
        for worker in &workers {
            assert!(shown.contains(&format!("\nProcess {worker}: ")), "{shown}");
        }
        assert!(shown.contains("    spin_in_worker (mp_pool.py:"), "{shown}");
    });
}

/// Every process with its parent, state, kernel wait channel and tracer, for failure messages:
/// what a child that did not exit in time was doing.
fn process_table() -> String {
    let ps = Command::new("ps")
        .args(["-eo", "pid,ppid,stat,wchan:24,args"])
        .output()
        .map(|o| text(&o.stdout))
        .unwrap_or_else(|e| format!("ps failed: {e}"));
    // Threads traced by someone, and what each tracer's threads are blocked in (`syscall`'s
    // first number is the call, the second its first argument: the pid a `wait4` waits for).
    let mut tracers = String::new();
    let dirs = |path: PathBuf| -> Vec<PathBuf> {
        std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect()
    };
    for process in dirs(PathBuf::from("/proc")) {
        for task in dirs(process.join("task")) {
            let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or("?")
                    .trim()
                    .to_string()
            };
            let tracer = field("TracerPid:");
            if tracer == "0" || tracer == "?" {
                continue;
            }
            tracers += &format!(
                "thread {} of {} ({}) traced by {tracer}",
                task.display(),
                field("Tgid:"),
                field("State:")
            );
            for tracer_task in dirs(PathBuf::from(format!("/proc/{tracer}/task"))) {
                let call = std::fs::read_to_string(tracer_task.join("syscall")).unwrap_or_default();
                tracers += &format!("; {}: {}", tracer_task.display(), call.trim());
            }
            tracers += "\n";
        }
    }
    format!("{ps}{tracers}")
}

/// A `sampler` run in the background whose output lines are read while it runs. Killed on
/// drop if it is still running.
struct Recording {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// The stderr lines read so far.
    stderr_seen: Vec<String>,
}

impl Recording {
    /// `sampler -v record -s -f raw -o OUT TARGET…`, where `target` is `--pid PID` or
    /// `-- COMMAND…`.
    fn start(out: &Path, target: &[&str]) -> Recording {
        let mut child = sampler()
            .args([
                "-v",
                "record",
                "-s",
                "-f",
                "raw",
                "-o",
                out.to_str().unwrap(),
            ])
            .args(target)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sampler starts");
        let stdout = forward_lines(child.stdout.take().unwrap());
        let stderr = forward_lines(child.stderr.take().unwrap());
        Recording {
            child,
            stdout,
            stderr,
            stderr_seen: Vec::new(),
        }
    }

    /// Reads stderr lines until `done` holds for all of them so far.
    fn wait_until(&mut self, timeout: Duration, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(&self.stderr_seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.stderr_seen.push(line),
                Err(_) => panic!(
                    "stderr did not get there in {timeout:?}: {:?}\nprocesses then:\n{}",
                    self.stderr_seen,
                    process_table()
                ),
            }
        }
    }

    /// Waits for a stderr line containing `want`; returns its index.
    fn wait_for_stderr(&mut self, want: &str, timeout: Duration) -> usize {
        self.wait_until(timeout, |lines| lines.iter().any(|l| l.contains(want)));
        self.stderr_seen
            .iter()
            .position(|l| l.contains(want))
            .unwrap()
    }

    /// Sends Ctrl-C's signal, SIGINT.
    fn interrupt(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    }

    /// Waits for `sampler` to exit, which must be a success; every stdout line, every stderr
    /// line, and the summary line among them.
    fn finish(mut self, timeout: Duration) -> (Vec<String>, Vec<String>, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "sampler ran past {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The command's own children may hold the pipes a little longer: read until they
        // close, within the deadline.
        let drain = |rx: &Receiver<String>| {
            let mut lines = Vec::new();
            while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                lines.push(line);
            }
            lines
        };
        let stdout = drain(&self.stdout);
        let mut stderr = std::mem::take(&mut self.stderr_seen);
        stderr.extend(drain(&self.stderr));
        assert!(status.success(), "{stderr:?}");
        let summary = stderr
            .iter()
            .find(|l| l.starts_with("sampler: wrote"))
            .unwrap_or_else(|| panic!("no summary in {stderr:?}"))
            .clone();
        (stdout, stderr, summary)
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pid a script printed as `LABEL PID`.
fn printed_pid(lines: &[String], label: &str) -> u32 {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(label)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{label} PID` in {lines:?}"))
}

#[test]
fn python_that_a_shell_starts_after_sampling_began_is_followed() {
    // The launched command is a shell (not Python) that waits for a file, then execs Python,
    // which starts `sleep` (not Python) and a Python child of its own.
    const SHELL: &str = r#"i=0
        until [ -e "$0" ] || [ "$i" -ge 3000 ]; do sleep 0.01; i=$((i + 1)); done
        exec "$1" "$2""#;
    for_each_python(|py| {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("go");
        let out = dir.path().join("late.txt");
        let mut recording = Recording::start(
            &out,
            &[
                "--",
                "sh",
                "-c",
                SHELL,
                flag.to_str().unwrap(),
                py.path.to_str().unwrap(),
                script("late_child.py").to_str().unwrap(),
            ],
        );
        // Sampling has begun (the shell is sampled, as a process that is not Python): only
        // now may Python start.
        recording.wait_for_stderr("and its descendants", Duration::from_secs(30));
        std::fs::write(&flag, "").unwrap();
        let (stdout, stderr, summary) = recording.finish(Duration::from_secs(120));
        assert!(
            summary.ends_with("the command exited with exit status: 0"),
            "{summary}"
        );
        assert_eq!(errors_in(&summary), 0, "{stderr:?}");

        let (parent, child) = (
            printed_pid(&stdout, "parent "),
            printed_pid(&stdout, "child "),
        );
        let stacks = collapsed(&out);
        let line = |name| marker_line("late_child.py", name);
        assert_eq!(
            pids_with(
                &stacks,
                &format!(";parent_work (late_child.py:{})", line("parent_work"))
            ),
            BTreeSet::from([parent]),
            "the shell's pid, once it runs Python: {stacks:?}"
        );
        assert!(
            stacks
                .iter()
                .any(|(s, _)| s.starts_with(&format!("process {parent} \""))
                    && s.contains("late_child.py\";")),
            "rooted at the command line Python got: {stacks:?}"
        );
        assert_eq!(
            pids_with(
                &stacks,
                &format!(
                    ";late_child_work (late_child.py:{})",
                    line("late_child_work")
                )
            ),
            BTreeSet::from([child]),
            "{stacks:?}"
        );
        let rooted: BTreeSet<u32> = stacks.iter().filter_map(|(s, _)| root_pid(s)).collect();
        assert_eq!(rooted, BTreeSet::from([parent, child]), "{stacks:?}");
    });
}

#[test]
fn processes_that_exit_while_sampled_are_no_errors() {
    for_each_python(|py| {
        let dir = tempfile::tempdir().unwrap();
        let (flag, pid_file) = (dir.path().join("exit"), dir.path().join("child"));
        let target = Target::start(
            py,
            "churn.py",
            &[flag.to_str().unwrap(), pid_file.to_str().unwrap()],
        );
        // The parent's and the child's `ready`, in either order.
        target.wait_for_line("ready", Duration::from_secs(30));
        let child: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        let out = dir.path().join("churn.txt");
        let mut recording = Recording::start(&out, &["--pid", &target.pid.to_string()]);
        let exited = "no longer following process ";
        let minute = Duration::from_secs(60);
        let followed = recording.wait_for_stderr(&format!("following process {child} ("), minute);
        // Pool workers (one task each) exit while they are followed: three of them, after the
        // child was found, so that it has been sampled meanwhile.
        recording.wait_until(minute, |lines| {
            lines[followed..]
                .iter()
                .filter(|l| l.contains(exited) && l.ends_with(": it exited"))
                .count()
                >= 3
        });
        // The child finalises its interpreter and exits.
        std::fs::write(&flag, "").unwrap();
        recording.wait_for_stderr(&format!("{exited}{child}: it exited"), minute);
        recording.interrupt();
        let (_, stderr, summary) = recording.finish(minute);
        assert!(summary.ends_with("; interrupted"), "{summary}");
        assert_eq!(errors_in(&summary), 0, "{stderr:?}");
        let stacks = collapsed(&out);
        assert_eq!(
            pids_with(&stacks, ";short_lived_child (churn.py:"),
            BTreeSet::from([child]),
            "{stacks:?}"
        );
        assert!(
            !pids_with(&stacks, ";pool_task (churn.py:").is_empty(),
            "{stacks:?}"
        );
    });
}
