//! Before/after comparisons of two collapsed-stack profiles (`record -f raw`), for checking an
//! optimisation: a differential flame graph, and a text table of the frames whose share of the
//! samples moved most.
//!
//! Both compare shares, not raw counts: the "before" counts are scaled to the "after" total, so
//! two recordings of different lengths compare fairly. In the flame graph the frames are as wide
//! as in the "after" profile, red where a frame's share grew and blue where it shrank (drawn by
//! inferno's differential mode).

use std::cmp::Reverse;
use std::io::Write;
use std::path::Path;

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::output::functions::percent;
use crate::output::summary::own_and_total;

/// A collapsed-stack profile read back: its stacks (root first) with counts.
#[derive(Debug, Clone, Default)]
pub struct Collapsed {
    /// `(frames, count)` per line.
    pub stacks: Vec<(Vec<String>, u64)>,
}

impl Collapsed {
    /// Parses collapsed stacks (`a;b;c 12` per line; blank lines are skipped). `name` is used
    /// in error messages.
    pub fn parse(text: &str, name: &str) -> Result<Collapsed> {
        let mut stacks = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            let parsed = line
                .rsplit_once(' ')
                .and_then(|(stack, count)| Some((stack, count.parse::<u64>().ok()?)))
                .filter(|(stack, _)| !stack.is_empty());
            let Some((stack, count)) = parsed else {
                return Err(Error::NotCollapsed(format!(
                    "{name}:{}: not a collapsed stack (`frame;frame;… COUNT`)",
                    number + 1
                )));
            };
            stacks.push((stack.split(';').map(str::to_string).collect(), count));
        }
        Ok(Collapsed { stacks })
    }

    /// Reads and parses a file.
    pub fn read(path: &Path) -> Result<Collapsed> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        Collapsed::parse(&text, &path.display().to_string())
    }

    /// Thread stacks counted.
    pub fn total(&self) -> u64 {
        self.stacks.iter().map(|(_, c)| c).sum()
    }

    /// Per frame text: (own, total) counts, total counted once per stack.
    fn by_frame(&self) -> FxHashMap<&str, (u64, u64)> {
        own_and_total(
            self.stacks
                .iter()
                .map(|(frames, count)| (frames.iter().map(String::as_str), *count)),
        )
    }

    /// The lines, as `record -f raw` writes them.
    fn lines(&self) -> String {
        let mut text = String::new();
        for (frames, count) in &self.stacks {
            text.push_str(&frames.join(";"));
            text.push_str(&format!(" {count}\n"));
        }
        text
    }
}

/// One frame's shares (in percent of each profile's thread stacks).
#[derive(Debug, Clone, PartialEq)]
pub struct Mover {
    /// `function (file:line)`.
    pub frame: String,
    /// Own share before and after.
    pub own: (f64, f64),
    /// Total share before and after.
    pub total: (f64, f64),
}

impl Mover {
    /// After minus before, own.
    pub fn own_change(&self) -> f64 {
        self.own.1 - self.own.0
    }

    /// After minus before, total.
    pub fn total_change(&self) -> f64 {
        self.total.1 - self.total.0
    }
}

/// Every frame of either profile, the largest change (of own or total share) first, then by
/// the other change, then by name.
pub fn movers(before: &Collapsed, after: &Collapsed) -> Vec<Mover> {
    let (b, a) = (before.by_frame(), after.by_frame());
    let (bt, at) = (before.total(), after.total());
    let mut frames: Vec<&str> = b.keys().chain(a.keys()).copied().collect();
    frames.sort_unstable();
    frames.dedup();
    let mut movers: Vec<Mover> = frames
        .into_iter()
        .map(|frame| {
            let (bo, btot) = b.get(frame).copied().unwrap_or_default();
            let (ao, atot) = a.get(frame).copied().unwrap_or_default();
            Mover {
                frame: frame.to_string(),
                own: (percent(bo, bt), percent(ao, at)),
                total: (percent(btot, bt), percent(atot, at)),
            }
        })
        .collect();
    // The larger of the two changes first (a leaf shared by many callers moves in its own
    // share little, while the callers' totals show where the time went), then the other.
    // Hundredths of a percent are as fine as the table shows.
    let key = |m: &Mover| {
        let (own, total) = (m.own_change().abs(), m.total_change().abs());
        (
            Reverse((own.max(total) * 100.0).round() as i64),
            Reverse((own.min(total) * 100.0).round() as i64),
        )
    };
    movers.sort_by(|x, y| key(x).cmp(&key(y)).then_with(|| x.frame.cmp(&y.frame)));
    movers
}

/// The top `top` movers as a table, with a header naming both profiles.
pub fn summary(before: (&str, &Collapsed), after: (&str, &Collapsed), top: usize) -> String {
    let mut text = format!(
        "before: {} ({} thread stacks)\nafter:  {} ({} thread stacks)\nshares of each \
         profile's samples, in percent; largest change first\n\n",
        before.0,
        before.1.total(),
        after.0,
        after.1.total()
    );
    let movers = movers(before.1, after.1);
    text.push_str(&format!("{:>7} {:>26}\n", "own", "total"));
    text.push_str(&format!(
        "{:>7} {:>7} {:>8}  {:>7} {:>7} {:>8}  {}\n",
        "before", "after", "change", "before", "after", "change", "function (file:line)"
    ));
    let moved: Vec<&Mover> = movers
        .iter()
        .filter(|m| m.own_change().abs() >= 0.005 || m.total_change().abs() >= 0.005)
        .collect();
    for m in moved.iter().take(top) {
        text.push_str(&format!(
            "{:>6.2}% {:>6.2}% {:>+7.2}%  {:>6.2}% {:>6.2}% {:>+7.2}%  {}\n",
            m.own.0,
            m.own.1,
            m.own_change(),
            m.total.0,
            m.total.1,
            m.total_change(),
            m.frame
        ));
    }
    if moved.is_empty() {
        text.push_str("no frame's share changed\n");
    } else if moved.len() > top {
        text.push_str(&format!(
            "… {} more (--top N shows more)\n",
            moved.len() - top
        ));
    }
    text
}

/// A differential flame graph of `after` against `before`, titled `title`.
pub fn flamegraph(
    before: &Collapsed,
    after: &Collapsed,
    title: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let failed = |e: std::io::Error| Error::io("drawing the differential flame graph", e);
    if before.stacks.is_empty() || after.stacks.is_empty() {
        return Err(Error::NotCollapsed(format!(
            "the {} profile has no stacks: nothing to compare",
            if before.stacks.is_empty() {
                "before"
            } else {
                "after"
            }
        )));
    }
    let mut folded = Vec::new();
    inferno::differential::from_readers(
        inferno::differential::Options {
            normalize: true,
            strip_hex: false,
        },
        before.lines().as_bytes(),
        after.lines().as_bytes(),
        &mut folded,
    )
    .map_err(failed)?;
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.subtitle = Some("red: share grew, blue: share shrank (widths: after)".to_string());
    options.count_name = "samples".to_string();
    inferno::flamegraph::from_reader(&mut options, folded.as_slice(), out)
        .map_err(|e| failed(std::io::Error::other(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(text: &str) -> Collapsed {
        Collapsed::parse(text, "test").unwrap()
    }

    #[test]
    fn parse_rejects_lines_without_a_count() {
        let err = Collapsed::parse("a;b 3\n\na;c x\n", "before.txt").unwrap_err();
        assert!(err.to_string().contains("before.txt:3:"), "{err}");
        assert!(Collapsed::parse(" 3\n", "x").is_err());
        assert_eq!(profile("a;b 3\na 1\n").total(), 4);
    }

    #[test]
    fn movers_compare_shares_largest_change_first() {
        // Before: slow 75%, fast 25%. After (twice as many samples): slow 25%, fast 75%.
        let before = profile("main;slow 3\nmain;fast 1\n");
        let after = profile("main;slow 2\nmain;fast 6\n");
        let m = movers(&before, &after);
        assert_eq!(m[0].frame, "fast");
        assert_eq!(m[0].own, (25.0, 75.0));
        assert_eq!(m[1].frame, "slow");
        assert_eq!(m[1].own_change(), -50.0);
        assert_eq!(m[2].frame, "main");
        assert_eq!(m[2].total, (100.0, 100.0));
        let text = summary(("b.txt", &before), ("a.txt", &after), 30);
        assert!(text.contains("before: b.txt (4 thread stacks)"), "{text}");
        assert!(
            text.contains(" 25.00%  75.00%  +50.00%   25.00%  75.00%  +50.00%  fast"),
            "{text}"
        );
        // `main` did not move: not listed.
        assert!(!text.contains("  main\n"), "{text}");
    }

    #[test]
    fn the_flame_graph_colours_growth_and_shrinkage() {
        let before = profile("main;slow 3\nmain;fast 1\n");
        let after = profile("main;slow 1\nmain;fast 3\n");
        let mut svg = Vec::new();
        flamegraph(&before, &after, "diff", &mut svg).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("<svg") && svg.contains("fast") && svg.contains("slow"));
        // inferno writes the change into each frame's tooltip.
        assert!(svg.contains("+50.00%") || svg.contains("+50%"), "{svg}");
        assert!(svg.contains("-50.00%") || svg.contains("-50%"));
        assert!(flamegraph(&Collapsed::default(), &after, "d", &mut Vec::new()).is_err());
    }
}
