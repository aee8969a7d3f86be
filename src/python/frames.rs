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
use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::model::{Frame, FrameKind};
use crate::process::{Fields, ReadMemory, RemoteAddr};
use crate::python::code::{CodeCache, CodeInfo};
use crate::python::layout::{
    Bytecode, ChunkLayout, FrameLayout, FrameModel, FrameObjectLayout, Layout,
};
use crate::python::runtime::{CycleCheck, ThreadState};

/// The default depth cap.
pub const MAX_DEPTH: usize = 4096;

/// Most bytes of a thread's data stack copied in one walk.
const MAX_PREFETCH: u64 = 1 << 20;

/// How much of an older chunk is read before its header says how big it is: CPython's usual
/// chunk size.
const CHUNK_GUESS: u64 = 16 * 1024;

/// The page size the padding of a chunk read rounds to.
const PAGE: u64 = 4096;

/// The addresses of one frame (an interpreter frame from 3.11, a frame object before) and
/// of its code object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef {
    /// The frame.
    pub frame: RemoteAddr,
    /// Its code object.
    pub code: RemoteAddr,
}

/// What a walk records beside the frames, when its reader needs it: each frame's address
/// ([`Walk::refs`], to read locals) and the words the stack was built from ([`Walk::marks`],
/// for the full check of a stack read without pausing). Everything by default; a sampler
/// that needs neither saves a few list entries a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extras {
    /// Fill [`Walk::refs`].
    pub refs: bool,
    /// Fill [`Walk::marks`].
    pub marks: bool,
}

impl Default for Extras {
    fn default() -> Extras {
        Extras {
            refs: true,
            marks: true,
        }
    }
}

/// A thread's frames, innermost first, where each is, and whether the depth cap cut the
/// outermost ones.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// The frames.
    pub frames: Vec<Frame>,
    /// Where each frame of `frames` and its code object are, for reading its locals (empty
    /// unless [`Extras::refs`]).
    pub refs: Vec<FrameRef>,
    /// True when frames beyond the cap were left out.
    pub truncated: bool,
    /// The words the chain was built from, as the walk read them: see [`Mark`] (empty
    /// unless [`Extras::marks`]).
    pub marks: Vec<Mark>,
    /// Of those, the innermost frame's caller's instruction word: the caller waits at its
    /// call instruction for as long as the innermost call lasts.
    pub caller: Option<Mark>,
}

/// A word of remote memory and the value a walk read there: one of the words a stack was
/// built from. Every frame's link to the next and its code object (from 3.11 a caller's
/// instruction word points into its code object and stands for it), and every frame's
/// instruction word except the innermost's (which moves as that frame runs), stay put for as
/// long as the stack the walk saw lasts; reading them all again tells whether the thread
/// called or returned while its stack was copied, which can leave a copy that mixes two
/// moments (see [`crate::python::stacks_moved`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Where the word is.
    pub at: RemoteAddr,
    /// Its width in bytes (4 or 8).
    pub width: usize,
    /// What the walk read.
    pub value: u64,
}

impl Mark {
    /// The 8-byte word at `offset` of `buf`, a copy of the memory at `base`.
    fn word(buf: &[u8], base: RemoteAddr, offset: u64) -> Result<Mark> {
        Ok(Mark {
            at: base.offset(offset)?,
            width: 8,
            value: buf.u64_at(offset)?,
        })
    }
}

/// Copies of a thread's data-stack chunks that frame reads are served from when they fall
/// inside one: the current chunk's part in use first, then older chunks as the walk needs them.
struct Prefetch<'a> {
    mem: &'a dyn ReadMemory,
    layout: Option<ChunkLayout>,
    /// `(address, bytes)` of each copied chunk, newest first.
    chunks: SmallVec<[(u64, Cow<'a, [u8]>); 2]>,
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
            chunks: SmallVec::new(),
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
        // Up to the end of the page: the next sample's stack, a few frames deeper or
        // shallower, then mostly asks for the same bytes, which a batch of the last sample's
        // reads serves (see `process::recall`). CPython's chunks are page-aligned, so the
        // padded read stays inside the chunk; if not, the exact one is made.
        let padded = (len.div_ceil(PAGE) * PAGE).min(MAX_PREFETCH);
        let read = mem
            .read_cow(chunk, padded as usize)
            .map(|bytes| truncated(bytes, len as usize))
            .or_else(|_| mem.read_cow(chunk, len as usize));
        if let Ok(bytes) = read {
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
        let guess = self
            .mem
            .read_cow(RemoteAddr(start), CHUNK_GUESS as usize)
            .ok()?;
        let buf = &guess[..];
        let (size, top, previous) = (
            buf.u64_at(layout.size).ok()?,
            buf.u64_at(layout.top).ok()?,
            buf.u64_at(layout.previous).ok()?,
        );
        let used = top.checked_mul(8)?.checked_add(layout.data)?;
        if used > size || self.copied + used > MAX_PREFETCH {
            return None;
        }
        let bytes = if used > CHUNK_GUESS {
            let rest = self
                .mem
                .read_cow(
                    RemoteAddr(start + CHUNK_GUESS),
                    (used - CHUNK_GUESS) as usize,
                )
                .ok()?;
            let mut whole = guess.into_owned();
            whole.extend_from_slice(&rest);
            Cow::Owned(whole)
        } else {
            truncated(guess, used as usize)
        };
        self.copied += used;
        self.older = previous;
        self.chunks.push((start, bytes));
        Some(())
    }
}

/// The first `len` bytes of `bytes` (all of them when shorter), without copying.
fn truncated(bytes: Cow<'_, [u8]>, len: usize) -> Cow<'_, [u8]> {
    match bytes {
        Cow::Borrowed(b) => Cow::Borrowed(&b[..len.min(b.len())]),
        Cow::Owned(mut b) => {
            b.truncate(len);
            Cow::Owned(b)
        }
    }
}

/// Buffers a walk needs only while it runs, kept from one walk to the next so that a steady
/// program's samples allocate nothing for them.
#[derive(Default)]
pub struct Scratch {
    chain: Vec<ChainFrame>,
    codes: Vec<RemoteAddr>,
    /// The most marks a walk has collected so far: the next one reserves room for as many.
    marks: usize,
    /// Mark and frame-reference lists of stacks already used, for the next walks to fill
    /// (see [`Scratch::give_back`]).
    spare: Vec<(Vec<Mark>, Vec<FrameRef>)>,
}

/// Most spare lists kept: one per thread of a big process.
const MAX_SPARE: usize = 4096;

impl Scratch {
    /// Takes back a used stack's marks and frame references, for a later walk to fill
    /// instead of allocating its own.
    pub fn give_back(&mut self, marks: Vec<Mark>, refs: Vec<FrameRef>) {
        if self.spare.len() < MAX_SPARE && (marks.capacity() > 0 || refs.capacity() > 0) {
            self.spare.push((marks, refs));
        }
    }
}

/// Walks `thread`'s frames. `last` is the same thread's frames from an earlier walk (or
/// empty): the walk fills that list again, and the frames that have not changed (most of a
/// steady program's, from the outermost in) are kept as they are rather than made afresh.
/// `extras` says what else to record.
#[allow(clippy::too_many_arguments)]
pub fn walk(
    mem: &dyn ReadMemory,
    layout: &Layout,
    cache: &mut CodeCache,
    scratch: &mut Scratch,
    thread: &ThreadState,
    max_depth: usize,
    last: Vec<Frame>,
    extras: Extras,
) -> Result<Walk> {
    let (mut marks, mut refs) = scratch.spare.pop().unwrap_or_default();
    marks.clear();
    refs.clear();
    let mut walk = Walk {
        frames: last,
        marks,
        refs,
        ..Walk::default()
    };
    if thread.frame.is_null() {
        walk.frames.clear();
        return Ok(walk);
    }
    // First the chain: (code object, byte offset into its bytecode) of every Python frame,
    // and the link and code words of every frame walked.
    let Scratch {
        chain,
        codes,
        marks: most_marks,
        ..
    } = scratch;
    chain.clear();
    walk.marks.reserve(*most_marks);
    let (links, truncated) = (&mut walk.marks, &mut walk.truncated);
    match &layout.frames {
        FrameModel::Interpreter(f) => {
            let start = match layout.code.bytecode {
                Bytecode::Inline { start } => start,
                Bytecode::Separate { .. } => {
                    return Err(Error::corrupt("interpreter frames need inline bytecode"))
                }
            };
            let step = interpreter_step(mem, f, start, thread, extras.marks.then_some(links));
            follow_chain(thread.frame, max_depth, truncated, chain, step)?
        }
        FrameModel::Objects(f) => {
            let step = object_step(mem, f, extras.marks.then_some(links));
            follow_chain(thread.frame, max_depth, truncated, chain, step)?
        }
    };
    // Every instruction word but the innermost frame's is one the stack was built from.
    if extras.marks {
        walk.marks.extend(chain.iter().skip(1).map(|c| c.mark));
    }
    *most_marks = (*most_marks).max(walk.marks.len());
    walk.caller = chain.get(1).map(|c| c.mark);
    // Then the code objects: cached ones are re-checked in one batch, new ones read. A
    // recursive function's frames come in runs, listed once.
    codes.clear();
    for step in chain.iter() {
        if codes.last() != Some(&step.code) {
            codes.push(step.code);
        }
    }
    cache.validate(mem, layout, codes);
    // The frames outermost first, over the last walk's list turned the same way: a frame
    // that is the same function at the same line stays.
    let frames = &mut walk.frames;
    frames.reverse();
    if extras.refs {
        walk.refs.reserve(chain.len());
    }
    let mut kept = 0;
    // The frame the step before placed: a recursive call's frames are the same code object
    // at the same offset, and so the same frame, placed again with no lookup.
    let mut placed: Option<(RemoteAddr, i64, &CodeInfo, u32)> = None;
    for step in chain.iter().rev() {
        let (code, line) = match placed {
            Some((at, offset, code, line)) if (at, offset) == (step.code, step.offset) => {
                (code, line)
            }
            _ => {
                placed = None;
                let code = cache.get(mem, layout, step.code, step.offset)?;
                let Some(code) = code.filter(|code| !code.trampoline) else {
                    continue;
                };
                let line = code.line_at(step.offset);
                placed = Some((step.code, step.offset, code, line));
                (code, line)
            }
        };
        match frames.get_mut(kept) {
            Some(same)
                if same.kind == FrameKind::Python
                    && same.line == line
                    && Arc::ptr_eq(&same.code, &code.text) => {}
            slot => {
                let frame = Frame {
                    code: code.text.clone(),
                    line,
                    kind: FrameKind::Python,
                };
                match slot {
                    Some(old) => *old = frame,
                    None => frames.push(frame),
                }
            }
        }
        kept += 1;
        if extras.refs {
            walk.refs.push(FrameRef {
                frame: step.frame,
                code: step.code,
            });
        }
    }
    frames.truncate(kept);
    frames.reverse();
    walk.refs.reverse();
    Ok(walk)
}

/// A Python frame of a chain: the frame, its code object, and the byte offset of the current
/// instruction in the bytecode.
#[derive(Debug, Clone, Copy)]
struct ChainFrame {
    frame: RemoteAddr,
    code: RemoteAddr,
    offset: i64,
    /// The frame's instruction word.
    mark: Mark,
}

/// What one step of a chain walk found: the frame's (code object, byte offset, instruction
/// word) when it is a Python frame, and the next frame's address.
type Step = (Option<(RemoteAddr, i64, Mark)>, RemoteAddr);

/// Follows a frame chain from `start`, decoding each frame with `step`: stops at the null
/// link or at `max_depth` kept frames (setting `truncated`), and fails on a cycle in racing
/// or garbage memory.
fn follow_chain(
    start: RemoteAddr,
    max_depth: usize,
    truncated: &mut bool,
    chain: &mut Vec<ChainFrame>,
    mut step: impl FnMut(RemoteAddr) -> Result<Step>,
) -> Result<()> {
    let limit = 4 * max_depth + 64;
    let mut steps = 0;
    let mut cycle = CycleCheck::new(start);
    let mut addr = start;
    while !addr.is_null() {
        if chain.len() >= max_depth {
            *truncated = true;
            break;
        }
        steps += 1;
        if steps > limit {
            return Err(Error::corrupt("frame chain is cyclic"));
        }
        let (frame, next) = step(addr)?;
        chain.extend(frame.map(|(code, offset, mark)| ChainFrame {
            frame: addr,
            code,
            offset,
            mark,
        }));
        addr = next;
        if cycle.looped(addr) {
            return Err(Error::corrupt("frame chain is cyclic"));
        }
    }
    Ok(())
}

/// 3.11+: one step of a chain of interpreter frames for [`follow_chain`], shims skipped,
/// frames mostly read from the data-stack copy. Adds the link and code words it reads to
/// `links`, when given.
fn interpreter_step<'a>(
    mem: &'a dyn ReadMemory,
    f: &'a FrameLayout,
    code_start: u64,
    thread: &ThreadState,
    mut links: Option<&'a mut Vec<Mark>>,
) -> impl FnMut(RemoteAddr) -> Result<Step> + 'a {
    let mut prefetch = Prefetch::new(mem, f.chunk, thread);
    let mut python_seen = false;
    move |addr| {
        let buf: Cow<[u8]> = match prefetch.slice(addr.0, f.size as usize) {
            Some(s) => Cow::Borrowed(s),
            // A frame outside the data stack (a C-stack entry frame, a generator's): from the
            // batch's copy when it holds one.
            None => mem.read_cow(addr, f.size as usize)?,
        };
        if let Some(links) = links.as_deref_mut() {
            links.push(Mark::word(&buf, addr, f.previous)?);
            // A caller's instruction word points into its code object, so it stands for the
            // code object too; up to the innermost Python frame, whose instruction moves, the
            // code object's word is checked itself.
            if !python_seen {
                links.push(Mark::word(&buf, addr, f.executable)?);
            }
        }
        let frame = if f.shim_owners.contains(&buf.u8_at(f.owner)?) {
            None
        } else {
            python_seen = true;
            let code_addr = RemoteAddr(f.code_ref.pointer(buf.u64_at(f.executable)?));
            // The instruction pointer is an address inside the code object's bytecode.
            let instr = Mark::word(&buf, addr, f.instr)?;
            Some((
                code_addr,
                instr
                    .value
                    .wrapping_sub(code_addr.0.wrapping_add(code_start)) as i64,
                instr,
            ))
        };
        Ok((frame, buf.addr_at(f.previous)?))
    }
}

/// 2.7–3.10: one step of a chain of frame objects (by `f_back`) for [`follow_chain`]. Adds
/// the link and code words it reads to `links`, when given.
fn object_step<'a>(
    mem: &'a dyn ReadMemory,
    f: &'a FrameObjectLayout,
    mut links: Option<&'a mut Vec<Mark>>,
) -> impl FnMut(RemoteAddr) -> Result<Step> + 'a {
    move |addr| {
        let buf = mem.read_cow(addr, f.size as usize)?;
        if let Some(links) = links.as_deref_mut() {
            links.push(Mark::word(&buf, addr, f.back)?);
            links.push(Mark::word(&buf, addr, f.code)?);
        }
        let raw = buf.i32_at(f.lasti)?;
        let mark = Mark {
            at: addr.offset(f.lasti)?,
            width: 4,
            value: u64::from(raw as u32),
        };
        Ok((
            Some((buf.addr_at(f.code)?, i64::from(raw) * f.lasti_bytes, mark)),
            buf.addr_at(f.back)?,
        ))
    }
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
    fn cyclic_chains_are_errors_and_long_ones_are_cut() {
        // Frame n links to n + 1; past `last` the link goes back to `back_to` (0: the end).
        let chain = |last: u64, back_to: u64, max_depth: usize| {
            let mut truncated = false;
            let mut walked = Vec::new();
            let followed =
                follow_chain(RemoteAddr(1), max_depth, &mut truncated, &mut walked, |a| {
                    let next = if a.0 == last { back_to } else { a.0 + 1 };
                    let mark = Mark {
                        at: RemoteAddr(a.0),
                        width: 8,
                        value: 0,
                    };
                    Ok((Some((RemoteAddr(0x100), 0, mark)), RemoteAddr(next)))
                });
            (followed.map(|()| walked.len()).ok(), truncated)
        };
        assert_eq!(chain(40, 0, 4096), (Some(40), false));
        for (last, back_to) in [(1, 1), (2, 1), (10, 7), (300, 3), (1000, 999)] {
            let (walked, truncated) = chain(last, back_to, 4096);
            assert!(walked.is_none() && !truncated, "{last} -> {back_to}");
        }
        // The cap comes first for a chain longer than it.
        assert_eq!(chain(5000, 0, 100), (Some(100), true));
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
            frame_slot: RemoteAddr::NULL,
            datastack: Some((RemoteAddr(newest), RemoteAddr(newest + 24 + 8 * 50))),
            holds_gil: None,
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
