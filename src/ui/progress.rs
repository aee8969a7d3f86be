//! The progress line on stderr while recording: samples, errors, elapsed time. Drawn only when
//! stderr is a terminal (indicatif hides itself otherwise).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sampling::Stats;

/// A spinner with the running counts.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// Starts the line on stderr.
    pub fn new() -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template("{spinner} sampling: {msg}").expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar }
    }

    /// Shows the latest counts.
    pub fn update(&self, stats: &Stats) {
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
