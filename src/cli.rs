//! The command line, with clap. Only this file sees clap types; [`Cli::into_command`] turns
//! them into plain [`crate::config`] settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{
    Command, DiffConfig, DiffFormat, DumpConfig, RecordConfig, Sampling, Target, TopConfig,
};
use crate::output::{Format, FrameStyle};
use crate::sampling::Pausing;

/// A sampling profiler for CPython that reads the interpreter from outside the process.
#[derive(Debug, Parser)]
#[command(name = "sampler", version, about, propagate_version = true)]
pub struct Cli {
    /// Show diagnostics (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Sample a process or a command and write a profile (a flame graph by default).
    Record(RecordArgs),
    /// Print every thread's current Python stack once.
    Dump(DumpArgs),
    /// Show a live table of the functions taking the most time, like `top`.
    Top(TopArgs),
    /// Compare two profiles written by `record -f raw`: a differential flame graph (red: grew,
    /// blue: shrank), or with `-f summary` a table of the frames that moved most.
    Diff(DiffArgs),
}

#[derive(Debug, Args)]
struct DiffArgs {
    /// The profile before the change (`record -f raw`).
    before: PathBuf,
    /// The profile after the change.
    after: PathBuf,
    /// The output file (default: diff.svg for the flame graph, standard output for the
    /// summary); `-` writes to standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// What to write.
    #[arg(short, long, value_enum, default_value_t = CliDiffFormat::Flamegraph)]
    format: CliDiffFormat,
    /// Rows of the summary table.
    #[arg(long, default_value_t = crate::output::DEFAULT_TOP as u32, value_parser = clap::value_parser!(u32).range(1..))]
    top: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CliDiffFormat {
    /// A differential SVG flame graph.
    Flamegraph,
    /// A text table of the biggest changes.
    Summary,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["pid", "command"]))]
struct RecordArgs {
    /// The pid of a running Python process to sample.
    #[arg(short, long)]
    pid: Option<u32>,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Stop after this many seconds (default: when the target exits or on Ctrl-C).
    #[arg(short, long, value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// The output file (default: program name and time, with the format's extension); `-`
    /// writes to standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The output format.
    #[arg(short, long, value_enum, default_value_t = CliFormat::Flamegraph)]
    format: CliFormat,
    /// Rows of the `summary` table.
    #[arg(long, default_value_t = crate::output::DEFAULT_TOP as u32, value_parser = clap::value_parser!(u32).range(1..))]
    top: u32,
    /// Leave line numbers out: one entry per function and file.
    #[arg(long, conflicts_with = "function")]
    nolineno: bool,
    /// Aggregate by function: every frame shows the function's first line.
    #[arg(short = 'F', long)]
    function: bool,
    /// Root every stack at its thread: `thread <os tid> "<name>"`.
    #[arg(short, long)]
    threads: bool,
    /// The command to launch and profile, after `--`: `sampler record -- python app.py`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct DumpArgs {
    /// The pid of a running Python process.
    #[arg(short, long)]
    pid: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Do not pause the target while reading it.
    #[arg(long)]
    nonblocking: bool,
    /// Show whole file names instead of package-relative ones.
    #[arg(long)]
    full_filenames: bool,
    /// Show each frame's arguments and local variables (short reprs, read from outside).
    #[arg(short, long)]
    locals: bool,
    /// Also dump every Python process descended from the target, each under its own header.
    #[arg(short, long)]
    subprocesses: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["pid", "command"]))]
struct TopArgs {
    /// The pid of a running Python process to sample.
    #[arg(short, long)]
    pid: Option<u32>,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Seconds between redraws of the view.
    #[arg(long, default_value = "1", value_parser = parse_refresh)]
    refresh: Duration,
    /// The command to launch and watch, after `--`: `sampler top -- python app.py`. Its
    /// input and output go to /dev/null, since the view owns the terminal.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// How `record` and `top` sample.
#[derive(Debug, Args)]
struct SamplingArgs {
    /// Samples per second.
    #[arg(short, long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rate: u32,
    /// Include threads that are idle (sleeping or blocked) according to the OS.
    #[arg(short, long)]
    idle: bool,
    /// Sample only the thread holding the GIL (each sample has at most one stack).
    #[arg(short, long)]
    gil: bool,
    /// When to pause the target's running threads for a sample: `on-race` reads without
    /// pausing and pauses only to take again a sample that raced with a call or return;
    /// `always` pauses for every sample; `never` is `--nonblocking`.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = CliPausing::OnRace)]
    pause: CliPausing,
    /// Never pause the target (`--pause never`): a sample that raced twice is kept as read.
    #[arg(long, conflicts_with = "pause")]
    nonblocking: bool,
    /// Show whole file names instead of package-relative ones.
    #[arg(long)]
    full_filenames: bool,
    /// Follow the target's child processes (and theirs), also those started later; each
    /// process's stacks are rooted at a `process PID "COMMAND LINE"` frame.
    #[arg(short, long)]
    subprocesses: bool,
}

impl SamplingArgs {
    fn config(&self) -> Sampling {
        Sampling {
            rate_hz: f64::from(self.rate),
            include_idle: self.idle,
            gil_only: self.gil,
            pausing: if self.nonblocking {
                Pausing::Never
            } else {
                match self.pause {
                    CliPausing::OnRace => Pausing::OnRace,
                    CliPausing::Always => Pausing::Always,
                    CliPausing::Never => Pausing::Never,
                }
            },
            full_filenames: self.full_filenames,
            subprocesses: self.subprocesses,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CliPausing {
    /// Pause only to take again a sample whose unpaused read raced.
    OnRace,
    /// Pause for every sample.
    Always,
    /// Never pause.
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CliFormat {
    /// An SVG flame graph.
    Flamegraph,
    /// Collapsed stacks, one `a;b;c count` line per distinct stack.
    Raw,
    /// speedscope's JSON format (one profile per thread).
    Speedscope,
    /// Chrome's Trace Event Format: a timeline per thread (Perfetto, chrome://tracing).
    Chrometrace,
    /// pprof's gzipped profile.proto (go tool pprof, Pyroscope, Parca, Grafana).
    Pprof,
    /// cProfile's statistics file (python -m pstats, SnakeViz, gprof2dot).
    Pstats,
    /// A plain-text table of the busiest functions.
    Summary,
}

impl CliFormat {
    fn format(self) -> Format {
        match self {
            CliFormat::Flamegraph => Format::Flamegraph,
            CliFormat::Raw => Format::Raw,
            CliFormat::Speedscope => Format::Speedscope,
            CliFormat::Chrometrace => Format::Chrometrace,
            CliFormat::Pprof => Format::Pprof,
            CliFormat::Pstats => Format::Pstats,
            CliFormat::Summary => Format::Summary,
        }
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
        return Err(format!("`{text}` must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A refresh interval: seconds, at least 0.05 (faster cannot be read, only costs CPU).
fn parse_refresh(text: &str) -> Result<Duration, String> {
    let interval = parse_seconds(text)?;
    if interval < Duration::from_millis(50) {
        return Err(format!(
            "`{text}` is too short: the view refreshes at most every 0.05 s"
        ));
    }
    Ok(interval)
}

impl Cli {
    /// The plain settings for the chosen command.
    pub fn into_command(self) -> Command {
        match self.command {
            CliCommand::Record(a) => Command::Record(RecordConfig {
                target: match a.pid {
                    Some(pid) => Target::Pid(pid),
                    None => Target::Command(a.command),
                },
                sampling: a.sampling.config(),
                duration: a.duration,
                output: a.output,
                format: a.format.format(),
                top: a.top as usize,
                style: if a.nolineno {
                    FrameStyle::NoLine
                } else if a.function {
                    FrameStyle::Function
                } else {
                    FrameStyle::Line
                },
                threads: a.threads,
            }),
            CliCommand::Dump(a) => Command::Dump(DumpConfig {
                pid: a.pid,
                json: a.json,
                nonblocking: a.nonblocking,
                full_filenames: a.full_filenames,
                locals: a.locals,
                subprocesses: a.subprocesses,
            }),
            CliCommand::Top(a) => Command::Top(TopConfig {
                target: match a.pid {
                    Some(pid) => Target::Pid(pid),
                    None => Target::Command(a.command),
                },
                sampling: a.sampling.config(),
                refresh: a.refresh,
            }),
            CliCommand::Diff(a) => Command::Diff(DiffConfig {
                before: a.before,
                after: a.after,
                output: a.output,
                format: match a.format {
                    CliDiffFormat::Flamegraph => DiffFormat::Flamegraph,
                    CliDiffFormat::Summary => DiffFormat::Summary,
                },
                top: a.top as usize,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(args).map(Cli::into_command)
    }

    #[test]
    fn record_takes_a_command_verbatim() {
        let Command::Record(c) = parse(&[
            "sampler", "record", "-r", "250", "--", "python", "app.py", "-x", "--y",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            c.target,
            Target::Command(vec![
                "python".into(),
                "app.py".into(),
                "-x".into(),
                "--y".into()
            ])
        );
        assert_eq!(c.sampling.rate_hz, 250.0);
        assert_eq!(c.style, FrameStyle::Line);
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(parse(&["sampler", "record"]).is_err(), "needs a target");
        assert!(
            parse(&["sampler", "record", "-p", "1", "--", "python"]).is_err(),
            "not both"
        );
        assert!(parse(&["sampler", "record", "-p", "1", "-r", "0"]).is_err());
        assert!(parse(&["sampler", "record", "-p", "1", "-d", "-3"]).is_err());
        assert!(parse(&["sampler", "record", "-p", "1", "--nolineno", "-F"]).is_err());
        assert!(parse(&["sampler", "record", "-p", "1", "-f", "png"]).is_err());
        assert!(parse(&["sampler", "record", "-p", "1", "--bogus"]).is_err());
        assert!(parse(&["sampler", "dump"]).is_err());
        assert!(parse(&["sampler", "top"]).is_err(), "needs a target");
        assert!(parse(&["sampler", "top", "-p", "1", "--", "python"]).is_err());
        assert!(parse(&["sampler", "top", "-p", "1", "--refresh", "0"]).is_err());
        assert!(parse(&["sampler", "top", "-p", "1", "--refresh", "0.01"]).is_err());
        assert!(parse(&["sampler", "top", "-p", "1", "-d", "3"]).is_err());
    }

    #[test]
    fn top_options_map_to_settings() {
        let Command::Top(c) = parse(&["sampler", "top", "--", "python", "app.py"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            c.target,
            Target::Command(vec!["python".into(), "app.py".into()])
        );
        assert_eq!(c.sampling.rate_hz, 100.0);
        assert_eq!(c.refresh, Duration::from_secs(1));
        assert!(
            !(c.sampling.include_idle
                || c.sampling.gil_only
                || c.sampling.pausing != Pausing::OnRace
                || c.sampling.full_filenames)
        );
        let Command::Top(c) = parse(&[
            "sampler",
            "top",
            "-p",
            "42",
            "-r",
            "250",
            "--refresh",
            "0.25",
            "-i",
            "-g",
            "--nonblocking",
            "--full-filenames",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(c.target, Target::Pid(42));
        assert_eq!(c.sampling.rate_hz, 250.0);
        assert_eq!(c.refresh, Duration::from_millis(250));
        assert!(
            c.sampling.include_idle
                && c.sampling.gil_only
                && c.sampling.pausing == Pausing::Never
                && c.sampling.full_filenames
        );
    }

    #[test]
    fn pausing_is_on_race_unless_asked_and_nonblocking_means_never() {
        let pausing = |extra: &[&str]| {
            let mut args = vec!["sampler", "record", "-p", "42"];
            args.extend_from_slice(extra);
            parse(&args).map(|c| match c {
                Command::Record(c) => c.sampling.pausing,
                _ => panic!("not record"),
            })
        };
        assert_eq!(pausing(&[]).unwrap(), Pausing::OnRace);
        assert_eq!(pausing(&["--pause", "always"]).unwrap(), Pausing::Always);
        assert_eq!(pausing(&["--pause", "never"]).unwrap(), Pausing::Never);
        assert_eq!(pausing(&["--pause", "on-race"]).unwrap(), Pausing::OnRace);
        assert_eq!(pausing(&["--nonblocking"]).unwrap(), Pausing::Never);
        assert!(pausing(&["--pause", "sometimes"]).is_err());
        assert!(pausing(&["--pause", "always", "--nonblocking"]).is_err());
    }

    #[test]
    fn options_map_to_settings() {
        let Command::Record(c) = parse(&[
            "sampler",
            "record",
            "-p",
            "42",
            "-d",
            "1.5",
            "-f",
            "raw",
            "-F",
            "-i",
            "-g",
            "--nonblocking",
            "--full-filenames",
            "-o",
            "x.txt",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(c.target, Target::Pid(42));
        assert_eq!(c.duration, Some(Duration::from_millis(1500)));
        assert_eq!(c.format, Format::Raw);
        assert_eq!(c.style, FrameStyle::Function);
        assert!(
            c.sampling.include_idle
                && c.sampling.gil_only
                && c.sampling.pausing == Pausing::Never
                && c.sampling.full_filenames
        );
        assert!(!c.sampling.subprocesses);
        assert_eq!(c.output.unwrap(), PathBuf::from("x.txt"));
    }

    #[test]
    fn subprocesses_is_an_option_of_record_and_dump() {
        let Command::Record(c) =
            parse(&["sampler", "record", "-s", "--", "sh", "-c", "x"]).unwrap()
        else {
            panic!()
        };
        assert!(c.sampling.subprocesses);
        let Command::Dump(d) = parse(&["sampler", "dump", "--subprocesses", "-p", "3"]).unwrap()
        else {
            panic!()
        };
        assert!(d.subprocesses && d.pid == 3);
    }

    #[test]
    fn every_format_is_named_on_the_command_line() {
        for format in Format::ALL {
            let Command::Record(c) =
                parse(&["sampler", "record", "-p", "1", "-f", format.name()]).unwrap()
            else {
                panic!()
            };
            assert_eq!(c.format, *format);
            assert_eq!(c.top, crate::output::DEFAULT_TOP);
        }
        let Command::Record(c) = parse(&[
            "sampler", "record", "-p", "1", "-f", "summary", "--top", "5",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(c.top, 5);
        assert!(parse(&["sampler", "record", "-p", "1", "--top", "0"]).is_err());
    }

    #[test]
    fn diff_takes_two_profiles() {
        let Command::Diff(d) = parse(&["sampler", "diff", "a.txt", "b.txt"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            (d.before, d.after, d.output, d.format),
            (
                PathBuf::from("a.txt"),
                PathBuf::from("b.txt"),
                None,
                DiffFormat::Flamegraph
            )
        );
        let Command::Diff(d) = parse(&[
            "sampler", "diff", "a", "b", "-f", "summary", "-o", "-", "--top", "9",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(d.format, DiffFormat::Summary);
        assert_eq!((d.output, d.top), (Some(PathBuf::from("-")), 9));
        assert!(parse(&["sampler", "diff", "only-one.txt"]).is_err());
    }
}
