//! The aggregate every output format is written from, built sample by sample.
//!
//! Frames are interned once as [`Entry`]s (function, file, the line the [`FrameStyle`] shows,
//! first line). Each distinct stack of each thread is a list of entry ids, root first, with a
//! count, so memory grows with the number of distinct stacks, not with the duration. Above the
//! Python frames a stack may start with frames of the profiler's own: its process (when several
//! processes are sampled, `--subprocesses`) and its thread (`--threads`). Every format shows
//! these roots the same way, as frames.
//!
//! Formats that draw a timeline (the Chrome trace) also need to know when each thread's stack
//! changed: [`Profile::with_timeline`] keeps, per thread, the times at which it did, which again
//! grows with the changes rather than with the samples.

use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::model::{Frame, FrameCode, FrameKind, Sample, ThreadSample};
use crate::output::collapsed::{process_frame, thread_root, FrameStyle};

/// What an [`Entry`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// A Python function at a line.
    Python,
    /// A marker the walker inserted (the frames beyond the depth cap).
    Marker,
    /// The root frame of a process: `process PID "COMMAND LINE"`.
    Process,
    /// The root frame of a thread: `thread TID "NAME"`.
    Thread,
}

/// One distinct frame, as every format shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    /// What it stands for.
    pub kind: EntryKind,
    /// The function's qualified name, or the marker's or root's whole text.
    pub name: Arc<str>,
    /// The file name as shown (package-relative unless full names were asked for); empty for
    /// markers and roots.
    pub file: Arc<str>,
    /// The line the style shows: the executing line, the function's first line
    /// (`--function`), or 0 (`--nolineno`, and markers and roots).
    pub line: u32,
    /// The function's first line; 0 for markers and roots.
    pub first_line: u32,
}

impl Entry {
    /// A frame of the profiler's own (a marker or a root), with no file or line.
    fn synthetic(kind: EntryKind, name: String) -> Entry {
        Entry {
            kind,
            name: Arc::from(name),
            file: Arc::from(""),
            line: 0,
            first_line: 0,
        }
    }

    /// The text of the frame in collapsed stacks and flame graphs: `function (file:line)`,
    /// `function (file)` without a line, and the bare text of markers and roots.
    pub fn text(&self) -> String {
        match (self.kind, self.line) {
            (EntryKind::Python, 0) => format!("{} ({})", self.name, self.file),
            (EntryKind::Python, line) => format!("{} ({}:{line})", self.name, self.file),
            _ => self.name.to_string(),
        }
    }
}

/// A thread (of one process) that had Python frames in at least one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    /// The process.
    pub pid: u32,
    /// The process's command line, when several processes were sampled.
    pub command_line: Option<Arc<str>>,
    /// Python's thread id.
    pub thread_id: u64,
    /// The kernel's thread id, when known.
    pub os_thread_id: Option<u32>,
    /// The thread's name, the latest seen.
    pub name: Option<Arc<str>>,
}

impl ThreadInfo {
    /// `thread TID "NAME"`, as the thread root frame shows it.
    pub fn label(&self) -> String {
        thread_root(self.os_thread_id, self.thread_id, self.name.as_deref())
    }

    /// The thread's number for tools that want one: the kernel's id, else Python's.
    pub fn id(&self) -> u64 {
        self.os_thread_id.map_or(self.thread_id, u64::from)
    }
}

/// One distinct stack of one thread.
#[derive(Debug, Clone, Copy)]
pub struct StackRef<'a> {
    /// The thread's index in [`Profile::threads`].
    pub thread: u32,
    /// Entry ids, root first (roots of the profiler's own first, then the outermost Python
    /// frame); index [`Profile::entries`].
    pub frames: &'a [u32],
    /// Thread-samples that had exactly this stack.
    pub count: u64,
}

/// A stack change of one thread: from `at` on, it had stack `stack` (an index into
/// [`Profile::stacks`]'s order), or no Python stack when `stack` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Time since sampling began.
    pub at: Duration,
    /// The stack from then on.
    pub stack: Option<u32>,
}

/// Stacks and their counts, per thread; see the module documentation.
#[derive(Debug, Default)]
pub struct Profile {
    style: FrameStyle,
    thread_roots: bool,
    entries: Vec<Entry>,
    entry_ids: FxHashMap<Entry, u32>,
    /// A frame as the sampler hands it over → its entry id, so that a frame seen before costs
    /// a hash of two words rather than building its entry.
    seen: FxHashMap<FrameKey, u32>,
    /// The functions whose addresses `seen` holds: none can be freed and its address reused
    /// while the entry lives.
    held: Vec<Arc<FrameCode>>,
    threads: Vec<ThreadInfo>,
    thread_ids: FxHashMap<(u32, u64), u32>,
    /// Thread index → the entry of its root frame.
    thread_root_ids: FxHashMap<u32, u32>,
    /// `[thread, frame ids…]` → index into `counts`.
    stack_ids: FxHashMap<Vec<u32>, u32>,
    counts: Vec<u64>,
    /// The stack being counted, reused from sample to sample.
    scratch: Vec<u32>,
    /// Per thread index, its last stack (see [`LastStack`]).
    last: Vec<LastStack>,
    /// How many times `seen` and `held` were emptied.
    clears: u64,
    total: u64,
    timeline: Option<Timeline>,
}

/// Per thread, the changes of its stack; see [`Profile::with_timeline`].
#[derive(Debug, Default)]
struct Timeline {
    changes: Vec<Vec<Change>>,
    /// The sample number that last saw each thread.
    last_seen: Vec<u64>,
    samples: u64,
    end: Duration,
}

/// A thread's last stack counted, as the frames it was made from: a thread whose stack has not
/// changed since (the common case: a sampler takes many samples of each stack) is counted
/// again without looking up each frame and the whole stack. The frames are known by the
/// address of their function's shared part, held by [`Profile::held`] for as long as this is
/// kept, and by their line.
#[derive(Debug, Default)]
struct LastStack {
    frames: Vec<(usize, u32)>,
    /// Index into `counts`; `None` when unknown.
    stack: Option<u32>,
}

/// Most entries [`Profile::seen`] keeps before starting over (it is only a shortcut).
const MAX_SEEN: usize = 1 << 16;

/// What identifies a frame's entry without building it: the address of its function's shared
/// part and the line the style shows.
type FrameKey = (usize, u32);

impl Profile {
    /// An empty profile whose frames show lines as `style` says.
    pub fn new(style: FrameStyle) -> Profile {
        Profile {
            style,
            ..Profile::default()
        }
    }

    /// Roots every stack at its thread (`--threads`).
    pub fn with_thread_roots(mut self, on: bool) -> Profile {
        self.thread_roots = on;
        self
    }

    /// Also keeps when each thread's stack changed, for timeline formats.
    pub fn with_timeline(mut self, on: bool) -> Profile {
        self.timeline = on.then(Timeline::default);
        self
    }

    /// Adds every thread of a sample taken `at` after sampling began (threads without Python
    /// frames are left out).
    pub fn add_sample(&mut self, sample: &Sample, at: Duration) {
        let mut ids = std::mem::take(&mut self.scratch);
        if let Some(timeline) = &mut self.timeline {
            timeline.samples += 1;
            timeline.end = timeline.end.max(at);
        }
        for thread in &sample.threads {
            if thread.frames.is_empty() {
                continue;
            }
            let thread_index = self.thread_index(sample, thread);
            // One process's samples only: a process tree's stacks also start with a root
            // frame of the process.
            let repeated = sample
                .command_line
                .is_none()
                .then(|| self.repeated(thread_index, &thread.frames))
                .flatten();
            if let Some(stack) = repeated {
                self.count(thread_index, stack, at);
                continue;
            }
            let clears = self.clears;
            ids.clear();
            ids.push(thread_index);
            if let Some(command_line) = &sample.command_line {
                let root = process_frame(sample.pid, command_line);
                ids.push(self.intern(Entry::synthetic(EntryKind::Process, root)));
            }
            if self.thread_roots {
                ids.push(self.thread_root_id(thread_index));
            }
            for frame in thread.frames.iter().rev() {
                ids.push(self.frame_id(frame));
            }
            let stack = match self.stack_ids.get(ids.as_slice()) {
                Some(&stack) => stack,
                None => {
                    let stack = self.counts.len() as u32;
                    self.counts.push(0);
                    self.stack_ids.insert(ids.clone(), stack);
                    stack
                }
            };
            // Not when `held` was emptied half-way through the frames.
            if sample.command_line.is_none() && clears == self.clears {
                self.remember(thread_index, &thread.frames, stack);
            }
            self.count(thread_index, stack, at);
        }
        if let Some(timeline) = &mut self.timeline {
            // Threads of this process that had a stack before and none now.
            for (index, info) in self.threads.iter().enumerate() {
                if info.pid == sample.pid && timeline.last_seen[index] != timeline.samples {
                    timeline.record(index as u32, None, at);
                }
            }
        }
        self.scratch = ids;
    }

    /// Counts one thread-sample of `stack`.
    fn count(&mut self, thread_index: u32, stack: u32, at: Duration) {
        self.counts[stack as usize] += 1;
        self.total += 1;
        if let Some(timeline) = &mut self.timeline {
            timeline.record(thread_index, Some(stack), at);
        }
    }

    /// The stack of `frames` when it is the thread's last one (see [`LastStack`]).
    fn repeated(&self, thread_index: u32, frames: &[Frame]) -> Option<u32> {
        let last = self.last.get(thread_index as usize)?;
        let stack = last.stack?;
        let same = last.frames.len() == frames.len()
            && last
                .frames
                .iter()
                .zip(frames)
                .all(|(&(code, line), frame)| {
                    code == Arc::as_ptr(&frame.code) as usize && line == frame.line
                });
        same.then_some(stack)
    }

    /// Keeps `frames` as the thread's last stack, counted as `stack`: only when every frame
    /// is a function's, whose shared part [`Profile::frame_id`] holds (a marker's is made
    /// afresh for each sample, and its address can come back as another's).
    fn remember(&mut self, thread_index: u32, frames: &[Frame], stack: u32) {
        let index = thread_index as usize;
        if self.last.len() <= index {
            self.last.resize_with(index + 1, LastStack::default);
        }
        let last = &mut self.last[index];
        last.frames.clear();
        last.stack = None;
        if frames.iter().all(|f| f.kind == FrameKind::Python) {
            last.frames.extend(
                frames
                    .iter()
                    .map(|f| (Arc::as_ptr(&f.code) as usize, f.line)),
            );
            last.stack = Some(stack);
        }
    }

    fn thread_index(&mut self, sample: &Sample, thread: &ThreadSample) -> u32 {
        let key = (sample.pid, thread.thread_id);
        let index = match self.thread_ids.get(&key) {
            Some(&index) => index,
            None => {
                let index = self.threads.len() as u32;
                self.threads.push(ThreadInfo {
                    pid: sample.pid,
                    command_line: sample.command_line.clone(),
                    thread_id: thread.thread_id,
                    os_thread_id: thread.os_thread_id,
                    name: None,
                });
                self.thread_ids.insert(key, index);
                if let Some(timeline) = &mut self.timeline {
                    timeline.changes.push(Vec::new());
                    timeline.last_seen.push(0);
                }
                index
            }
        };
        let info = &mut self.threads[index as usize];
        let mut renamed = false;
        if thread.name.is_some() && info.name != thread.name {
            info.name = thread.name.clone();
            renamed = true;
        }
        if thread.os_thread_id.is_some() && info.os_thread_id != thread.os_thread_id {
            info.os_thread_id = thread.os_thread_id;
            renamed = true;
        }
        // The thread's root frame shows what is known of it now, in every stack of it, even
        // those counted before its name was known.
        if let Some(&id) = self.thread_root_ids.get(&index).filter(|_| renamed) {
            self.entries[id as usize].name = Arc::from(info.label());
        }
        index
    }

    /// The entry of a thread's root frame (`--threads`): one per thread, not interned by its
    /// text, so that it can follow the thread's name.
    fn thread_root_id(&mut self, thread: u32) -> u32 {
        if let Some(&id) = self.thread_root_ids.get(&thread) {
            return id;
        }
        let id = self.entries.len() as u32;
        let label = self.threads[thread as usize].label();
        self.entries
            .push(Entry::synthetic(EntryKind::Thread, label));
        self.thread_root_ids.insert(thread, id);
        id
    }

    /// The entry id of a frame, building its entry only the first time its function is seen.
    fn frame_id(&mut self, frame: &Frame) -> u32 {
        if frame.kind != FrameKind::Python {
            // Markers are made afresh for each sample: they have no lasting address.
            return self.intern(Entry::synthetic(EntryKind::Marker, frame.name.to_string()));
        }
        let line = self.style.line_of(frame);
        let key = (Arc::as_ptr(&frame.code) as usize, line);
        if let Some(id) = self.seen.get(&key) {
            return *id;
        }
        let id = self.intern(Entry {
            kind: EntryKind::Python,
            name: frame.name.clone(),
            file: frame.display_file().clone(),
            line,
            first_line: frame.first_line,
        });
        if self.seen.len() >= MAX_SEEN {
            self.seen.clear();
            self.held.clear();
            // Their addresses are no longer held.
            self.last.clear();
            self.clears += 1;
        }
        self.seen.insert(key, id);
        self.held.push(frame.code.clone());
        id
    }

    fn intern(&mut self, entry: Entry) -> u32 {
        if let Some(id) = self.entry_ids.get(&entry) {
            return *id;
        }
        let id = self.entries.len() as u32;
        self.entries.push(entry.clone());
        self.entry_ids.insert(entry, id);
        id
    }

    /// Every distinct frame; stacks hold indexes into this.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// For each entry, its function's number: entries that differ only in the line shown are
    /// one function, (kind, name, file, first line). Functions are numbered from 0 in the order
    /// of their first entry, so a number equal to the count so far is a function's first entry.
    pub fn functions(&self) -> Vec<u32> {
        let mut ids: FxHashMap<(EntryKind, &str, &str, u32), u32> = FxHashMap::default();
        self.entries
            .iter()
            .map(|e| {
                let next = ids.len() as u32;
                *ids.entry((e.kind, &e.name, &e.file, e.first_line))
                    .or_insert(next)
            })
            .collect()
    }

    /// Every thread that had a Python stack, in the order first seen.
    pub fn threads(&self) -> &[ThreadInfo] {
        &self.threads
    }

    /// Every distinct stack of every thread, with its count, in the order first seen (the
    /// order [`Change::stack`] counts in).
    pub fn stacks(&self) -> Vec<StackRef<'_>> {
        let mut stacks = vec![
            StackRef {
                thread: 0,
                frames: &[],
                count: 0
            };
            self.counts.len()
        ];
        for (key, &index) in &self.stack_ids {
            stacks[index as usize] = StackRef {
                thread: key[0],
                frames: &key[1..],
                count: self.counts[index as usize],
            };
        }
        stacks
    }

    /// Per thread (in [`Profile::threads`]' order), when its stack changed; `None` unless the
    /// profile was made [`with_timeline`](Profile::with_timeline).
    pub fn timeline(&self) -> Option<&[Vec<Change>]> {
        self.timeline.as_ref().map(|t| t.changes.as_slice())
    }

    /// The time of the last sample, when the profile keeps a timeline.
    pub fn timeline_end(&self) -> Option<Duration> {
        self.timeline.as_ref().map(|t| t.end)
    }

    /// Thread stacks counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

impl Timeline {
    fn record(&mut self, thread: u32, stack: Option<u32>, at: Duration) {
        let index = thread as usize;
        if stack.is_some() {
            self.last_seen[index] = self.samples;
        }
        let changes = &mut self.changes[index];
        let last = changes.last().map(|c| c.stack);
        if last != Some(stack) && !(last.is_none() && stack.is_none()) {
            changes.push(Change { at, stack });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::collapsed::tests::{frame, sample};

    #[test]
    fn stacks_are_kept_per_thread_root_first() {
        let mut profile = Profile::new(FrameStyle::Line);
        let inner = frame("work", "app.py", 3, 1);
        let outer = frame("<module>", "app.py", 9, 1);
        let two = sample(vec![
            vec![inner.clone(), outer.clone()],
            vec![outer.clone()],
        ]);
        profile.add_sample(&two, Duration::ZERO);
        profile.add_sample(&two, Duration::from_millis(10));
        assert_eq!(profile.total(), 4);
        assert_eq!(profile.threads().len(), 2);
        let stacks = profile.stacks();
        assert_eq!(stacks.len(), 2);
        let names = |s: &StackRef| -> Vec<String> {
            s.frames
                .iter()
                .map(|i| profile.entries()[*i as usize].text())
                .collect()
        };
        assert_eq!(
            names(&stacks[0]),
            ["<module> (app.py:9)", "work (app.py:3)"]
        );
        assert_eq!((stacks[0].thread, stacks[0].count), (0, 2));
        assert_eq!(names(&stacks[1]), ["<module> (app.py:9)"]);
        assert_eq!((stacks[1].thread, stacks[1].count), (1, 2));
        let work = &profile.entries()[stacks[0].frames[1] as usize];
        assert_eq!(
            (work.kind, &*work.file, work.line, work.first_line),
            (EntryKind::Python, "app.py", 3, 1)
        );
    }

    #[test]
    fn a_stack_seen_again_counts_for_itself_and_a_changed_one_does_not() {
        let mut profile = Profile::new(FrameStyle::Line);
        let inner = frame("work", "app.py", 3, 1);
        let outer = frame("<module>", "app.py", 9, 1);
        let moved = Frame {
            line: 4,
            ..inner.clone()
        };
        let texts = |profile: &Profile| -> Vec<(String, u64)> {
            profile
                .stacks()
                .iter()
                .map(|s| {
                    let names: Vec<String> = s
                        .frames
                        .iter()
                        .map(|i| profile.entries()[*i as usize].text())
                        .collect();
                    (names.join(";"), s.count)
                })
                .collect()
        };
        let at = Duration::ZERO;
        let first = sample(vec![vec![inner.clone(), outer.clone()]]);
        profile.add_sample(&first, at);
        profile.add_sample(&first, at);
        // The same function at another line, on the same thread: a stack of its own.
        profile.add_sample(&sample(vec![vec![moved, outer.clone()]]), at);
        profile.add_sample(&first, at);
        // The same function and line made afresh (another shared part): the same stack.
        let again = frame("work", "app.py", 3, 1);
        profile.add_sample(&sample(vec![vec![again, outer.clone()]]), at);
        // A marker is made afresh every time, and stands for the same entry.
        let capped = || sample(vec![vec![Frame::truncated(1), outer.clone()]]);
        profile.add_sample(&capped(), at);
        profile.add_sample(&capped(), at);
        // Another thread with the first one's frames.
        profile.add_sample(&sample(vec![vec![], vec![inner, outer]]), at);
        assert_eq!(
            texts(&profile),
            [
                ("<module> (app.py:9);work (app.py:3)".to_string(), 4),
                ("<module> (app.py:9);work (app.py:4)".to_string(), 1),
                (
                    "<module> (app.py:9);[stack truncated at 1 frames]".to_string(),
                    2
                ),
                ("<module> (app.py:9);work (app.py:3)".to_string(), 1),
            ]
        );
        assert_eq!(profile.stacks()[3].thread, 1);
        assert_eq!(profile.total(), 8);
    }

    #[test]
    fn the_timeline_keeps_changes_only() {
        let mut profile = Profile::new(FrameStyle::Line).with_timeline(true);
        let a = frame("a", "app.py", 3, 1);
        let b = frame("b", "app.py", 7, 6);
        let ms = Duration::from_millis;
        profile.add_sample(&sample(vec![vec![a.clone()], vec![b.clone()]]), ms(0));
        profile.add_sample(&sample(vec![vec![a.clone()], vec![b.clone()]]), ms(10));
        profile.add_sample(&sample(vec![vec![b.clone()], vec![]]), ms(20));
        profile.add_sample(&sample(vec![vec![b.clone()], vec![]]), ms(30));
        profile.add_sample(&sample(vec![vec![], vec![a.clone()]]), ms(40));
        let timeline = profile.timeline().unwrap();
        let change = |at: u64, stack: Option<u32>| Change { at: ms(at), stack };
        // Stacks in first-seen order: [a] of thread 0 is 0, [b] of thread 1 is 1, [b] of
        // thread 0 is 2, [a] of thread 1 is 3.
        assert_eq!(
            timeline[0],
            [change(0, Some(0)), change(20, Some(2)), change(40, None)]
        );
        assert_eq!(
            timeline[1],
            [change(0, Some(1)), change(20, None), change(40, Some(3))]
        );
        assert_eq!(profile.timeline_end(), Some(ms(40)));
    }

    #[test]
    fn a_thread_root_takes_the_name_learnt_later() {
        let mut profile = Profile::new(FrameStyle::Line).with_thread_roots(true);
        let mut s = sample(vec![vec![frame("f", "a.py", 3, 1)]]);
        s.threads[0].os_thread_id = Some(9);
        profile.add_sample(&s, Duration::ZERO);
        s.threads[0].frames = vec![frame("g", "a.py", 7, 6)];
        s.threads[0].name = Some(Arc::from("worker"));
        profile.add_sample(&s, Duration::ZERO);
        let roots: Vec<String> = profile
            .stacks()
            .iter()
            .map(|st| profile.entries()[st.frames[0] as usize].text())
            .collect();
        assert_eq!(roots, ["thread 9 \"worker\"", "thread 9 \"worker\""]);
    }

    #[test]
    fn roots_are_frames_of_their_own() {
        let mut profile = Profile::new(FrameStyle::NoLine).with_thread_roots(true);
        let mut s = sample(vec![vec![frame("f", "a.py", 3, 1)]]);
        s.command_line = Some(Arc::from("python3 a.py"));
        s.threads[0].os_thread_id = Some(42);
        s.threads[0].name = Some(Arc::from("MainThread"));
        profile.add_sample(&s, Duration::ZERO);
        let stacks = profile.stacks();
        let entries: Vec<&Entry> = stacks[0]
            .frames
            .iter()
            .map(|i| &profile.entries()[*i as usize])
            .collect();
        assert_eq!(entries[0].kind, EntryKind::Process);
        assert_eq!(&*entries[0].name, "process 1 \"python3 a.py\"");
        assert_eq!(entries[1].kind, EntryKind::Thread);
        assert_eq!(&*entries[1].name, "thread 42 \"MainThread\"");
        assert_eq!(entries[2].text(), "f (a.py)");
        assert_eq!(profile.threads()[0].label(), "thread 42 \"MainThread\"");
    }
}
