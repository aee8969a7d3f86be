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
pub mod locals;
pub mod objects;
pub mod offsets;
pub mod runtime;
pub mod strings;
pub mod threading;
pub mod version;

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::binary::{self, PythonBinary};
use crate::error::{Error, Result};
use crate::model::Frame;
use crate::process::{Fields, Process, ReadMemory, ReadRequest, RemoteAddr};

pub use layout::Layout;
pub use version::PyVersion;

use code::{CodeCache, CodeVersions};
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
    /// The variable naming the GIL holder's thread state, where the version has one
    /// (see [`layout::GilHolder::CurrentThread`]); `None` when unknown.
    pub gil_variable: Option<RemoteAddr>,
    cache: CodeCache,
    scratch: frames::Scratch,
    /// The interpreters listed for an earlier sample, and when (see [`Interpreter::stacks`]).
    listed: Option<(Vec<RemoteAddr>, Instant)>,
    /// The last sample's frame lists, by thread id, given back for the next walk of the same
    /// thread to fill again (see [`Interpreter::recycle`]).
    recycled: FxHashMap<u64, Vec<Frame>>,
    /// 3.12's global counter of code objects made, `_Py_next_func_version`, when the binary's
    /// full symbol table names it.
    pub code_version_variable: Option<RemoteAddr>,
    /// What tells which cached code objects a sample may use unread.
    versions: CodeVersions,
    /// What walks record beside the frames (everything unless told otherwise).
    pub extras: frames::Extras,
}

/// How a sample's reading confirms that the code objects it used without reading them again
/// are still the ones cached (see [`CodeVersions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// The threads are paused: the counters of code objects made are read with the stacks.
    Paused,
    /// Read without pausing, and checked afterwards: the check reads the counters
    /// ([`Interpreter::watched`]) and [`Interpreter::code_confirmed`] says whether the
    /// sample stands.
    Check,
    /// Nothing confirms the sample: every code object it uses is read again.
    Nothing,
}

/// How long a list of the interpreters serves the samples after the one that read it.
const INTERPRETERS_KEPT: Duration = Duration::from_millis(20);

/// One thread's stack in one sample, innermost frame first.
#[derive(Debug, Clone)]
pub struct ThreadStack {
    /// The thread state it came from.
    pub thread: ThreadState,
    /// The frames (a truncation marker last when the depth cap was hit).
    pub frames: Vec<Frame>,
    /// Where each Python frame of `frames` is, in the same order.
    pub frame_refs: Vec<frames::FrameRef>,
    /// True when this thread held the GIL at the sample.
    pub holds_gil: bool,
    /// The words the stack was built from, as walked (see [`frames::Mark`]).
    pub marks: Vec<frames::Mark>,
    /// Of those, the innermost frame's caller's instruction word.
    pub caller: Option<frames::Mark>,
}

/// True when some thread's stack may have changed while it was read without pausing: its
/// frame pointer, or one of the words its stack was built from (each frame's link, code
/// object and, but for the innermost frame, instruction word), no longer holds what the walk
/// read. A call or a return during the read can leave a stack that mixes two moments (or
/// a frame of one moment linked to frames of another); all of these words stay put for as
/// long as the stack the walk saw lasts, and checking every one of them (not just the top
/// few) catches a thread that returned and called again into the same frame while it was
/// copied. Words less than 1 KiB apart are read as one span (a thread's frames in its
/// data stack, one or two pages, are one read), all in one batched read, which must come
/// from the target after the stacks were copied: the sampler passes
/// [`crate::process::recall::Recall::checker`], which serves it from copies taken at the end
/// of the walk's own batch when it can. Words that cannot be read (the thread is exiting) do
/// not count.
///
/// With `Check::Quick`, only the innermost frame's caller's instruction word is read again
/// (the frame pointer when there is no caller): that catches a return during the read, and a
/// call after it, unless the thread also got back to the same call of the same caller by the
/// end, which code that calls and returns in the same places within microseconds often does.
/// A call the innermost frame makes during the read is not caught, and need not be: the walk
/// started from the frame pointer read first, and the frames under it do not change when a
/// frame is pushed above them, so the stack read is the one of the moment the read began (the
/// innermost frame's own instruction word, read later, is at the call it is making). Leaving
/// the pointer out saves a page of the read: on 3.11 and 3.12 it lies on the C stack, away
/// from the frames.
///
/// The same read takes in the words of `watch` (the counters of code objects made, see
/// [`code::CodeVersions`]) and records what it found in them; they do not count here.
pub fn stacks_moved(
    mem: &dyn ReadMemory,
    stacks: &[ThreadStack],
    check: Check,
    kept: &mut CheckBuffers,
    watch: &mut [code::Watch],
) -> bool {
    let marks = || {
        stacks.iter().flat_map(move |stack| {
            let slot = &stack.thread.frame_slot;
            // The quick check leaves the frame pointer out when the caller's word is there.
            let quick_caller = check == Check::Quick && stack.caller.is_some();
            let pointer = (!slot.is_null() && !quick_caller).then_some(frames::Mark {
                at: *slot,
                width: 8,
                value: stack.thread.frame.0,
            });
            let words = match check {
                Check::Full => &stack.marks[..],
                Check::Quick => stack.caller.as_slice(),
            };
            pointer.into_iter().chain(words.iter().copied())
        })
    };
    // Spans of nearby words, in the order the walk read them (a thread's frames in its data
    // stack come one after the other, so no sorting is needed), then the watched counters. A
    // gap shorter than a page lies in pages that hold one of the words on either side of it,
    // so it is readable too.
    let CheckBuffers {
        spans,
        span_of,
        requests,
    } = kept;
    spans.clear();
    span_of.clear();
    let words = marks()
        .map(|m| (m.at.0, m.width))
        .chain(watch.iter().map(|w| (w.at.0, w.width)));
    for (start, width) in words {
        let end = start.saturating_add(width as u64);
        // The last span grown to take in the word, when the word is near enough.
        let grown = |&mut (s, len): &mut (u64, usize)| {
            let e = s + len as u64;
            let (lo, hi) = (start.min(s), end.max(e));
            (end.saturating_add(CHECK_GAP) >= s
                && start <= e.saturating_add(CHECK_GAP)
                && hi - lo <= MAX_CHECK_SPAN)
                .then_some((lo, (hi - lo) as usize))
        };
        match spans.last_mut().and_then(|span| Some((grown(span)?, span))) {
            Some((wider, span)) => *span = wider,
            None => spans.push((start, (end - start) as usize)),
        }
        span_of.push(spans.len() - 1);
    }
    if spans.is_empty() {
        return false;
    }
    let word_at = |reads: &[ReadRequest], span: usize, at: u64, width: usize| {
        let read = &reads[span];
        let from = (at - read.addr.0) as usize;
        let mut word = [0u8; 8];
        read.ok.then(|| {
            word[..width].copy_from_slice(&read.buf[from..from + width]);
            u64::from_le_bytes(word)
        })
    };
    let stack_words = span_of.len() - watch.len();
    mem.read_spans(spans, requests, &mut |reads| {
        for (w, &span) in watch.iter_mut().zip(&span_of[stack_words..]) {
            w.read = word_at(reads, span, w.at.0, w.width);
        }
        marks().zip(span_of.iter()).any(|(mark, &span)| {
            word_at(reads, span, mark.at.0, mark.width).is_some_and(|v| v != mark.value)
        })
    })
}

/// The lists [`stacks_moved`] fills, kept from one check to the next so that a steady
/// program's checks allocate nothing.
#[derive(Debug, Default)]
pub struct CheckBuffers {
    /// `(start, length)` of each span.
    spans: Vec<(u64, usize)>,
    span_of: Vec<usize>,
    requests: Vec<ReadRequest>,
}

/// Which words [`stacks_moved`] reads again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Every word each stack was built from.
    Full,
    /// Each innermost caller's instruction word (the frame pointer of a thread with one
    /// frame).
    Quick,
}

/// Words of a stack check this close are read as one span.
const CHECK_GAP: u64 = 1024;
/// The longest span words of a stack check are merged into.
const MAX_CHECK_SPAN: u64 = 1 << 20;

/// How [`Interpreter::attach_with`] finds the interpreter's root structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttachOptions {
    /// Search the binary's writable data even when `_PyRuntime` / `interp_head` symbols exist
    /// (what happens anyway for stripped or embedded interpreters without them).
    pub ignore_root_symbols: bool,
}

/// The most bytes of writable data searched for the interpreter's root.
const MAX_SCAN: u64 = 64 << 20;
/// Bytes read at a time while searching.
const SCAN_CHUNK: u64 = 4 << 20;
/// How far consecutive chunks overlap (more than any root field's offset).
const SCAN_OVERLAP: u64 = 4096;

impl Interpreter {
    /// Finds the interpreter in `process` and prepares to sample it.
    pub fn attach(process: &Process) -> Result<Interpreter> {
        Self::attach_with(process, AttachOptions::default())
    }

    /// [`Interpreter::attach`] with options.
    pub fn attach_with(process: &Process, options: AttachOptions) -> Result<Interpreter> {
        let maps = process.maps()?;
        let binary = binary::locate(process, &maps)?;
        let version = read_version(process, &binary)?;
        Layout::check_supported(version)?;
        // 3.7+ keep everything under `_PyRuntime`; 2.7 and 3.6 start from `interp_head`.
        let symbol = binary
            .symbol("_PyRuntime")
            .or_else(|| binary.symbol("interp_head"))
            .filter(|_| !options.ignore_root_symbols);
        let mut interp = match symbol {
            Some(runtime) => Interpreter::from_memory(process, version, RemoteAddr(runtime))?,
            None => Self::scan(process, &binary, &maps, version)?,
        };
        if interp.gil_variable.is_none() {
            // 2.7 and 3.6 name the holder in the `_PyThreadState_Current` variable.
            interp.gil_variable = binary.symbol("_PyThreadState_Current").map(RemoteAddr);
        }
        if interp.layout.code_counter == layout::CodeCounter::Global {
            interp.code_version_variable =
                binary::local_data_symbol(process, &binary, "_Py_next_func_version")
                    .map(RemoteAddr);
            if interp.code_version_variable.is_none() {
                log::info!(
                    "{} has no full symbol table naming _Py_next_func_version: code objects \
                     are read again every sample",
                    binary.path
                );
            }
        }
        interp.binary_path = binary.path;
        Ok(interp)
    }

    /// Finds the root without symbols: in the binary's writable data, the address whose
    /// interpreter list validates (the first thread state's `interp` points back to the
    /// interpreter). 3.13+ runtimes also start with the `_Py_DebugOffsets` cookie.
    fn scan(
        process: &Process,
        binary: &PythonBinary,
        maps: &[crate::process::maps::MapRange],
        version: PyVersion,
    ) -> Result<Interpreter> {
        let not_found = |reason: String| Error::InterpreterNotFound {
            pid: process.pid(),
            binary: binary.path.clone(),
            reason,
        };
        let writable = |addr: u64| {
            addr != 0 && addr % 8 == 0 && maps.iter().any(|m| m.writable() && m.contains(addr))
        };
        let table = offsets::table_for(version)?.ok_or_else(|| Error::UnsupportedVersion {
            found: version.to_string(),
            supported: layout::supported_range(),
        })?;
        let plain_layout = if table.has_section(debug_offsets::SECTION) {
            None
        } else {
            Some(Layout::new(version, &table, None)?)
        };
        let mut scanned = 0u64;
        for &(start, end) in &binary.data_ranges {
            // Read in chunks that overlap by more than the head field's reach, so no candidate
            // is lost at a chunk boundary.
            let mut chunk_start = start;
            while chunk_start < end && scanned < MAX_SCAN {
                let len = (end - chunk_start).min(SCAN_CHUNK);
                let Ok(data) = process.read_vec(RemoteAddr(chunk_start), len as usize) else {
                    break;
                };
                scanned += len;
                if let Some(found) = Self::scan_chunk(
                    process,
                    version,
                    &plain_layout,
                    &data,
                    chunk_start,
                    &writable,
                ) {
                    return Ok(found);
                }
                if chunk_start + len >= end {
                    break;
                }
                chunk_start += len - SCAN_OVERLAP;
            }
        }
        Err(not_found(format!(
            "it has no _PyRuntime or interp_head symbol, and {} KiB of its writable data \
             (.PyRuntime, .data, .bss) hold no valid interpreter list",
            scanned / 1024
        )))
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
        let gil_variable = match layout.gil {
            layout::GilHolder::CurrentThread {
                runtime_offset: Some(offset),
            } => Some(runtime.offset(offset)?),
            _ => None,
        };
        Ok(Interpreter {
            version,
            layout,
            runtime,
            binary_path: String::new(),
            gil_variable,
            cache: CodeCache::default(),
            scratch: frames::Scratch::default(),
            listed: None,
            recycled: FxHashMap::default(),
            code_version_variable: None,
            versions: CodeVersions::default(),
            extras: frames::Extras::default(),
        })
    }

    /// Searches one chunk of writable data that starts at `base` for the interpreter's root.
    fn scan_chunk(
        process: &Process,
        version: PyVersion,
        plain_layout: &Option<Layout>,
        data: &[u8],
        base: u64,
        writable: &dyn Fn(u64) -> bool,
    ) -> Option<Interpreter> {
        for at in (0..data.len().saturating_sub(8)).step_by(8) {
            let candidate = RemoteAddr(base + at as u64);
            let found = match plain_layout {
                // 3.13+: the runtime starts with the cookie; its own offsets do the rest.
                None => {
                    if &data[at..at + 8] != debug_offsets::COOKIE {
                        continue;
                    }
                    Interpreter::from_memory(process, version, candidate).ok()
                }
                Some(layout) => {
                    let head_at = at + layout.runtime_interpreters_head as usize;
                    let Some(head) = data.get(head_at..head_at + 8) else {
                        continue;
                    };
                    let interp = u64::from_le_bytes(head.try_into().expect("8 bytes"));
                    if !writable(interp) || !validates(process, layout, RemoteAddr(interp)) {
                        continue;
                    }
                    Interpreter::from_memory(process, version, candidate).ok()
                }
            };
            // Pointer checks alone can be fooled (in 2.7 a thread state and its interpreter
            // point at each other at the same offsets): the root must give real stacks.
            if let Some(found) = found.filter(|i| i.clone_view().has_python_frames(process)) {
                log::info!("found the interpreter root at {candidate} by scanning");
                return Some(found);
            }
        }
        None
    }

    /// A fresh view of the same interpreter (an empty code cache).
    fn clone_view(&self) -> Interpreter {
        Interpreter {
            version: self.version,
            layout: self.layout.clone(),
            runtime: self.runtime,
            binary_path: self.binary_path.clone(),
            gil_variable: self.gil_variable,
            cache: CodeCache::default(),
            scratch: frames::Scratch::default(),
            listed: None,
            recycled: FxHashMap::default(),
            code_version_variable: self.code_version_variable,
            versions: CodeVersions::default(),
            extras: self.extras,
        }
    }

    /// Frames show file names in their package-relative form from now on, as the file system
    /// of process `pid` tells which folders are packages.
    pub fn shorten_file_names(&mut self, pid: u32) {
        self.cache.shorten_file_names(pid);
    }

    /// True when some thread's stack walks to at least one code object.
    fn has_python_frames(&mut self, mem: &dyn ReadMemory) -> bool {
        self.stacks(mem, 64)
            .is_ok_and(|stacks| stacks.iter().any(|s| !s.frames.is_empty()))
    }

    /// Every thread state of every interpreter. Fails with [`Error::NotInitialised`] when the
    /// runtime has no interpreter or no thread yet.
    pub fn threads(&self, mem: &dyn ReadMemory) -> Result<Vec<ThreadState>> {
        let interps = runtime::interpreters(mem, &self.layout, self.runtime)?;
        self.threads_of(mem, &interps)
    }

    /// Every thread state of the interpreters `interps`.
    fn threads_of(&self, mem: &dyn ReadMemory, interps: &[RemoteAddr]) -> Result<Vec<ThreadState>> {
        let mut all = Vec::new();
        for interp in interps {
            all.extend(runtime::threads(mem, &self.layout, *interp)?);
        }
        if all.is_empty() {
            return Err(Error::NotInitialised);
        }
        Ok(all)
    }

    /// `pthread id → name` of every thread the target's `threading` module knows, in every
    /// interpreter.
    pub fn thread_names(
        &self,
        mem: &dyn ReadMemory,
    ) -> Result<std::collections::HashMap<u64, String>> {
        let objects = self.objects(mem)?;
        let mut names = std::collections::HashMap::new();
        for interp in runtime::interpreters(mem, &self.layout, self.runtime)? {
            names.extend(threading::names_in(&objects, interp)?);
        }
        Ok(names)
    }

    /// The arguments and locals of one frame of a stack this interpreter walked.
    pub fn locals(
        &self,
        mem: &dyn ReadMemory,
        at: frames::FrameRef,
    ) -> Result<Vec<crate::model::Local>> {
        locals::frame_locals(&self.objects(mem)?, at)
    }

    /// A reader of the target's objects, when the layout has their offsets.
    fn objects<'a>(&'a self, mem: &'a dyn ReadMemory) -> Result<objects::Objects<'a>> {
        objects::Objects::new(mem, &self.layout).ok_or_else(|| {
            Error::corrupt("the offsets for reading objects are missing for this version")
        })
    }

    /// The thread states holding a GIL of the interpreters `interps` (at most one per GIL;
    /// empty while it is released or when the version's record of it is unknown), for the
    /// layouts whose thread states do not tell (none for those whose do).
    fn gil_holders_of(
        &self,
        mem: &dyn ReadMemory,
        interps: &[RemoteAddr],
    ) -> Result<Vec<RemoteAddr>> {
        match self.layout.gil {
            layout::GilHolder::CurrentThread { .. } => match self.gil_variable {
                Some(var) => {
                    let holder = mem.read_addr(var)?;
                    Ok(if holder.is_null() {
                        vec![]
                    } else {
                        vec![holder]
                    })
                }
                None => Ok(vec![]),
            },
            layout::GilHolder::ThreadWord { .. } => Ok(vec![]),
            layout::GilHolder::InterpreterGil { locked, holder } => {
                let mut holders = Vec::new();
                // Both fields in one read: they sit a few bytes apart.
                let (first, last) = (locked.min(holder), locked.max(holder));
                for interp in interps {
                    let buf = mem.read_cow(interp.offset(first)?, (last - first + 8) as usize)?;
                    if buf[..].u32_at(locked - first)? != 0 {
                        let h = buf[..].addr_at(holder - first)?;
                        if !h.is_null() {
                            holders.push(h);
                        }
                    }
                }
                Ok(holders)
            }
        }
    }

    /// Reads every thread's stack.
    ///
    /// The list of interpreters changes only when one is created or destroyed, so a list read
    /// less than 20 ms ago is used again (one read fewer per sample, in a place of its own).
    /// A new sub-interpreter is then seen that much later. A destroyed one has no threads left
    /// by the time it is freed; its memory is checked anyway, because every thread state must
    /// point back to the interpreter it was listed under, and a sample that fails has the next
    /// one list the interpreters afresh.
    pub fn stacks(&mut self, mem: &dyn ReadMemory, max_depth: usize) -> Result<Vec<ThreadStack>> {
        self.stacks_confirmed(mem, max_depth, Confirm::Nothing)
    }

    /// [`Interpreter::stacks`], using the code objects cached since the interpreter last made
    /// one without reading them again, as far as `confirm` allows (see [`CodeVersions`]).
    pub fn stacks_confirmed(
        &mut self,
        mem: &dyn ReadMemory,
        max_depth: usize,
        confirm: Confirm,
    ) -> Result<Vec<ThreadStack>> {
        let kept = self
            .listed
            .take()
            .filter(|(_, at)| at.elapsed() < INTERPRETERS_KEPT);
        let (interps, at) = match kept {
            Some(kept) => kept,
            None => (
                runtime::interpreters(mem, &self.layout, self.runtime)?,
                Instant::now(),
            ),
        };
        let walk = self.cache.walk() + 1;
        let counter = match confirm {
            Confirm::Nothing => layout::CodeCounter::Unknown,
            _ => self.layout.code_counter,
        };
        let counters = code_counters(counter, self.code_version_variable, &interps);
        self.versions.watch(counters, counter);
        let trusted_after = match confirm {
            Confirm::Nothing => None,
            Confirm::Check => self.versions.trusted_after(),
            Confirm::Paused => {
                // Nothing moves while the threads are paused: what the counters hold now, they
                // held while every stack was read.
                for w in self.versions.watched() {
                    w.read = read_counter(mem, w.at, w.width).ok();
                }
                self.versions.observe(walk);
                self.versions.trusted_after()
            }
        };
        self.cache.start_walk(trusted_after);
        let stacks = self.stacks_of(mem, &interps, max_depth);
        if stacks.is_ok() {
            self.listed = Some((interps, at));
        }
        stacks
    }

    /// What the counters of code objects made hold now: one per interpreter from 3.13, one
    /// in all in 3.12 (see [`CodeVersions`]). `None` when the counter is unknown (before 3.12,
    /// a stripped 3.12, or an interpreter state whose layout differs from the table's), and
    /// then every sample reads the code objects it uses again.
    pub fn code_versions(&self, mem: &dyn ReadMemory) -> Result<Option<Vec<u64>>> {
        let interps = runtime::interpreters(mem, &self.layout, self.runtime)?;
        let counter = self.layout.code_counter;
        let counters: Vec<RemoteAddr> =
            code_counters(counter, self.code_version_variable, &interps).collect();
        if counters.is_empty() {
            return Ok(None);
        }
        counters
            .iter()
            .map(|at| read_counter(mem, *at, counter.width()))
            .collect::<Result<_>>()
            .map(Some)
    }

    /// The counters the check after a [`Confirm::Check`] sample must read (see
    /// [`stacks_moved`]), empty for other samples.
    pub fn watched(&mut self) -> &mut [code::Watch] {
        self.versions.watched()
    }

    /// After a [`Confirm::Check`] sample's check: false when the sample used cached code
    /// objects unread but the counters it watched moved (or could not be read), so that it
    /// must be taken again. Also what lets later samples trust what this one read.
    pub fn code_confirmed(&mut self) -> bool {
        if self.versions.watched().is_empty() {
            return true;
        }
        let moved = self.versions.observe(self.cache.walk());
        !(moved && self.cache.trust_used())
    }

    /// Gives back a sample's frame lists, `(thread id, frames)`, once used: the next walk of
    /// each thread fills its list again and keeps the frames that have not changed, so that a
    /// steady stack costs neither an allocation nor a reference count per frame. Lists not
    /// taken by the next sample are dropped at the next call.
    pub fn recycle(&mut self, threads: impl IntoIterator<Item = (u64, Vec<Frame>)>) {
        self.recycled.clear();
        self.recycled.extend(threads);
    }

    /// Takes back the lists of a stack whose frames have been taken out of it, for the next
    /// walk to fill again.
    pub fn give_back(&mut self, marks: Vec<frames::Mark>, refs: Vec<frames::FrameRef>) {
        self.scratch.give_back(marks, refs);
    }

    /// [`Interpreter::stacks`] of the interpreters `interps`.
    fn stacks_of(
        &mut self,
        mem: &dyn ReadMemory,
        interps: &[RemoteAddr],
        max_depth: usize,
    ) -> Result<Vec<ThreadStack>> {
        let threads = self.threads_of(mem, interps)?;
        // The holder is extra information: if it cannot be read, the stacks still count.
        let gil_holders = self.gil_holders_of(mem, interps).unwrap_or_default();
        let mut out = Vec::with_capacity(threads.len());
        for thread in threads {
            let last = self.recycled.remove(&thread.thread_id).unwrap_or_default();
            let walk = frames::walk(
                mem,
                &self.layout,
                &mut self.cache,
                &mut self.scratch,
                &thread,
                max_depth,
                last,
                self.extras,
            )?;
            let mut frames = walk.frames;
            if walk.truncated {
                frames.push(Frame::truncated(max_depth));
            }
            let holds_gil = thread
                .holds_gil
                .unwrap_or_else(|| gil_holders.contains(&thread.addr));
            let frame_refs = walk.refs;
            out.push(ThreadStack {
                thread,
                frames,
                frame_refs,
                holds_gil,
                marks: walk.marks,
                caller: walk.caller,
            });
        }
        Ok(out)
    }
}

/// The counters of kind `counter` that a sample reads (see [`CodeVersions`]): one per
/// interpreter from 3.13, the one `global` in 3.12 (when its symbol was found), none when
/// unknown. An address that cannot be formed is given as null: it reads as nothing, and
/// nothing is trusted.
fn code_counters(
    counter: layout::CodeCounter,
    global: Option<RemoteAddr>,
    interps: &[RemoteAddr],
) -> impl Iterator<Item = RemoteAddr> + '_ {
    let (global, offset) = match counter {
        layout::CodeCounter::Unknown => (None, None),
        layout::CodeCounter::Global => (global, None),
        layout::CodeCounter::Made(at) | layout::CodeCounter::Freed(at) => (None, Some(at)),
    };
    let per_interp = offset.into_iter().flat_map(move |at| {
        interps
            .iter()
            .map(move |i| i.offset(at).unwrap_or(RemoteAddr::NULL))
    });
    global.into_iter().chain(per_interp)
}

/// The `width`-byte (4 or 8) counter at `at`.
fn read_counter(mem: &dyn ReadMemory, at: RemoteAddr, width: usize) -> Result<u64> {
    let mut word = [0u8; 8];
    mem.read(at, &mut word[..width])?;
    Ok(u64::from_le_bytes(word))
}

/// True when `interp` looks like an interpreter state: its first thread state points back.
fn validates(mem: &dyn ReadMemory, layout: &Layout, interp: RemoteAddr) -> bool {
    let Ok(tstate) = interp
        .offset(layout.interp_threads_head)
        .and_then(|a| mem.read_addr(a))
    else {
        return false;
    };
    !tstate.is_null()
        && tstate
            .offset(layout.thread.interp)
            .and_then(|a| mem.read_addr(a))
            .is_ok_and(|back| back == interp)
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
        Some(v) if Layout::check_supported(v).is_err() => Error::UnsupportedVersion {
            found: format!("{}.{}", v.major, v.minor),
            supported: layout::supported_range(),
        },
        Some(v) => Error::InterpreterNotFound {
            pid: process.pid(),
            binary: binary.path.clone(),
            reason: format!(
                "it looks like Python {}.{} but neither Py_Version nor a version string \
                 tells which release",
                v.major, v.minor
            ),
        },
        None => Error::InterpreterNotFound {
            pid: process.pid(),
            binary: binary.path.clone(),
            reason: "it has no Py_Version symbol and its name tells no version".into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::snapshot::Snapshot;
    use crate::process::CountingReader;
    use std::collections::BTreeMap;

    fn stack(frame: u64, marks: Vec<frames::Mark>) -> ThreadStack {
        let caller = marks.get(1).copied();
        ThreadStack {
            thread: ThreadState {
                addr: RemoteAddr(0x100),
                thread_id: 1,
                native_thread_id: None,
                frame: RemoteAddr(frame),
                frame_slot: RemoteAddr(0x1000),
                datastack: None,
                holds_gil: None,
            },
            frames: Vec::new(),
            frame_refs: Vec::new(),
            holds_gil: true,
            marks,
            caller,
        }
    }

    #[test]
    fn a_moved_frame_pointer_or_stack_word_is_noticed() {
        // The frame pointer at 0x1000; a caller's instruction word at 0x1008; frames' links
        // at 0x1400 (one span with the first two) and far away at 0x8000.
        let mut near = 0x7000u64.to_le_bytes().to_vec();
        near.extend(0x1234_5678u32.to_le_bytes());
        near.resize(0x400, 0);
        near.extend(0x6000u64.to_le_bytes());
        let mut pieces = BTreeMap::new();
        pieces.insert(0x1000, near);
        pieces.insert(0x8000, 0x5000u64.to_le_bytes().to_vec());
        let mem = CountingReader::new(Snapshot::from_pieces(serde_json::Value::Null, pieces));
        let mark = |at: u64, width: usize, value: u64| frames::Mark {
            at: RemoteAddr(at),
            width,
            value,
        };
        let walked = || {
            vec![
                mark(0x8000, 8, 0x5000),
                mark(0x1008, 4, 0x1234_5678),
                mark(0x1400, 8, 0x6000),
            ]
        };
        // One set of buffers for every check, as the sampler keeps: what one check left in
        // them must not count for the next.
        let mut kept = CheckBuffers::default();
        assert!(!stacks_moved(
            &mem,
            &[stack(0x7000, walked())],
            Check::Full,
            &mut kept,
            &mut []
        ));
        // One batched read. Spans join words in the order walked, not by address: the frame
        // pointer, the far link alone, then the caller's word and the near link in one.
        assert_eq!(mem.reads(), 1);
        assert_eq!(
            kept.spans,
            [(0x1000, 8), (0x8000, 8), (0x1008, 0x400)],
            "the check's spans"
        );
        assert!(!stacks_moved(
            &mem,
            &[stack(0x7000, walked())],
            Check::Quick,
            &mut kept,
            &mut []
        ));
        // Another innermost frame: the thread called or returned.
        assert!(stacks_moved(
            &mem,
            &[stack(0x7100, walked())],
            Check::Full,
            &mut kept,
            &mut []
        ));
        // The quick check reads the caller's word only: a call made by the innermost frame
        // leaves the stack read as it was when the read began.
        assert!(!stacks_moved(
            &mem,
            &[stack(0x7100, walked())],
            Check::Quick,
            &mut kept,
            &mut []
        ));
        assert_eq!(kept.spans, [(0x1008, 4)], "the quick check's spans");
        // With no caller, the frame pointer is all there is to read.
        assert!(stacks_moved(
            &mem,
            &[stack(0x7100, walked()[..1].to_vec())],
            Check::Quick,
            &mut kept,
            &mut []
        ));
        // The same frame pointer, but a word of the stack moved on: it returned and called
        // again while the stack was copied. Any of them, the last one included.
        for moved in 0..3 {
            let mut marks = walked();
            marks[moved].value += 8;
            let quick = moved == 1;
            let stacks = [stack(0x7000, marks)];
            assert!(
                stacks_moved(&mem, &stacks, Check::Full, &mut kept, &mut []),
                "{moved}"
            );
            assert_eq!(
                stacks_moved(&mem, &stacks, Check::Quick, &mut kept, &mut []),
                quick,
                "{moved}"
            );
        }
        // Words that cannot be read do not count.
        let mut gone = walked();
        gone.push(mark(0x9_0000, 8, 1));
        assert!(!stacks_moved(
            &mem,
            &[stack(0x7000, gone)],
            Check::Full,
            &mut kept,
            &mut []
        ));
        assert!(!stacks_moved(&mem, &[], Check::Full, &mut kept, &mut []));
        // Watched counters: read in the same batch (one near the frame pointer joins its
        // span), what they hold recorded, and no reason for a move either way.
        let mut watch = [
            code::Watch {
                at: RemoteAddr(0x1010),
                width: 4,
                read: None,
            },
            code::Watch {
                at: RemoteAddr(0x9_0000),
                width: 8,
                read: Some(3),
            },
        ];
        let before = mem.reads();
        assert!(!stacks_moved(
            &mem,
            &[stack(0x7000, walked())],
            Check::Quick,
            &mut kept,
            &mut watch
        ));
        assert_eq!(mem.reads(), before + 1);
        assert_eq!(watch[0].read, Some(0), "the zero after the caller's word");
        assert_eq!(watch[1].read, None, "unreadable");
        assert!(!stacks_moved(
            &mem,
            &[],
            Check::Full,
            &mut kept,
            &mut watch[..1]
        ));
        assert_eq!(watch[0].read, Some(0), "read with no stack at all");
    }
}
