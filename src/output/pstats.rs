//! The profile as the statistics file cProfile saves (`cProfile -o`, `Profile.dump_stats`):
//! what `pstats.Stats(path)`, `python -m pstats`, SnakeViz and gprof2dot read.
//!
//! The file is one dictionary in CPython's `marshal` serialisation:
//!
//! ```text
//! {(file, first_line, function): (cc, nc, tt, ct, {(file, first_line, function): (nc, cc, tt, ct)})}
//! ```
//!
//! keyed by function, each value holding the primitive and total call counts, the time spent in
//! the function itself (`tt`, pstats' "tottime"), the time spent in it and everything it called
//! (`ct`, "cumtime"), and the same four numbers per caller (the form cProfile writes).
//!
//! A sampler sees no calls, only stacks, so the numbers are read off the samples:
//!
//! - A function is a Python frame's (file as shown, first line, name: the qualified name from
//!   3.11), whatever line style was asked for: pstats has one row per function. The profiler's own frames (the
//!   `process …` and `thread …` roots of `--subprocesses` and `--threads`, and the marker of a
//!   truncated stack) are functions too, keyed `("~", 0, text)` as cProfile keys built-ins, so
//!   they sit above the Python frames here as in every other format.
//! - One thread-sample stands for one [`Recording::interval`]. `tt` is the samples in which the
//!   function is the innermost frame, times the interval; `ct` the samples in which it is
//!   anywhere on the stack, counted once per sample however deep it recurses.
//! - **The call counts are sample counts.** `nc` and `cc` are both the number of samples in which
//!   the function appears, so pstats' "ncalls" column (and SnakeViz's) shows how often the
//!   function was seen, not how often it was called, and "percall" is time per sample seen.
//! - A caller entry covers each distinct (caller, callee) pair of adjacent frames once per
//!   sample: its counts are the samples with that pair, its `ct` those samples' time, its `tt`
//!   the time of the samples in which the callee is the innermost frame under that caller. A
//!   recursive function is its own caller. The outermost frame has no callers.
//!
//! So the `tt` of all functions add up to the time of all thread-samples, and a function's
//! callers' `tt` add up to its own `tt` (unless it is also an outermost frame).
//!
//! pstats refuses an empty dictionary, so a profile without samples is written as a single
//! function, `("~", 0, "[no samples]")`, with zero counts and times.
//!
//! The marshal subset written: dictionaries (`{`, entries, then `0`), tuples (`(` and a 4-byte
//! length; not the small-tuple code, so that Python 2's loader reads the file too), strings as
//! `u` with a 4-byte length and UTF-8, integers as `i` (4 bytes) or, above `i32::MAX`, as `l`
//! (base 2¹⁵ digits), and floats as `g` (an 8-byte IEEE double). Every Python 3 (and 2.7)
//! loads these. All numbers are little endian; no object references are used.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::output::profile::{Entry, EntryKind};
use crate::output::{Profile, Recording};

/// The file cProfile gives functions that have no source file (built-ins); ours are the
/// profiler's own frames.
const NO_FILE: &str = "~";

/// The one function of a profile without samples.
const NO_SAMPLES: &str = "[no samples]";

/// Writes `profile` as a pstats file.
pub fn write(profile: &Profile, recording: &Recording, out: &mut dyn Write) -> Result<()> {
    let bytes = encode(&table(profile), recording.interval().as_secs_f64());
    out.write_all(&bytes)
        .map_err(|e| Error::io("writing pstats", e))
}

/// What identifies a function in pstats: (file, first line, name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    file: Arc<str>,
    line: u32,
    name: Arc<str>,
}

impl Key {
    fn of(entry: &Entry) -> Key {
        match entry.kind {
            EntryKind::Python => Key {
                file: entry.file.clone(),
                line: entry.first_line,
                name: entry.name.clone(),
            },
            EntryKind::Marker | EntryKind::Process | EntryKind::Thread => Key {
                file: Arc::from(NO_FILE),
                line: 0,
                name: entry.name.clone(),
            },
        }
    }
}

/// Sample counts of one caller → callee edge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Edge {
    /// Samples whose stack holds the pair (once per sample).
    samples: u64,
    /// Of those, the samples in which the callee is the innermost frame under this caller.
    own: u64,
}

/// Sample counts of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Function {
    key: Key,
    /// Samples in which the function is on the stack (once per sample).
    samples: u64,
    /// Samples in which it is the innermost frame.
    own: u64,
    /// Caller (an index into the table) → the edge's counts.
    callers: BTreeMap<usize, Edge>,
}

impl Function {
    fn new(key: Key) -> Function {
        Function {
            key,
            samples: 0,
            own: 0,
            callers: BTreeMap::new(),
        }
    }
}

/// Every function of the profile, sorted by key; callers refer to other rows by index.
fn table(profile: &Profile) -> Vec<Function> {
    // Entries that differ only in the line shown are one function.
    let mut functions: Vec<Function> = Vec::new();
    let function_of: Vec<usize> = profile
        .entries()
        .iter()
        .zip(profile.functions())
        .map(|(entry, function)| {
            if function as usize == functions.len() {
                functions.push(Function::new(Key::of(entry)));
            }
            function as usize
        })
        .collect();

    // `seen[f]` is the number of the last stack that counted function `f`.
    let mut seen = vec![usize::MAX; functions.len()];
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (number, stack) in profile.stacks().iter().enumerate() {
        let Some(&leaf) = stack.frames.last() else {
            continue;
        };
        let count = stack.count;
        let leaf = function_of[leaf as usize];
        functions[leaf].own += count;
        for &id in stack.frames {
            let f = function_of[id as usize];
            if seen[f] != number {
                seen[f] = number;
                functions[f].samples += count;
            }
        }
        pairs.clear();
        pairs.extend(
            stack
                .frames
                .windows(2)
                .map(|w| (function_of[w[0] as usize], function_of[w[1] as usize])),
        );
        let innermost = pairs.last().copied();
        pairs.sort_unstable();
        pairs.dedup();
        for &(caller, callee) in &pairs {
            let edge = functions[callee].callers.entry(caller).or_default();
            edge.samples += count;
            if Some((caller, callee)) == innermost {
                edge.own += count;
            }
        }
    }

    // Sort by key, and renumber the callers to match.
    let mut numbered: Vec<(usize, Function)> = functions.into_iter().enumerate().collect();
    numbered.sort_by(|a, b| a.1.key.cmp(&b.1.key));
    let mut new_index = vec![0; numbered.len()];
    for (new, (old, _)) in numbered.iter().enumerate() {
        new_index[*old] = new;
    }
    let mut sorted: Vec<Function> = numbered.into_iter().map(|(_, f)| f).collect();
    for function in &mut sorted {
        function.callers = std::mem::take(&mut function.callers)
            .into_iter()
            .map(|(caller, edge)| (new_index[caller], edge))
            .collect();
    }
    if sorted.is_empty() {
        sorted.push(Function::new(Key {
            file: Arc::from(NO_FILE),
            line: 0,
            name: Arc::from(NO_SAMPLES),
        }));
    }
    sorted
}

/// The marshalled statistics dictionary of `functions`, one sample standing for `interval`
/// seconds.
fn encode(functions: &[Function], interval: f64) -> Vec<u8> {
    let mut m = Marshal::default();
    let seconds = |samples: u64| samples as f64 * interval;
    m.dict_start();
    for function in functions {
        m.key(&function.key);
        m.tuple(5);
        m.int(function.samples); // cc: primitive calls
        m.int(function.samples); // nc: all calls
        m.float(seconds(function.own));
        m.float(seconds(function.samples));
        m.dict_start();
        for (&caller, edge) in &function.callers {
            m.key(&functions[caller].key);
            m.tuple(4);
            m.int(edge.samples); // nc
            m.int(edge.samples); // cc
            m.float(seconds(edge.own));
            m.float(seconds(edge.samples));
        }
        m.dict_end();
    }
    m.dict_end();
    m.bytes
}

/// A writer of the few `marshal` type codes the statistics need.
#[derive(Debug, Default)]
struct Marshal {
    bytes: Vec<u8>,
}

impl Marshal {
    fn dict_start(&mut self) {
        self.bytes.push(b'{');
    }

    /// Ends a dictionary: the null object where the next key would be.
    fn dict_end(&mut self) {
        self.bytes.push(b'0');
    }

    /// Starts a tuple of `len` items (which follow).
    fn tuple(&mut self, len: u32) {
        self.bytes.push(b'(');
        self.bytes.extend_from_slice(&len.to_le_bytes());
    }

    fn str(&mut self, text: &str) {
        self.bytes.push(b'u');
        self.bytes
            .extend_from_slice(&(text.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(text.as_bytes());
    }

    /// A non-negative integer: 4 bytes when it fits a C `int`, else a long of 15-bit digits,
    /// least significant first, after their count.
    fn int(&mut self, value: u64) {
        if let Ok(small) = i32::try_from(value) {
            self.bytes.push(b'i');
            self.bytes.extend_from_slice(&small.to_le_bytes());
            return;
        }
        let mut digits = Vec::new();
        let mut rest = value;
        while rest > 0 {
            digits.push((rest & 0x7fff) as u16);
            rest >>= 15;
        }
        self.bytes.push(b'l');
        self.bytes
            .extend_from_slice(&(digits.len() as i32).to_le_bytes());
        for digit in digits {
            self.bytes.extend_from_slice(&digit.to_le_bytes());
        }
    }

    fn float(&mut self, value: f64) {
        self.bytes.push(b'g');
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// A function's key, `(file, line, name)`.
    fn key(&mut self, key: &Key) {
        self.tuple(3);
        self.str(&key.file);
        self.int(key.line.into());
        self.str(&key.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::model::Frame;
    use crate::output::collapsed::tests::{frame, sample};
    use crate::output::FrameStyle;

    /// A recording whose interval is 10 ms.
    fn recording() -> Recording {
        Recording::new("test", 100.0, 0, Duration::ZERO)
    }

    fn written(profile: &Profile) -> Vec<u8> {
        let mut out = Vec::new();
        write(profile, &recording(), &mut out).unwrap();
        out
    }

    /// Adds one sample per stack (each innermost first), all of one thread.
    fn add(profile: &mut Profile, stacks: &[Vec<Frame>], times: usize) {
        for _ in 0..times {
            for stack in stacks {
                profile.add_sample(&sample(vec![stack.clone()]), Duration::ZERO);
            }
        }
    }

    /// The row of the function named `name`.
    fn row<'a>(table: &'a [Function], name: &str) -> &'a Function {
        table
            .iter()
            .find(|f| &*f.key.name == name)
            .unwrap_or_else(|| panic!("no row for {name}"))
    }

    /// `name`'s callers by name, with their edges.
    fn callers(table: &[Function], name: &str) -> Vec<(String, Edge)> {
        row(table, name)
            .callers
            .iter()
            .map(|(&i, &edge)| (table[i].key.name.to_string(), edge))
            .collect()
    }

    fn edge(samples: u64, own: u64) -> Edge {
        Edge { samples, own }
    }

    #[test]
    fn a_single_frame_is_marshalled_byte_for_byte() {
        let mut profile = Profile::new(FrameStyle::Line);
        add(&mut profile, &[vec![frame("f", "a.py", 3, 1)]], 2);
        let mut want = Vec::new();
        want.push(b'{');
        // The key: ("a.py", 1, "f").
        want.extend_from_slice(b"(\x03\x00\x00\x00");
        want.extend_from_slice(b"u\x04\x00\x00\x00a.py");
        want.extend_from_slice(b"i\x01\x00\x00\x00");
        want.extend_from_slice(b"u\x01\x00\x00\x00f");
        // The value: (2, 2, 0.02, 0.02, {}).
        want.extend_from_slice(b"(\x05\x00\x00\x00");
        want.extend_from_slice(b"i\x02\x00\x00\x00");
        want.extend_from_slice(b"i\x02\x00\x00\x00");
        for _ in 0..2 {
            want.push(b'g');
            want.extend_from_slice(&(2.0 * 0.01f64).to_le_bytes());
        }
        want.extend_from_slice(b"{0");
        want.push(b'0');
        assert_eq!(written(&profile), want);
    }

    #[test]
    fn a_caller_is_a_four_tuple_under_its_callee() {
        let mut profile = Profile::new(FrameStyle::Line);
        let inner = frame("g", "b.py", 5, 4);
        let outer = frame("f", "b.py", 2, 1);
        add(&mut profile, &[vec![inner, outer]], 1);
        let bytes = written(&profile);
        let key_f = b"(\x03\x00\x00\x00u\x04\x00\x00\x00b.pyi\x01\x00\x00\x00u\x01\x00\x00\x00f";
        let key_g = b"(\x03\x00\x00\x00u\x04\x00\x00\x00b.pyi\x04\x00\x00\x00u\x01\x00\x00\x00g";
        let one = |bytes: &mut Vec<u8>, seconds: f64| {
            bytes.push(b'g');
            bytes.extend_from_slice(&seconds.to_le_bytes());
        };
        let mut want = vec![b'{'];
        // f: seen once, never innermost, no callers.
        want.extend_from_slice(key_f);
        want.extend_from_slice(b"(\x05\x00\x00\x00i\x01\x00\x00\x00i\x01\x00\x00\x00");
        one(&mut want, 0.0);
        one(&mut want, 0.01);
        want.extend_from_slice(b"{0");
        // g: seen once, innermost once, called by f.
        want.extend_from_slice(key_g);
        want.extend_from_slice(b"(\x05\x00\x00\x00i\x01\x00\x00\x00i\x01\x00\x00\x00");
        one(&mut want, 0.01);
        one(&mut want, 0.01);
        want.push(b'{');
        want.extend_from_slice(key_f);
        want.extend_from_slice(b"(\x04\x00\x00\x00i\x01\x00\x00\x00i\x01\x00\x00\x00");
        one(&mut want, 0.01);
        one(&mut want, 0.01);
        want.extend_from_slice(b"00");
        assert_eq!(bytes, want);
    }

    #[test]
    fn recursion_counts_once_per_sample_and_is_its_own_caller() {
        let mut profile = Profile::new(FrameStyle::Line);
        let module = frame("<module>", "w.py", 30, 1);
        let cycle = frame("cycle", "w.py", 20, 19);
        let heavy = frame("heavy", "w.py", 10, 9);
        let recurse = |line| frame("recurse", "w.py", line, 14);
        let spin = frame("spin", "w.py", 5, 4);
        add(
            &mut profile,
            &[
                vec![spin.clone(), heavy.clone(), cycle.clone(), module.clone()],
                vec![heavy.clone(), cycle.clone(), module.clone()],
                vec![
                    spin.clone(),
                    recurse(16),
                    recurse(18),
                    recurse(18),
                    cycle.clone(),
                    module.clone(),
                ],
                vec![recurse(18), recurse(18), cycle.clone(), module.clone()],
            ],
            3,
        );
        let table = table(&profile);
        let names: Vec<&str> = table.iter().map(|f| &*f.key.name).collect();
        // Sorted by (file, first line, name).
        assert_eq!(
            names,
            ["<module>", "spin", "heavy", "recurse", "cycle"],
            "{table:?}"
        );
        let counts = |name| (row(&table, name).samples, row(&table, name).own);
        assert_eq!(counts("<module>"), (12, 0));
        assert_eq!(counts("cycle"), (12, 0));
        assert_eq!(counts("heavy"), (6, 3));
        // Three frames deep, yet counted once per sample.
        assert_eq!(counts("recurse"), (6, 3));
        assert_eq!(counts("spin"), (6, 6));
        assert_eq!(table.iter().map(|f| f.own).sum::<u64>(), profile.total());

        assert!(row(&table, "<module>").callers.is_empty());
        assert_eq!(callers(&table, "cycle"), [("<module>".into(), edge(12, 0))]);
        assert_eq!(
            callers(&table, "spin"),
            [("heavy".into(), edge(3, 3)), ("recurse".into(), edge(3, 3))]
        );
        assert_eq!(
            callers(&table, "recurse"),
            [("recurse".into(), edge(6, 3)), ("cycle".into(), edge(6, 0))]
        );
        assert_eq!(callers(&table, "heavy"), [("cycle".into(), edge(6, 3))]);
    }

    #[test]
    fn functions_are_grouped_whatever_the_line_style() {
        for style in [FrameStyle::Line, FrameStyle::NoLine, FrameStyle::Function] {
            let mut profile = Profile::new(style);
            add(
                &mut profile,
                &[
                    vec![frame("f", "a.py", 3, 1)],
                    vec![frame("f", "a.py", 5, 1)],
                    vec![frame("f", "b.py", 5, 1)],
                ],
                1,
            );
            let table = table(&profile);
            let rows: Vec<(String, u32, u64)> = table
                .iter()
                .map(|f| {
                    let key = &f.key;
                    (key.file.to_string(), key.line, f.samples)
                })
                .collect();
            assert_eq!(
                rows,
                [("a.py".into(), 1, 2), ("b.py".into(), 1, 1)],
                "{style:?}"
            );
        }
    }

    #[test]
    fn the_profilers_own_frames_are_keyed_like_built_ins() {
        let mut profile = Profile::new(FrameStyle::Line).with_thread_roots(true);
        // The walker puts the marker where the stack was cut: outermost.
        let mut s = sample(vec![vec![frame("f", "a.py", 3, 1), Frame::truncated(2)]]);
        s.command_line = Some(Arc::from("python3 a.py"));
        s.threads[0].os_thread_id = Some(42);
        profile.add_sample(&s, Duration::ZERO);
        let table = table(&profile);
        let keys: Vec<(String, u32, String)> = table
            .iter()
            .map(|f| {
                let key = &f.key;
                (key.file.to_string(), key.line, key.name.to_string())
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("a.py".into(), 1, "f".into()),
                ("~".into(), 0, "[stack truncated at 2 frames]".into()),
                ("~".into(), 0, "process 1 \"python3 a.py\"".into()),
                ("~".into(), 0, "thread 42".into()),
            ]
        );
        assert!(row(&table, "process 1 \"python3 a.py\"").callers.is_empty());
        assert_eq!(
            callers(&table, "thread 42"),
            [("process 1 \"python3 a.py\"".into(), edge(1, 0))]
        );
        assert_eq!(
            callers(&table, "[stack truncated at 2 frames]"),
            [("thread 42".into(), edge(1, 0))]
        );
        assert_eq!(
            callers(&table, "f"),
            [("[stack truncated at 2 frames]".into(), edge(1, 1))]
        );
    }

    #[test]
    fn an_empty_profile_still_has_one_function() {
        let bytes = written(&Profile::new(FrameStyle::Line));
        let mut want = b"{(\x03\x00\x00\x00u\x01\x00\x00\x00~i\x00\x00\x00\x00".to_vec();
        want.extend_from_slice(b"u\x0c\x00\x00\x00[no samples]");
        want.extend_from_slice(b"(\x05\x00\x00\x00i\x00\x00\x00\x00i\x00\x00\x00\x00");
        want.extend_from_slice(b"g\x00\x00\x00\x00\x00\x00\x00\x00");
        want.extend_from_slice(b"g\x00\x00\x00\x00\x00\x00\x00\x00");
        want.extend_from_slice(b"{00");
        assert_eq!(bytes, want);
    }

    #[test]
    fn integers_beyond_i32_are_longs() {
        let mut m = Marshal::default();
        m.int(i32::MAX as u64);
        assert_eq!(m.bytes, b"i\xff\xff\xff\x7f");
        let mut m = Marshal::default();
        // 2^31 = 2 * 2^30: digits 0, 0, 2 in base 2^15.
        m.int(1 << 31);
        assert_eq!(m.bytes, b"l\x03\x00\x00\x00\x00\x00\x00\x00\x02\x00");
        let mut m = Marshal::default();
        m.int(u64::MAX);
        // 64 bits are five 15-bit digits; the top one holds 4 bits.
        assert_eq!(m.bytes[..5], *b"l\x05\x00\x00\x00");
        assert_eq!(
            m.bytes[5..13],
            [0xff, 0x7f, 0xff, 0x7f, 0xff, 0x7f, 0xff, 0x7f]
        );
        assert_eq!(m.bytes[13..], [0x0f, 0x00]);
    }

    #[test]
    fn strings_are_utf8_with_their_byte_length() {
        let mut m = Marshal::default();
        m.str("名前");
        let mut want = b"u\x06\x00\x00\x00".to_vec();
        want.extend_from_slice("名前".as_bytes());
        assert_eq!(m.bytes, want);
    }
}
