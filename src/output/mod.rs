//! Output formats. Every format is written from the same aggregate, a [`Profile`] (stacks per
//! thread with counts, and optionally when each thread's stack changed), plus what the
//! [`Recording`] knows of the run. The [`Format`] enum owns each format's name and file
//! extension. Files are written atomically (a temporary file in the same folder, renamed into
//! place). [`functions::FunctionStats`] is the other aggregate: own and total counts per
//! function, for `top`'s table.

pub mod chrometrace;
pub mod collapsed;
pub mod diff;
pub mod flamegraph;
pub mod functions;
pub mod pprof;
pub mod profile;
pub mod pstats;
pub mod speedscope;
pub mod summary;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

pub use collapsed::FrameStyle;
pub use profile::Profile;

/// The output formats of `record`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An interactive SVG flame graph.
    Flamegraph,
    /// Collapsed stacks (`a;b;c 12`), the format flame-graph tools read.
    Raw,
    /// speedscope's JSON file format: one sampled profile per thread.
    Speedscope,
    /// The Trace Event Format (Perfetto, `chrome://tracing`): a timeline per thread.
    Chrometrace,
    /// pprof's gzipped `profile.proto` (`go tool pprof`, Pyroscope, Parca, Grafana).
    Pprof,
    /// cProfile's marshalled statistics (`pstats`, SnakeViz, gprof2dot).
    Pstats,
    /// A plain-text table of the functions with the most samples.
    Summary,
}

impl Format {
    /// Every format, for help texts.
    pub const ALL: &'static [Format] = &[
        Format::Flamegraph,
        Format::Raw,
        Format::Speedscope,
        Format::Chrometrace,
        Format::Pprof,
        Format::Pstats,
        Format::Summary,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Flamegraph => "flamegraph",
            Format::Raw => "raw",
            Format::Speedscope => "speedscope",
            Format::Chrometrace => "chrometrace",
            Format::Pprof => "pprof",
            Format::Pstats => "pstats",
            Format::Summary => "summary",
        }
    }

    /// The file extension for default output names.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Flamegraph => "svg",
            Format::Raw => "txt",
            Format::Speedscope => "speedscope.json",
            Format::Chrometrace => "trace.json",
            Format::Pprof => "pb.gz",
            Format::Pstats => "prof",
            Format::Summary => "summary.txt",
        }
    }

    /// True when the format draws a timeline, so the profile must keep one
    /// ([`Profile::with_timeline`]).
    pub fn needs_timeline(self) -> bool {
        self == Format::Chrometrace
    }

    /// Writes `profile` in this format to `out`.
    pub fn write(
        self,
        profile: &Profile,
        recording: &Recording,
        out: &mut dyn Write,
    ) -> Result<()> {
        match self {
            Format::Flamegraph => flamegraph::write(profile, &recording.title, out),
            Format::Raw => {
                collapsed::write(profile, out).map_err(|e| Error::io("writing collapsed stacks", e))
            }
            Format::Speedscope => speedscope::write(profile, recording, out),
            Format::Chrometrace => chrometrace::write(profile, recording, out),
            Format::Pprof => pprof::write(profile, recording, out),
            Format::Pstats => pstats::write(profile, recording, out),
            Format::Summary => summary::write(profile, recording, out),
        }
    }
}

/// What the formats know of a recording besides its stacks.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The profiled command line, or the process's.
    pub title: String,
    /// The rate asked for, in samples per second.
    pub rate_hz: f64,
    /// Ticks taken (each looks at every thread once).
    pub ticks: u64,
    /// Ticks whose samples were dropped because of an error.
    pub errors: u64,
    /// How long sampling went on.
    pub duration: Duration,
    /// When sampling began.
    pub started: SystemTime,
    /// True when idle threads were sampled too (`--idle`): a sample then stands for wall-clock
    /// time, otherwise for time on a CPU.
    pub idle_included: bool,
    /// The most rows a table (`summary`) shows.
    pub top: usize,
}

impl Recording {
    /// A recording of `ticks` ticks over `duration`, at `rate_hz` asked; the rest defaulted.
    pub fn new(title: &str, rate_hz: f64, ticks: u64, duration: Duration) -> Recording {
        Recording {
            title: title.to_string(),
            rate_hz,
            ticks,
            errors: 0,
            duration,
            started: SystemTime::now()
                .checked_sub(duration)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            idle_included: false,
            top: DEFAULT_TOP,
        }
    }

    /// The time one sample stands for: the mean time between ticks, or the asked interval
    /// before any tick (the rate asked may not have been reached).
    pub fn interval(&self) -> Duration {
        if self.ticks > 0 && !self.duration.is_zero() {
            self.duration / self.ticks.min(u32::MAX as u64) as u32
        } else {
            Duration::from_secs_f64(1.0 / self.rate_hz.max(1e-9))
        }
    }

    /// The rate reached, in ticks per second.
    pub fn rate_reached(&self) -> f64 {
        self.ticks as f64 / self.duration.as_secs_f64().max(1e-9)
    }
}

/// Rows a table shows unless told otherwise.
pub const DEFAULT_TOP: usize = 30;

/// Writes to standard output (`-o -`), flushed, instead of a file.
pub fn write_stdout(fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    fill(&mut out)?;
    out.flush()
        .map_err(|e| Error::io("writing to standard output", e))
}

/// Writes a file so that readers see either the old file or the complete new one.
///
/// Only a regular file (or a new one) is replaced that way. Something else already at `path`
/// (`/dev/null`, a FIFO, a terminal) is written into as it is: renaming over it would put a
/// file in its place, and run as root, `-o /dev/null` would replace the system's
/// `/dev/null`. A symbolic link is followed, and the file it names replaced.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let (path, into) = destination(path);
    if into {
        return write_buffered(&mut open_existing(&path)?, &path, fill);
    }
    let mut tmp = file_beside(&path)?;
    write_buffered(tmp.as_file_mut(), &path, fill)?;
    tmp.persist(&path)
        .map_err(|e| Error::io(format!("cannot rename into {}", path.display()), e.error))?;
    Ok(())
}

/// Fails, before any sampling, when [`write_atomically`] could not write `path`: we may not
/// write what it would write into, or no file can be made in the folder it would replace a
/// file in.
pub fn check_writable(path: &Path) -> Result<()> {
    match destination(path) {
        // Asked, not opened: opening a FIFO waits for its reader, and the reader would then
        // see the end of its input before the profile.
        (path, true) => nix::unistd::access(&path, nix::unistd::AccessFlags::W_OK)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e.into())),
        (path, false) => file_beside(&path).map(drop),
    }
}

/// Where output for `path` goes (the file a symbolic link names), and whether it is written
/// into rather than replaced: something already there that is not a regular file.
fn destination(path: &Path) -> (PathBuf, bool) {
    let resolved = std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.file_type().is_symlink())
        .then(|| std::fs::canonicalize(path).ok())
        .flatten()
        .unwrap_or_else(|| path.to_path_buf());
    let into = std::fs::metadata(&resolved).is_ok_and(|m| !m.is_file());
    (resolved, into)
}

/// Opens what is at `path` for writing, as it is.
fn open_existing(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// A new temporary file in the folder of `path`, to be renamed into place. A temporary file
/// is private (0600) by default; the output is an ordinary new file, readable as the umask
/// allows.
fn file_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// Writes what `fill` makes into `file` (the output `path`, or a file to become it) through
/// a buffer, flushed: an error on the last bytes is an error too.
fn write_buffered(
    file: &mut std::fs::File,
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let mut w = std::io::BufWriter::new(file);
    fill(&mut w)?;
    w.flush()
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
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
    fn an_output_file_gets_the_mode_of_any_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (ours, plain) = (dir.path().join("out.svg"), dir.path().join("plain"));
        write_atomically(&ours, |w| {
            w.write_all(b"x").unwrap();
            Ok(())
        })
        .unwrap();
        std::fs::File::create(&plain).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // Under the usual umask 022 that is 0644, where a temporary file would be 0600.
        assert_eq!(mode(&ours), mode(&plain), "both made under the same umask");
    }

    #[test]
    fn what_is_not_a_regular_file_is_written_into_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        // A FIFO, as `/dev/null` or a terminal would be: written into, and still a FIFO.
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        check_writable(&fifo).expect("asked, without waiting for a reader");
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        write_atomically(&fifo, |w| {
            w.write_all(b"through the pipe").unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(kind.is_fifo(), "{kind:?}");
        // A symbolic link stays a link; the file it names gets the new contents.
        let file = dir.path().join("real.txt");
        std::fs::write(&file, "old").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        write_atomically(&link, |w| {
            w.write_all(b"new").unwrap();
            Ok(())
        })
        .unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new");
        // /dev/null itself (only read here: it must still be the device).
        let null = std::fs::metadata("/dev/null").unwrap().file_type();
        assert!(null.is_char_device(), "{null:?}");
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
