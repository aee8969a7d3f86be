//! The function table of `sampler top` (and of any text summary): for every function, or every
//! line, how many thread-samples had it as the innermost frame ("own") and how many had it
//! anywhere on the stack ("total", counted once per thread-sample however deep it recurses).
//! Also the header's tallies: samples, how many held the GIL, how many threads were active.
//!
//! Pure counting over [`Sample`]s: no terminal, no clock. Both groupings are kept up to date
//! on every sample, because a function's total cannot be derived from its lines' totals (a
//! recursive function may be on the stack at two lines at once), so switching between them is
//! instant and exact.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::model::{Frame, FrameKind, Sample};

/// What one row of the table stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grouping {
    /// One row per executing line: `function (file:line)`.
    #[default]
    Line,
    /// One row per function: `function (file:first_line)`.
    Function,
}

impl Grouping {
    /// The other grouping.
    pub fn toggled(self) -> Grouping {
        match self {
            Grouping::Line => Grouping::Function,
            Grouping::Function => Grouping::Line,
        }
    }
}

/// The column the rows are sorted by, largest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Share of thread-samples in which the row was the innermost frame.
    #[default]
    OwnShare,
    /// Share of thread-samples in which the row was on the stack.
    TotalShare,
    /// Time as the innermost frame.
    OwnTime,
    /// Time on the stack.
    TotalTime,
}

impl SortBy {
    /// Every column, in the order the table shows them.
    pub const ALL: [SortBy; 4] = [
        SortBy::OwnShare,
        SortBy::TotalShare,
        SortBy::OwnTime,
        SortBy::TotalTime,
    ];

    /// The column's title.
    pub fn title(self) -> &'static str {
        match self {
            SortBy::OwnShare => "%Own",
            SortBy::TotalShare => "%Total",
            SortBy::OwnTime => "OwnTime",
            SortBy::TotalTime => "TotalTime",
        }
    }

    /// True for the columns that count samples as the innermost frame.
    fn by_own(self) -> bool {
        matches!(self, SortBy::OwnShare | SortBy::OwnTime)
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The function's (qualified) name.
    pub name: Arc<str>,
    /// The file name as the frames show it (package-relative unless `--full-filenames`).
    pub file: Arc<str>,
    /// The executing line ([`Grouping::Line`]) or the function's first line
    /// ([`Grouping::Function`]); 0 when unknown.
    pub line: u32,
    /// Thread-samples in which this was the innermost frame.
    pub own: u64,
    /// Thread-samples in which this was anywhere on the stack.
    pub total: u64,
}

impl Row {
    /// `function (file:line)`, `function (file)` without a line, or the bare text of a marker
    /// frame (`[stack truncated at 4096 frames]`).
    pub fn label(&self) -> String {
        match (self.file.is_empty(), self.line) {
            (true, _) => self.name.to_string(),
            (false, 0) => format!("{} ({})", self.name, self.file),
            (false, line) => format!("{} ({}:{line})", self.name, self.file),
        }
    }
}

/// The tallies behind the header, since the last reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Samples counted (one per process and tick).
    pub samples: u64,
    /// Samples in which one of the kept threads held the GIL.
    pub gil_samples: u64,
    /// Thread-samples counted: every kept thread of every sample. Shares are relative to it.
    pub thread_samples: u64,
    /// Thread-samples whose thread was active (running, or holding the GIL).
    pub active_thread_samples: u64,
}

/// A row's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    name: Arc<str>,
    file: Arc<str>,
    line: u32,
}

#[derive(Debug, Clone)]
struct Entry {
    own: u64,
    total: u64,
    /// The thread-sample that last counted towards `total`, so recursion counts once.
    last_counted: u64,
}

/// One grouping's rows.
#[derive(Debug, Default)]
struct Table {
    entries: HashMap<Key, Entry>,
}

impl Table {
    /// Counts one thread's stack (innermost first) as thread-sample number `stamp`.
    fn add_stack(&mut self, frames: &[Frame], grouping: Grouping, stamp: u64) {
        for (depth, frame) in frames.iter().enumerate() {
            let entry = self.entries.entry(key(frame, grouping)).or_insert(Entry {
                own: 0,
                total: 0,
                last_counted: 0,
            });
            if depth == 0 {
                entry.own += 1;
            }
            if entry.last_counted != stamp {
                entry.last_counted = stamp;
                entry.total += 1;
            }
        }
    }
}

fn key(frame: &Frame, grouping: Grouping) -> Key {
    let file: Arc<str> = frame
        .short_filename
        .clone()
        .unwrap_or_else(|| frame.filename.clone());
    let line = match (frame.kind, grouping) {
        (FrameKind::Truncated, _) => 0,
        (FrameKind::Python, Grouping::Line) => frame.line,
        (FrameKind::Python, Grouping::Function) => frame.first_line,
    };
    Key {
        name: frame.name.clone(),
        file,
        line,
    }
}

/// Own and total counts per line and per function, built sample by sample.
#[derive(Debug, Default)]
pub struct FunctionStats {
    by_line: Table,
    by_function: Table,
    totals: Totals,
    /// Numbers the thread-samples (from 1) for the once-per-thread-sample rule.
    stamp: u64,
    /// How many threads each process had in its latest sample.
    threads: BTreeMap<u32, usize>,
}

impl FunctionStats {
    /// An empty table.
    pub fn new() -> FunctionStats {
        FunctionStats::default()
    }

    /// Counts every kept thread of one sample.
    pub fn add_sample(&mut self, sample: &Sample) {
        self.totals.samples += 1;
        if sample.threads.iter().any(|t| t.holds_gil) {
            self.totals.gil_samples += 1;
        }
        self.threads.insert(sample.pid, sample.threads.len());
        for thread in &sample.threads {
            self.totals.thread_samples += 1;
            if thread.active {
                self.totals.active_thread_samples += 1;
            }
            self.stamp += 1;
            self.by_line
                .add_stack(&thread.frames, Grouping::Line, self.stamp);
            self.by_function
                .add_stack(&thread.frames, Grouping::Function, self.stamp);
        }
    }

    /// Forgets every count, as if no sample had been seen. The processes' thread counts are
    /// kept: they describe the present, not the period.
    pub fn reset(&mut self) {
        self.by_line = Table::default();
        self.by_function = Table::default();
        self.totals = Totals::default();
    }

    /// Forgets a process that has exited, so it no longer counts in [`FunctionStats::processes`]
    /// and [`FunctionStats::threads`].
    pub fn remove_process(&mut self, pid: u32) {
        self.threads.remove(&pid);
    }

    /// The tallies since the last reset.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Threads in the latest sample of every process (kept threads only: idle ones count with
    /// `--idle`).
    pub fn threads(&self) -> usize {
        self.threads.values().sum()
    }

    /// Processes that have been sampled and not removed.
    pub fn processes(&self) -> usize {
        self.threads.len()
    }

    /// `count` as a percentage of the thread-samples counted (0 when there are none).
    pub fn share(&self, count: u64) -> f64 {
        percent(count, self.totals.thread_samples)
    }

    /// Every row in `grouping`, largest first by `sort`; ties go to the larger other count
    /// (total for the own columns, own for the total ones), then by name, file and line, so
    /// the order is stable from one refresh to the next.
    pub fn rows(&self, grouping: Grouping, sort: SortBy) -> Vec<Row> {
        let table = match grouping {
            Grouping::Line => &self.by_line,
            Grouping::Function => &self.by_function,
        };
        let mut rows: Vec<Row> = table
            .entries
            .iter()
            .map(|(key, entry)| Row {
                name: key.name.clone(),
                file: key.file.clone(),
                line: key.line,
                own: entry.own,
                total: entry.total,
            })
            .collect();
        let by_own = sort.by_own();
        rows.sort_by(|a, b| {
            let rank = |r: &Row| {
                if by_own {
                    (Reverse(r.own), Reverse(r.total))
                } else {
                    (Reverse(r.total), Reverse(r.own))
                }
            };
            rank(a)
                .cmp(&rank(b))
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.file.cmp(&b.file))
                .then_with(|| a.line.cmp(&b.line))
        });
        rows
    }
}

/// `part` as a percentage of `whole`, 0 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ThreadSample;

    fn frame(name: &str, line: u32, first_line: u32) -> Frame {
        Frame::python(name, "/src/app.py", Some("app.py"), line, first_line)
    }

    fn thread(frames: Vec<Frame>, active: bool, holds_gil: bool) -> ThreadSample {
        ThreadSample {
            thread_id: 1,
            os_thread_id: None,
            active,
            holds_gil,
            name: None,
            frames,
            locals: Vec::new(),
        }
    }

    fn sample(pid: u32, threads: Vec<ThreadSample>) -> Sample {
        Sample {
            pid,
            command_line: None,
            threads,
        }
    }

    /// One busy thread whose stack is `frames`.
    fn one(frames: Vec<Frame>) -> Sample {
        sample(1, vec![thread(frames, true, true)])
    }

    /// `label own total` for every row.
    fn table(stats: &FunctionStats, grouping: Grouping, sort: SortBy) -> Vec<String> {
        stats
            .rows(grouping, sort)
            .iter()
            .map(|r| format!("{} {} {}", r.label(), r.own, r.total))
            .collect()
    }

    #[test]
    fn own_is_the_innermost_frame_and_total_any_frame() {
        let mut stats = FunctionStats::new();
        let main = frame("main", 20, 18);
        for _ in 0..3 {
            stats.add_sample(&one(vec![frame("work", 5, 3), main.clone()]));
        }
        stats.add_sample(&one(vec![main.clone()]));
        assert_eq!(
            table(&stats, Grouping::Line, SortBy::OwnShare),
            vec!["work (app.py:5) 3 3", "main (app.py:20) 1 4"]
        );
        assert_eq!(stats.totals().thread_samples, 4);
        assert_eq!(stats.share(3), 75.0);
    }

    #[test]
    fn recursion_counts_once_per_thread_sample() {
        let mut stats = FunctionStats::new();
        // f calls itself from line 7 three times and spins on line 9.
        let stack = vec![
            frame("f", 9, 6),
            frame("f", 7, 6),
            frame("f", 7, 6),
            frame("f", 7, 6),
        ];
        stats.add_sample(&one(stack.clone()));
        stats.add_sample(&one(stack));
        assert_eq!(
            table(&stats, Grouping::Line, SortBy::TotalShare),
            vec!["f (app.py:9) 2 2", "f (app.py:7) 0 2"]
        );
        assert_eq!(
            table(&stats, Grouping::Function, SortBy::TotalShare),
            vec!["f (app.py:6) 2 2"]
        );
        // Two threads with the same stack are two thread-samples.
        let mut stats = FunctionStats::new();
        let t = || thread(vec![frame("f", 9, 6), frame("f", 7, 6)], true, false);
        stats.add_sample(&sample(1, vec![t(), t()]));
        assert_eq!(
            table(&stats, Grouping::Function, SortBy::OwnShare),
            vec!["f (app.py:6) 2 2"]
        );
    }

    #[test]
    fn every_column_sorts_largest_first_with_stable_ties() {
        let mut stats = FunctionStats::new();
        let outer = frame("outer", 30, 29);
        for _ in 0..2 {
            stats.add_sample(&one(vec![frame("hot", 3, 1), outer.clone()]));
        }
        stats.add_sample(&one(vec![frame("cold", 13, 11), outer.clone()]));
        stats.add_sample(&one(vec![outer.clone()]));
        stats.add_sample(&one(vec![frame("lone", 40, 40)]));
        let own = vec![
            "hot (app.py:3) 2 2",
            "outer (app.py:30) 1 4",
            "cold (app.py:13) 1 1",
            "lone (app.py:40) 1 1",
        ];
        let total = vec![
            "outer (app.py:30) 1 4",
            "hot (app.py:3) 2 2",
            "cold (app.py:13) 1 1",
            "lone (app.py:40) 1 1",
        ];
        for sort in SortBy::ALL {
            let want = if sort.by_own() { &own } else { &total };
            assert_eq!(&table(&stats, Grouping::Line, sort), want, "{sort:?}");
        }
    }

    #[test]
    fn grouping_by_function_merges_lines_and_keeps_functions_apart() {
        let mut stats = FunctionStats::new();
        stats.add_sample(&one(vec![frame("f", 3, 1)]));
        stats.add_sample(&one(vec![frame("f", 4, 1)]));
        stats.add_sample(&one(vec![frame("f", 4, 1)]));
        // Another function of the same name in the same file.
        stats.add_sample(&one(vec![frame("f", 12, 10)]));
        assert_eq!(
            table(&stats, Grouping::Line, SortBy::OwnTime),
            vec!["f (app.py:4) 2 2", "f (app.py:3) 1 1", "f (app.py:12) 1 1"]
        );
        assert_eq!(
            table(&stats, Grouping::Function, SortBy::OwnTime),
            vec!["f (app.py:1) 3 3", "f (app.py:10) 1 1"]
        );
        assert_eq!(Grouping::Line.toggled(), Grouping::Function);
        assert_eq!(Grouping::Function.toggled(), Grouping::Line);
    }

    #[test]
    fn header_tallies_gil_activity_threads_and_processes() {
        let mut stats = FunctionStats::new();
        let busy = || thread(vec![frame("work", 5, 3)], true, true);
        let idle = || thread(vec![frame("wait", 9, 8)], false, false);
        stats.add_sample(&sample(10, vec![busy(), idle()]));
        stats.add_sample(&sample(10, vec![idle()]));
        stats.add_sample(&sample(11, vec![busy(), idle(), idle()]));
        let totals = stats.totals();
        assert_eq!(totals.samples, 3);
        assert_eq!(totals.gil_samples, 2);
        assert_eq!(totals.thread_samples, 6);
        assert_eq!(totals.active_thread_samples, 2);
        // The latest sample of each process: 1 thread in 10, 3 in 11.
        assert_eq!((stats.threads(), stats.processes()), (4, 2));
        stats.remove_process(11);
        assert_eq!((stats.threads(), stats.processes()), (1, 1));
    }

    #[test]
    fn reset_forgets_counts_but_not_the_processes() {
        let mut stats = FunctionStats::new();
        stats.add_sample(&one(vec![frame("work", 5, 3)]));
        stats.reset();
        assert_eq!(stats.totals(), Totals::default());
        assert!(stats.rows(Grouping::Line, SortBy::OwnShare).is_empty());
        assert!(stats.rows(Grouping::Function, SortBy::OwnShare).is_empty());
        assert_eq!(stats.processes(), 1);
        assert_eq!(stats.share(1), 0.0);
        // Counting starts afresh, including the once-per-thread-sample rule.
        stats.add_sample(&one(vec![frame("work", 5, 3), frame("work", 5, 3)]));
        assert_eq!(
            table(&stats, Grouping::Line, SortBy::TotalTime),
            vec!["work (app.py:5) 1 1"]
        );
    }

    #[test]
    fn labels_of_rows_without_a_line_or_a_file() {
        let mut stats = FunctionStats::new();
        let lineless = Frame::python("<lambda>", "<string>", None, 0, 0);
        stats.add_sample(&one(vec![lineless, Frame::truncated(4096)]));
        assert_eq!(
            table(&stats, Grouping::Function, SortBy::TotalShare),
            vec![
                "<lambda> (<string>) 1 1",
                "[stack truncated at 4096 frames] 0 1"
            ]
        );
    }
}
