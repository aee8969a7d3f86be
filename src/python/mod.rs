//! Everything that knows CPython: find the interpreter in a process, decide its [`Layout`], and
//! read every thread's stack.
//!
//! [`Interpreter::attach`] runs once: binary → version → `_PyRuntime` → table and debug offsets →
//! layout. [`Interpreter::stacks`] runs once per sample: interpreters → thread states → frames →
//! code objects (cached).

pub mod code;
pub mod debug_offsets;
pub mod frames;
pub mod layout;
pub mod linetable;
pub mod offsets;
pub mod runtime;
pub mod strings;
pub mod version;

use crate::binary::{self, PythonBinary};
use crate::error::{Error, Result};
use crate::model::Frame;
use crate::process::{Process, ReadMemory, RemoteAddr};

pub use layout::Layout;
pub use version::PyVersion;

use code::CodeCache;
use debug_offsets::DebugOffsets;
use runtime::ThreadState;

/// An attached interpreter: its layout, its runtime's address and the code-object cache.
pub struct Interpreter {
    /// The interpreter's version.
    pub version: PyVersion,
    /// Offsets and algorithm choices for this build.
    pub layout: Layout,
    /// The address of `_PyRuntime` (of the `interp_head` variable for 2.7 and 3.6).
    pub runtime: RemoteAddr,
    /// The file holding the interpreter, as the target maps it (empty when replaying).
    pub binary_path: String,
    cache: CodeCache,
}

/// One thread's stack in one sample, innermost frame first.
#[derive(Debug, Clone)]
pub struct ThreadStack {
    /// The thread state it came from.
    pub thread: ThreadState,
    /// The frames (a truncation marker last when the depth cap was hit).
    pub frames: Vec<Frame>,
}

impl Interpreter {
    /// Finds the interpreter in `process` and prepares to sample it.
    pub fn attach(process: &Process) -> Result<Interpreter> {
        let maps = process.maps()?;
        let binary = binary::locate(process, &maps)?;
        let version = read_version(process, &binary)?;
        Layout::check_supported(version)?;
        // 3.7+ keep everything under `_PyRuntime`; 2.7 and 3.6 start from `interp_head`.
        let runtime = binary
            .symbol("_PyRuntime")
            .or_else(|| binary.symbol("interp_head"))
            .map(RemoteAddr)
            .ok_or_else(|| Error::InterpreterNotFound {
                pid: process.pid(),
                binary: binary.path.clone(),
                reason: "it has neither a _PyRuntime nor an interp_head symbol".into(),
            })?;
        let mut interp = Interpreter::from_memory(process, version, runtime)?;
        interp.binary_path = binary.path;
        Ok(interp)
    }

    /// Builds the interpreter view from memory alone, given the version and `_PyRuntime`'s
    /// address (used by attach and by snapshot replay).
    pub fn from_memory(
        mem: &dyn ReadMemory,
        version: PyVersion,
        runtime: RemoteAddr,
    ) -> Result<Interpreter> {
        let table = offsets::table_for(version)?.ok_or_else(|| Error::UnsupportedVersion {
            found: version.to_string(),
            supported: layout::supported_range(),
        })?;
        let debug = DebugOffsets::read(mem, runtime, &table)?;
        let layout = Layout::new(version, &table, debug.as_ref())?;
        Ok(Interpreter {
            version,
            layout,
            runtime,
            binary_path: String::new(),
            cache: CodeCache::default(),
        })
    }

    /// Every thread state of every interpreter. Fails with [`Error::NotInitialised`] when the
    /// runtime has no interpreter or no thread yet.
    pub fn threads(&self, mem: &dyn ReadMemory) -> Result<Vec<ThreadState>> {
        let mut all = Vec::new();
        for interp in runtime::interpreters(mem, &self.layout, self.runtime)? {
            all.extend(runtime::threads(mem, &self.layout, interp)?);
        }
        if all.is_empty() {
            return Err(Error::NotInitialised);
        }
        Ok(all)
    }

    /// Reads every thread's stack.
    pub fn stacks(&mut self, mem: &dyn ReadMemory, max_depth: usize) -> Result<Vec<ThreadStack>> {
        let threads = self.threads(mem)?;
        let mut out = Vec::with_capacity(threads.len());
        for thread in threads {
            let walk = frames::walk(mem, &self.layout, &mut self.cache, &thread, max_depth)?;
            let mut frames: Vec<Frame> = walk
                .frames
                .iter()
                .map(|f| Frame {
                    name: f.code.qualname.clone(),
                    filename: f.code.filename.clone(),
                    short_filename: None,
                    line: f.line,
                    first_line: f.code.first_line,
                    kind: crate::model::FrameKind::Python,
                })
                .collect();
            if walk.truncated {
                frames.push(Frame::truncated(max_depth));
            }
            out.push(ThreadStack { thread, frames });
        }
        Ok(out)
    }
}

/// The interpreter's version: `Py_Version` (3.11+) from the target's memory, else the version
/// string in the binary. Without either, the `pythonX.Y` in the binary's file name is enough
/// to say "unsupported" when it is.
fn read_version(process: &Process, binary: &PythonBinary) -> Result<PyVersion> {
    if let Some(addr) = binary.symbol("Py_Version") {
        let hex = process.read_u32(RemoteAddr(addr))?;
        return PyVersion::from_hex(hex)
            .ok_or_else(|| Error::corrupt(format!("Py_Version holds {hex:#x}")));
    }
    if let Some(version) = binary.version_string {
        return Ok(version);
    }
    Err(match PyVersion::from_file_name(&binary.path) {
        Some(v) => Error::UnsupportedVersion {
            found: format!("{}.{}", v.major, v.minor),
            supported: layout::supported_range(),
        },
        None => Error::InterpreterNotFound {
            pid: process.pid(),
            binary: binary.path.clone(),
            reason: "it has no Py_Version symbol and its name tells no version".into(),
        },
    })
}
