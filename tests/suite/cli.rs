//! The built binary's behaviour on bad input: one `error:` line, a `hint:` where the user can
//! act, exit code 1 (2 for usage errors), quickly; and Ctrl-C handling.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{pythons, run_sampler, run_with_timeout, sampler, script, text, Target};

/// Runs sampler and checks the one-line error shape; returns stderr.
fn expect_error(args: &[&str], code: i32, limit: Duration) -> String {
    let started = Instant::now();
    let out = run_sampler(args);
    let elapsed = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    // A hang guard rather than a timing assertion: errors come back at once.
    assert!(elapsed < limit, "{args:?} took {elapsed:?}");
    stderr
}

fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn no_such_process() {
    let stderr = expect_error(
        &["record", "--pid", "1073741808"],
        1,
        Duration::from_secs(2),
    );
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(lines[0], "error: no process with pid 1073741808");
    assert!(lines[1].starts_with("hint: "), "{stderr}");
    let stderr = expect_error(&["dump", "--pid", "1073741808"], 1, Duration::from_secs(2));
    assert!(stderr.starts_with("error: no process with pid"), "{stderr}");
}

#[test]
fn not_a_python_process_names_the_binary() {
    let mut sleep = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = sleep.id().to_string();
    let stderr = expect_error(&["dump", "--pid", &pid], 1, Duration::from_secs(2));
    let _ = sleep.kill();
    let _ = sleep.wait();
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("error: process {pid} is not a Python process"))
            && lines[0].contains("sleep"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("hint: --pid must be a running Python process"),
        "{stderr}"
    );
}

#[test]
fn permission_denied_explains_what_to_do() {
    let py = pythons().into_iter().next().expect("an interpreter");
    let target = Target::start(&py, "chain.py", &[]);
    // Run sampler as `nobody` against a root-owned target: the kernel refuses.
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_sampler"))
        .args(["dump", "--pid", &target.pid.to_string()])
        .stdin(Stdio::null());
    let started = Instant::now();
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(started.elapsed() < Duration::from_secs(2));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with("error: permission denied"), "{stderr}");
    assert!(lines[1].starts_with("hint: run as root"), "{stderr}");
    assert!(lines[1].contains("CAP_SYS_PTRACE"), "{stderr}");
    // The Yama setting is named exactly when the kernel has it and it restricts ptrace.
    let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .is_ok_and(|s| s.trim() != "0");
    assert_eq!(lines[1].contains("ptrace_scope"), yama, "{stderr}");
    assert_ne!(target.state(), 't', "the target is not left stopped");
}

/// A process that looks like CPython 3.2 to sampler: it exports `Py_Version` (3.2.0 final)
/// and a `_PyRuntime`, built with the machine's C compiler.
fn fake_old_python(dir: &std::path::Path) -> std::path::PathBuf {
    let source = dir.join("fake.c");
    std::fs::write(
        &source,
        "#include <unistd.h>\n\
         const unsigned long Py_Version = 0x030200F0;\n\
         char _PyRuntime[4096];\n\
         int main(void) { _PyRuntime[0] = 1; sleep(60); return 0; }\n",
    )
    .unwrap();
    let exe = dir.join("python3.2");
    let status = Command::new("cc")
        .arg("-rdynamic")
        .arg("-o")
        .arg(&exe)
        .arg(&source)
        .status()
        .expect("a C compiler (cc)");
    assert!(status.success());
    exe
}

#[test]
fn unsupported_versions_name_the_supported_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Command::new(fake_old_python(dir.path())).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let stderr = expect_error(
        &["record", "--pid", &fake.id().to_string(), "-d", "1"],
        1,
        Duration::from_secs(2),
    );
    let _ = fake.kill();
    let _ = fake.wait();
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(
        lines[0],
        "error: unsupported Python version 3.2.0 (supported: CPython 2.7 and 3.6 to 3.15)"
    );
    assert!(lines[1].starts_with("hint: "), "{stderr}");
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["record"][..],
        &["record", "--pid", "1", "--rate", "0"],
        &["record", "--pid", "1", "--format", "png"],
        &["record", "--pid", "abc"],
        &["record", "--pid", "1", "--", "python"],
        &["dump"],
        &["frobnicate"],
    ] {
        let stderr = expect_error(args, 2, Duration::from_secs(2));
        assert!(stderr.contains("error:"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_command_that_cannot_start_is_reported() {
    let stderr = expect_error(
        &["record", "--", "/nonexistent/python3", "app.py"],
        1,
        Duration::from_secs(2),
    );
    assert!(
        stderr.starts_with("error: could not start `/nonexistent/python3`"),
        "{stderr}"
    );
    assert!(error_lines(&stderr)[1].starts_with("hint: "), "{stderr}");
}

#[test]
fn an_output_that_cannot_be_written_is_reported_before_sampling() {
    // Checked before the command is started: it never runs.
    let stderr = expect_error(
        &[
            "record",
            "-o",
            "/nonexistent/folder/out.svg",
            "--",
            "/nonexistent/python3",
        ],
        1,
        Duration::from_secs(2),
    );
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("error: cannot write /nonexistent/folder/out.svg: "),
        "{stderr}"
    );
    assert!(lines[1].starts_with("hint: "), "{stderr}");
}

#[test]
fn ctrl_c_writes_the_profile_and_leaves_the_target_running() {
    let py = pythons().into_iter().next().expect("an interpreter");
    let target = Target::start(&py, "chain.py", &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("interrupted.txt");
    let child = sampler()
        .args([
            "record",
            "--pid",
            &target.pid.to_string(),
            "-f",
            "raw",
            "-r",
            "500",
            "-o",
        ])
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let result = child.wait_with_output().unwrap();
    let stderr = text(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let profile = std::fs::read_to_string(&out).unwrap();
    assert!(profile.contains("leaf (chain.py:"), "{profile}");
    // The target runs on, not stopped: its state is never `t` (traced stop) or `T`.
    std::thread::sleep(Duration::from_millis(100));
    let state = target.state();
    assert!(state == 'R' || state == 'S', "target state {state}");
}

#[test]
fn the_demo_script_of_the_readme_is_present() {
    assert!(crate::support::repo().join("docs/demo.py").exists());
    assert!(script("chain.py").exists());
}

#[test]
fn the_progress_line_is_drawn_on_a_terminal_only() {
    let py = pythons().into_iter().next().expect("an interpreter");
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("p.svg");
    let typescript = dir.path().join("typescript");
    let command = format!(
        "{} record -d 1 -o {} -- {} {} 2",
        env!("CARGO_BIN_EXE_sampler"),
        svg.display(),
        py.path.display(),
        script("chain.py").display()
    );
    // `script` gives sampler a pseudo-terminal and keeps everything it drew.
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &command])
        .arg(&typescript)
        .stdin(Stdio::null());
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let drawn = text(&std::fs::read(&typescript).unwrap());
    assert!(drawn.contains("sampling: "), "{drawn}");
    assert!(drawn.contains(" samples, 0 errors, "), "{drawn}");
    assert!(drawn.contains("sampler: wrote flamegraph to"), "{drawn}");

    // Without a terminal only the summary is printed.
    let out = run_sampler(&[
        "record",
        "-d",
        "1",
        "-o",
        svg.to_str().unwrap(),
        "--",
        py.path.to_str().unwrap(),
        script("chain.py").to_str().unwrap(),
        "2",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("sampling: "), "{stderr}");
    // The summary, and on a loaded machine perhaps the note that the rate was out of reach.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("sampler: cannot keep up"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("sampler: wrote flamegraph"),
        "{stderr}"
    );
}
