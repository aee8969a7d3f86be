//! Walk one thread's frames, innermost first, in the version's frame model: frame objects
//! chained by `f_back` up to 3.10, interpreter frames from 3.11.
//!
//! 3.11+ frames mostly live in the thread's data stack, a contiguous chunk; when the layout says where
//! it is, the part in use is read in one go and frames inside it are decoded from that copy.
//! Frames elsewhere (generators, older chunks) are read one by one. Shim frames (C-stack entry
//! frames, the interpreter's base frame) and frames whose executable is not a code object are
//! skipped. The walk stops at a depth cap and says so.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::process::{Fields, ReadMemory, RemoteAddr};
use crate::python::code::{CodeCache, CodeInfo};
use crate::python::layout::{Bytecode, FrameLayout, FrameModel, FrameObjectLayout, Layout};
use crate::python::runtime::ThreadState;

/// The default depth cap.
pub const MAX_DEPTH: usize = 4096;

/// Largest part of a data-stack chunk read in one go.
const MAX_PREFETCH: u64 = 1 << 20;

/// One Python frame as the walker found it.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// The frame's code object.
    pub code: Arc<CodeInfo>,
    /// The line being executed (0 when unknown).
    pub line: u32,
    /// Where the frame and its code object are, for reading its locals.
    pub at: FrameRef,
}

/// The addresses of one frame (an interpreter frame from 3.11, a frame object before) and
/// of its code object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef {
    /// The frame.
    pub frame: RemoteAddr,
    /// Its code object.
    pub code: RemoteAddr,
}

/// A thread's frames, innermost first, and whether the depth cap cut the outermost ones.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// The frames.
    pub frames: Vec<RawFrame>,
    /// True when frames beyond the cap were left out.
    pub truncated: bool,
}

/// A copy of target memory that frame reads are served from when they fall inside it.
struct Prefetch {
    start: u64,
    bytes: Vec<u8>,
}

impl Prefetch {
    fn slice(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let at = usize::try_from(addr.checked_sub(self.start)?).ok()?;
        self.bytes.get(at..at.checked_add(len)?)
    }
}

/// Walks `thread`'s frames.
pub fn walk(
    mem: &dyn ReadMemory,
    layout: &Layout,
    cache: &mut CodeCache,
    thread: &ThreadState,
    max_depth: usize,
) -> Result<Walk> {
    let mut walk = Walk::default();
    if thread.frame.is_null() {
        return Ok(walk);
    }
    // First the chain: (code object, byte offset into its bytecode) of every Python frame.
    let chain = match &layout.frames {
        FrameModel::Interpreter(f) => {
            let start = match layout.code.bytecode {
                Bytecode::Inline { start } => start,
                Bytecode::Separate { .. } => {
                    return Err(Error::corrupt("interpreter frames need inline bytecode"))
                }
            };
            interpreter_chain(mem, f, start, thread, max_depth, &mut walk.truncated)?
        }
        FrameModel::Objects(f) => object_chain(mem, f, thread, max_depth, &mut walk.truncated)?,
    };
    // Then the code objects: cached ones are re-checked in one batch, new ones read.
    let addrs: Vec<RemoteAddr> = chain.iter().map(|s| s.code).collect();
    cache.validate(mem, layout, &addrs);
    for step in chain {
        if let Some(code) = cache.get(mem, layout, step.code, step.offset)? {
            let line = code.line_at(step.offset);
            walk.frames.push(RawFrame {
                code,
                line,
                at: FrameRef {
                    frame: step.frame,
                    code: step.code,
                },
            });
        }
    }
    Ok(walk)
}

/// A Python frame of a chain: the frame, its code object, and the byte offset of the current
/// instruction in the bytecode.
#[derive(Debug, Clone, Copy)]
struct ChainFrame {
    frame: RemoteAddr,
    code: RemoteAddr,
    offset: i64,
}

/// What one step of a chain walk found: the frame's (code object, byte offset) when it is a
/// Python frame, and the next frame's address.
type Step = (Option<(RemoteAddr, i64)>, RemoteAddr);

/// Follows a frame chain from `start`, decoding each frame with `step`: stops at the null
/// link or at `max_depth` kept frames (setting `truncated`), and fails on a cycle in racing
/// or garbage memory.
fn follow_chain(
    start: RemoteAddr,
    max_depth: usize,
    truncated: &mut bool,
    mut step: impl FnMut(RemoteAddr) -> Result<Step>,
) -> Result<Vec<ChainFrame>> {
    let mut chain = Vec::new();
    let mut seen = HashSet::new();
    let limit = 4 * max_depth + 64;
    let mut addr = start;
    while !addr.is_null() {
        if chain.len() >= max_depth {
            *truncated = true;
            break;
        }
        if !seen.insert(addr.0) || seen.len() > limit {
            return Err(Error::corrupt("frame chain is cyclic"));
        }
        let (frame, next) = step(addr)?;
        chain.extend(frame.map(|(code, offset)| ChainFrame {
            frame: addr,
            code,
            offset,
        }));
        addr = next;
    }
    Ok(chain)
}

/// 3.11+: interpreter frames, shims skipped, mostly read from the data-stack copy.
fn interpreter_chain(
    mem: &dyn ReadMemory,
    f: &FrameLayout,
    code_start: u64,
    thread: &ThreadState,
    max_depth: usize,
    truncated: &mut bool,
) -> Result<Vec<ChainFrame>> {
    let prefetch = prefetch_datastack(mem, thread);
    follow_chain(thread.frame, max_depth, truncated, |addr| {
        let buf: Cow<[u8]> = match prefetch
            .as_ref()
            .and_then(|p| p.slice(addr.0, f.size as usize))
        {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(mem.read_vec(addr, f.size as usize)?),
        };
        let frame = if f.shim_owners.contains(&buf.u8_at(f.owner)?) {
            None
        } else {
            let code_addr = RemoteAddr(f.code_ref.pointer(buf.u64_at(f.executable)?));
            // The instruction pointer is an address inside the code object's bytecode.
            let instr = buf.u64_at(f.instr)?;
            Some((
                code_addr,
                instr.wrapping_sub(code_addr.0.wrapping_add(code_start)) as i64,
            ))
        };
        Ok((frame, buf.addr_at(f.previous)?))
    })
}

/// 2.7–3.10: frame objects chained by `f_back`.
fn object_chain(
    mem: &dyn ReadMemory,
    f: &FrameObjectLayout,
    thread: &ThreadState,
    max_depth: usize,
    truncated: &mut bool,
) -> Result<Vec<ChainFrame>> {
    follow_chain(thread.frame, max_depth, truncated, |addr| {
        let buf = mem.read_vec(addr, f.size as usize)?;
        let lasti = i64::from(buf.i32_at(f.lasti)?);
        Ok((
            Some((buf.addr_at(f.code)?, lasti * f.lasti_bytes)),
            buf.addr_at(f.back)?,
        ))
    })
}

/// Reads the used part of the thread's current data-stack chunk, if it is known and sane.
fn prefetch_datastack(mem: &dyn ReadMemory, thread: &ThreadState) -> Option<Prefetch> {
    let (chunk, top) = thread.datastack?;
    let len = top.0.checked_sub(chunk.0)?;
    if chunk.is_null() || len == 0 || len > MAX_PREFETCH {
        return None;
    }
    let bytes = mem.read_vec(chunk, len as usize).ok()?;
    Some(Prefetch {
        start: chunk.0,
        bytes,
    })
}
