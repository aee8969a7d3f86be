//! speedscope's file format (`https://www.speedscope.app/file-format-schema.json`): one shared
//! frame table, and one "sampled" profile per thread (per process and thread when several
//! processes were sampled). Each distinct stack of a thread is one sample, root first, weighed
//! by its count times the time one sample stands for, in seconds. Stacks are listed in the
//! order of their frames' text, so that speedscope's time-ordered view draws equal prefixes
//! next to each other, like a flame graph.

use std::io::Write;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::output::profile::{EntryKind, Profile, StackRef};
use crate::output::Recording;

/// The schema address speedscope recognises its files by.
pub const SCHEMA: &str = "https://www.speedscope.app/file-format-schema.json";

#[derive(Serialize)]
struct File<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    name: &'a str,
    exporter: String,
    #[serde(rename = "activeProfileIndex")]
    active_profile_index: usize,
    shared: Shared<'a>,
    profiles: Vec<SampledProfile>,
}

#[derive(Serialize)]
struct Shared<'a> {
    frames: Vec<Frame<'a>>,
}

#[derive(Serialize)]
struct Frame<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
}

#[derive(Serialize)]
struct SampledProfile {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    unit: &'static str,
    #[serde(rename = "startValue")]
    start_value: f64,
    #[serde(rename = "endValue")]
    end_value: f64,
    samples: Vec<Vec<u32>>,
    weights: Vec<f64>,
}

/// Writes `profile` as a speedscope file.
pub fn write(profile: &Profile, recording: &Recording, out: &mut dyn Write) -> Result<()> {
    let entries = profile.entries();
    let frames = entries
        .iter()
        .map(|entry| match entry.kind {
            EntryKind::Python => Frame {
                name: &entry.name,
                file: Some(&entry.file),
                line: (entry.line > 0).then_some(entry.line),
            },
            _ => Frame {
                name: &entry.name,
                file: None,
                line: None,
            },
        })
        .collect();
    // The frames' text, to order each thread's stacks by.
    let texts: Vec<String> = entries.iter().map(|e| e.text()).collect();
    let interval = recording.interval().as_secs_f64();
    let mut by_thread: Vec<Vec<StackRef>> = vec![Vec::new(); profile.threads().len()];
    for stack in profile.stacks() {
        by_thread[stack.thread as usize].push(stack);
    }
    let several_processes = profile.threads().iter().any(|t| t.command_line.is_some());
    let mut profiles = Vec::new();
    for (thread, mut stacks) in profile.threads().iter().zip(by_thread) {
        // Each stack's texts are gathered once, not at every comparison.
        stacks.sort_by_cached_key(|s| -> Vec<&str> {
            s.frames
                .iter()
                .map(|i| texts[*i as usize].as_str())
                .collect()
        });
        let weights: Vec<f64> = stacks.iter().map(|s| s.count as f64 * interval).collect();
        let name = if several_processes {
            format!("process {}: {}", thread.pid, thread.label())
        } else {
            thread.label()
        };
        profiles.push(SampledProfile {
            kind: "sampled",
            name,
            unit: "seconds",
            start_value: 0.0,
            end_value: weights.iter().sum(),
            samples: stacks.iter().map(|s| s.frames.to_vec()).collect(),
            weights,
        });
    }
    // The busiest thread opens first.
    let active_profile_index = profiles
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.end_value.total_cmp(&b.1.end_value))
        .map_or(0, |(i, _)| i);
    let file = File {
        schema: SCHEMA,
        name: &recording.title,
        exporter: format!("sampler {}", env!("CARGO_PKG_VERSION")),
        active_profile_index,
        shared: Shared { frames },
        profiles,
    };
    serde_json::to_writer(&mut *out, &file)
        .map_err(|e| Error::io("writing the speedscope file", e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::collapsed::tests::{frame, sample};
    use crate::output::FrameStyle;
    use std::time::Duration;

    #[test]
    fn one_profile_per_thread_with_shared_frames_in_seconds() {
        let mut profile = Profile::new(FrameStyle::Line);
        let work = frame("work", "app.py", 3, 1);
        let main = frame("<module>", "app.py", 9, 1);
        let s = sample(vec![vec![work.clone(), main.clone()], vec![main.clone()]]);
        for _ in 0..3 {
            profile.add_sample(&s, Duration::ZERO);
        }
        profile.add_sample(&sample(vec![vec![main.clone()]]), Duration::ZERO);
        let recording = Recording::new("python3 app.py", 100.0, 4, Duration::from_millis(40));
        let mut out = Vec::new();
        write(&profile, &recording, &mut out).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["$schema"], SCHEMA);
        assert_eq!(json["name"], "python3 app.py");
        let frames = json["shared"]["frames"].as_array().unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0]["name"], "<module>");
        assert_eq!(frames[0]["file"], "app.py");
        assert_eq!(frames[0]["line"], 9);
        let profiles = json["profiles"].as_array().unwrap();
        assert_eq!(profiles.len(), 2);
        let first = &profiles[0];
        assert_eq!(first["type"], "sampled");
        assert_eq!(first["unit"], "seconds");
        assert_eq!(first["name"], "thread 0x0");
        // Sorted by text: `<module>` alone before `<module>;work`.
        assert_eq!(first["samples"], serde_json::json!([[0], [0, 1]]));
        let weights: Vec<f64> = serde_json::from_value(first["weights"].clone()).unwrap();
        assert!((weights[0] - 0.01).abs() < 1e-9 && (weights[1] - 0.03).abs() < 1e-9);
        assert!((first["endValue"].as_f64().unwrap() - 0.04).abs() < 1e-9);
        assert_eq!(profiles[1]["samples"], serde_json::json!([[0]]));
        assert_eq!(json["activeProfileIndex"], 0);
    }

    #[test]
    fn roots_and_markers_have_no_file() {
        let mut profile = Profile::new(FrameStyle::NoLine).with_thread_roots(true);
        let mut s = sample(vec![vec![
            crate::model::Frame::truncated(8),
            frame("f", "a.py", 2, 1),
        ]]);
        s.threads[0].os_thread_id = Some(7);
        profile.add_sample(&s, Duration::ZERO);
        let mut out = Vec::new();
        write(
            &profile,
            &Recording::new("t", 100.0, 1, Duration::ZERO),
            &mut out,
        )
        .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let frames = json["shared"]["frames"].as_array().unwrap();
        assert_eq!(frames[0], serde_json::json!({"name": "thread 7"}));
        assert_eq!(frames[1], serde_json::json!({"name": "f", "file": "a.py"}));
        assert_eq!(
            frames[2],
            serde_json::json!({"name": "[stack truncated at 8 frames]"})
        );
    }
}
