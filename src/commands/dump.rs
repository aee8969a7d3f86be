//! `sampler dump`: every thread's stack, once, as text or JSON; with `--subprocesses`, the same
//! for every Python process among the target and its descendants, one after the other (a JSON
//! array of processes).

use std::io::Write;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::commands::{command_line, open_target, open_tree_root};
use crate::config::{DumpConfig, Target};
use crate::error::Error;
use crate::model::Sample;
use crate::python::frames::MAX_DEPTH;
use crate::sampling::tree::ProcessTree;
use crate::sampling::{Pausing, Sampler, SamplerOptions};

#[derive(Serialize)]
struct JsonDump<'a> {
    pid: u32,
    command_line: &'a str,
    python_version: String,
    threads: Vec<JsonThread>,
}

#[derive(Serialize)]
struct JsonThread {
    thread_id: u64,
    os_thread_id: Option<u32>,
    name: Option<String>,
    active: bool,
    holds_gil: bool,
    frames: Vec<JsonFrame>,
}

#[derive(Serialize)]
struct JsonFrame {
    name: String,
    filename: String,
    short_filename: Option<String>,
    line: u32,
    first_line: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    locals: Option<Vec<JsonLocal>>,
}

#[derive(Serialize)]
struct JsonLocal {
    name: String,
    value: String,
    arg: bool,
}

/// One process's part of a dump.
struct Dumped {
    sample: Sample,
    title: String,
    version: String,
    binary: String,
}

impl Dumped {
    fn new(sample: Sample, title: String, sampler: &Sampler) -> Dumped {
        Dumped {
            sample,
            title,
            version: sampler.interpreter().version.to_string(),
            binary: sampler.interpreter().binary_path.clone(),
        }
    }
}

/// Runs `dump`.
pub fn run(config: &DumpConfig, out: &mut dyn Write) -> anyhow::Result<()> {
    let options = SamplerOptions {
        rate_hz: 1.0,
        duration: None,
        // One sample: every running thread read at the same instant, whatever it costs.
        pausing: if config.nonblocking {
            Pausing::Never
        } else {
            Pausing::Always
        },
        include_idle: true,
        activity: true,
        gil_only: false,
        full_filenames: config.full_filenames,
        max_depth: MAX_DEPTH,
        seed: crate::sampling::time_seed(),
        locals: config.locals,
    };
    let processes = if config.subprocesses {
        dump_tree(config.pid, options)?
    } else {
        vec![dump_one(config.pid, options)?]
    };
    if config.json {
        let json: Vec<JsonDump> = processes.iter().map(JsonDump::new).collect();
        if config.subprocesses {
            serde_json::to_writer_pretty(&mut *out, &json)?;
        } else {
            serde_json::to_writer_pretty(&mut *out, &json[0])?;
        }
        writeln!(out)?;
    } else {
        for (i, process) in processes.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            write_text(process, out)?;
        }
    }
    Ok(())
}

fn dump_one(pid: u32, options: SamplerOptions) -> anyhow::Result<Dumped> {
    let stop = AtomicBool::new(false);
    let (process, interpreter) = open_target(&Target::Pid(pid), &stop)?;
    let title = command_line(&process);
    let mut sampler = Sampler::new(process, interpreter, options);
    let sample = sampler.sample()?;
    Ok(Dumped::new(sample, title, &sampler))
}

/// Every Python process among `pid` and its descendants, the root first.
fn dump_tree(pid: u32, options: SamplerOptions) -> anyhow::Result<Vec<Dumped>> {
    let stop = AtomicBool::new(false);
    let (process, interpreter) = open_tree_root(
        &Target::Pid(pid),
        &stop,
        crate::process::ChildStdio::Inherit,
    )?;
    let mut tree = ProcessTree::new(process, interpreter, options);
    tree.poll()?;
    let mut dumped = Vec::new();
    tree.sample_each(&mut |sample, sampler| {
        let title = sample
            .command_line
            .as_deref()
            .unwrap_or_default()
            .to_string();
        dumped.push(Dumped::new(sample.clone(), title, sampler));
    })?;
    if dumped.is_empty() {
        let exe = tree
            .root()
            .exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "unknown".into());
        return Err(
            anyhow::Error::new(Error::NotPython { pid, exe }).context(format!(
                "no Python process among pid {pid} and its descendants"
            )),
        );
    }
    Ok(dumped)
}

fn write_text(process: &Dumped, out: &mut dyn Write) -> std::io::Result<()> {
    let sample = &process.sample;
    writeln!(out, "Process {}: {}", sample.pid, process.title)?;
    writeln!(out, "Python v{} ({})", process.version, process.binary)?;
    for thread in &sample.threads {
        writeln!(out)?;
        let tid = thread
            .os_thread_id
            .map(|t| t.to_string())
            .unwrap_or_else(|| format!("{:#x}", thread.thread_id));
        let state = if thread.active { "active" } else { "idle" };
        let gil = if thread.holds_gil {
            ", holds the GIL"
        } else {
            ""
        };
        match &thread.name {
            Some(name) => writeln!(out, "Thread {tid} \"{name}\" ({state}{gil})")?,
            None => writeln!(out, "Thread {tid} ({state}{gil})")?,
        }
        for (i, frame) in thread.frames.iter().enumerate() {
            let file = frame.display_filename();
            if frame.line == 0 || file.is_empty() {
                writeln!(out, "    {} ({file})", frame.name)?;
            } else {
                writeln!(out, "    {} ({file}:{})", frame.name, frame.line)?;
            }
            let locals = thread.locals.get(i).map(Vec::as_slice).unwrap_or(&[]);
            for (heading, args) in [("Arguments", true), ("Locals", false)] {
                let mut shown = locals.iter().filter(|l| l.is_arg == args).peekable();
                if shown.peek().is_some() {
                    writeln!(out, "        {heading}:")?;
                }
                for local in shown {
                    writeln!(out, "            {} = {}", local.name, local.value)?;
                }
            }
        }
    }
    Ok(())
}

impl JsonDump<'_> {
    fn new(process: &Dumped) -> JsonDump<'_> {
        let sample = &process.sample;
        JsonDump {
            pid: sample.pid,
            command_line: &process.title,
            python_version: process.version.clone(),
            threads: sample
                .threads
                .iter()
                .map(|t| JsonThread {
                    thread_id: t.thread_id,
                    os_thread_id: t.os_thread_id,
                    name: t.name.as_deref().map(str::to_string),
                    active: t.active,
                    holds_gil: t.holds_gil,
                    frames: t
                        .frames
                        .iter()
                        .enumerate()
                        .map(|(i, f)| JsonFrame {
                            name: f.name.to_string(),
                            filename: f.filename.to_string(),
                            short_filename: f.short_filename.as_deref().map(str::to_string),
                            line: f.line,
                            first_line: f.first_line,
                            locals: t.locals.get(i).map(|locals| {
                                locals
                                    .iter()
                                    .map(|l| JsonLocal {
                                        name: l.name.clone(),
                                        value: l.value.clone(),
                                        arg: l.is_arg,
                                    })
                                    .collect()
                            }),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
