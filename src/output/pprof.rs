//! pprof's format: a gzipped `profile.proto` message, as `go tool pprof`, Pyroscope, Parca and
//! Grafana read it.
//!
//! Each distinct stack of each thread becomes one pprof sample whose locations run leaf first
//! (pprof's order), labelled with the thread's process id, thread id and name. Every sample
//! carries two values: its count and the time it stands for (count × the mean interval),
//! `cpu` time, or `wall` time when idle threads were sampled too. A location is one
//! frame at one line; its function is the Python function (name, file, first line). The
//! profiler's own frames (process and thread roots, markers) are functions with no file, so
//! they read the same as in every other format. There are no mappings: nothing in a Python
//! profile is a machine address.
//!
//! The messages are declared here by hand (field numbers from pprof's `profile.proto`), so the
//! build needs no protobuf compiler.

use std::io::Write;
use std::time::UNIX_EPOCH;

use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::output::{Profile, Recording};

/// The `profile.proto` messages, with the spec's field numbers (the newest optional fields,
/// such as `doc_url` and `Line.column`, are left out: this writer has no use for them).
mod proto {
    /// The whole profile.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub mapping: Vec<Mapping>,
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
        #[prost(int64, tag = "7")]
        pub drop_frames: i64,
        #[prost(int64, tag = "8")]
        pub keep_frames: i64,
        #[prost(int64, tag = "9")]
        pub time_nanos: i64,
        #[prost(int64, tag = "10")]
        pub duration_nanos: i64,
        #[prost(message, optional, tag = "11")]
        pub period_type: Option<ValueType>,
        #[prost(int64, tag = "12")]
        pub period: i64,
        #[prost(int64, repeated, tag = "13")]
        pub comment: Vec<i64>,
        #[prost(int64, tag = "14")]
        pub default_sample_type: i64,
    }

    /// A kind of value and its unit, both indexes into the string table.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueType {
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }

    /// One stack (leaf first) with its values and labels.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
        #[prost(message, repeated, tag = "3")]
        pub label: Vec<Label>,
    }

    /// A key with either a string (`str`) or a number (`num`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(int64, tag = "1")]
        pub key: i64,
        #[prost(int64, tag = "2")]
        pub str: i64,
        #[prost(int64, tag = "3")]
        pub num: i64,
        #[prost(int64, tag = "4")]
        pub num_unit: i64,
    }

    /// A mapped binary; declared for completeness, never written.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Mapping {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(uint64, tag = "2")]
        pub memory_start: u64,
        #[prost(uint64, tag = "3")]
        pub memory_limit: u64,
        #[prost(uint64, tag = "4")]
        pub file_offset: u64,
        #[prost(int64, tag = "5")]
        pub filename: i64,
        #[prost(int64, tag = "6")]
        pub build_id: i64,
        #[prost(bool, tag = "7")]
        pub has_functions: bool,
        #[prost(bool, tag = "8")]
        pub has_filenames: bool,
        #[prost(bool, tag = "9")]
        pub has_line_numbers: bool,
        #[prost(bool, tag = "10")]
        pub has_inline_frames: bool,
    }

    /// One place in the code: here always a single line of a single function.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Location {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(uint64, tag = "2")]
        pub mapping_id: u64,
        #[prost(uint64, tag = "3")]
        pub address: u64,
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
        #[prost(bool, tag = "5")]
        pub is_folded: bool,
    }

    /// A line of a function.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Line {
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
        #[prost(int64, tag = "2")]
        pub line: i64,
    }

    /// A function: names, file and first line are string-table indexes and a number.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(int64, tag = "2")]
        pub name: i64,
        #[prost(int64, tag = "3")]
        pub system_name: i64,
        #[prost(int64, tag = "4")]
        pub filename: i64,
        #[prost(int64, tag = "5")]
        pub start_line: i64,
    }
}

/// The string table being built: each string once, `""` at index 0 as pprof requires.
struct Strings {
    table: Vec<String>,
    index: FxHashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        let mut strings = Strings {
            table: Vec::new(),
            index: FxHashMap::default(),
        };
        strings.add("");
        strings
    }

    fn add(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }

    fn value_type(&mut self, kind: &str, unit: &str) -> proto::ValueType {
        proto::ValueType {
            r#type: self.add(kind),
            unit: self.add(unit),
        }
    }
}

/// Builds the `profile.proto` message of a profile.
fn build(profile: &Profile, recording: &Recording) -> proto::Profile {
    let mut strings = Strings::new();
    let time_kind = if recording.idle_included {
        "wall"
    } else {
        "cpu"
    };
    let count_type = strings.value_type("samples", "count");
    let time_type = strings.value_type(time_kind, "nanoseconds");
    let interval = i64::try_from(recording.interval().as_nanos()).unwrap_or(i64::MAX);

    // Functions as `Profile::functions` groups the entries, locations by (function, line);
    // ids from 1. Every entry is on some stack, so each gets its location here, indexed like
    // the entries.
    let mut functions: Vec<proto::Function> = Vec::new();
    let mut locations: Vec<proto::Location> = Vec::new();
    let mut location_ids: FxHashMap<(u64, u32), u64> = FxHashMap::default();
    let mut location_of_entry: Vec<u64> = Vec::with_capacity(profile.entries().len());
    for (entry, function) in profile.entries().iter().zip(profile.functions()) {
        if function as usize == functions.len() {
            // No system name: pprof "demangles" a function whose system name equals its
            // name, and its C++ heuristics cut `<module>` to nothing and drop anything in
            // parentheses from a process root. Python names need no demangling.
            functions.push(proto::Function {
                id: u64::from(function) + 1,
                name: strings.add(&entry.name),
                system_name: 0,
                filename: strings.add(&entry.file),
                start_line: i64::from(entry.first_line),
            });
        }
        let function_id = u64::from(function) + 1;
        let location_id = *location_ids
            .entry((function_id, entry.line))
            .or_insert_with(|| {
                let id = locations.len() as u64 + 1;
                locations.push(proto::Location {
                    id,
                    line: vec![proto::Line {
                        function_id,
                        line: i64::from(entry.line),
                    }],
                    ..Default::default()
                });
                id
            });
        location_of_entry.push(location_id);
    }

    // The labels of each thread, made once.
    let pid_key = strings.add("pid");
    let thread_id_key = strings.add("thread_id");
    let thread_name_key = strings.add("thread_name");
    let thread_labels: Vec<Vec<proto::Label>> = profile
        .threads()
        .iter()
        .map(|thread| {
            let id = thread.id() as i64;
            let mut labels = vec![
                proto::Label {
                    key: pid_key,
                    num: i64::from(thread.pid),
                    ..Default::default()
                },
                proto::Label {
                    key: thread_id_key,
                    num: id,
                    ..Default::default()
                },
            ];
            if let Some(name) = &thread.name {
                labels.push(proto::Label {
                    key: thread_name_key,
                    str: strings.add(name),
                    ..Default::default()
                });
            }
            labels
        })
        .collect();

    let samples = profile
        .stacks()
        .iter()
        .map(|stack| {
            let count = i64::try_from(stack.count).unwrap_or(i64::MAX);
            proto::Sample {
                location_id: stack
                    .frames
                    .iter()
                    .rev()
                    .map(|&entry| location_of_entry[entry as usize])
                    .collect(),
                value: vec![count, count.saturating_mul(interval)],
                label: thread_labels[stack.thread as usize].clone(),
            }
        })
        .collect();

    let comment = if recording.title.is_empty() {
        Vec::new()
    } else {
        vec![strings.add(&recording.title)]
    };
    let time_nanos = recording
        .started
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let duration_nanos = i64::try_from(recording.duration.as_nanos()).unwrap_or(i64::MAX);
    proto::Profile {
        sample_type: vec![count_type, time_type.clone()],
        sample: samples,
        mapping: Vec::new(),
        location: locations,
        function: functions,
        time_nanos,
        duration_nanos,
        default_sample_type: time_type.r#type,
        period_type: Some(time_type),
        period: interval,
        comment,
        string_table: strings.table,
        ..Default::default()
    }
}

/// Writes `profile` as a gzipped `profile.proto`.
pub fn write(profile: &Profile, recording: &Recording, out: &mut dyn Write) -> Result<()> {
    let bytes = build(profile, recording).encode_to_vec();
    let mut gz = GzEncoder::new(out, Compression::default());
    gz.write_all(&bytes)
        .and_then(|()| gz.finish().map(drop))
        .map_err(|e| Error::io("writing the pprof profile", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use crate::output::collapsed::tests::{frame, sample};
    use crate::output::FrameStyle;

    /// Writes `profile` and reads the file back.
    fn round_trip(profile: &Profile, recording: &Recording) -> proto::Profile {
        let mut file = Vec::new();
        write(profile, recording, &mut file).unwrap();
        assert_eq!(&file[..2], [0x1f, 0x8b], "gzip magic");
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(file.as_slice())
            .read_to_end(&mut bytes)
            .unwrap();
        proto::Profile::decode(bytes.as_slice()).unwrap()
    }

    fn recording(idle: bool) -> Recording {
        let mut recording = Recording::new("python3 app.py", 100.0, 50, Duration::from_secs(1));
        recording.started = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        recording.idle_included = idle;
        recording
    }

    fn label(p: &proto::Profile, labels: &[proto::Label], key: &str) -> Option<(String, i64)> {
        labels
            .iter()
            .find(|l| p.string_table[l.key as usize] == key)
            .map(|l| (p.string_table[l.str as usize].clone(), l.num))
    }

    /// `name file:line` of each location of a sample, leaf first.
    fn frames(p: &proto::Profile, sample: &proto::Sample) -> Vec<String> {
        sample
            .location_id
            .iter()
            .map(|&id| {
                let location = &p.location[id as usize - 1];
                assert_eq!(location.id, id, "ids are positions + 1");
                assert_eq!(location.line.len(), 1);
                let line = &location.line[0];
                let function = &p.function[line.function_id as usize - 1];
                assert_eq!(function.id, line.function_id);
                assert_eq!(function.system_name, 0, "no system name");
                format!(
                    "{} {}:{}",
                    p.string_table[function.name as usize],
                    p.string_table[function.filename as usize],
                    line.line
                )
            })
            .collect()
    }

    #[test]
    fn stacks_become_leaf_first_samples_with_thread_labels() {
        let mut profile = Profile::new(FrameStyle::Line);
        let work_a = frame("work", "app.py", 3, 1);
        let work_b = frame("work", "app.py", 4, 1);
        let main = frame("<module>", "app.py", 9, 1);
        let mut s = sample(vec![
            vec![work_a.clone(), main.clone()],
            vec![work_b.clone(), main.clone()],
        ]);
        s.pid = 77;
        s.threads[0].os_thread_id = Some(77);
        s.threads[0].name = Some(Arc::from("MainThread"));
        s.threads[1].thread_id = 0x7f00;
        for _ in 0..3 {
            profile.add_sample(&s, Duration::ZERO);
        }
        let p = round_trip(&profile, &recording(false));

        assert_eq!(p.string_table[0], "");
        let mut unique = p.string_table.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), p.string_table.len(), "each string once");
        let types: Vec<(&str, &str)> = p
            .sample_type
            .iter()
            .map(|t| {
                (
                    p.string_table[t.r#type as usize].as_str(),
                    p.string_table[t.unit as usize].as_str(),
                )
            })
            .collect();
        assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
        assert_eq!(p.period_type.as_ref(), Some(&p.sample_type[1]));
        assert_eq!(p.default_sample_type, p.sample_type[1].r#type);
        assert_eq!(p.period, 20_000_000, "1 s over 50 ticks");
        assert_eq!(p.time_nanos, 1_700_000_000 * 1_000_000_000);
        assert_eq!(p.duration_nanos, 1_000_000_000);
        assert_eq!(
            p.comment
                .iter()
                .map(|&c| p.string_table[c as usize].as_str())
                .collect::<Vec<_>>(),
            ["python3 app.py"]
        );
        assert!(p.mapping.is_empty());

        // `work` at two lines: one function, two locations; `<module>` one of each.
        assert_eq!(p.function.len(), 2);
        assert_eq!(p.location.len(), 3);
        for (i, f) in p.function.iter().enumerate() {
            assert_eq!(f.id, i as u64 + 1);
            assert_eq!(f.start_line, 1);
            assert_eq!(p.string_table[f.filename as usize], "app.py");
        }

        assert_eq!(p.sample.len(), 2);
        let first = &p.sample[0];
        assert_eq!(frames(&p, first), ["work app.py:3", "<module> app.py:9"]);
        assert_eq!(first.value, [3, 60_000_000]);
        assert_eq!(label(&p, &first.label, "pid"), Some((String::new(), 77)));
        assert_eq!(
            label(&p, &first.label, "thread_id"),
            Some((String::new(), 77))
        );
        assert_eq!(
            label(&p, &first.label, "thread_name"),
            Some(("MainThread".to_string(), 0))
        );
        let second = &p.sample[1];
        assert_eq!(frames(&p, second), ["work app.py:4", "<module> app.py:9"]);
        assert_eq!(second.value, [3, 60_000_000]);
        assert_eq!(
            label(&p, &second.label, "thread_id"),
            Some((String::new(), 0x7f00)),
            "Python's id without a kernel id"
        );
        assert_eq!(label(&p, &second.label, "thread_name"), None);
    }

    #[test]
    fn roots_are_functions_without_a_file_and_idle_is_wall_time() {
        let mut profile = Profile::new(FrameStyle::Function).with_thread_roots(true);
        let mut s = sample(vec![vec![
            frame("f", "a.py", 7, 5),
            crate::model::Frame::truncated(2),
        ]]);
        s.pid = 9;
        s.command_line = Some(Arc::from("python3 a.py"));
        s.threads[0].os_thread_id = Some(10);
        s.threads[0].name = Some(Arc::from("worker"));
        profile.add_sample(&s, Duration::ZERO);
        let p = round_trip(&profile, &recording(true));
        assert_eq!(p.string_table[p.sample_type[1].r#type as usize], "wall");
        assert_eq!(p.period_type.as_ref(), Some(&p.sample_type[1]));
        assert_eq!(
            frames(&p, &p.sample[0]),
            [
                "f a.py:5",
                "[stack truncated at 2 frames] :0",
                "thread 10 \"worker\" :0",
                "process 9 \"python3 a.py\" :0",
            ]
        );
        assert_eq!(p.sample[0].value, [1, 20_000_000]);
    }

    #[test]
    fn an_empty_profile_is_still_a_profile() {
        let mut recording = recording(false);
        recording.title.clear();
        recording.started = SystemTime::UNIX_EPOCH;
        let p = round_trip(&Profile::new(FrameStyle::Line), &recording);
        assert_eq!(p.string_table[0], "");
        assert_eq!(p.sample_type.len(), 2);
        assert!(p.sample.is_empty() && p.location.is_empty() && p.function.is_empty());
        assert!(p.comment.is_empty());
    }
}
