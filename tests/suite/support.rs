//! Shared test harness: the interpreter matrix, launching target scripts that print `ready`,
//! and running the built `sampler` binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One interpreter of the test matrix (13 of them: pyenv 2.7 and 3.6–3.13, Debian's 3.11, and
/// Debian sid's 3.13–3.15 from `.ci/install-pythons.sh`).
#[derive(Debug, Clone)]
pub struct Python {
    /// A short label for messages: `pyenv-3.12`, `debian-3.11`, `sid-3.14`.
    pub label: String,
    /// The executable.
    pub path: PathBuf,
    /// `(major, minor, micro)` as the interpreter reports it.
    pub version: (u32, u32, u32),
}

/// True when running in CI, where a missing interpreter or refused ptrace is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn pyenv_root() -> PathBuf {
    if let Ok(root) = std::env::var("PYENV_ROOT") {
        return PathBuf::from(root);
    }
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".pyenv")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where `.ci/install-pythons.sh` puts Debian sid's interpreters.
fn sid_dir() -> PathBuf {
    std::env::var("SAMPLER_PYTHONS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".cache/pythons"))
}

/// Every interpreter of the matrix that is present. A missing one fails the test run in CI
/// and is reported (and skipped) elsewhere.
pub fn pythons() -> Vec<Python> {
    static MATRIX: std::sync::OnceLock<Vec<Python>> = std::sync::OnceLock::new();
    MATRIX
        .get_or_init(|| {
            let root = pyenv_root();
            let wanted: Vec<(String, PathBuf)> = vec![
                (
                    "pyenv-2.7".into(),
                    root.join("versions/2.7.18/bin/python2.7"),
                ),
                (
                    "pyenv-3.6".into(),
                    root.join("versions/3.6.15/bin/python3.6"),
                ),
                (
                    "pyenv-3.7".into(),
                    root.join("versions/3.7.16/bin/python3.7"),
                ),
                (
                    "pyenv-3.8".into(),
                    root.join("versions/3.8.18/bin/python3.8"),
                ),
                (
                    "pyenv-3.9".into(),
                    root.join("versions/3.9.18/bin/python3.9"),
                ),
                (
                    "pyenv-3.10".into(),
                    root.join("versions/3.10.13/bin/python3.10"),
                ),
                (
                    "pyenv-3.11".into(),
                    root.join("versions/3.11.7/bin/python3.11"),
                ),
                (
                    "pyenv-3.12".into(),
                    root.join("versions/3.12.1/bin/python3.12"),
                ),
                (
                    "pyenv-3.13".into(),
                    root.join("versions/3.13.0/bin/python3.13"),
                ),
                ("debian-3.11".into(), PathBuf::from("/usr/bin/python3.11")),
                ("sid-3.13".into(), sid_dir().join("bin/python3.13")),
                ("sid-3.14".into(), sid_dir().join("bin/python3.14")),
                ("sid-3.15".into(), sid_dir().join("bin/python3.15")),
            ];
            // For chasing one interpreter's failure locally: `SAMPLER_TEST_ONLY=sid-3.14,…`.
            // Never in CI, where every interpreter must run.
            let only = std::env::var("SAMPLER_TEST_ONLY").ok();
            assert!(
                only.is_none() || !in_ci(),
                "SAMPLER_TEST_ONLY is for local runs, not CI"
            );
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for (label, path) in wanted {
                if only
                    .as_ref()
                    .is_some_and(|only| !only.split(',').any(|l| l == label))
                {
                    continue;
                }
                match version_of(&path) {
                    Some(version) => found.push(Python {
                        label,
                        path,
                        version,
                    }),
                    None => missing.push(format!("{label} ({})", path.display())),
                }
            }
            if !missing.is_empty() {
                let msg = format!(
                    "interpreters missing: {} (run .ci/install-pythons.sh)",
                    missing.join(", ")
                );
                assert!(!in_ci(), "{msg}");
                eprintln!("SKIPPING {msg}");
            }
            found
        })
        .clone()
}

fn version_of(path: &Path) -> Option<(u32, u32, u32)> {
    let out = Command::new(path)
        .args(["-c", "import sys; print('%d %d %d' % sys.version_info[:3])"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let v: Vec<u32> = text
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    (v.len() == 3).then(|| (v[0], v[1], v[2]))
}

/// Runs `check` for every interpreter, then fails with every failure at once, so one broken
/// version does not hide the others.
pub fn for_each_python(check: impl Fn(&Python) + std::panic::RefUnwindSafe) {
    for_each_of(pythons(), check)
}

/// [`for_each_python`] over a given list of interpreters.
pub fn for_each_of(list: Vec<Python>, check: impl Fn(&Python) + std::panic::RefUnwindSafe) {
    let mut failures = Vec::new();
    for py in list {
        if let Err(panic) = std::panic::catch_unwind(|| check(&py)) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("[{}] {msg}", py.label));
        }
    }
    assert!(failures.is_empty(), "failed on:\n{}", failures.join("\n"));
}

/// A test script under `tests/scripts/`.
pub fn script(name: &str) -> PathBuf {
    repo().join("tests/scripts").join(name)
}

/// A running target. Killed and reaped on drop.
pub struct Target {
    child: Child,
    /// The target's pid.
    pub pid: u32,
    lines: mpsc::Receiver<String>,
}

impl Python {
    /// True for 3.11+, whose code objects carry qualified names (`Class.method`).
    pub fn has_qualnames(&self) -> bool {
        self.version >= (3, 11, 0)
    }

    /// The name a frame of `qualname` shows on this version: the last part before 3.11.
    pub fn shown_name<'a>(&self, qualname: &'a str) -> &'a str {
        if self.has_qualnames() {
            qualname
        } else {
            qualname.rsplit('.').next().unwrap_or(qualname)
        }
    }
}

impl Target {
    /// Starts `python script args…` and waits (up to 30 s) for it to print `ready`.
    pub fn start(py: &Python, script_name: &str, args: &[&str]) -> Target {
        let mut child = Command::new(&py.path)
            .arg(script(script_name))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", py.path.display()));
        let pid = child.id();
        let lines = forward_lines(child.stdout.take().expect("piped stdout"));
        let target = Target { child, pid, lines };
        target.wait_for_line("ready", Duration::from_secs(30));
        target
    }

    /// Waits for a line equal to `want` (or starting with it), returning it.
    pub fn wait_for_line(&self, want: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(want) => return line,
                Ok(_) => continue,
                Err(_) => panic!("target {} did not print `{want}` in {timeout:?}", self.pid),
            }
        }
    }

    /// Writes `line` and a newline to the target's standard input.
    pub fn send(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap();
    }

    /// The scheduler state letter of the target's main thread (`R`, `S`, `t`, …).
    pub fn state(&self) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .unwrap_or('?')
    }
}

/// Sends each line that `stdout` yields (trimmed) down the returned channel, from a thread of
/// its own.
pub fn forward_lines(stdout: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line.trim_end().to_string()).is_err() {
                break;
            }
        }
    });
    rx
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The built `sampler` binary.
pub fn sampler() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sampler"))
}

/// Runs `sampler ARGS` to completion with a 120 s limit and returns its output.
pub fn run_sampler(args: &[&str]) -> Output {
    let mut cmd = sampler();
    cmd.args(args).stdin(Stdio::null());
    run_with_timeout(cmd, Duration::from_secs(120))
}

/// Runs a command with a time limit; kills it and fails the test when it overruns.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{cmd:?} did not finish in {limit:?}");
        }
    }
}

/// The 1-based line of the `# line: NAME` marker in a test script.
pub fn marker_line(script_name: &str, name: &str) -> u32 {
    let text = std::fs::read_to_string(script(script_name)).expect("script");
    let marker = format!("# line: {name}");
    text.lines()
        .position(|l| l.trim_end().ends_with(&marker))
        .map(|i| i as u32 + 1)
        .unwrap_or_else(|| panic!("no `{marker}` in {script_name}"))
}

/// Lossy UTF-8 of a byte buffer.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Samples whose innermost frame starts with `leaf`.
pub fn leaf_samples(stacks: &[(String, u64)], leaf: &str) -> u64 {
    stacks
        .iter()
        .filter(|(s, _)| s.rsplit(';').next().unwrap().starts_with(leaf))
        .map(|(_, c)| c)
        .sum()
}

/// Reads a collapsed-stacks file into (stack, count) pairs.
pub fn collapsed(path: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(path)
        .expect("raw output")
        .lines()
        .map(|l| {
            let (stack, count) = l.rsplit_once(' ').expect("`stack count`");
            (stack.to_string(), count.parse().expect("count"))
        })
        .collect()
}

/// `sampler record -f raw -o <temporary file> ARGS…` (ARGS name the target, a command last):
/// checks that it succeeded and returns its output and the stacks it wrote.
pub fn record_raw(args: &[&str]) -> (Output, Vec<(String, u64)>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stacks.txt");
    let mut all = vec!["record", "-f", "raw", "-o", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let rec = run_sampler(&all);
    assert!(rec.status.success(), "{args:?}: {}", text(&rec.stderr));
    let stacks = collapsed(&out);
    (rec, stacks)
}

/// A count from `record`'s summary line (`… 302 samples, 0 errors, …`): `what` is `samples`
/// or `errors`.
pub fn summary_count(summary: &str, what: &str) -> u64 {
    summary
        .split(&format!(" {what},"))
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {what} count in {summary}"))
}
