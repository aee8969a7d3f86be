//! Incremental aggregation of samples into collapsed stacks: frames are interned once, each
//! distinct stack is a list of frame ids with a count, so memory grows with the number of
//! distinct stacks, not with the duration. Written root first, `;`-separated, frames as
//! `function (file:line)`, which is what py-spy writes and flame-graph tools read.
//!
//! Above the Python frames, `StackCounts::roots` may add frames of its own: with several
//! processes (`--subprocesses`), `process PID "COMMAND LINE"`, outermost.

use std::io::{self, Write};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::model::{Frame, FrameCode, FrameKind, Sample, ThreadSample};

/// The most characters of a command line shown in a `process` root frame.
pub const MAX_COMMAND_LINE: usize = 200;

/// How a frame is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameStyle {
    /// `function (file:line)` with the executing line.
    #[default]
    Line,
    /// `function (file)`: lines left out.
    NoLine,
    /// `function (file:first line)`: one entry per function.
    Function,
}

impl FrameStyle {
    /// The line shown for `frame`: the executing one, none (0), or the function's first.
    fn line_of(self, frame: &Frame) -> u32 {
        match self {
            FrameStyle::Line => frame.line,
            FrameStyle::NoLine => 0,
            FrameStyle::Function => frame.first_line,
        }
    }

    /// The text of one frame.
    pub fn format(self, frame: &Frame) -> String {
        let file = frame.display_filename();
        if frame.kind == FrameKind::Truncated {
            return frame.name.to_string();
        }
        let line = self.line_of(frame);
        if line == 0 {
            format!("{} ({file})", frame.name)
        } else {
            format!("{} ({file}:{line})", frame.name)
        }
    }
}

/// `process PID "COMMAND LINE"`. The command line is cut to [`MAX_COMMAND_LINE`] characters
/// (ending in `…`), and the characters that would break a collapsed line are replaced: `;`
/// (the frame separator) by `,` and control characters such as newlines by spaces.
pub fn process_frame(pid: u32, command_line: &str) -> String {
    let mut shown: String = command_line
        .chars()
        .take(MAX_COMMAND_LINE)
        .map(|c| match c {
            ';' => ',',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    if command_line.chars().nth(MAX_COMMAND_LINE).is_some() {
        shown.push('…');
    }
    format!("process {pid} \"{shown}\"")
}

/// Stack → sample count, built sample by sample.
#[derive(Debug, Default)]
pub struct StackCounts {
    style: FrameStyle,
    /// Frame text → id.
    frame_ids: FxHashMap<String, u32>,
    /// Id → frame text.
    frames: Vec<String>,
    /// A frame as the sampler hands it over → its id, so that a frame seen before costs a
    /// hash of a few words rather than formatting its text.
    seen: FxHashMap<FrameKey, u32>,
    /// The functions whose addresses `seen` holds.
    held: Vec<Arc<FrameCode>>,
    stacks: FxHashMap<Vec<u32>, u64>,
    /// The stack being counted, reused from sample to sample.
    scratch: Vec<u32>,
    total: u64,
    thread_roots: bool,
}

/// Most entries [`StackCounts::seen`] keeps before starting over (it is only a shortcut).
const MAX_SEEN: usize = 1 << 16;

/// What identifies a frame's text without formatting it: the address of its function's
/// shared part and the line the style shows. [`StackCounts::held`] keeps those parts, so no
/// other can take one of these addresses while the entry lives.
type FrameKey = (usize, u32);

fn frame_key(frame: &Frame, style: FrameStyle) -> FrameKey {
    (Arc::as_ptr(&frame.code) as usize, style.line_of(frame))
}

impl StackCounts {
    /// An empty aggregate writing frames in `style`.
    pub fn new(style: FrameStyle) -> StackCounts {
        StackCounts {
            style,
            ..StackCounts::default()
        }
    }

    /// Roots every stack at its thread (`--threads`): see [`thread_root`].
    pub fn with_thread_roots(mut self, on: bool) -> StackCounts {
        self.thread_roots = on;
        self
    }

    /// Adds every thread of a sample (threads without Python frames are left out).
    pub fn add_sample(&mut self, sample: &Sample) {
        let mut ids = std::mem::take(&mut self.scratch);
        for thread in &sample.threads {
            if thread.frames.is_empty() {
                continue;
            }
            // Root first.
            ids.clear();
            for text in self.roots(sample, thread) {
                ids.push(self.intern(text));
            }
            for frame in thread.frames.iter().rev() {
                ids.push(self.frame_id(frame));
            }
            match self.stacks.get_mut(ids.as_slice()) {
                Some(count) => *count += 1,
                None => {
                    self.stacks.insert(ids.clone(), 1);
                }
            }
            self.total += 1;
        }
        self.scratch = ids;
    }

    /// The id of a frame's text, formatting it only the first time its strings are seen.
    fn frame_id(&mut self, frame: &Frame) -> u32 {
        if frame.kind != FrameKind::Python {
            // Markers are made afresh for each sample: they have no lasting address.
            return self.intern(self.style.format(frame));
        }
        let key = frame_key(frame, self.style);
        if let Some(id) = self.seen.get(&key) {
            return *id;
        }
        let id = self.intern(self.style.format(frame));
        if self.seen.len() >= MAX_SEEN {
            self.seen.clear();
            self.held.clear();
        }
        self.seen.insert(key, id);
        self.held.push(frame.code.clone());
        id
    }

    /// The frames above a thread's Python stack, outermost first: its process, when the
    /// sample names a command line (several processes are sampled together), then its
    /// thread with `--threads`.
    fn roots(&self, sample: &Sample, thread: &ThreadSample) -> Vec<String> {
        let mut roots = Vec::new();
        if let Some(command_line) = &sample.command_line {
            roots.push(process_frame(sample.pid, command_line));
        }
        if self.thread_roots {
            roots.push(thread_root(thread));
        }
        roots
    }

    fn intern(&mut self, text: String) -> u32 {
        if let Some(id) = self.frame_ids.get(&text) {
            return *id;
        }
        let id = self.frames.len() as u32;
        self.frames.push(text.clone());
        self.frame_ids.insert(text, id);
        id
    }

    /// Thread stacks counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// The collapsed lines (`a;b;c 12`), sorted.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .stacks
            .iter()
            .map(|(ids, count)| {
                let names: Vec<&str> = ids
                    .iter()
                    .map(|i| self.frames[*i as usize].as_str())
                    .collect();
                format!("{} {count}", names.join(";"))
            })
            .collect();
        lines.sort();
        lines
    }

    /// Writes the collapsed lines.
    pub fn write_collapsed(&self, out: &mut dyn Write) -> io::Result<()> {
        for line in self.lines() {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

/// The root frame of a thread's stacks with `--threads`: `thread <os tid> "<name>"`, with the
/// pthread id in hex when the kernel id is unknown and without the name when it has none.
pub fn thread_root(thread: &ThreadSample) -> String {
    let id = match thread.os_thread_id {
        Some(tid) => tid.to_string(),
        None => format!("{:#x}", thread.thread_id),
    };
    match &thread.name {
        Some(name) => format!("thread {id} \"{name}\""),
        None => format!("thread {id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, file: &str, line: u32, first: u32) -> Frame {
        Frame::python(name, &format!("/src/{file}"), Some(file), line, first)
    }

    fn sample(stacks: Vec<Vec<Frame>>) -> Sample {
        Sample {
            pid: 1,
            command_line: None,
            threads: stacks
                .into_iter()
                .enumerate()
                .map(|(i, frames)| ThreadSample {
                    thread_id: i as u64,
                    os_thread_id: None,
                    active: true,
                    holds_gil: false,
                    name: None,
                    frames,
                    locals: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn styles_write_frames_like_py_spy() {
        let f = frame("Outer.method", "app.py", 12, 10);
        assert_eq!(FrameStyle::Line.format(&f), "Outer.method (app.py:12)");
        assert_eq!(FrameStyle::NoLine.format(&f), "Outer.method (app.py)");
        assert_eq!(FrameStyle::Function.format(&f), "Outer.method (app.py:10)");
        assert_eq!(
            FrameStyle::Line.format(&Frame::truncated(4096)),
            "[stack truncated at 4096 frames]"
        );
    }

    #[test]
    fn counts_root_first_and_merges_equal_stacks() {
        let mut counts = StackCounts::new(FrameStyle::Line);
        let inner = frame("work", "app.py", 3, 1);
        let outer = frame("<module>", "app.py", 9, 1);
        for _ in 0..3 {
            counts.add_sample(&sample(vec![vec![inner.clone(), outer.clone()], vec![]]));
        }
        counts.add_sample(&sample(vec![vec![outer.clone()]]));
        assert_eq!(
            counts.lines(),
            vec![
                "<module> (app.py:9) 1",
                "<module> (app.py:9);work (app.py:3) 3"
            ]
        );
        assert_eq!(counts.total(), 4);
        let mut out = Vec::new();
        counts.write_collapsed(&mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().ends_with("3\n"));
    }

    #[test]
    fn a_command_line_roots_each_stack_at_its_process() {
        let mut counts = StackCounts::new(FrameStyle::Line);
        let work = frame("work", "app.py", 3, 1);
        let mut a = sample(vec![vec![work.clone()], vec![]]);
        a.command_line = Some(Arc::from("python3 app.py --x"));
        counts.add_sample(&a);
        counts.add_sample(&a);
        let mut b = sample(vec![vec![work.clone()]]);
        b.pid = 22;
        b.command_line = Some(Arc::from("sh -c 'a; b'\nnext"));
        counts.add_sample(&b);
        counts.add_sample(&sample(vec![vec![work]]));
        assert_eq!(
            counts.lines(),
            vec![
                "process 1 \"python3 app.py --x\";work (app.py:3) 2",
                "process 22 \"sh -c 'a, b' next\";work (app.py:3) 1",
                "work (app.py:3) 1",
            ]
        );
    }

    #[test]
    fn long_command_lines_are_cut() {
        let long = "x".repeat(MAX_COMMAND_LINE + 1);
        let frame = process_frame(7, &long);
        assert_eq!(
            frame.chars().count(),
            "process 7 \"\"…".chars().count() + MAX_COMMAND_LINE
        );
        assert!(frame.ends_with("x…\""), "{frame}");
        let exact = "é".repeat(MAX_COMMAND_LINE);
        assert!(!process_frame(7, &exact).contains('…'));
    }

    #[test]
    fn function_style_merges_lines_of_one_function() {
        let mut counts = StackCounts::new(FrameStyle::Function);
        counts.add_sample(&sample(vec![vec![frame("f", "a.py", 3, 1)]]));
        counts.add_sample(&sample(vec![vec![frame("f", "a.py", 5, 1)]]));
        assert_eq!(counts.lines(), vec!["f (a.py:1) 2"]);
    }

    #[test]
    fn thread_roots_name_the_thread() {
        let mut counts = StackCounts::new(FrameStyle::Line).with_thread_roots(true);
        let mut s = sample(vec![
            vec![frame("f", "a.py", 3, 1)],
            vec![frame("g", "a.py", 7, 6)],
        ]);
        s.threads[0].os_thread_id = Some(4242);
        s.threads[0].name = Some(Arc::from("worker-1"));
        s.threads[1].thread_id = 0x7f00;
        counts.add_sample(&s);
        assert_eq!(
            counts.lines(),
            vec![
                "thread 0x7f00;g (a.py:7) 1",
                "thread 4242 \"worker-1\";f (a.py:3) 1"
            ]
        );
    }
}
