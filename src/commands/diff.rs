//! `sampler diff`: compare two collapsed-stack profiles.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{DiffConfig, DiffFormat};
use crate::error::Error;
use crate::output::diff::{self, Collapsed};
use crate::output::{write_atomically, write_stdout};

/// Runs `diff`.
pub fn run(config: &DiffConfig) -> anyhow::Result<()> {
    let before = Collapsed::read(&config.before)?;
    let after = Collapsed::read(&config.after)?;
    let output = match (config.format, &config.output) {
        (_, Some(path)) if path.as_os_str() != "-" => Some(path.clone()),
        (DiffFormat::Flamegraph, None) => Some(PathBuf::from("diff.svg")),
        _ => None,
    };
    let write = |out: &mut dyn Write| -> crate::error::Result<()> {
        match config.format {
            DiffFormat::Flamegraph => diff::flamegraph(
                &before,
                &after,
                &format!(
                    "{} → {}",
                    file_name(&config.before),
                    file_name(&config.after)
                ),
                out,
            ),
            DiffFormat::Summary => {
                let text = diff::summary(
                    (&config.before.display().to_string(), &before),
                    (&config.after.display().to_string(), &after),
                    config.top,
                );
                out.write_all(text.as_bytes())
                    .map_err(|e| Error::io("writing the summary", e))
            }
        }
    };
    match output {
        Some(path) => {
            write_atomically(&path, write)?;
            eprintln!("sampler: wrote the comparison to {}", path.display());
        }
        None => write_stdout(write)?,
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
