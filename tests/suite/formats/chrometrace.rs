//! `-f chrometrace`: the Trace Event Format's rules checked here, then the trace read by the
//! trace model of Chrome DevTools' Performance panel (`@paulirish/trace_engine`, through
//! `tests/consumers/chrometrace_check.mjs`), whose slices must match the workload's calls.

use std::collections::HashMap;

use serde_json::Value;

use super::*;

/// The format's rules: a JSON object with `traceEvents`; every event has `ph`, `pid`, `tid`,
/// and a numeric `ts` in microseconds; per thread, timestamps never go back and each `E`
/// closes the latest open `B` of the same name and category; processes and threads are named
/// by `M` events.
fn check_rules(trace: &Value) {
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    let mut open: HashMap<(u64, u64), Vec<(String, String)>> = HashMap::new();
    let mut last_ts: HashMap<(u64, u64), f64> = HashMap::new();
    let mut named = (0, 0);
    for event in events {
        let key = (
            event["pid"].as_u64().unwrap(),
            event["tid"].as_u64().unwrap(),
        );
        let ts = event["ts"].as_f64().expect("ts");
        let name = event["name"].as_str().expect("name").to_string();
        match event["ph"].as_str().unwrap() {
            "M" => {
                match name.as_str() {
                    "process_name" => named.0 += 1,
                    "thread_name" => named.1 += 1,
                    other => panic!("unexpected metadata {other}"),
                }
                assert!(event["args"]["name"].is_string(), "{event}");
                continue;
            }
            "B" => open
                .entry(key)
                .or_default()
                .push((name, event["cat"].as_str().unwrap().to_string())),
            "E" => {
                let begun = open.entry(key).or_default().pop();
                assert_eq!(
                    begun,
                    Some((name, event["cat"].as_str().unwrap().to_string())),
                    "{event}"
                );
            }
            other => panic!("unexpected phase {other}"),
        }
        let last = last_ts.entry(key).or_insert(0.0);
        assert!(ts >= *last, "time went back at {event}");
        *last = ts;
    }
    assert!(
        open.values().all(Vec::is_empty),
        "unclosed slices: {open:?}"
    );
    assert_eq!(named.0, 1, "one process");
    assert_eq!(named.1, open.len(), "every thread named");
}

#[test]
fn chrome_trace_slices_follow_the_calls() {
    let python = target_python("3.12");
    let recorded = record(&python, "chrometrace", "trace.json", "3", &["--idle"]);
    let trace: Value = serde_json::from_slice(&std::fs::read(&recorded.path).unwrap()).unwrap();
    check_rules(&trace);
    let checked = node_check("chrometrace_check.mjs", &recorded.path);
    let threads = checked["threads"].as_array().unwrap();
    let thread = |name: &str| {
        threads
            .iter()
            .find(|t| t["thread"] == name)
            .unwrap_or_else(|| panic!("no thread {name}: {checked}"))
    };
    let main = thread("MainThread");
    assert!(
        main["process"].as_str().unwrap().contains("formats.py"),
        "{}",
        main["process"]
    );
    let slices = main["slices"].as_array().unwrap();
    // Every slice nested: the importer placed each in the call tree.
    assert!(slices.iter().all(|s| s["depth"].is_u64()), "{main}");
    let durations = |name: &str| -> Vec<f64> {
        slices
            .iter()
            .filter(|s| s["name"] == name)
            .map(|s| s["dur"].as_f64().unwrap())
            .collect()
    };
    let median = |mut v: Vec<f64>| {
        assert!(v.len() >= 5, "too few calls: {v:?}");
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // At 200 Hz a slice is exact to one 5 ms interval, give or take a late sample.
    let (heavy, light) = (durations("heavy"), durations("light"));
    let heavy_ms = median(heavy.clone()) / 1e3;
    let light_ms = median(light.clone()) / 1e3;
    assert!(
        (22.0..=40.0).contains(&heavy_ms),
        "heavy lasts {heavy_ms} ms"
    );
    assert!(
        (4.0..=18.0).contains(&light_ms),
        "light lasts {light_ms} ms"
    );
    assert_ratio(
        "time in heavy / light",
        heavy.iter().sum(),
        light.iter().sum(),
        3.0,
        0.35,
    );
    // heavy runs inside cycle, inside <module>.
    let depth_of = |name: &str| {
        slices
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["depth"].as_u64().unwrap())
            .unwrap()
    };
    assert_eq!(depth_of("heavy"), depth_of("cycle") + 1);
    assert_eq!(depth_of("cycle"), depth_of("<module>") + 1);
    // The sleeping thread: one call of nap for the whole recording.
    let naps: Vec<&Value> = thread("napper")["slices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "nap")
        .collect();
    assert_eq!(naps.len(), 1, "{naps:?}");
    assert!(naps[0]["dur"].as_f64().unwrap() > 2.5e6, "{}", naps[0]);
}
