//! The pprof format, read by `go tool pprof` (Debian's `golang-go`). Each test records the
//! formats workload and reads the file back through several of pprof's views: `-top` (flat and
//! cumulative counts per function), `-traces` (every sample's stack, leaf first, with its
//! labels), and `-raw` (pprof's dump of the decoded message). The views are computed by pprof
//! from the same file in different ways, so comparing them checks the counts exactly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use super::*;

/// The `go` command: on the PATH, or where Debian puts it.
fn go() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("go"))
        .chain([PathBuf::from("/usr/lib/go/bin/go")])
        .find(|go| go.is_file())
        .unwrap_or_else(|| panic!("go is missing: run .ci/install-consumers.sh"))
}

/// `go tool pprof ARGS… FILE`'s standard output. go wants a writable home and caches; they
/// go in the recording's temporary folder.
fn pprof(recorded: &Recorded, args: &[&str]) -> String {
    let home = recorded.dir.path().join("go-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(go());
    cmd.args(["tool", "pprof"])
        .args(args)
        .arg(&recorded.path)
        .env("HOME", &home)
        .env("GOCACHE", home.join("cache"))
        .env("GOPATH", home.join("path"))
        .env("PPROF_TMPDIR", &home);
    text(&run_consumer(cmd).stdout)
}

/// What `-top` shows.
#[derive(Debug)]
struct Top {
    /// The text, for messages.
    text: String,
    /// The total the rows account for.
    total: u64,
    /// Flat and cumulative counts, by row name.
    rows: BTreeMap<String, (u64, u64)>,
}

impl Top {
    fn flat(&self, name: &str) -> u64 {
        self.row(name).0
    }

    fn cum(&self, name: &str) -> u64 {
        self.row(name).1
    }

    fn row(&self, name: &str) -> (u64, u64) {
        *self
            .rows
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` in go tool pprof -top:\n{}", self.text))
    }
}

/// `go tool pprof -top` over every node, counting samples (`extra` may ask for `-lines`).
fn top(recorded: &Recorded, extra: &[&str]) -> Top {
    let mut args = vec![
        "-top",
        "-nodecount=100",
        "-nodefraction=0",
        "-edgefraction=0",
        "-sample_index=samples",
    ];
    args.extend_from_slice(extra);
    let text = pprof(recorded, &args);
    // "Showing nodes accounting for 352, 100% of 352 total"
    let total = text
        .lines()
        .find_map(|l| l.strip_prefix("Showing nodes accounting for "))
        .and_then(|l| l.strip_suffix(" total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no total in go tool pprof -top:\n{text}"));
    // "       351 99.72% 99.72%        351 99.72%  spin": five columns, then the name (which
    // may hold spaces, as thread roots do).
    let rows = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat  flat%"))
        .skip(1)
        .map(|l| {
            let mut rest = l.trim_start();
            let mut columns = Vec::new();
            for _ in 0..5 {
                let (column, tail) = rest.split_once(' ').expect("a -top row");
                columns.push(column);
                rest = tail.trim_start();
            }
            let count = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("count in {l}"));
            (rest.to_string(), (count(columns[0]), count(columns[3])))
        })
        .collect();
    Top { text, total, rows }
}

/// One sample as `-traces` shows it.
#[derive(Debug)]
struct Trace {
    /// Label values by key, numbers as text.
    labels: BTreeMap<String, String>,
    count: u64,
    /// Leaf first.
    frames: Vec<String>,
}

impl Trace {
    fn label(&self, key: &str) -> &str {
        self.labels
            .get(key)
            .unwrap_or_else(|| panic!("no label {key} in {self:?}"))
    }
}

/// `go tool pprof -traces`, counting samples. A sample is its label lines (`    key:  value`),
/// then its frames, the first beside its count (`   79   spin`).
fn traces(recorded: &Recorded, extra: &[&str]) -> Vec<Trace> {
    let mut args = vec!["-traces", "-sample_index=samples"];
    args.extend_from_slice(extra);
    let text = pprof(recorded, &args);
    let separator = "-----------+-------------------------------------------------------";
    let blocks: Vec<&str> = text.split(&format!("{separator}\n")).skip(1).collect();
    let traces: Vec<Trace> = blocks
        .iter()
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut labels = BTreeMap::new();
            let mut count = None;
            let mut frames = Vec::new();
            for line in block.lines() {
                let value = line.get(..10).and_then(|v| v.trim().parse::<u64>().ok());
                if count.is_none() && value.is_none() {
                    let (key, value) = line
                        .split_once(":  ")
                        .unwrap_or_else(|| panic!("a label: {line:?}"));
                    labels.insert(key.trim().to_string(), value.trim().to_string());
                    continue;
                }
                if count.is_none() {
                    count = value;
                }
                frames.push(line[13..].to_string());
            }
            let count = count.unwrap_or_else(|| panic!("no count in {block}"));
            Trace {
                labels,
                count,
                frames,
            }
        })
        .collect();
    assert!(!traces.is_empty(), "no traces:\n{text}");
    traces
}

/// What `-raw` shows: pprof's own dump of the decoded profile.
#[derive(Debug)]
struct Raw {
    text: String,
    /// `PeriodType: cpu nanoseconds`'s value.
    period_type: String,
    period: u64,
    /// The line naming the sample types, `samples/count cpu/nanoseconds[dflt]`.
    sample_types: String,
    /// Each sample's values.
    values: Vec<Vec<u64>>,
    /// Location id → `name file:line s=first_line`.
    locations: BTreeMap<u64, String>,
}

fn raw(recorded: &Recorded) -> Raw {
    let text = pprof(recorded, &["-raw"]);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in go tool pprof -raw:\n{text}"))
            .to_string()
    };
    let period_type = field("PeriodType: ");
    let period = field("Period: ").parse().expect("period");
    let mut lines = text.lines().skip_while(|l| *l != "Samples:").skip(1);
    let sample_types = lines.next().expect("sample types").to_string();
    let mut values = Vec::new();
    for line in lines.by_ref().take_while(|l| *l != "Locations") {
        // "        79  450873382: 1 2 3 4 5 " or a label line ("   pid:[22764] ...").
        let Some((numbers, _)) = line.split_once(": ") else {
            continue;
        };
        let parsed: Option<Vec<u64>> = numbers.split_whitespace().map(|n| n.parse().ok()).collect();
        if let Some(parsed) = parsed {
            values.push(parsed);
        }
    }
    // "     4: 0x0 M=1 <module> formats.py:51 s=1()": the id, the address, the mapping.
    let locations = lines
        .take_while(|l| *l != "Mappings")
        .filter_map(|l| {
            let (id, rest) = l.trim_start().split_once(": ")?;
            let rest = rest.split_once(' ')?.1;
            let rest = rest
                .strip_prefix("M=")
                .map_or(rest, |r| r.split_once(' ').unwrap().1);
            Some((id.parse().ok()?, rest.to_string()))
        })
        .collect();
    Raw {
        period_type,
        period,
        sample_types,
        values,
        locations,
        text,
    }
}

/// The functions the workload's main thread runs, root first.
const MAIN_FUNCTIONS: [&str; 6] = ["<module>", "cycle", "heavy", "light", "recurse", "spin"];

/// Checks every view against the others on one recording, at 200 Hz for 3 s on 3.12 (no
/// `--idle`, so CPU time): the functions, sample types, flat and cumulative counts (exact
/// between views, 3:1:1 between the workload's functions), the stacks with their lines, leaf
/// first, and the thread labels.
#[test]
fn go_tool_pprof_reads_functions_lines_labels_and_exact_counts() {
    let python = target_python("3.12");
    let recorded = record(&python, "pprof", "pb.gz", "3", &[]);
    let ticks = summary_count(&recorded.stderr, "samples");
    let file = shown_file(&script("formats.py"));

    // The types, the period, and each sample's time = count × period.
    let raw = raw(&recorded);
    assert_eq!(raw.period_type, "cpu nanoseconds", "{}", raw.text);
    assert_eq!(raw.sample_types, "samples/count cpu/nanoseconds[dflt]");
    assert!(raw.period > 0);
    for values in &raw.values {
        assert_eq!(values.len(), 2, "{}", raw.text);
        assert_eq!(values[1], values[0] * raw.period, "{}", raw.text);
    }
    assert!(
        raw.text
            .lines()
            .any(|l| l.starts_with("Comment: ") && l.contains("formats.py")),
        "the title is a comment:\n{}",
        raw.text
    );

    // -top: every function, by name, and the workload's split.
    let top = top(&recorded, &[]);
    assert!(!top.text.contains("<unknown>"), "{}", top.text);
    for name in MAIN_FUNCTIONS {
        top.row(name);
    }
    assert_eq!(
        top.total,
        raw.values.iter().map(|v| v[0]).sum::<u64>(),
        "-top and -raw count the same samples"
    );
    let spin = top.flat("spin");
    for (name, (flat, _)) in &top.rows {
        assert!(
            *flat <= spin,
            "{name} has more flat samples than spin:\n{}",
            top.text
        );
    }
    assert!(
        spin * 10 >= top.total * 9,
        "spin is where time goes:\n{}",
        top.text
    );
    assert_ratio(
        "heavy:light",
        top.cum("heavy") as f64,
        top.cum("light") as f64,
        3.0,
        0.35,
    );
    assert_ratio(
        "heavy:recurse",
        top.cum("heavy") as f64,
        top.cum("recurse") as f64,
        3.0,
        0.35,
    );

    // -traces agrees exactly with -top: a function's flat count is the count of the stacks it
    // ends, its cumulative count that of the stacks it is in (once, however deep it recurses).
    let stacks = traces(&recorded, &[]);
    assert_eq!(stacks.iter().map(|t| t.count).sum::<u64>(), top.total);
    for (name, &(flat, cum)) in &top.rows {
        let ends: u64 = stacks
            .iter()
            .filter(|t| &t.frames[0] == name)
            .map(|t| t.count)
            .sum();
        let within: u64 = stacks
            .iter()
            .filter(|t| t.frames.contains(name))
            .map(|t| t.count)
            .sum();
        assert_eq!((flat, cum), (ends, within), "{name}: -top against -traces");
    }

    // The labels: one process, whose main thread's kernel id is the process id.
    let pid = stacks[0].label("pid");
    let mut main_samples = 0;
    for trace in &stacks {
        assert_eq!(trace.label("pid"), pid, "{trace:?}");
        trace.label("thread_id").parse::<u64>().expect("a number");
        if trace.label("thread_name") == "MainThread" {
            assert_eq!(trace.label("thread_id"), pid, "{trace:?}");
            main_samples += trace.count;
        }
    }
    // The main thread spins all the time: it is in (nearly) every sample taken.
    assert!(
        main_samples <= ticks && main_samples * 10 >= ticks * 9,
        "{main_samples} main-thread samples of {ticks}"
    );

    // With lines: the main thread's stacks are the workload's, leaf first, at its lines.
    let at =
        |name: &str, marker: &str| format!("{name} {file}:{}", marker_line("formats.py", marker));
    let spin_lines: Vec<String> = (def_line("spin") + 1..=marker_line("formats.py", "spin") + 1)
        .map(|line| format!("spin {file}:{line}"))
        .collect();
    let module = at("<module>", "main");
    let recurse_call = at("recurse", "recurse_call");
    let expected: [Vec<String>; 3] = [
        vec![
            module.clone(),
            at("cycle", "cycle_heavy"),
            at("heavy", "heavy"),
        ],
        vec![
            module.clone(),
            at("cycle", "cycle_light"),
            at("light", "light"),
        ],
        vec![
            module.clone(),
            at("cycle", "cycle_recurse"),
            recurse_call.clone(),
            recurse_call.clone(),
            recurse_call.clone(),
            at("recurse", "recurse_leaf"),
        ],
    ];
    // A function just entered (or about to return) is at a line of its own other than its
    // call line: the innermost frame may be anywhere in its function.
    let in_function = |got: &str, want: &str| {
        let name = want.split(' ').next().unwrap_or_default();
        got.strip_prefix(&format!("{name} {file}:"))
            .and_then(|line| line.parse::<u32>().ok())
            .is_some_and(|line| body_lines(name).contains(&line))
    };
    let mut complete = [0u64; 3];
    for trace in traces(&recorded, &["-lines"]) {
        if trace.label("thread_name") != "MainThread" {
            continue;
        }
        let root_first: Vec<&String> = trace.frames.iter().rev().collect();
        let innermost = root_first.len() - 1;
        let which = expected.iter().position(|stack| {
            root_first.len() <= stack.len() + 1
                && root_first
                    .iter()
                    .zip(stack.iter().chain([&String::new()]))
                    .enumerate()
                    .all(|(i, (got, want))| {
                        *got == want
                            || (want.is_empty() && spin_lines.contains(got))
                            || (i == innermost && !want.is_empty() && in_function(got, want))
                    })
        });
        let which = which.unwrap_or_else(|| panic!("not a stack of the workload: {trace:?}"));
        if root_first.len() == expected[which].len() + 1 {
            complete[which] += trace.count;
        }
    }
    assert!(complete.iter().all(|&c| c > 0), "{complete:?}");
    assert!(
        complete.iter().sum::<u64>() * 10 >= main_samples * 9,
        "{complete:?} of {main_samples} main-thread samples end in spin"
    );
}

/// `--threads --idle` on 2.7: each thread's stacks hang below its root frame, which pprof shows
/// as a function named like the thread labels say; the sleeping `napper` thread is sampled
/// too, so every tick counts both threads and the time is wall time.
#[test]
fn go_tool_pprof_shows_thread_roots_and_wall_time() {
    let python = target_python("2.7");
    let recorded = record(&python, "pprof", "pb.gz", "2", &["--threads", "--idle"]);
    let ticks = summary_count(&recorded.stderr, "samples");

    let raw = raw(&recorded);
    assert_eq!(raw.period_type, "wall nanoseconds", "{}", raw.text);
    assert_eq!(raw.sample_types, "samples/count wall/nanoseconds[dflt]");
    let default_top = pprof(&recorded, &["-top"]);
    assert!(default_top.contains("Type: wall"), "{default_top}");

    let stacks = traces(&recorded, &[]);
    let mut roots: BTreeMap<String, u64> = BTreeMap::new();
    for trace in &stacks {
        let root = trace.frames.last().unwrap();
        let want = format!(
            "thread {} \"{}\"",
            trace.label("thread_id"),
            trace.label("thread_name")
        );
        assert_eq!(root, &want, "the root names the labelled thread: {trace:?}");
        if trace.label("thread_name") == "MainThread" {
            assert_eq!(trace.label("thread_id"), trace.label("pid"));
        }
        *roots.entry(root.clone()).or_default() += trace.count;
    }
    let named = |name: &str| -> Vec<&String> {
        roots
            .keys()
            .filter(|r| r.ends_with(&format!(" \"{name}\"")))
            .collect()
    };
    let (main, napper) = (named("MainThread"), named("napper"));
    assert_eq!(
        (main.len(), napper.len(), roots.len()),
        (1, 1, 2),
        "{roots:?}"
    );

    // Every tick has both threads: the main thread spinning and napper asleep in `nap`.
    let top = top(&recorded, &[]);
    assert_eq!(top.total, 2 * ticks, "{}", top.text);
    assert_eq!(top.cum(main[0]), ticks, "{}", top.text);
    assert_eq!(top.cum(napper[0]), ticks, "{}", top.text);
    assert_eq!(top.flat("nap"), ticks, "{}", top.text);
    for name in MAIN_FUNCTIONS {
        top.row(name);
    }
}

/// `--function` (3.14, or the newest interpreter): every frame is at its function's first
/// line, the `def` line (1 for the module), and pprof's locations all say so.
#[test]
fn go_tool_pprof_shows_first_lines_with_function() {
    let python = target_python("3.14");
    let recorded = record(&python, "pprof", "pb.gz", "2", &["--function"]);
    let file = shown_file(&script("formats.py"));

    let top = top(&recorded, &["-lines"]);
    for name in MAIN_FUNCTIONS {
        top.row(&format!("{name} {file}:{}", def_line(name)));
    }
    let mut checked = 0;
    for trace in traces(&recorded, &["-lines"]) {
        for frame in &trace.frames {
            let (name, place) = frame.rsplit_once(' ').unwrap();
            if let Some(line) = place.strip_prefix(&format!("{file}:")) {
                assert_eq!(line, def_line(name).to_string(), "{trace:?}");
                checked += trace.count;
            }
        }
    }
    assert!(checked > 0);
    let raw = raw(&recorded);
    for (id, location) in &raw.locations {
        // "heavy formats.py:18 s=18()": the line is the first line.
        let (place, first) = location
            .rsplit_once(" s=")
            .unwrap_or_else(|| panic!("location {id}: {location}"));
        let first = first.trim_end_matches("()");
        assert!(
            place.ends_with(&format!(":{first}")),
            "location {id}: {location}"
        );
    }
}
