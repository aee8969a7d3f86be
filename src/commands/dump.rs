//! `sampler dump`: every thread's stack, once, as text or JSON.

use std::io::Write;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::commands::{command_line, open_target};
use crate::config::{DumpConfig, Target};
use crate::model::Sample;
use crate::python::frames::MAX_DEPTH;
use crate::sampling::{Sampler, SamplerOptions};

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

/// Runs `dump`.
pub fn run(config: &DumpConfig, out: &mut dyn Write) -> anyhow::Result<()> {
    let stop = AtomicBool::new(false);
    let (process, interpreter) = open_target(&Target::Pid(config.pid), &stop)?;
    let version = interpreter.version;
    let title = command_line(&process);
    let mut sampler = Sampler::new(
        process,
        interpreter,
        SamplerOptions {
            rate_hz: 1.0,
            duration: None,
            nonblocking: config.nonblocking,
            include_idle: true,
            gil_only: false,
            full_filenames: config.full_filenames,
            max_depth: MAX_DEPTH,
            seed: crate::sampling::time_seed(),
            locals: config.locals,
        },
    );
    let sample = sampler.sample()?;
    if config.json {
        write_json(&sample, &title, &version.to_string(), out)?;
    } else {
        write_text(
            &sample,
            &title,
            &version.to_string(),
            &sampler.interpreter().binary_path,
            out,
        )?;
    }
    Ok(())
}

fn write_text(
    sample: &Sample,
    title: &str,
    version: &str,
    binary: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "Process {}: {title}", sample.pid)?;
    writeln!(out, "Python v{version} ({binary})")?;
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

fn write_json(
    sample: &Sample,
    title: &str,
    version: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let dump = JsonDump {
        pid: sample.pid,
        command_line: title,
        python_version: version.to_string(),
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
    };
    serde_json::to_writer_pretty(&mut *out, &dump)?;
    writeln!(out)?;
    Ok(())
}
