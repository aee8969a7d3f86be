//! Live tests: every interpreter of the matrix runs a target script with a known stack, and
//! `sampler` (the built binary, or the library where the test is about internals) must report
//! exactly that stack.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    for_each_python, leaf_samples, marker_line, pythons, record_raw, run_sampler, script,
    summary_count, text, Python, Target,
};

/// `sampler dump --pid N --json`, parsed.
fn dump_json(pid: u32, extra: &[&str]) -> Value {
    let pid = pid.to_string();
    let mut args = vec!["dump", "--pid", &pid, "--json"];
    args.extend_from_slice(extra);
    let out = run_sampler(&args);
    assert!(out.status.success(), "dump failed: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("dump --json prints JSON")
}

/// `name (file:line)` for each frame of a dumped thread, innermost first.
fn frames(thread: &Value) -> Vec<String> {
    thread["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| {
            format!(
                "{} ({}:{})",
                f["name"].as_str().unwrap(),
                f["short_filename"]
                    .as_str()
                    .or(f["filename"].as_str())
                    .unwrap(),
                f["line"]
            )
        })
        .collect()
}

fn main_thread(dump: &Value, pid: u32) -> &Value {
    dump["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .find(|t| t["os_thread_id"] == pid)
        .unwrap_or_else(|| panic!("no thread with the main thread's id {pid} in {dump}"))
}

#[test]
fn dump_shows_the_known_chain_with_exact_lines() {
    for_each_python(|py| {
        let target = Target::start(py, "chain.py", &[]);
        let dump = dump_json(target.pid, &[]);
        let line = |m| marker_line("chain.py", m);
        assert_eq!(
            frames(main_thread(&dump, target.pid)),
            vec![
                format!("leaf (chain.py:{})", line("leaf")),
                format!(
                    "{} (chain.py:{})",
                    py.shown_name("Outer.Inner.method"),
                    line("method")
                ),
                format!("main (chain.py:{})", line("main")),
                format!("<module> (chain.py:{})", line("module")),
            ]
        );
        let version = dump["python_version"].as_str().unwrap();
        let (major, minor, micro) = py.version;
        assert_eq!(version, format!("{major}.{minor}.{micro}"));
        // The text form carries the same frames.
        let out = run_sampler(&["dump", "--pid", &target.pid.to_string()]);
        let shown = text(&out.stdout);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            shown.contains(&format!(
                "    {} (chain.py:{})",
                py.shown_name("Outer.Inner.method"),
                line("method")
            )),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("Thread {} \"MainThread\" (", target.pid)),
            "{shown}"
        );
    });
}

#[test]
fn constructor_calls_show_no_interpreter_trampoline() {
    for_each_python(|py| {
        let target = Target::start(py, "init_call.py", &["60"]);
        let pid = target.pid.to_string();
        let (out, stacks) = record_raw(&["--pid", &pid, "-d", "1", "-r", "1000"]);
        let line = |m| marker_line("init_call.py", m);
        // Straight from the loop's line into `__init__`, and from there into `spin`.
        let through_init = format!(
            "main (init_call.py:{});{} (init_call.py:{});spin (init_call.py:",
            line("loop"),
            py.shown_name("Maker.__init__"),
            line("init")
        );
        let main: Vec<_> = stacks
            .iter()
            .filter(|(s, _)| !s.contains("(ready.py:"))
            .collect();
        let total: u64 = main.iter().map(|(_, n)| n).sum();
        let through: u64 = main
            .iter()
            .filter(|(s, _)| s.contains(&through_init))
            .map(|(_, n)| n)
            .sum();
        let foreign: Vec<_> = main
            .iter()
            .filter(|(s, _)| s.split(';').any(|f| !f.contains(" (init_call.py:")))
            .collect();
        assert!(foreign.is_empty(), "frames not of the script: {foreign:?}");
        assert!(total >= 500, "{}", text(&out.stderr));
        assert!(through * 5 >= total * 4, "{through} of {total}: {main:?}");
        let dump = dump_json(target.pid, &[]);
        let shown = frames(main_thread(&dump, target.pid));
        assert!(
            shown.iter().all(|f| f.contains(" (init_call.py:")),
            "{shown:?}"
        );
    });
}

#[test]
fn a_recursion_500_deep_is_complete() {
    for_each_python(|py| {
        let target = Target::start(py, "recurse.py", &["500"]);
        let dump = dump_json(target.pid, &[]);
        let stack = frames(main_thread(&dump, target.pid));
        assert_eq!(stack.len(), 501, "500 recurse frames and <module>");
        let bottom = marker_line("recurse.py", "bottom");
        let middle = marker_line("recurse.py", "recurse");
        assert_eq!(stack[0], format!("recurse (recurse.py:{bottom})"));
        for frame in &stack[1..500] {
            assert_eq!(frame, &format!("recurse (recurse.py:{middle})"));
        }
        assert_eq!(
            stack[500],
            format!(
                "<module> (recurse.py:{})",
                marker_line("recurse.py", "module")
            )
        );
    });
}

#[test]
fn non_ascii_function_class_and_file_names_survive() {
    for_each_python(|py| {
        // Python 2 has no non-ASCII identifiers: only its file name is non-ASCII.
        let (file, names) = if py.version.0 == 2 {
            (
                "ünïcödé_py2_名前.py",
                ["inner_most", "Omega.method", "cafe", "outer"],
            )
        } else {
            (
                "ünïcödé_名前.py",
                ["関数_深い", "Ωmega.méthode_λ", "café", "émoji_𠀋"],
            )
        };
        let target = Target::start(py, file, &[]);
        let dump = dump_json(target.pid, &[]);
        let line = |m| marker_line(file, m);
        assert_eq!(
            frames(main_thread(&dump, target.pid)),
            vec![
                format!("{} ({file}:{})", names[0], line("inner")),
                format!("{} ({file}:{})", py.shown_name(names[1]), line("method")),
                format!("{} ({file}:{})", names[2], line("latin1")),
                format!("{} ({file}:{})", names[3], line("outer")),
                format!("<module> ({file}:{})", line("module")),
            ]
        );
    });
}

#[test]
fn every_thread_shows_its_own_stack() {
    for_each_python(|py| {
        let target = Target::start(py, "threads.py", &[]);
        let dump = dump_json(target.pid, &[]);
        // The script's `ready` announcer may still be on its way out (in ready.py, or past
        // its last Python frame and not gone yet): not one of ours.
        let threads: Vec<&Value> = dump["threads"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| {
                frames(t)
                    .first()
                    .is_some_and(|f| !f.contains(" (ready.py:"))
            })
            .collect();
        assert_eq!(threads.len(), 4, "{dump}");
        let innermost: Vec<String> = threads.iter().map(|t| frames(t)[0].clone()).collect();
        for name in ["busy_one", "busy_two", "sleeper"] {
            let want = format!("{name} (threads.py:{})", marker_line("threads.py", name));
            assert!(innermost.contains(&want), "{want} not in {innermost:?}");
        }
        // Distinct OS thread ids, the main one being the pid.
        let mut tids: Vec<u64> = threads
            .iter()
            .map(|t| t["os_thread_id"].as_u64().unwrap())
            .collect();
        tids.sort();
        tids.dedup();
        assert_eq!(tids.len(), 4);
        assert!(tids.contains(&u64::from(target.pid)));
        // A thread in time.sleep and one blocked in join() are idle by the OS's account.
        let sleeper = threads
            .iter()
            .find(|t| frames(t)[0].starts_with("sleeper"))
            .unwrap();
        assert_eq!(sleeper["active"], false, "{sleeper}");
        assert_eq!(main_thread(&dump, target.pid)["active"], false);
        // Each worker is named after its function; the main thread is `MainThread`.
        for t in &threads {
            let leaf = frames(t)[0].clone();
            let want = if t["os_thread_id"] == u64::from(target.pid) {
                "MainThread"
            } else {
                leaf.split(' ').next().unwrap()
            };
            assert_eq!(t["name"], want, "{t}");
        }
    });
}

#[test]
fn cpu_split_shares_match_the_ground_truth() {
    for_each_python(|py| {
        // The script runs under `record` from start to exit, so its ground truth covers
        // exactly the window that was sampled (the split drifts a little over time). 15 s
        // rather than the issue's 5 s: with ~5 000 samples the share's binomial standard
        // error is ~0.65 pp, so a 1.5 pp bound checked on 13 interpreters failed now and
        // then by chance alone; at ~15 000 it is ~0.38 pp (the bound is ~4 of them). The
        // 5 s figure is measured by ../shared/bench/compare.sh, section a.
        check_cpu_split(py, &["-r", "1000"], "15", "2000");
    });
}

#[test]
fn cpu_split_shares_match_the_ground_truth_for_short_calls() {
    // Calls of ~0.1 ms, ten a millisecond: a read races with a call or a return several
    // times as often, and a raced sample taken again later than the next function's start
    // (or a read that takes longer in one function than in the other) moves samples
    // between them. Both ways to read without stopping the target, in turn; 2000 Hz for
    // ~24 000 samples, a standard error of ~0.3 pp. The mode goes by the minor version, so
    // that each frame model is read both ways.
    for_each_python(|py| {
        let mut args = vec!["-r", "2000"];
        if py.version.1 % 2 == 1 {
            args.push("--nonblocking");
        } else {
            args.extend(["--pause", "on-race"]);
        }
        check_cpu_split(py, &args, "12", "200");
    });
}

/// Records `cpu_split.py duration SECS UNIT` under `record ARGS` and checks that `alpha`'s
/// share of the samples is within 1.5 points of the script's own measure. The script's
/// output goes to sampler's stdout, where the RESULT line is read.
fn check_cpu_split(py: &Python, args: &[&str], secs: &str, unit: &str) {
    let script = script("cpu_split.py");
    let mut all = args.to_vec();
    all.extend([
        "--",
        py.path.to_str().unwrap(),
        script.to_str().unwrap(),
        "duration",
        secs,
        unit,
    ]);
    let (rec, stacks) = record_raw(&all);
    let result = text(&rec.stdout);
    let truth: f64 = result
        .split_whitespace()
        .find_map(|w| w.strip_prefix("alpha_share="))
        .unwrap_or_else(|| panic!("no RESULT line in {result:?}"))
        .parse()
        .unwrap();
    let (alpha, beta) = (
        leaf_samples(&stacks, "alpha "),
        leaf_samples(&stacks, "beta "),
    );
    assert!(alpha + beta > 2000, "too few samples: {alpha} + {beta}");
    let share = alpha as f64 / (alpha + beta) as f64;
    eprintln!(
        "[{}] {args:?} unit {unit}: alpha share {share:.4}, ground truth {truth:.4}, {} samples",
        py.label,
        alpha + beta
    );
    assert!(
        (share - truth).abs() <= 0.015,
        "{args:?} unit {unit}: alpha share {share:.4} vs ground truth {truth:.4}"
    );
}

/// Per function of a test script: the lines of its body (from its `def` to the next blank
/// line) and the lines marked `# call: FUNCTION` that call it.
type CallSites = std::collections::HashMap<String, (std::ops::RangeInclusive<u32>, Vec<u32>)>;

fn call_sites(script_name: &str) -> CallSites {
    let text = std::fs::read_to_string(script(script_name)).unwrap();
    let mut sites = CallSites::new();
    let mut body: Option<(String, u32)> = None;
    for (i, line) in text.lines().enumerate() {
        let number = i as u32 + 1;
        if let Some(rest) = line.strip_prefix("def ") {
            let name = rest.split('(').next().unwrap().to_string();
            body = Some((name, number));
        } else if line.trim().is_empty() {
            body = None;
        }
        if let Some((name, start)) = &body {
            sites.entry(name.clone()).or_insert((0..=0, Vec::new())).0 = *start..=number;
        }
        if let Some((_, callee)) = line.split_once("# call: ") {
            let callee = callee.split_whitespace().next().unwrap().to_string();
            sites
                .entry(callee)
                .or_insert((0..=0, Vec::new()))
                .1
                .push(number);
        }
    }
    sites
}

/// True when `stack` (collapsed, root first) is one the script can have: every frame but
/// the innermost at a call site of the next frame's function, the innermost in its body.
fn is_consistent(stack: &str, sites: &CallSites) -> bool {
    let frames: Vec<(&str, u32)> = stack
        .split(';')
        .filter_map(|f| {
            let (name, place) = f.rsplit_once(" (")?;
            Some((
                name,
                place.strip_suffix(')')?.rsplit_once(':')?.1.parse().ok()?,
            ))
        })
        .collect();
    let Some(&(innermost, line)) = frames.last() else {
        return false;
    };
    let calls_next = frames.windows(2).all(|pair| {
        let ((_, line), (callee, _)) = (pair[0], pair[1]);
        sites
            .get(callee)
            .is_some_and(|(_, calls)| calls.contains(&line))
    });
    calls_next
        && sites
            .get(innermost)
            .is_some_and(|(body, _)| body.contains(&line))
}

#[test]
fn the_consistency_rule_tells_torn_stacks_apart() {
    let sites = call_sites("calls.py");
    let line = |callee: &str, nth: usize| sites[callee].1[nth];
    let body = |name: &str| *sites[name].0.start() + 1;
    let frame = |name: &str, line: u32| format!("{name} (calls.py:{line})");
    let good = [
        frame("<module>", line("main", 0)),
        frame("main", line("rounds", 0)),
        frame("rounds", line("twice", 0)),
        frame("twice", line("right", 0)),
        frame("right", line("leaf", 1)),
        frame("leaf", body("leaf")),
    ];
    assert!(is_consistent(&good.join(";"), &sites), "{good:?}");
    assert!(is_consistent(&good[..4].join(";"), &sites));
    // `right` called from where `left` is called; `leaf` as a caller; a line outside a body.
    let mut torn = good.clone();
    torn[3] = frame("twice", line("left", 0));
    assert!(!is_consistent(&torn.join(";"), &sites));
    let mut torn = good.clone();
    torn.swap(4, 5);
    assert!(!is_consistent(&torn.join(";"), &sites));
    let mut torn = good.clone();
    torn[5] = frame("leaf", line("rounds", 0));
    assert!(!is_consistent(&torn.join(";"), &sites));
}

#[test]
fn stacks_are_consistent_when_pausing_always_or_on_race() {
    let sites = call_sites("calls.py");
    for_each_python(|py| {
        // Hundreds of thousands of calls a second: most stacks read without pausing race.
        let target = Target::start(py, "calls.py", &["60"]);
        let pid = target.pid.to_string();
        for mode in ["on-race", "always"] {
            let (out, stacks) = record_raw(&[
                "--pid", &pid, "-d", "2", "-r", "1000", "--pause", mode, "-v",
            ]);
            // The main thread's stacks: the thread that announced `ready` may still be on
            // its way out.
            let main: Vec<_> = stacks
                .iter()
                .filter(|(s, _)| !s.contains("watch (ready.py:"))
                .collect();
            let total: u64 = main.iter().map(|(_, n)| n).sum();
            let torn: Vec<_> = main
                .iter()
                .filter(|(s, _)| !is_consistent(s, &sites))
                .collect();
            let torn_count: u64 = torn.iter().map(|(_, n)| n).sum();
            eprintln!(
                "[{}] --pause {mode}: {torn_count} of {total} samples inconsistent {torn:?}",
                py.label
            );
            assert!(total >= 500, "{}", text(&out.stderr));
            // Paused, a stack is exact. Read without pausing and checked, a stack that
            // changed and changed back between the read and the check could pass; pausing
            // after races keeps that far below one sample in a thousand.
            let allowed = if mode == "always" { 0 } else { total / 1000 };
            assert!(torn_count <= allowed, "--pause {mode}: {torn:?}");
        }
        drop(target);
    });
}

#[test]
fn a_launched_command_is_profiled_until_it_exits() {
    for_each_python(|py| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("exits.svg");
        let rec = run_sampler(&[
            "record",
            "-o",
            out.to_str().unwrap(),
            "--",
            py.path.to_str().unwrap(),
            script("exits.py").to_str().unwrap(),
            "1.5",
        ]);
        let stderr = text(&rec.stderr);
        assert!(rec.status.success(), "{stderr}");
        assert!(stderr.contains("exit status: 3"), "{stderr}");
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<?xml"), "an SVG");
        let work = format!("work (exits.py:{})", marker_line("exits.py", "work"));
        assert!(svg.contains(&work), "{work} not in the flame graph");
        assert!(svg.contains("exits.py 1.5"), "titled with the command line");
    });
}

#[test]
fn record_options_shape_the_output() {
    for_each_python(|py| {
        let target = Target::start(py, "threads.py", &[]);
        let pid = target.pid.to_string();
        let record = |extra: &[&str]| {
            let mut args = vec!["--pid", &pid, "-d", "1", "-r", "200"];
            args.extend_from_slice(extra);
            record_raw(&args).1
        };
        let has =
            |stacks: &[(String, u64)], needle: &str| stacks.iter().any(|(s, _)| s.contains(needle));
        let busy = marker_line("threads.py", "busy_one");

        // Idle threads are left out. The sleeper wakes every 5 s and then briefly runs (and
        // holds the GIL), so a sample or two of it is right; issue 4 measures the 1% target.
        let (out, default) = record_raw(&["--pid", &pid, "-d", "1", "-r", "200"]);
        let samples = summary_count(&text(&out.stderr), "samples");
        let busy_samples = leaf_samples(&default, &format!("busy_one (threads.py:{busy})"));
        // Two busy threads share the GIL, and the one waiting for it is asleep in the kernel,
        // so each is active in roughly half of the samples (however many a loaded machine
        // lets us take).
        assert!(samples >= 20, "{}", text(&out.stderr));
        assert!(
            busy_samples * 5 >= samples,
            "{samples} samples: {default:?}"
        );
        assert!(
            leaf_samples(&default, "sleeper ") * 20 <= busy_samples,
            "idle threads are left out: {default:?}"
        );

        let idle = record(&["--idle"]);
        assert!(
            leaf_samples(&idle, "sleeper (threads.py:") * 5 >= leaf_samples(&idle, "busy_one ") * 4,
            "--idle keeps the sleeping thread in every sample: {idle:?}"
        );

        let nolineno = record(&["--nolineno"]);
        assert!(
            has(&nolineno, "busy_one (threads.py);") || has(&nolineno, "busy_one (threads.py)")
        );
        assert!(!has(&nolineno, "threads.py:"), "{nolineno:?}");

        let function = record(&["--function"]);
        let def_line = marker_line("threads.py", "def_busy_one");
        assert!(
            has(&function, &format!("busy_one (threads.py:{def_line})")),
            "{function:?}"
        );

        let full = record(&["--full-filenames", "--nonblocking"]);
        let path = script("threads.py");
        assert!(
            has(&full, &format!("busy_one ({}:{busy})", path.display())),
            "{full:?}"
        );
        drop(target);
    });
}

#[test]
fn a_reused_code_object_address_is_not_taken_for_the_old_function() {
    for_each_python(|py| {
        // From 3.12 cached code objects go unread while no code is made, and each way of
        // reading confirms that differently (during the pause, or in the stack check).
        let modes: &[&[&str]] = if py.version >= (3, 12, 0) {
            &[&[], &["--nonblocking"], &["--pause", "always"]]
        } else {
            &[&[]]
        };
        let code_reuse = script("code_reuse.py");
        for mode in modes {
            let mut args = vec!["-r", "200"];
            args.extend_from_slice(mode);
            args.extend([
                "--",
                py.path.to_str().unwrap(),
                code_reuse.to_str().unwrap(),
            ]);
            let (_, stacks) = record_raw(&args);
            let (first, second) = (
                leaf_samples(&stacks, "first_function "),
                leaf_samples(&stacks, "second_function "),
            );
            // Each ran for one second: each must hold a good share of the samples.
            assert!(
                first >= 60 && second >= 60,
                "[{}] {mode:?}: first {first}, second {second}: {stacks:?}",
                py.label
            );
        }
    });
}

/// From 3.12 a sample uses cached code objects without reading them again while the
/// interpreter's counter of code objects made (3.12, 3.13) or freed (3.14+) stays put
/// (`python::code::CodeVersions`): the counter must be found, hold still while the target
/// makes no code, and count what it makes.
#[test]
fn the_counter_of_code_objects_moves_exactly_when_code_is_made_and_freed() {
    use sampler::python::Interpreter;
    for_each_python(|py| {
        if py.version < (3, 12, 0) {
            return;
        }
        let mut target = Target::start(py, "make_code.py", &[]);
        let process = sampler::process::Process::attach(target.pid).unwrap();
        let interp = Interpreter::attach(&process).unwrap();
        let Some(before) = interp.code_versions(&process).unwrap() else {
            // Only an interpreter whose build differs from its table may go without: the
            // pinned pyenv builds are the ones the tables come from.
            assert!(
                !py.label.starts_with("pyenv"),
                "[{}] no counter of code objects made",
                py.label
            );
            eprintln!(
                "[{}] the counter of code objects is unknown: every sample reads the code \
                 objects it uses",
                py.label
            );
            return;
        };
        assert_eq!(before.len(), 1, "[{}] {before:?}", py.label);
        std::thread::sleep(Duration::from_millis(200));
        let idle = interp.code_versions(&process).unwrap().unwrap();
        assert_eq!(idle, before, "[{}] moved while no code was made", py.label);
        target.send("500");
        target.wait_for_line("made 500", Duration::from_secs(30));
        let after = interp.code_versions(&process).unwrap().unwrap();
        // Each compile makes two, the module's code and the function's, and both are freed:
        // 3.12 and 3.13 count those made, 3.14+ those freed.
        let made = after[0].wrapping_sub(before[0]);
        assert!(
            (1000..1100).contains(&made),
            "[{}] {made} code objects counted for 1000 made",
            py.label
        );
    });
}

/// The list of interpreters is kept for a few milliseconds between samples: one made after
/// the profiler attached must still be seen, and one destroyed must not stop the sampling.
#[test]
fn a_sub_interpreter_made_while_sampling_is_seen() {
    for_each_python(|py| {
        let (rec, stacks) = record_raw(&[
            "-r",
            "200",
            "--",
            py.path.to_str().unwrap(),
            script("subinterp.py").to_str().unwrap(),
        ]);
        let stdout = text(&rec.stdout);
        let before = leaf_samples(&stacks, "before_sub ");
        assert!(
            before >= 50,
            "[{}] before_sub {before}: {stacks:?}",
            py.label
        );
        if py.version.1 < 8 {
            assert!(stdout.contains("subinterpreters: none"), "{stdout}");
            return;
        }
        assert!(stdout.contains("subinterpreters: yes"), "{stdout}");
        // One second at 200 Hz in each; the sub-interpreter's thread state is a second one on
        // the main thread.
        let (inside, after) = (
            leaf_samples(&stacks, "inside_sub "),
            leaf_samples(&stacks, "after_sub "),
        );
        assert!(
            inside >= 100 && after >= 50,
            "[{}] inside_sub {inside}, after_sub {after}: {stacks:?}",
            py.label
        );
    });
}

#[test]
fn line_tables_decode_as_cpython_does() {
    use sampler::python::linetable::{
        decode_linetable_310, decode_lnotab, decode_locations, line_at,
    };
    for_each_python(|py: &Python| {
        let out = std::process::Command::new(&py.path)
            .arg(script("linetables.py"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut checked = 0;
        for line in text(&out.stdout).lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let table: Vec<u8> = v["table"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_u64().unwrap() as u8)
                .collect();
            let first = v["first"].as_i64().unwrap() as i32;
            let ranges = match v["format"].as_str().unwrap() {
                "locations" => decode_locations(&table, first).unwrap(),
                "linetable310" => decode_linetable_310(&table, first).unwrap(),
                _ => decode_lnotab(&table, first, py.version.0 >= 3).unwrap(),
            };
            for pair in v["lines"].as_array().unwrap() {
                let offset = pair[0].as_i64().unwrap();
                let want = pair[1].as_u64().map(|l| l as u32);
                let got = line_at(&ranges, offset, first as u32);
                assert_eq!(got, want, "{} at offset {offset}", v["name"]);
                checked += 1;
            }
        }
        assert!(checked > 10_000, "only {checked} instructions checked");
    });
}

/// The innermost frame names of the main thread, read through the library.
fn main_thread_names(interp: &mut sampler::python::Interpreter, pid: u32) -> Vec<String> {
    let process = sampler::process::Process::attach(pid).unwrap();
    let stacks = interp.stacks(&process, 100).unwrap();
    let main = stacks
        .iter()
        .find(|s| s.frames.iter().any(|f| &*f.name == "leaf"))
        .expect("the thread running leaf()");
    main.frames.iter().map(|f| f.name.to_string()).collect()
}

#[test]
fn the_interpreter_is_found_without_root_symbols() {
    use sampler::python::{AttachOptions, Interpreter};
    for_each_python(|py| {
        let target = Target::start(py, "chain.py", &[]);
        let process = sampler::process::Process::attach(target.pid).unwrap();
        let by_symbol = Interpreter::attach(&process).unwrap();
        let options = AttachOptions {
            ignore_root_symbols: true,
        };
        let mut by_scan = Interpreter::attach_with(&process, options).unwrap();
        assert_eq!(by_scan.runtime, by_symbol.runtime, "the same root is found");
        let names = main_thread_names(&mut by_scan, target.pid);
        assert_eq!(names.first().map(String::as_str), Some("leaf"), "{names:?}");
        assert_eq!(
            names.last().map(String::as_str),
            Some("<module>"),
            "{names:?}"
        );
    });
}

#[test]
fn a_stripped_libpython_is_found_by_scanning() {
    // 2.7 keeps its root in a static variable that only .symtab names; strip removes it.
    let Some(py) = pythons().into_iter().find(|p| p.version.0 == 2) else {
        return;
    };
    let lib = py.path.parent().unwrap().join("../lib/libpython2.7.so.1.0");
    let dir = tempfile::tempdir().unwrap();
    let stripped = dir.path().join("libpython2.7.so.1.0");
    std::fs::copy(&lib, &stripped).unwrap();
    let status = std::process::Command::new("strip")
        .arg(&stripped)
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = std::process::Command::new(&py.path)
        .arg(script("chain.py"))
        .env("LD_LIBRARY_PATH", dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert_eq!(first.trim(), "ready");
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", child.id())).unwrap();
    assert!(
        maps.contains(stripped.to_str().unwrap()),
        "runs on the stripped copy"
    );
    let out = run_sampler(&["dump", "--pid", &child.id().to_string()]);
    let _ = child.kill();
    let _ = child.wait();
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        shown.contains(&format!(
            "    leaf (chain.py:{})",
            marker_line("chain.py", "leaf")
        )),
        "{shown}"
    );
}

#[test]
fn os_thread_ids_match_what_each_thread_reports() {
    for_each_python(|py| {
        let target = Target::start(py, "thread_ids.py", &[]);
        let line = target.wait_for_line("ids ", Duration::from_secs(10));
        let mut reported: Vec<(u64, u64)> = line
            .trim_start_matches("ids ")
            .split_whitespace()
            .map(|pair| {
                let (ident, tid) = pair.split_once(':').unwrap();
                (ident.parse().unwrap(), tid.parse().unwrap())
            })
            .collect();
        reported.sort();
        let dump = dump_json(target.pid, &[]);
        let mut seen: Vec<(u64, u64)> = dump["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let tid = t["os_thread_id"].as_u64();
                let id = t["thread_id"].as_u64().unwrap();
                (
                    id,
                    tid.unwrap_or_else(|| panic!("no OS id for thread {id:#x}")),
                )
            })
            .collect();
        seen.sort();
        assert_eq!(seen, reported);
    });
}

#[test]
fn the_matrix_holds_all_thirteen_interpreters() {
    let labels: Vec<String> = pythons().iter().map(|p| p.label.clone()).collect();
    eprintln!("interpreters: {labels:?}");
    if crate::support::in_ci() {
        assert_eq!(labels.len(), 13, "{labels:?}");
    }
}

#[test]
fn gil_mode_keeps_only_the_holder_and_dump_marks_it() {
    for_each_python(|py| {
        let target = Target::start(py, "gil_hog.py", &[]);
        let hog = format!("hog (gil_hog.py:{})", marker_line("gil_hog.py", "hog"));
        let contender = format!(
            "contender (gil_hog.py:{})",
            marker_line("gil_hog.py", "contender")
        );
        let thread_named = |dump: &Value, name: &str| {
            dump["threads"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == name)
                .cloned()
        };
        // Once the hog is inside its C call it holds the GIL for good, whatever the
        // contender asks: from then on every reading has one answer.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let dump = dump_json(target.pid, &[]);
            let at = thread_named(&dump, "hog").map(|t| frames(&t));
            if at.as_ref().and_then(|f| f.first()) == Some(&hog) {
                break;
            }
            assert!(Instant::now() < deadline, "the hog never got there: {dump}");
        }

        let pid = target.pid.to_string();
        let (rec, stacks) = record_raw(&["--pid", &pid, "--gil", "-d", "1", "-r", "200"]);
        let samples = summary_count(&text(&rec.stderr), "samples");
        assert!(samples > 0, "{}", text(&rec.stderr));
        // One stack per sample, and only the holder's.
        let held: u64 = stacks.iter().map(|(_, c)| c).sum();
        assert_eq!(held, samples, "{stacks:?}");
        for (stack, _) in &stacks {
            assert!(stack.ends_with(&format!(";{hog}")), "{stack} holds the GIL");
        }
        // Without --gil the contender is there too: it is waiting, not gone.
        let (_, all) = record_raw(&["--pid", &pid, "--idle", "-d", "0.2", "-r", "100"]);
        assert!(
            all.iter()
                .any(|(s, _)| s.ends_with(&format!(";{contender}"))),
            "{all:?}"
        );

        // dump marks exactly one holder: the hog.
        for _ in 0..5 {
            let dump = dump_json(target.pid, &[]);
            let holders: Vec<&Value> = dump["threads"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["holds_gil"] == true)
                .collect();
            assert_eq!(holders.len(), 1, "{dump}");
            assert_eq!(holders[0]["name"], "hog", "{dump}");
        }
    });
}

/// The threads of `idle_mix.py`: (name on 3.x, name on 2.7, busy).
const IDLE_MIX: [(&str, &str, bool); 8] = [
    ("MainThread", "MainThread", false),
    ("busy-1", "busy-1", true),
    ("busy-2", "busy-2", true),
    ("sleeping", "sleeping", false),
    ("lock-wait", "lock-wait", false),
    ("select-wait", "select-wait", false),
    ("read-wait", "read-wait", false),
    ("cond-wait-名前", "cond-wait", false),
];

#[test]
fn threads_are_named_and_blocked_ones_are_idle() {
    for_each_python(|py| {
        let target = Target::start(py, "idle_mix.py", &[]);
        let pid = target.pid.to_string();
        let record = |extra: &[&str]| {
            let mut args = vec!["--pid", &pid, "-r", "200", "--threads"];
            args.extend_from_slice(extra);
            // Per thread name (the root frame's quoted part): samples. The `ready` announcer
            // may still be on its way out when sampling starts; it is no thread of the test.
            let mut per_thread = std::collections::BTreeMap::<String, u64>::new();
            for (stack, count) in record_raw(&args).1 {
                let root = stack.split(';').next().unwrap();
                assert!(root.starts_with("thread "), "{stack}");
                let name = root.split('"').nth(1).unwrap_or("").to_string();
                if name != "ready-watcher" {
                    *per_thread.entry(name).or_default() += count;
                }
            }
            per_thread
        };
        let name_of =
            |t: &(&'static str, &'static str, bool)| if py.version.0 == 2 { t.1 } else { t.0 };

        // With --idle every thread is there, under its name.
        let all = record(&["--idle", "-d", "1"]);
        for t in &IDLE_MIX {
            assert!(
                all.contains_key(name_of(t)),
                "{} missing: {all:?}",
                name_of(t)
            );
        }

        // Without it, the blocked threads are left out: at most 1% of the stacks come from
        // them (py-spy lets 5–30% through on this workload's kind).
        let active = record(&["-d", "2"]);
        let total: u64 = active.values().sum();
        let busy: u64 = IDLE_MIX
            .iter()
            .filter(|t| t.2)
            .map(|t| active.get(name_of(t)).copied().unwrap_or(0))
            .sum();
        assert!(busy >= 200, "too few busy samples: {active:?}");
        assert!(
            (total - busy) * 100 <= total,
            "{} of {total} stacks from blocked threads: {active:?}",
            total - busy
        );
    });
}

#[test]
fn dump_locals_shows_arguments_and_values_of_every_common_type() {
    for_each_python(|py| {
        let target = Target::start(py, "locals.py", &[]);
        let dump = dump_json(target.pid, &["--locals"]);
        // The thread spinning in inspect_me (the main thread; its kernel id is not needed).
        let main = dump["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["frames"][0]["name"] == "inspect_me")
            .unwrap_or_else(|| panic!("no thread in inspect_me: {dump}"));
        let frame = &main["frames"][0];
        assert_eq!(frame["line"], marker_line("locals.py", "spin"), "{frame}");
        let py2 = py.version.0 == 2;
        let e_acute = "é".repeat(80);
        let mut want: Vec<(&str, String, bool)> = vec![
            ("number", "42".into(), true),
            ("text", "'hi'".into(), true),
            ("rest", "<tuple of length 2>".into(), true),
            ("options", "<dict of length 1>".into(), true),
            ("nothing", "None".into(), false),
            ("yes", "True".into(), false),
            ("no", "False".into(), false),
            ("negative", "-7".into(), false),
        ];
        if py2 {
            want.extend([
                ("big", "1267650600228229401496703205376L".into(), false),
                ("big_negative", "-1180591620717411303424L".into(), false),
                ("ratio", "3.25".into(), false),
                ("greeting", "u'héllo'".into(), false),
                ("long_text", format!("u'{e_acute}'..."), false),
                ("raw", "\"\\x00ab'\"".into(), false),
            ]);
        } else {
            want.extend([
                ("big", "1267650600228229401496703205376".into(), false),
                ("big_negative", "-1180591620717411303424".into(), false),
                ("ratio", "3.25".into(), false),
                ("greeting", "'héllo wörld 名前'".into(), false),
                ("long_text", format!("'{e_acute}'..."), false),
                ("raw", "b\"\\x00ab'\"".into(), false),
            ]);
        }
        want.extend([
            ("items", "<list of length 3>".into(), false),
            ("pair", "<tuple of length 2>".into(), false),
            ("mapping", "<dict of length 1>".into(), false),
            ("unique", "<set of length 4>".into(), false),
        ]);
        let got: Vec<(String, String, bool)> = frame["locals"]
            .as_array()
            .unwrap_or_else(|| panic!("no locals: {frame}"))
            .iter()
            .map(|l| {
                (
                    l["name"].as_str().unwrap().to_string(),
                    l["value"].as_str().unwrap().to_string(),
                    l["arg"].as_bool().unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, String, bool)> = want
            .into_iter()
            .map(|(n, v, a)| (n.to_string(), v, a))
            .collect();
        assert_eq!(got, want);

        // The text form lists the same under headings.
        let out = run_sampler(&["dump", "--pid", &target.pid.to_string(), "--locals"]);
        let shown = text(&out.stdout);
        assert!(
            shown.contains("        Arguments:\n            number = 42\n"),
            "{shown}"
        );
        assert!(
            shown.contains("            unique = <set of length 4>\n"),
            "{shown}"
        );
    });
}
