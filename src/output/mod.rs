//! Output formats. Every format is fed the same aggregated [`collapsed::StackCounts`]; the
//! [`Format`] enum owns each format's name and file extension. Files are written atomically
//! (a temporary file in the same folder, renamed into place). [`functions::FunctionStats`] is
//! the other aggregate: own and total counts per function, for `top`'s table.

pub mod collapsed;
pub mod flamegraph;
pub mod functions;

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

pub use collapsed::{FrameStyle, StackCounts};

/// The output formats of `record`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An interactive SVG flame graph.
    Flamegraph,
    /// Collapsed stacks (`a;b;c 12`), the format flame-graph tools read.
    Raw,
}

impl Format {
    /// Every format, for help texts.
    pub const ALL: &'static [Format] = &[Format::Flamegraph, Format::Raw];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Flamegraph => "flamegraph",
            Format::Raw => "raw",
        }
    }

    /// The file extension for default output names.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Flamegraph => "svg",
            Format::Raw => "txt",
        }
    }

    /// Writes `counts` in this format to `out`.
    pub fn write(self, counts: &StackCounts, title: &str, out: &mut dyn Write) -> Result<()> {
        match self {
            Format::Flamegraph => flamegraph::write(counts, title, out),
            Format::Raw => counts
                .write_collapsed(out)
                .map_err(|e| Error::io("writing collapsed stacks", e)),
        }
    }
}

/// Writes a file so that readers see either the old file or the complete new one.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let context = |what: &str| format!("{what} {}", path.display());
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Error::io(context("cannot create a file beside"), e))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut w)?;
        w.flush().map_err(|e| Error::io(context("writing"), e))?;
    }
    tmp.persist(path)
        .map_err(|e| Error::io(context("cannot rename into"), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_atomically(&path, |w| {
            w.write_all(b"first").unwrap();
            Ok(())
        })
        .unwrap();
        let failed = write_atomically(&path, |w| {
            w.write_all(b"partial").unwrap();
            Err(Error::corrupt("boom"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn names_and_extensions_are_distinct() {
        for (i, a) in Format::ALL.iter().enumerate() {
            for b in &Format::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
                assert_ne!(a.extension(), b.extension());
            }
        }
    }
}
