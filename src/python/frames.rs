//! Walk one thread's frames, innermost first, in the version's frame model: frame objects
//! chained by `f_back` up to 3.10, interpreter frames from 3.11.
//!
//! 3.11+ frames mostly live in the thread's data stack, a chain of chunks (16 KiB each unless a
//! frame needs more), newest first. When the layout says where it is, the part of the current
//! chunk in use is read in one go and frames inside it are decoded from that copy; when the
//! walk leaves it, the next older chunk is read whole, and so on, so a 500-frame stack costs a
//! handful of reads rather than one per frame. Frames elsewhere (generators, C-stack entry
//! frames) are read one by one. Shim frames (C-stack entry frames, the interpreter's base
//! frame) and frames whose executable is not a code object are skipped. The walk stops at a
//! depth cap and says so.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::process::{Fields, ReadMemory, RemoteAddr};
use crate::python::code::{CodeCache, CodeInfo};
use crate::python::layout::{
    Bytecode, ChunkLayout, FrameLayout, FrameModel, FrameObjectLayout, Layout,
};
use crate::python::runtime::ThreadState;

/// The default depth cap.
pub const MAX_DEPTH: usize = 4096;

/// Most bytes of a thread's data stack copied in one walk.
const MAX_PREFETCH: u64 = 1 << 20;

/// How much of an older chunk is read before its header says how big it is: CPython's usual
/// chunk size.
const CHUNK_GUESS: u64 = 16 * 1024;

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

/// Copies of a thread's data-stack chunks that frame reads are served from when they fall
/// inside one: the current chunk's part in use first, then older chunks as the walk needs them.
struct Prefetch<'a> {
    mem: &'a dyn ReadMemory,
    layout: Option<ChunkLayout>,
    /// `(address, bytes)` of each copied chunk, newest first.
    chunks: Vec<(u64, Vec<u8>)>,
    /// The next older chunk, not copied yet (null when there is none or it is unknown).
    older: u64,
    /// Bytes copied so far.
    copied: u64,
}

impl<'a> Prefetch<'a> {
    /// Copies the current chunk's part in use (`thread.datastack`), if known and sane.
    fn new(mem: &'a dyn ReadMemory, layout: Option<ChunkLayout>, thread: &ThreadState) -> Self {
        let mut prefetch = Prefetch {
            mem,
            layout,
            chunks: Vec::new(),
            older: 0,
            copied: 0,
        };
        let Some((chunk, top)) = thread.datastack else {
            return prefetch;
        };
        let len = top.0.wrapping_sub(chunk.0);
        if chunk.is_null() || len == 0 || len > MAX_PREFETCH {
            return prefetch;
        }
        if let Ok(bytes) = mem.read_vec(chunk, len as usize) {
            prefetch.older = layout
                .and_then(|l| bytes[..].u64_at(l.previous).ok())
                .unwrap_or(0);
            prefetch.copied = len;
            prefetch.chunks.push((chunk.0, bytes));
        }
        prefetch
    }

    /// `len` bytes at `addr` from the copies, copying older chunks until one holds them;
    /// `None` when no chunk does (the caller reads them directly).
    fn slice(&mut self, addr: u64, len: usize) -> Option<&[u8]> {
        loop {
            if let Some(i) = self.chunks.iter().position(|(start, bytes)| {
                addr.checked_sub(*start)
                    .and_then(|at| usize::try_from(at).ok())
                    .and_then(|at| at.checked_add(len))
                    .is_some_and(|end| end <= bytes.len())
            }) {
                let (start, bytes) = &self.chunks[i];
                let at = (addr - start) as usize;
                return Some(&bytes[at..at + len]);
            }
            self.copy_older()?;
        }
    }

    /// Copies the part in use of the next older chunk: a guess of its size first, the rest
    /// once its header tells. `None` when there is none, or it cannot be read or makes no sense.
    fn copy_older(&mut self) -> Option<()> {
        let layout = self.layout?;
        let start = std::mem::replace(&mut self.older, 0);
        if start == 0 || self.copied >= MAX_PREFETCH {
            return None;
        }
        let mut bytes = self
            .mem
            .read_vec(RemoteAddr(start), CHUNK_GUESS as usize)
            .ok()?;
        let buf = &bytes[..];
        let (size, top, previous) = (
            buf.u64_at(layout.size).ok()?,
            buf.u64_at(layout.top).ok()?,
            buf.u64_at(layout.previous).ok()?,
        );
        let used = top.checked_mul(8)?.checked_add(layout.data)?;
        if used > size || self.copied + used > MAX_PREFETCH {
            return None;
        }
        if used > CHUNK_GUESS {
            let rest = self
                .mem
                .read_vec(
                    RemoteAddr(start + CHUNK_GUESS),
                    (used - CHUNK_GUESS) as usize,
                )
                .ok()?;
            bytes.extend_from_slice(&rest);
        } else {
            bytes.truncate(used as usize);
        }
        self.copied += used;
        self.older = previous;
        self.chunks.push((start, bytes));
        Some(())
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
    let mut prefetch = Prefetch::new(mem, f.chunk, thread);
    follow_chain(thread.frame, max_depth, truncated, |addr| {
        let buf: Cow<[u8]> = match prefetch.slice(addr.0, f.size as usize) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::snapshot::Snapshot;
    use crate::process::CountingReader;
    use std::collections::BTreeMap;

    const CHUNKS: ChunkLayout = ChunkLayout {
        previous: 0,
        size: 8,
        top: 16,
        data: 24,
    };

    /// A chunk at `start`: its header, then `words` words each holding its own address.
    fn chunk(start: u64, previous: u64, size: u64, words: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        for field in [previous, size, words] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
        for i in 0..words {
            bytes.extend_from_slice(&(start + 24 + 8 * i).to_le_bytes());
        }
        bytes.resize(size as usize, 0);
        bytes
    }

    #[test]
    fn older_chunks_are_copied_whole_as_the_walk_reaches_them() {
        let (newest, middle, oldest) = (0x10_0000, 0x20_0000, 0x30_0000);
        let mut pieces = BTreeMap::new();
        pieces.insert(newest, chunk(newest, middle, 16384, 100));
        // A chunk bigger than the guess, for a frame that needed more room.
        pieces.insert(middle, chunk(middle, oldest, 40000, 4000));
        pieces.insert(oldest, chunk(oldest, 0, 16384, 1000));
        let mem = CountingReader::new(Snapshot::from_pieces(serde_json::Value::Null, pieces));
        let thread = ThreadState {
            addr: RemoteAddr(0),
            thread_id: 1,
            native_thread_id: None,
            frame: RemoteAddr(newest + 24),
            datastack: Some((RemoteAddr(newest), RemoteAddr(newest + 24 + 8 * 50))),
        };
        let mut prefetch = Prefetch::new(&mem, Some(CHUNKS), &thread);
        assert_eq!(mem.reads(), 1);
        let word = |p: &mut Prefetch, addr: u64| p.slice(addr, 8).map(|b| b.u64_at(0).unwrap());
        assert_eq!(
            word(&mut prefetch, newest + 24 + 8 * 10),
            Some(newest + 24 + 80)
        );
        assert_eq!(mem.reads(), 1);
        // In the middle chunk, past the guess: two reads for the whole chunk in use.
        let far = middle + 24 + 8 * 3000;
        assert_eq!(word(&mut prefetch, far), Some(far));
        assert_eq!(mem.reads(), 3);
        assert_eq!(
            word(&mut prefetch, oldest + 24 + 8 * 999),
            Some(oldest + 24 + 8 * 999)
        );
        assert_eq!(mem.reads(), 4);
        // Beyond the words in use of the oldest chunk, and outside every chunk: not there.
        assert_eq!(word(&mut prefetch, oldest + 24 + 8 * 1000), None);
        assert_eq!(word(&mut prefetch, 0x99_0000), None);
        assert_eq!(mem.reads(), 4);
    }
}
