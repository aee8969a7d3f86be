//! Every output format, checked by the tool that reads it (installed by
//! `.ci/install-consumers.sh`): speedscope's schema and importer, `go tool pprof`, CPython's
//! `pstats`, SnakeViz and gprof2dot, the Trace Event Format's rules, and our own text formats.
//!
//! Each test records `tests/scripts/formats.py`, whose CPU time splits 3:1:1 between `heavy`,
//! `light` and `recurse` (all below `cycle`, below `<module>`), and checks the functions,
//! files, lines and relative weights the consumer reports. The profile is of a live target on
//! one interpreter per test (the walk itself is tested on every interpreter elsewhere); which
//! one rotates so that old and new layouts both feed the writers.

mod chrometrace;
mod diff;
mod pprof;
mod pstats;
mod speedscope;
mod summary;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::*;

/// The target interpreter for a format test: `preferred` (`3.12`, `2.7`, …) when present,
/// else the newest of the matrix. CI has every one.
pub fn target_python(preferred: &str) -> Python {
    let all = pythons();
    let wanted = |p: &&Python| p.label.ends_with(&format!("-{preferred}"));
    all.iter()
        .find(wanted)
        .or_else(|| all.iter().max_by_key(|p| p.version))
        .cloned()
        .expect("no interpreter at all")
}

/// A recording of the formats workload.
pub struct Recorded {
    /// The output file (in `dir`).
    pub path: PathBuf,
    /// sampler's stderr (its summary line).
    pub stderr: String,
    /// Keeps the output's folder alive.
    pub dir: tempfile::TempDir,
}

/// Starts `formats.py` on `python`, records it for `seconds` at 200 Hz with `-f format` and
/// `extra` options into a temporary folder (as `profile.EXTENSION`), and returns the file.
pub fn record(
    python: &Python,
    format: &str,
    extension: &str,
    seconds: &str,
    extra: &[&str],
) -> Recorded {
    record_workload(python, &[], format, extension, seconds, extra)
}

/// [`record`], with `formats.py` run with `workload` arguments (`HEAVY_MS LIGHT_MS`).
pub fn record_workload(
    python: &Python,
    workload: &[&str],
    format: &str,
    extension: &str,
    seconds: &str,
    extra: &[&str],
) -> Recorded {
    let target = Target::start(python, "formats.py", workload);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("profile.{extension}"));
    let pid = target.pid.to_string();
    let mut args = vec![
        "record",
        "-p",
        &pid,
        "-d",
        seconds,
        "-r",
        "200",
        "-f",
        format,
        "-o",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run_sampler(&args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    assert!(
        path.exists(),
        "{args:?} wrote no file: {}",
        text(&out.stderr)
    );
    Recorded {
        path,
        stderr: text(&out.stderr),
        dir,
    }
}

/// The line of `def NAME(` in the workload: the function's first line (1 for `<module>`).
pub fn def_line(name: &str) -> u32 {
    if name == "<module>" {
        return 1;
    }
    let source = std::fs::read_to_string(script("formats.py")).unwrap();
    let def = format!("def {name}(");
    source
        .lines()
        .position(|l| l.starts_with(&def))
        .map(|i| i as u32 + 1)
        .unwrap_or_else(|| panic!("no `{def}` in formats.py"))
}

/// The lines of function `name`'s body in `formats.py`: from the line after its `def` to
/// the last line before the next unindented one.
pub fn body_lines(name: &str) -> std::ops::RangeInclusive<u32> {
    let source = std::fs::read_to_string(script("formats.py")).unwrap();
    let def = def_line(name);
    let lines: Vec<&str> = source.lines().collect();
    let mut last = def;
    for (i, line) in lines.iter().enumerate().skip(def as usize) {
        if !line.is_empty() && !line.starts_with(char::is_whitespace) {
            break;
        }
        if !line.trim().is_empty() {
            last = i as u32 + 1;
        }
    }
    def + 1..=last
}

/// The folder the consumers are installed in (`.ci/install-consumers.sh`).
pub fn consumers() -> PathBuf {
    repo().join(".cache/consumers")
}

/// Runs a consumer; fails the test, with its output, when it fails.
pub fn run_consumer(cmd: Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = run_with_timeout(cmd, std::time::Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{shown} failed: {}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    out
}

/// The consumers' Python (a venv with gprof2dot and SnakeViz).
pub fn consumer_python() -> PathBuf {
    let python = consumers().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run .ci/install-consumers.sh",
        python.display()
    );
    python
}

/// A file's name as the profile shows it (package-relative: for a script, its base name).
pub fn shown_file(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Runs a Node checker of `tests/consumers/` on `file` and parses the JSON it prints.
pub fn node_check(checker: &str, file: &Path) -> serde_json::Value {
    let node_modules = consumers().join("node/node_modules");
    assert!(
        node_modules.exists(),
        "{} is missing: run .ci/install-consumers.sh",
        node_modules.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/consumers").join(checker))
        .arg(file);
    let out = run_consumer(cmd);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{checker} printed no JSON ({e}): {}", text(&out.stdout)))
}

/// Asserts `a / b` is within `tolerance` (relative) of `want`.
pub fn assert_ratio(what: &str, a: f64, b: f64, want: f64, tolerance: f64) {
    assert!(b > 0.0, "{what}: nothing to compare with ({a} / {b})");
    let ratio = a / b;
    assert!(
        (ratio - want).abs() <= want * tolerance,
        "{what}: {a} / {b} = {ratio:.2}, expected {want} ± {:.0}%",
        tolerance * 100.0
    );
}

/// With `--subprocesses`, every format roots stacks at their process: speedscope names one
/// profile per process and thread, and each starts at the `process PID "…"` frame, as in
/// the flame graph.
#[test]
fn subprocess_roots_reach_the_structured_formats() {
    let python = target_python("3.12");
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("pids");
    let target = Target::start(&python, "mp_pool.py", &[pids_file.to_str().unwrap()]);
    let workers: Vec<u32> = std::fs::read_to_string(&pids_file)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let out = dir.path().join("tree.speedscope.json");
    let pid = target.pid.to_string();
    let rec = run_sampler(&[
        "record",
        "-s",
        "-p",
        &pid,
        "-d",
        "2",
        "-f",
        "speedscope",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(rec.status.success(), "{}", text(&rec.stderr));
    let checked = node_check("speedscope_check.mjs", &out);
    for worker in &workers {
        let profile = checked["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                p["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("process {worker}: thread "))
            })
            .unwrap_or_else(|| panic!("no profile of worker {worker}: {checked}"));
        let frames = profile["frames"].as_array().unwrap();
        let root = format!("process {worker} \"");
        assert!(
            frames
                .iter()
                .any(|f| f["name"].as_str().unwrap().starts_with(&root)
                    && (f["total"].as_f64().unwrap() - profile["totalWeight"].as_f64().unwrap())
                        .abs()
                        < 1e-9),
            "{profile}"
        );
        assert!(
            frames.iter().any(|f| f["name"] == "spin_in_worker"),
            "{profile}"
        );
    }
}

/// A recording killed before it ends leaves the file it was to replace as it was, and no
/// half-written file beside it.
#[test]
fn a_killed_recording_leaves_the_old_file_alone() {
    let python = target_python("3.12");
    let target = Target::start(&python, "formats.py", &[]);
    let dir = tempfile::tempdir().unwrap();
    for (format, name) in [
        ("pprof", "p.pb.gz"),
        ("speedscope", "p.json"),
        ("pstats", "p.prof"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, "the previous profile").unwrap();
        let mut child = sampler()
            .args(["record", "-p", &target.pid.to_string(), "-f", format, "-o"])
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "the previous profile"
        );
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_ne!(target.state(), 't', "the target is not left stopped");
}
