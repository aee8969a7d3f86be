//! `sampler top` in a real terminal: tmux runs it in a detached 200x50 session on a socket of
//! the test's own, the test types keys with `send-keys` and reads the screen with
//! `capture-pane`. Every wait polls the screen for a condition, with a deadline.
//!
//! The pane runs `sampler top …; echo EXIT=$?; echo MODES …` followed by a long sleep, so after
//! sampler exits the pane shows its exit code and the terminal's modes, and tmux can still
//! say whether the alternate screen is on and the cursor visible.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{
    for_each_python, in_ci, marker_line, pythons, run_sampler, script, text, Python, Target,
};

/// How long any one screen may take to appear.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(30);

/// A tmux server of our own with one session, `top`; killed on drop, even when a test fails.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a new 200x50 session. `None` when tmux is
    /// missing outside CI (the test is then skipped, saying so); in CI that fails.
    fn start(command: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            let msg = "tmux is not installed (run .ci/install-tools.sh)";
            assert!(!in_ci(), "{msg}");
            eprintln!("SKIPPING: {msg}");
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let tmux = Tmux {
            socket: format!(
                "sampler-top-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ),
        };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "50",
            "-s",
            "top",
            command,
        ]);
        assert!(out.status.success(), "tmux: {}", text(&out.stderr));
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            // No user configuration; our own server even when the tests run inside tmux.
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .expect("tmux runs")
    }

    /// The screen's text, wrapped lines joined (`-J`), every line right-trimmed.
    fn screen(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-J", "-t", "top"]);
        assert!(out.status.success(), "capture-pane: {}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect()
    }

    /// Types keys (tmux key names: `q`, `C-c`, `?`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(out.status.success(), "send-keys: {}", text(&out.stderr));
    }

    /// A pane variable (`#{alternate_on}`, `#{cursor_flag}`).
    fn pane(&self, format: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", "top", format]);
        text(&out.stdout).trim().to_string()
    }

    /// Polls the screen until `ready` holds for it, and returns that screen; fails with the
    /// last screen after [`SCREEN_TIMEOUT`].
    fn wait_for(&self, what: &str, ready: impl Fn(&Screen) -> bool) -> Screen {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = Screen(self.screen());
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no screen with {what} in {SCREEN_TIMEOUT:?}; the last one:\n{}",
                screen.0
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for sampler to exit and checks that it gave the terminal back: the exit code,
    /// the ordinary screen, the cursor shown, cooked mode. Returns the final screen.
    fn wait_for_exit(&self, code: i32) -> Screen {
        let screen = self.wait_for("the exit code", |s| s.0.contains("MODES"));
        assert!(
            screen.0.contains(&format!("EXIT={code}\n")),
            "exit code {code} expected:\n{}",
            screen.0
        );
        assert_eq!(self.pane("#{alternate_on}"), "0", "alternate screen left");
        assert_eq!(self.pane("#{cursor_flag}"), "1", "cursor shown");
        let modes = screen.line_with("MODES").to_string();
        let mut modes: Vec<&str> = modes.split_whitespace().skip(1).collect();
        modes.sort();
        assert_eq!(modes, ["echo", "icanon", "isig"], "cooked mode again");
        screen
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// A captured screen.
struct Screen(String);

impl Screen {
    fn line_with(&self, needle: &str) -> &str {
        self.0
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", self.0))
    }

    /// The number after `Samples: ` in the header, if the view is up.
    fn samples(&self) -> Option<u64> {
        let (_, rest) = self.0.split_once("Samples: ")?;
        rest.split_whitespace().next()?.parse().ok()
    }

    /// The table's rows, below the column titles.
    fn rows(&self) -> Vec<&str> {
        self.0
            .lines()
            .skip_while(|l| !(l.contains("%Own") && l.contains("Function (file:")))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .collect()
    }

    fn first_row(&self) -> &str {
        self.rows().first().copied().unwrap_or("")
    }

    fn has_row(&self, label: &str) -> bool {
        self.rows().iter().any(|r| r.ends_with(label))
    }
}

/// The shell command the pane runs: sampler with `args`, then its exit code and the
/// terminal's modes, then a sleep that keeps the pane (and its terminal state) alive.
fn pane_command(args: &[String]) -> String {
    let mut words = vec![quote(env!("CARGO_BIN_EXE_sampler"))];
    words.extend(args.iter().map(|a| quote(a)));
    format!(
        "{}; echo EXIT=$?; echo MODES $(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo|isig)'); exec sleep 600",
        words.join(" ")
    )
}

/// The pane command for `top --refresh 0.2 -- PYTHON SCRIPT ARGS…`, `script_args` being the
/// script's name under `tests/scripts/` and its arguments.
fn top_launching(py: &Python, script_args: &[&str]) -> String {
    let (script, rest) = script_args.split_first().expect("a script");
    let mut words = args(&["top", "--refresh", "0.2", "--"]);
    words.push(path(py));
    words.push(script_path(script));
    words.extend(args(rest));
    pane_command(&words)
}

fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn path(py: &Python) -> String {
    py.path.to_string_lossy().into_owned()
}

fn script_path(name: &str) -> String {
    script(name).to_string_lossy().into_owned()
}

#[test]
fn top_shows_the_busy_function_on_every_interpreter() {
    for_each_python(|py| {
        let target = Target::start(py, "chain.py", &[]);
        let pid = target.pid.to_string();
        let command = pane_command(&args(&["top", "--refresh", "0.2", "--pid", &pid]));
        let Some(tmux) = Tmux::start(&command) else {
            return;
        };
        let leaf = format!("leaf (chain.py:{})", marker_line("chain.py", "leaf"));
        let (major, minor, micro) = py.version;
        // The script's helper thread is gone by now; the main thread spins in `leaf`.
        let screen = tmux.wait_for(&leaf, |s| {
            s.first_row().ends_with(&leaf) && s.0.contains("Threads: 1   Processes: 1\n")
        });
        assert!(
            screen
                .0
                .starts_with(&format!("Process {pid}: {}", py.path.display())),
            "{}",
            screen.0
        );
        assert!(
            screen
                .0
                .contains(&format!("Python {major}.{minor}.{micro} ")),
            "{}",
            screen.0
        );
        tmux.keys(&["q"]);
        let screen = tmux.wait_for_exit(0);
        assert!(screen.0.contains("sampler top: "), "{}", screen.0);
        // Only a launched command is stopped: this one runs on.
        let state = target.state();
        assert!(state == 'R' || state == 'S', "target state {state}");
    });
}

#[test]
fn keys_sort_group_help_reset_and_quit() {
    let py = pythons().into_iter().next().expect("an interpreter");
    let Some(tmux) = Tmux::start(&top_launching(&py, &["top_busy.py"])) else {
        return;
    };
    let line = |m| marker_line("top_busy.py", m);
    let hot_line = format!("hot (top_busy.py:{})", line("hot_body"));
    let hot_function = format!("hot (top_busy.py:{})", line("hot_def"));

    // The view comes up sorted by own time, the busiest function first, and keeps counting.
    let screen = tmux.wait_for("hot first", |s| {
        s.first_row().contains("hot (top_busy.py:") && s.has_row(&hot_line)
    });
    assert!(screen.0.contains("Sorted by %Own, one row per line."));
    let before = screen.samples().expect("a sample count");
    tmux.wait_for("more samples", |s| s.samples() > Some(before));

    // 2: by total share, where the module's frame (on every stack) leads.
    tmux.keys(&["2"]);
    tmux.wait_for("the %Total order", |s| {
        s.0.contains("Sorted by %Total") && s.first_row().contains("<module> (top_busy.py:")
    });
    tmux.keys(&["4"]);
    tmux.wait_for("the TotalTime order", |s| {
        s.0.contains("Sorted by TotalTime") && s.first_row().contains("<module> (top_busy.py:")
    });
    tmux.keys(&["3"]);
    tmux.wait_for("the OwnTime order", |s| {
        s.0.contains("Sorted by OwnTime") && s.first_row().contains("hot (top_busy.py:")
    });
    tmux.keys(&["1"]);
    tmux.wait_for("the %Own order", |s| {
        s.0.contains("Sorted by %Own") && s.first_row().contains("hot (top_busy.py:")
    });

    // L: one row per function, at its first line; and back.
    tmux.keys(&["L"]);
    let screen = tmux.wait_for("rows per function", |s| {
        s.0.contains("one row per function") && s.first_row().ends_with(&hot_function)
    });
    assert!(
        screen.0.contains("Function (file:first line)"),
        "{}",
        screen.0
    );
    assert!(!screen.has_row(&hot_line), "{}", screen.0);
    tmux.keys(&["L"]);
    tmux.wait_for("rows per line", |s| {
        s.0.contains("one row per line") && s.has_row(&hot_line) && !s.has_row(&hot_function)
    });

    // ?: the help overlay, and ? again to close it.
    tmux.keys(&["?"]);
    tmux.wait_for("the help", |s| {
        s.0.contains("Help: keys of sampler top") && s.0.contains("reset the counts")
    });
    tmux.keys(&["?"]);
    tmux.wait_for("no help", |s| !s.0.contains("Help: keys"));

    // R: counting starts again from zero (the count before is several seconds' worth).
    let before = tmux.screen();
    let before = Screen(before).samples().expect("a sample count");
    tmux.keys(&["R"]);
    tmux.wait_for("fewer samples after the reset", |s| {
        s.samples().is_some_and(|n| n < before)
    });

    tmux.keys(&["q"]);
    let screen = tmux.wait_for_exit(0);
    let summary = screen.line_with("sampler top: ");
    assert!(
        summary.contains("; the command exited with signal: 15 (SIGTERM)"),
        "{summary}"
    );
}

#[test]
fn a_target_that_exits_stays_on_screen_until_ctrl_c() {
    let py = pythons().into_iter().next().expect("an interpreter");
    let Some(tmux) = Tmux::start(&top_launching(&py, &["exits.py", "1"])) else {
        return;
    };
    let work = format!("work (exits.py:{})", marker_line("exits.py", "work"));
    let screen = tmux.wait_for("the exit in the header", |s| {
        s.0.contains("Sampling ended: the command exited with exit status: 3.")
    });
    assert!(screen.first_row().ends_with(&work), "{}", screen.0);
    assert_eq!(tmux.pane("#{alternate_on}"), "1", "still on the view");
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for_exit(0);
    let summary = screen.line_with("sampler top: ");
    assert!(
        summary.ends_with("; the command exited with exit status: 3"),
        "{summary}"
    );
}

#[test]
fn bad_targets_get_records_errors_on_the_ordinary_screen() {
    let sleep = Reaped(Command::new("sleep").arg("60").spawn().unwrap());
    let not_python = sleep.0.id().to_string();
    for pid in ["1073741808", not_python.as_str()] {
        let record = run_sampler(&["record", "--pid", pid]);
        let expected = text(&record.stderr);
        assert!(expected.starts_with("error: "), "{expected}");
        let Some(tmux) = Tmux::start(&pane_command(&args(&["top", "--pid", pid]))) else {
            return;
        };
        let screen = tmux.wait_for_exit(1);
        assert!(
            screen.0.starts_with(&expected),
            "top said:\n{}\nrecord said:\n{expected}",
            screen.0
        );
    }
}

/// A helper process, killed and reaped on drop.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn without_a_terminal_top_refuses_before_launching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("launched");
    let started = Instant::now();
    let out = run_sampler(&[
        "top",
        "--",
        "sh",
        "-c",
        &format!("touch {}", marker.display()),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "error: sampler top draws on a terminal, but its standard output is not one",
            "hint: run it in a terminal, not through a pipe or into a file; \
             `sampler record -f raw` writes a profile without one"
        ]
    );
    assert!(out.stdout.is_empty());
    // A hang guard, not a timing assertion: nothing is started or waited for.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!marker.exists(), "the command was not started");
}

#[test]
fn sigterm_and_sighup_end_top_and_restore_the_terminal() {
    let py = pythons().into_iter().next().expect("an interpreter");
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        let Some(tmux) = Tmux::start(&top_launching(&py, &["top_busy.py"])) else {
            return;
        };
        tmux.wait_for("samples", |s| s.samples().is_some_and(|n| n > 0));
        // The pane's shell runs sampler as its only child.
        let shell = tmux.pane("#{pane_pid}");
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .expect("the pane's shell");
        let sampler: i32 = children.trim().parse().expect("one child: sampler");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(sampler), signal).unwrap();
        let screen = tmux.wait_for_exit(0);
        // Sampling stopped, and the launched command was ended as on `q`.
        let summary = screen.line_with("sampler top: ");
        assert!(
            summary.ends_with("; the command exited with signal: 15 (SIGTERM)"),
            "{signal}: {summary}"
        );
    }
}
