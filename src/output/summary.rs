//! A plain-text report for terminals and CI logs, in the spirit of `pstats`' table: a header
//! (what was profiled, samples, duration, rate reached, errors), then the functions with the
//! most samples. "Own" counts the thread-samples in which a frame was the innermost; "total"
//! those in which it was anywhere on the stack, once per sample however deep it recursed.
//! Times are counts times the time one sample stands for. Rows follow the frame style: one
//! per line by default, one per function with `--function`.

use std::cmp::Reverse;
use std::io::Write;

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::output::functions::percent;
use crate::output::profile::Profile;
use crate::output::Recording;

/// One row: a frame's own and total thread-sample counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `function (file:line)`.
    pub label: String,
    /// Thread-samples with the frame innermost.
    pub own: u64,
    /// Thread-samples with the frame anywhere on the stack.
    pub total: u64,
}

/// Each frame's (own, total) counts over `stacks` (frames root first, with a count): own
/// where it is the innermost frame, total wherever it is on the stack, once per stack however
/// often it recurses. `sampler diff` counts its profiles the same way.
pub fn own_and_total<'a, F>(
    stacks: impl IntoIterator<Item = (F, u64)>,
) -> FxHashMap<&'a str, (u64, u64)>
where
    F: IntoIterator<Item = &'a str>,
{
    let mut counts: FxHashMap<&str, (u64, u64)> = FxHashMap::default();
    let mut seen: Vec<&str> = Vec::new();
    for (frames, count) in stacks {
        seen.clear();
        let mut leaf = None;
        for frame in frames {
            leaf = Some(frame);
            if !seen.contains(&frame) {
                seen.push(frame);
                counts.entry(frame).or_default().1 += count;
            }
        }
        if let Some(leaf) = leaf {
            counts.entry(leaf).or_default().0 += count;
        }
    }
    counts
}

/// Every frame's counts, busiest (by own, then total, then label) first.
pub fn rows(profile: &Profile) -> Vec<Row> {
    let labels: Vec<String> = profile.entries().iter().map(|e| e.text()).collect();
    let stacks = profile.stacks();
    let counts = own_and_total(stacks.iter().map(|stack| {
        let frames = stack.frames.iter().map(|id| labels[*id as usize].as_str());
        (frames, stack.count)
    }));
    let mut rows: Vec<Row> = counts
        .into_iter()
        .map(|(label, (own, total))| Row {
            label: label.to_string(),
            own,
            total,
        })
        .collect();
    rows.sort_by(|a, b| {
        (Reverse(a.own), Reverse(a.total), &a.label).cmp(&(
            Reverse(b.own),
            Reverse(b.total),
            &b.label,
        ))
    });
    rows
}

/// Writes the header and the top `recording.top` rows.
pub fn write(profile: &Profile, recording: &Recording, out: &mut dyn Write) -> Result<()> {
    let text = render(profile, recording);
    out.write_all(text.as_bytes())
        .map_err(|e| Error::io("writing the summary", e))
}

/// The report as text.
pub fn render(profile: &Profile, recording: &Recording) -> String {
    let interval = recording.interval().as_secs_f64();
    let whole = profile.total();
    let mut text = format!(
        "{}\n{} samples ({} thread stacks) in {:.2} s, {:.0} Hz reached of {} Hz asked, {} errors\n\n",
        recording.title,
        recording.ticks,
        whole,
        recording.duration.as_secs_f64(),
        recording.rate_reached(),
        recording.rate_hz,
        recording.errors,
    );
    let rows = rows(profile);
    if rows.is_empty() {
        text.push_str("no Python stacks were recorded\n");
        return text;
    }
    text.push_str(&format!(
        "{:>7} {:>7} {:>9} {:>9}  {}\n",
        "own%", "total%", "own s", "total s", "function (file:line)"
    ));
    for row in rows.iter().take(recording.top) {
        text.push_str(&format!(
            "{:>6.2}% {:>6.2}% {:>9.3} {:>9.3}  {}\n",
            percent(row.own, whole),
            percent(row.total, whole),
            row.own as f64 * interval,
            row.total as f64 * interval,
            row.label
        ));
    }
    if rows.len() > recording.top {
        text.push_str(&format!(
            "… {} more (--top N shows more)\n",
            rows.len() - recording.top
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::collapsed::tests::{frame, sample};
    use crate::output::FrameStyle;
    use std::time::Duration;

    #[test]
    fn a_recursive_leaf_is_own_once_and_total_once() {
        let counts = own_and_total([(vec!["a", "b", "a"], 2), (vec!["a"], 1)]);
        assert_eq!(counts["a"], (3, 3));
        assert_eq!(counts["b"], (0, 2));
    }

    #[test]
    fn own_is_the_leaf_and_total_counts_recursion_once() {
        let mut profile = Profile::new(FrameStyle::Function);
        let main = frame("main", "app.py", 20, 19);
        let rec = frame("rec", "app.py", 5, 4);
        let leaf = frame("leaf", "app.py", 11, 10);
        for _ in 0..3 {
            profile.add_sample(
                &sample(vec![vec![
                    leaf.clone(),
                    rec.clone(),
                    rec.clone(),
                    main.clone(),
                ]]),
                Duration::ZERO,
            );
        }
        profile.add_sample(&sample(vec![vec![main.clone()]]), Duration::ZERO);
        let row = |label: &str, own, total| Row {
            label: label.to_string(),
            own,
            total,
        };
        assert_eq!(
            rows(&profile),
            [
                row("leaf (app.py:10)", 3, 3),
                row("main (app.py:19)", 1, 4),
                row("rec (app.py:4)", 0, 3),
            ]
        );
        let mut recording = Recording::new("python3 app.py", 100.0, 4, Duration::from_millis(40));
        recording.top = 2;
        let text = render(&profile, &recording);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "python3 app.py");
        assert_eq!(
            lines[1],
            "4 samples (4 thread stacks) in 0.04 s, 100 Hz reached of 100 Hz asked, 0 errors"
        );
        assert!(lines[3].contains("own%") && lines[3].contains("function (file:line)"));
        assert_eq!(
            lines[4],
            " 75.00%  75.00%     0.030     0.030  leaf (app.py:10)"
        );
        assert_eq!(
            lines[5],
            " 25.00% 100.00%     0.010     0.040  main (app.py:19)"
        );
        assert_eq!(lines[6], "… 1 more (--top N shows more)");
    }
}
