//! The pstats format, read by CPython's own `pstats` on every Python 3 of the machine, by
//! gprof2dot and by SnakeViz's loader.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::*;

/// Loads the file with `pstats.Stats`, runs the reports a user would (`print_stats` sorted by
/// cumulative time, `print_callers`), and prints JSON: every function's numbers and callers,
/// pstats' totals, and the reports' text. Runs on Python 3.6 and later.
const PSTATS_DUMP: &str = r#"
import io, json, pstats, sys
text = io.StringIO()
stats = pstats.Stats(sys.argv[1], stream=text)
stats.sort_stats("cumulative").print_stats()
stats.print_callers()
functions = []
for (file, line, name), (cc, nc, tt, ct, callers) in sorted(stats.stats.items()):
    functions.append({
        "file": file, "line": line, "name": name, "cc": cc, "nc": nc, "tt": tt, "ct": ct,
        "callers": sorted(
            [{"file": k[0], "line": k[1], "name": k[2], "value": list(v)}
             for k, v in callers.items()],
            key=lambda c: (c["file"], c["line"], c["name"])),
    })
json.dump({
    "total_tt": stats.total_tt,
    "total_calls": stats.total_calls,
    "functions": functions,
    "text": text.getvalue(),
}, sys.stdout)
"#;

/// What SnakeViz's server does with a profile: `pstats.Stats`, then `snakeviz.stats.table_rows`
/// (the table) and `json_stats` (the call graph the sunburst is drawn from), both of which must
/// survive `json.dumps`. Prints each row with its function's raw numbers and its children in
/// the graph (null when the graph left the function out).
const SNAKEVIZ_LOAD: &str = r#"
import json, pstats, sys
from snakeviz.stats import json_stats, table_rows
stats = pstats.Stats(sys.argv[1])
rows = table_rows(stats)
graph = json_stats(stats)
json.dumps(rows)
json.dumps(graph)
out = []
for key, row in zip(list(stats.stats), rows):
    node = graph.get(row[6])
    out.append({
        "file": key[0], "line": key[1], "name": key[2],
        "nc": stats.stats[key][1], "tt": stats.stats[key][2], "ct": stats.stats[key][3],
        "ncalls": row[0][0], "tottime": float(row[1]), "cumtime": float(row[3]),
        "id": row[6],
        "children": sorted(node["children"]) if node is not None else None,
    })
json.dump(out, sys.stdout)
"#;

/// The workload's functions below `<module>`.
const FUNCTIONS: [&str; 5] = ["cycle", "heavy", "light", "recurse", "spin"];

/// Every Python 3 of the matrix, and the machine's own `python3` when it is another file.
fn python3s() -> Vec<Python> {
    let mut all: Vec<Python> = pythons().into_iter().filter(|p| p.version.0 == 3).collect();
    let system = PathBuf::from("/usr/bin/python3");
    let same = |a: &Path, b: &Path| {
        a.canonicalize().ok().is_some() && a.canonicalize().ok() == b.canonicalize().ok()
    };
    if system.exists() && !all.iter().any(|p| same(&p.path, &system)) {
        let out = Command::new(&system)
            .args(["-c", "import sys; print(*sys.version_info[:3])"])
            .output()
            .expect("/usr/bin/python3 runs");
        let v: Vec<u32> = text(&out.stdout)
            .split_whitespace()
            .map(|n| n.parse().expect("a version number"))
            .collect();
        all.push(Python {
            label: "system-python3".into(),
            path: system,
            version: (v[0], v[1], v[2]),
        });
    }
    all
}

fn run_json(program: &Path, code: &str, file: &Path) -> Value {
    let mut cmd = Command::new(program);
    cmd.arg("-c").arg(code).arg(file);
    let out = run_consumer(cmd);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

fn num(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("no number `{field}` in {v}"))
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{field}` in {v}"))
}

/// The one entry of `list` for the function `name`.
fn function<'a>(list: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = list.iter().filter(|f| f["name"] == name).collect();
    assert_eq!(found.len(), 1, "functions named {name}: {found:?}");
    found[0]
}

/// `(samples, errors, seconds)` from sampler's summary line.
fn summary_numbers(stderr: &str) -> (f64, f64, f64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("sampler: wrote"))
        .unwrap_or_else(|| panic!("no summary line in {stderr}"));
    let after = line.split(": ").nth(2).expect("counts after the file name");
    let numbers: Vec<f64> = after
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(numbers.len() >= 3, "{line}");
    (numbers[0], numbers[1], numbers[2])
}

/// Checks one interpreter's view of the workload's profile.
fn check_pstats_view(loaded: &Value, file: &str, recorded: &Recorded) {
    let functions = loaded["functions"].as_array().expect("functions");
    for name in FUNCTIONS {
        let f = function(functions, name);
        assert_eq!(str_of(f, "file"), file, "{f}");
        assert_eq!(f["line"].as_u64(), Some(u64::from(def_line(name))), "{f}");
        assert_eq!(f["cc"], f["nc"], "{f}");
        assert!(num(f, "nc") >= 1.0, "{f}");
    }
    let module = function(functions, "<module>");
    assert_eq!(str_of(module, "file"), file);
    assert_eq!(module["line"].as_u64(), Some(1));
    assert!(module["callers"].as_array().unwrap().is_empty(), "{module}");

    // Self time: spin burns the CPU.
    let spin = function(functions, "spin");
    for f in functions {
        if f["name"] != "spin" {
            assert!(num(f, "tt") < num(spin, "tt"), "{f} vs {spin}");
        }
    }
    // Cumulative time splits 3:1:1.
    let ct = |name| num(function(functions, name), "ct");
    assert_ratio("ct(heavy) / ct(light)", ct("heavy"), ct("light"), 3.0, 0.35);
    assert_ratio(
        "ct(heavy) / ct(recurse)",
        ct("heavy"),
        ct("recurse"),
        3.0,
        0.35,
    );
    // Four frames deep, recurse still counts once per sample.
    assert!(
        ct("recurse") <= ct("cycle"),
        "recurse counted more than once"
    );
    assert!(ct("cycle") <= ct("<module>"));

    // Self times add up to the time of all samples: the outermost frames' cumulative times
    // (`<module>`'s, and the napper thread's when it was caught awake), and the samples the
    // summary line counts times the interval (nearly always one active thread per sample).
    let total_tt: f64 = functions.iter().map(|f| num(f, "tt")).sum();
    let outermost_ct: f64 = functions
        .iter()
        .filter(|f| f["callers"].as_array().unwrap().is_empty())
        .map(|f| num(f, "ct"))
        .sum();
    assert!(
        (total_tt - outermost_ct).abs() <= 1e-9 * total_tt.max(1.0),
        "sum of tt {total_tt}, of the outermost frames' ct {outermost_ct}"
    );
    assert!(ct("<module>") >= 0.95 * total_tt, "{total_tt}");
    assert!((num(loaded, "total_tt") - total_tt).abs() <= 1e-9 * total_tt.max(1.0));
    let (samples, errors, seconds) = summary_numbers(&recorded.stderr);
    let expected = samples * seconds / (samples + errors);
    assert_ratio(
        "total tt / samples × interval",
        total_tt,
        expected,
        1.0,
        0.1,
    );

    // spin's callers are heavy, light and recurse; their self times add up to spin's.
    let callers = spin["callers"].as_array().unwrap();
    let mut names: Vec<&str> = callers.iter().map(|c| str_of(c, "name")).collect();
    names.sort_unstable();
    assert_eq!(names, ["heavy", "light", "recurse"], "{spin}");
    let caller_tt: f64 = callers
        .iter()
        .map(|c| c["value"][2].as_f64().unwrap())
        .sum();
    assert!((caller_tt - num(spin, "tt")).abs() <= 1e-6, "{spin}");
    for c in callers {
        assert_eq!(str_of(c, "file"), file);
        assert_eq!(
            c["line"].as_u64(),
            Some(u64::from(def_line(str_of(c, "name"))))
        );
        assert_eq!(c["value"].as_array().unwrap().len(), 4, "{c}");
    }
    // recurse calls itself and is called by cycle.
    let recurse = function(functions, "recurse");
    let mut names: Vec<&str> = recurse["callers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_of(c, "name"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["cycle", "recurse"], "{recurse}");

    let report = str_of(loaded, "text");
    assert!(report.contains("Ordered by: cumulative time"), "{report}");
    assert!(report.contains("was called by"), "{report}");
    for name in FUNCTIONS {
        assert!(
            report.contains(&format!("{file}:{}({name})", def_line(name))),
            "{name} not in:\n{report}"
        );
    }
}

#[test]
fn every_python_3_loads_the_file_and_reports_the_split() {
    let recorded = record(&target_python("3.12"), "pstats", "prof", "3", &[]);
    let file = shown_file(&script("formats.py"));
    let first = std::sync::Mutex::new(None::<(String, Value)>);
    for_each_of(python3s(), |python| {
        let loaded = run_json(&python.path, PSTATS_DUMP, &recorded.path);
        check_pstats_view(&loaded, &file, &recorded);
        // Every interpreter reads the very same numbers.
        let mut first = first.lock().unwrap_or_else(|e| e.into_inner());
        match &*first {
            None => *first = Some((python.label.clone(), loaded["functions"].clone())),
            Some((label, functions)) => assert!(
                *functions == loaded["functions"],
                "{} read other numbers than {label}",
                python.label
            ),
        }
    });
}

/// gprof2dot's nodes: function name (`module:line:name`) → (total %, self %).
fn gprof2dot_nodes(dot: &str) -> Vec<(String, f64, f64)> {
    dot.lines()
        .filter_map(|line| {
            let label = line.split("label=\"").nth(1)?.split('"').next()?;
            if line.contains("->") {
                return None;
            }
            let parts: Vec<&str> = label.split("\\n").collect();
            let percent = |s: &str| {
                s.trim_matches(|c| c == '(' || c == ')')
                    .trim_end_matches('%')
                    .parse::<f64>()
                    .ok()
            };
            Some((
                parts.first()?.to_string(),
                percent(parts.get(1)?)?,
                percent(parts.get(2)?)?,
            ))
        })
        .collect()
}

#[test]
fn gprof2dot_draws_the_call_graph() {
    let recorded = record(&target_python("2.7"), "pstats", "prof", "3", &[]);
    let gprof2dot = consumers().join("venv/bin/gprof2dot");
    assert!(
        gprof2dot.exists(),
        "{} is missing: run .ci/install-consumers.sh",
        gprof2dot.display()
    );
    let mut cmd = Command::new(&gprof2dot);
    cmd.args(["-f", "pstats"]).arg(&recorded.path);
    let dot = text(&run_consumer(cmd).stdout);
    assert!(dot.starts_with("digraph"), "{dot}");
    let nodes = gprof2dot_nodes(&dot);
    let node = |name: &str| {
        let label = format!("formats:{}:{name}", def_line(name));
        nodes
            .iter()
            .find(|(l, _, _)| *l == label)
            .unwrap_or_else(|| panic!("no node {label} in:\n{dot}"))
            .clone()
    };
    let (heavy, light, recurse, spin) =
        (node("heavy"), node("light"), node("recurse"), node("spin"));
    assert_ratio("heavy / light", heavy.1, light.1, 3.0, 0.35);
    assert_ratio("heavy / recurse", heavy.1, recurse.1, 3.0, 0.35);
    assert!(
        spin.2 > 80.0,
        "spin's self time should be most of it: {spin:?}"
    );
    // heavy + light + recurse cover (nearly) everything below cycle.
    let cycle = node("cycle");
    let sum = heavy.1 + light.1 + recurse.1;
    assert!(
        (sum - cycle.1).abs() <= 2.0,
        "{sum} vs cycle {cycle:?}\n{dot}"
    );
    // spin's three callers, as edges into its node.
    let id_of = |label: &str| -> String {
        dot.lines()
            .find(|l| !l.contains("->") && l.contains(&format!("label=\"{label}\\n")))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no node line for {label}"))
            .to_string()
    };
    let spin_id = id_of(&spin.0);
    for caller in ["heavy", "light", "recurse"] {
        let edge = format!("{} -> {spin_id} ", id_of(&node(caller).0));
        assert!(
            dot.lines().any(|l| l.trim_start().starts_with(&edge)),
            "no edge `{edge}` in:\n{dot}"
        );
    }
}

#[test]
fn snakeviz_loads_the_table_and_the_sunburst() {
    let recorded = record(&target_python("3.14"), "pstats", "prof", "3", &[]);
    let file = shown_file(&script("formats.py"));
    let rows = run_json(&consumer_python(), SNAKEVIZ_LOAD, &recorded.path);
    let rows = rows.as_array().expect("rows");
    for name in FUNCTIONS.iter().copied().chain(["<module>"]) {
        let row = function(rows, name);
        assert_eq!(str_of(row, "file"), file);
        // The table shows our sample counts as ncalls, and the times to 4 digits.
        assert_eq!(str_of(row, "ncalls"), row["nc"].to_string(), "{row}");
        for (shown, raw) in [("tottime", "tt"), ("cumtime", "ct")] {
            let (shown, raw) = (num(row, shown), num(row, raw));
            assert!(
                (shown - raw).abs() <= raw * 1e-3 + 1e-12,
                "{name}: {shown} vs {raw}"
            );
        }
        assert!(!row["children"].is_null(), "{name} left out of the graph");
    }
    let cumtime = |name| num(function(rows, name), "cumtime");
    assert_ratio(
        "heavy / light",
        cumtime("heavy"),
        cumtime("light"),
        3.0,
        0.35,
    );
    assert_ratio(
        "heavy / recurse",
        cumtime("heavy"),
        cumtime("recurse"),
        3.0,
        0.35,
    );
    // The sunburst's graph: cycle calls the three, each of them calls spin.
    let id = |name| str_of(function(rows, name), "id").to_string();
    let children = |name| -> Vec<String> {
        function(rows, name)["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    let mut want = vec![id("heavy"), id("light"), id("recurse")];
    want.sort();
    assert_eq!(children("cycle"), want);
    for name in ["heavy", "light", "recurse"] {
        assert!(children(name).contains(&id("spin")), "{name}");
    }
    assert_eq!(id("heavy"), format!("{file}:{}(heavy)", def_line("heavy")));
}
