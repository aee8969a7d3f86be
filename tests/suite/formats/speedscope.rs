//! `-f speedscope`, read by speedscope itself: its published schema, then its own importer
//! (`tests/consumers/speedscope_check.mjs`), whose frame weights are checked against the
//! workload's known split.

use serde_json::Value;

use super::*;

/// The profile of the thread whose name contains `thread`.
fn profile<'a>(checked: &'a Value, thread: &str) -> &'a Value {
    checked["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str().unwrap().contains(thread))
        .unwrap_or_else(|| panic!("no profile of {thread}: {checked}"))
}

/// The frame named `name` at `line` (any line when None): (self, total) weights in seconds.
fn weights(profile: &Value, name: &str, line: Option<u32>) -> (f64, f64) {
    let frame = profile["frames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name && line.is_none_or(|l| f["line"] == l))
        .unwrap_or_else(|| panic!("no frame {name} at {line:?}: {profile}"));
    assert_eq!(frame["file"], "formats.py", "{frame}");
    (
        frame["self"].as_f64().unwrap(),
        frame["total"].as_f64().unwrap(),
    )
}

#[test]
fn speedscope_reads_one_profile_per_thread_with_the_known_split() {
    let python = target_python("3.12");
    let recorded = record(&python, "speedscope", "speedscope.json", "3", &["--idle"]);
    let checked = node_check("speedscope_check.mjs", &recorded.path);
    assert!(
        checked["name"].as_str().unwrap().contains("formats.py"),
        "{}",
        checked["name"]
    );
    let main = profile(&checked, "\"MainThread\"");
    let napper = profile(&checked, "\"napper\"");
    assert_eq!(main["unit"], "seconds");
    // With --idle every thread is in every sample: each profile covers the whole recording.
    for p in [main, napper] {
        let weight = p["totalWeight"].as_f64().unwrap();
        assert!((2.5..=3.5).contains(&weight), "{}: {weight} s", p["name"]);
    }
    let line = |name| Some(marker_line("formats.py", name));
    let (_, heavy) = weights(main, "heavy", line("heavy"));
    let (_, light) = weights(main, "light", line("light"));
    let (_, recurse) = weights(main, "recurse", line("recurse_leaf"));
    assert_ratio("heavy / light", heavy, light, 3.0, 0.35);
    assert_ratio("heavy / recurse", heavy, recurse, 3.0, 0.35);
    // Four `recurse` frames on each of its stacks, counted once in its total: no more than
    // the time `cycle` spent calling it (a little less: some samples catch `recurse` between
    // lines).
    let (_, recurse_calls) = weights(main, "recurse", line("recurse_call"));
    let (_, cycle_recurse) = weights(main, "cycle", line("cycle_recurse"));
    assert!(
        recurse_calls <= cycle_recurse + 1e-9 && recurse_calls >= 0.8 * cycle_recurse,
        "{recurse_calls} vs {cycle_recurse}"
    );
    let (spin_self, spin_total) = weights(main, "spin", None);
    assert!(spin_self > 0.8 * spin_total && spin_total > heavy, "{main}");
    let (nap_self, nap_total) = weights(napper, "nap", line("nap"));
    assert!(
        nap_self > 2.5 && (nap_self - nap_total).abs() < 1e-9,
        "{napper}"
    );
}

#[test]
fn speedscope_shows_function_lines_and_thread_roots() {
    let python = target_python("2.7");
    let recorded = record(
        &python,
        "speedscope",
        "speedscope.json",
        "2",
        &["-F", "--threads"],
    );
    let checked = node_check("speedscope_check.mjs", &recorded.path);
    // Idle threads are left out: the napper is seen only when it wakes up.
    let main = profile(&checked, "\"MainThread\"");
    let all: f64 = checked["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["totalWeight"].as_f64().unwrap())
        .sum();
    assert!(
        main["totalWeight"].as_f64().unwrap() > 0.95 * all,
        "{checked}"
    );
    let frames = main["frames"].as_array().unwrap();
    let root = frames
        .iter()
        .find(|f| f["name"].as_str().unwrap().starts_with("thread "))
        .unwrap_or_else(|| panic!("no thread root: {main}"));
    assert!(
        root["name"].as_str().unwrap().ends_with("\"MainThread\""),
        "{root}"
    );
    assert!(root["file"].is_null() && root["line"].is_null(), "{root}");
    // One frame per function, at its `def` line, carrying the whole thread's weight.
    let total = main["totalWeight"].as_f64().unwrap();
    assert!((root["total"].as_f64().unwrap() - total).abs() < 1e-9);
    let heavy: Vec<&Value> = frames.iter().filter(|f| f["name"] == "heavy").collect();
    assert_eq!(heavy.len(), 1, "{main}");
    assert_eq!(heavy[0]["line"], def_line("heavy"));
    let _ = weights(main, "cycle", Some(def_line("cycle")));
}
