//! SVG flame graphs, drawn by inferno from the collapsed stacks.

use std::io::Write;

use crate::error::{Error, Result};
use crate::output::{collapsed, Profile};

/// Writes an SVG flame graph titled `title`.
pub fn write(profile: &Profile, title: &str, out: &mut dyn Write) -> Result<()> {
    let lines = collapsed::lines(profile);
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.count_name = "samples".to_string();
    if lines.is_empty() {
        // inferno refuses empty input; an empty profile still gets a valid picture.
        options.subtitle = Some("no samples were collected".to_string());
        let placeholder = ["no samples 1".to_string()];
        return inferno::flamegraph::from_lines(
            &mut options,
            placeholder.iter().map(|s| s.as_str()),
            out,
        )
        .map_err(|e| {
            Error::io(
                "drawing the flame graph",
                std::io::Error::other(e.to_string()),
            )
        });
    }
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(|s| s.as_str()), out).map_err(
        |e| {
            Error::io(
                "drawing the flame graph",
                std::io::Error::other(e.to_string()),
            )
        },
    )
}
