//! Collapsed stacks: one line per distinct stack, root first, `;`-separated, frames as
//! `function (file:line)`, then the count. This is what py-spy writes and flame-graph tools
//! read. Also how a frame and the profiler's root frames (`process PID "COMMAND LINE"` with
//! `--subprocesses`, `thread TID "NAME"` with `--threads`) are written in every format.

use std::io::{self, Write};

use rustc_hash::FxHashMap;

use crate::model::{Frame, FrameKind};
use crate::output::profile::{Entry, Profile};

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
    pub(crate) fn line_of(self, frame: &Frame) -> u32 {
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

/// The collapsed lines of a profile (`a;b;c 12`), sorted: every thread's stacks together,
/// stacks whose frames read the same merged.
pub fn lines(profile: &Profile) -> Vec<String> {
    let texts: Vec<String> = profile.entries().iter().map(Entry::text).collect();
    let mut merged: FxHashMap<String, u64> = FxHashMap::default();
    let mut line = String::new();
    for stack in profile.stacks() {
        line.clear();
        for (i, id) in stack.frames.iter().enumerate() {
            if i > 0 {
                line.push(';');
            }
            line.push_str(&texts[*id as usize]);
        }
        match merged.get_mut(line.as_str()) {
            Some(count) => *count += stack.count,
            None => {
                merged.insert(line.clone(), stack.count);
            }
        }
    }
    let mut lines: Vec<String> = merged
        .into_iter()
        .map(|(stack, count)| format!("{stack} {count}"))
        .collect();
    lines.sort();
    lines
}

/// Writes the collapsed lines.
pub fn write(profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
    for line in lines(profile) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The root frame of a thread's stacks with `--threads`: `thread <os tid> "<name>"`, with the
/// pthread id in hex when the kernel id is unknown and without the name when it has none.
pub fn thread_root(os_thread_id: Option<u32>, thread_id: u64, name: Option<&str>) -> String {
    let id = match os_thread_id {
        Some(tid) => tid.to_string(),
        None => format!("{thread_id:#x}"),
    };
    match name {
        Some(name) => format!("thread {id} \"{name}\""),
        None => format!("thread {id}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::model::{Sample, ThreadSample};

    pub(crate) fn frame(name: &str, file: &str, line: u32, first: u32) -> Frame {
        Frame::python(name, &format!("/src/{file}"), Some(file), line, first)
    }

    pub(crate) fn sample(stacks: Vec<Vec<Frame>>) -> Sample {
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
        let mut counts = Profile::new(FrameStyle::Line);
        let inner = frame("work", "app.py", 3, 1);
        let outer = frame("<module>", "app.py", 9, 1);
        for _ in 0..3 {
            counts.add_sample(
                &sample(vec![vec![inner.clone(), outer.clone()], vec![]]),
                Duration::ZERO,
            );
        }
        counts.add_sample(&sample(vec![vec![outer.clone()]]), Duration::ZERO);
        assert_eq!(
            lines(&counts),
            vec![
                "<module> (app.py:9) 1",
                "<module> (app.py:9);work (app.py:3) 3"
            ]
        );
        assert_eq!(counts.total(), 4);
        let mut out = Vec::new();
        write(&counts, &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().ends_with("3\n"));
    }

    #[test]
    fn a_command_line_roots_each_stack_at_its_process() {
        let mut counts = Profile::new(FrameStyle::Line);
        let work = frame("work", "app.py", 3, 1);
        let mut a = sample(vec![vec![work.clone()], vec![]]);
        a.command_line = Some(Arc::from("python3 app.py --x"));
        counts.add_sample(&a, Duration::ZERO);
        counts.add_sample(&a, Duration::ZERO);
        let mut b = sample(vec![vec![work.clone()]]);
        b.pid = 22;
        b.command_line = Some(Arc::from("sh -c 'a; b'\nnext"));
        counts.add_sample(&b, Duration::ZERO);
        counts.add_sample(&sample(vec![vec![work]]), Duration::ZERO);
        assert_eq!(
            lines(&counts),
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
        let mut counts = Profile::new(FrameStyle::Function);
        counts.add_sample(
            &sample(vec![vec![frame("f", "a.py", 3, 1)]]),
            Duration::ZERO,
        );
        counts.add_sample(
            &sample(vec![vec![frame("f", "a.py", 5, 1)]]),
            Duration::ZERO,
        );
        assert_eq!(lines(&counts), vec!["f (a.py:1) 2"]);
    }

    #[test]
    fn thread_roots_name_the_thread() {
        let mut counts = Profile::new(FrameStyle::Line).with_thread_roots(true);
        let mut s = sample(vec![
            vec![frame("f", "a.py", 3, 1)],
            vec![frame("g", "a.py", 7, 6)],
        ]);
        s.threads[0].os_thread_id = Some(4242);
        s.threads[0].name = Some(Arc::from("worker-1"));
        s.threads[1].thread_id = 0x7f00;
        counts.add_sample(&s, Duration::ZERO);
        assert_eq!(
            lines(&counts),
            vec![
                "thread 0x7f00;g (a.py:7) 1",
                "thread 4242 \"worker-1\";f (a.py:3) 1"
            ]
        );
    }
}
