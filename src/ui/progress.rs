//! The progress line on stderr while recording: samples, errors, elapsed time. Drawn only when
//! stderr is a terminal (indicatif hides itself otherwise).

use std::cell::Cell;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sampling::Stats;

/// A spinner with the running counts.
pub struct Progress {
    bar: ProgressBar,
    /// The sampling time the counts were last shown at.
    shown: Cell<Option<Duration>>,
}

/// How often the counts are put in the line: the line is drawn 4 times a second, and making
/// its message at every tick would cost a fast sampler more than the sample.
const SHOW_EVERY: Duration = Duration::from_millis(100);

impl Progress {
    /// Starts the line on stderr.
    pub fn new() -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template("{spinner} sampling: {msg}").expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress {
            bar,
            shown: Cell::new(None),
        }
    }

    /// Shows the latest counts.
    pub fn update(&self, stats: &Stats) {
        if self
            .shown
            .get()
            .is_some_and(|at| stats.elapsed < at + SHOW_EVERY)
        {
            return;
        }
        self.shown.set(Some(stats.elapsed));
        self.bar.set_message(format!(
            "{} samples, {} errors, {:.1} s",
            stats.samples,
            stats.errors,
            stats.elapsed.as_secs_f64()
        ));
    }

    /// Prints a line above the progress line (or plainly when there is no terminal).
    pub fn println(&self, message: &str) {
        self.bar.suspend(|| eprintln!("{message}"));
    }

    /// Removes the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}
