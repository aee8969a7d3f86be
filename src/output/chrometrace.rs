//! The Trace Event Format (JSON object form), which Perfetto and `chrome://tracing` open: a
//! timeline per thread, drawn from consecutive samples.
//!
//! A function call becomes a slice: a `B` (begin) event when a sample first shows the function
//! at its depth of the stack, an `E` (end) event when a later sample no longer does. Two
//! samples show the same call when every frame from the root down to it is the same function
//! (the executing line may differ). Timestamps are whole microseconds since sampling began; a slice
//! begins at the sample that first saw it and ends at the sample that first did not, so its
//! duration is exact to one sampling interval. Stacks still open after the last sample end one
//! interval after it. Each process and thread is named by a metadata (`M`) event.
//!
//! The events come from [`Profile::timeline`], which holds each thread's stack changes.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::output::profile::{Entry, EntryKind, Profile};
use crate::output::Recording;

#[derive(Serialize)]
struct Event {
    name: Value,
    ph: &'static str,
    ts: f64,
    pid: u32,
    tid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<Value>,
}

/// Writes `profile`'s timeline as a Trace Event Format JSON object. The profile must have been
/// made [`with_timeline`](Profile::with_timeline).
pub fn write(profile: &Profile, recording: &Recording, out: &mut dyn Write) -> Result<()> {
    let timeline = profile
        .timeline()
        .ok_or_else(|| Error::corrupt("the profile kept no timeline"))?;
    let entries = profile.entries();
    // Calls are matched by function, not by line.
    let function_of = profile.functions();
    let stacks = profile.stacks();
    let end = profile.timeline_end().unwrap_or_default() + recording.interval();
    // Whole microseconds: one slice then ends exactly where the next begins (readers compute
    // a slice's end as begin + duration, which fractional floats can put a hair past the next
    // begin, unnesting it).
    let micros = |at: Duration| at.as_micros() as f64;

    let mut events = Vec::new();
    let mut named_processes = Vec::new();
    for (thread, changes) in profile.threads().iter().zip(timeline) {
        let tid = thread.id();
        if !named_processes.contains(&thread.pid) {
            named_processes.push(thread.pid);
            let name = thread.command_line.as_deref().unwrap_or(&recording.title);
            events.push(metadata("process_name", thread.pid, 0, name));
        }
        let name = thread
            .name
            .as_deref()
            .map_or_else(|| thread.label(), str::to_string);
        events.push(metadata("thread_name", thread.pid, tid, &name));

        // The frames (entry ids) of the calls open now, root first.
        let mut open: Vec<u32> = Vec::new();
        let close_to = |open: &mut Vec<u32>, keep: usize, ts: f64, events: &mut Vec<Event>| {
            while open.len() > keep {
                let Some(id) = open.pop() else { break };
                // Named and filed like its begin event: trace viewers match them up by both.
                let entry = &entries[id as usize];
                events.push(Event {
                    name: Value::from(&*entry.name),
                    ph: "E",
                    ts,
                    pid: thread.pid,
                    tid,
                    cat: Some(category(entry)),
                    args: None,
                });
            }
        };
        for change in changes {
            let ts = micros(change.at);
            let frames: &[u32] = change.stack.map_or(&[], |s| stacks[s as usize].frames);
            let same = open
                .iter()
                .zip(frames)
                .take_while(|(a, b)| function_of[**a as usize] == function_of[**b as usize])
                .count();
            close_to(&mut open, same, ts, &mut events);
            for &id in &frames[same..] {
                open.push(id);
                events.push(begin(&entries[id as usize], ts, thread.pid, tid));
            }
        }
        close_to(&mut open, 0, micros(end), &mut events);
    }
    let document = json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "title": recording.title,
            "exporter": format!("sampler {}", env!("CARGO_PKG_VERSION")),
            "rate_hz": recording.rate_hz,
            "started": humantime::format_rfc3339_micros(recording.started).to_string(),
        },
    });
    serde_json::to_writer(&mut *out, &document)
        .map_err(|e| Error::io("writing the Chrome trace", e.into()))
}

/// A metadata event naming a process or thread.
fn metadata(what: &'static str, pid: u32, tid: u64, name: &str) -> Event {
    Event {
        name: Value::from(what),
        ph: "M",
        ts: 0.0,
        pid,
        tid,
        cat: None,
        args: Some(json!({ "name": name })),
    }
}

/// The category of `entry`'s slices: the target's code, or the profiler's own roots and
/// markers.
fn category(entry: &Entry) -> &'static str {
    if entry.kind == EntryKind::Python {
        "python"
    } else {
        "sampler"
    }
}

/// The begin event of a call of `entry`'s function.
fn begin(entry: &Entry, ts: f64, pid: u32, tid: u64) -> Event {
    let args = match entry.kind {
        EntryKind::Python => Some(json!({ "file": &*entry.file, "line": entry.first_line })),
        _ => None,
    };
    Event {
        name: Value::from(&*entry.name),
        ph: "B",
        ts,
        pid,
        tid,
        cat: Some(category(entry)),
        args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::collapsed::tests::{frame, sample};
    use crate::output::FrameStyle;

    fn events(profile: &Profile) -> Vec<Value> {
        let recording = Recording::new("app", 100.0, 4, Duration::from_millis(40));
        let mut out = Vec::new();
        write(profile, &recording, &mut out).unwrap();
        let json: Value = serde_json::from_slice(&out).unwrap();
        json["traceEvents"].as_array().unwrap().clone()
    }

    /// `(ph, name, ts)` of the begin and end events.
    fn slices(events: &[Value]) -> Vec<(String, String, f64)> {
        events
            .iter()
            .filter(|e| e["ph"] != "M")
            .map(|e| {
                (
                    e["ph"].as_str().unwrap().to_string(),
                    e["name"].as_str().unwrap().to_string(),
                    e["ts"].as_f64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn calls_begin_and_end_with_the_samples_that_see_them() {
        let mut profile = Profile::new(FrameStyle::Line).with_timeline(true);
        let main = frame("main", "app.py", 9, 8);
        let a3 = frame("a", "app.py", 3, 1);
        let a4 = frame("a", "app.py", 4, 1);
        let b = frame("b", "app.py", 7, 6);
        let ms = Duration::from_millis;
        profile.add_sample(&sample(vec![vec![a3, main.clone()]]), ms(0));
        // Same call of `a` at another line: no new slice.
        profile.add_sample(&sample(vec![vec![a4, main.clone()]]), ms(10));
        profile.add_sample(&sample(vec![vec![b, main.clone()]]), ms(20));
        profile.add_sample(&sample(vec![vec![]]), ms(30));
        let e = |ph: &str, name: &str, ts: f64| (ph.to_string(), name.to_string(), ts);
        assert_eq!(
            slices(&events(&profile)),
            [
                e("B", "main", 0.0),
                e("B", "a", 0.0),
                e("E", "a", 20_000.0),
                e("B", "b", 20_000.0),
                e("E", "b", 30_000.0),
                e("E", "main", 30_000.0),
            ]
        );
    }

    #[test]
    fn timestamps_are_whole_microseconds_so_slices_abut_exactly() {
        let mut profile = Profile::new(FrameStyle::Line).with_timeline(true);
        let (a, b) = (frame("a", "app.py", 3, 1), frame("b", "app.py", 7, 6));
        profile.add_sample(&sample(vec![vec![a]]), Duration::from_nanos(601_116));
        profile.add_sample(&sample(vec![vec![b]]), Duration::from_nanos(24_261_115));
        let times: Vec<f64> = slices(&events(&profile)).iter().map(|s| s.2).collect();
        assert_eq!(times[..3], [601.0, 24_261.0, 24_261.0]);
        assert!(times.iter().all(|t| t.fract() == 0.0), "{times:?}");
    }

    #[test]
    fn names_processes_and_threads_and_closes_what_is_open_at_the_end() {
        let mut profile = Profile::new(FrameStyle::Line).with_timeline(true);
        let mut s = sample(vec![vec![frame("f", "a.py", 3, 1)]]);
        s.threads[0].os_thread_id = Some(77);
        s.threads[0].name = Some("MainThread".into());
        profile.add_sample(&s, Duration::from_millis(5));
        let events = events(&profile);
        assert_eq!(events[0]["ph"], "M");
        assert_eq!(events[0]["name"], "process_name");
        assert_eq!(events[0]["args"]["name"], "app");
        assert_eq!(events[1]["name"], "thread_name");
        assert_eq!(events[1]["tid"], 77);
        assert_eq!(events[1]["args"]["name"], "MainThread");
        assert_eq!(events[2]["args"], json!({"file": "a.py", "line": 1}));
        // Open until one interval (10 ms here) after the last sample.
        assert_eq!(events[3]["ph"], "E");
        assert_eq!(events[3]["ts"], 15_000.0);
    }
}
