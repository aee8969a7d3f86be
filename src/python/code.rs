//! Code objects: qualified name, file name, first line and decoded line table, cached by the
//! code object's address.
//!
//! A freed code object's address can be reused by a new code object, so a cached entry is
//! checked before a sample uses it: [`CodeCache::validate`] re-reads the fixed part of every
//! cached code object a thread's stack uses, all in one batched read, and drops entries whose
//! identity (type, size, name, file and line-table pointers, first line) changed. A frame whose
//! instruction pointer lies outside the cached bytecode also forces a fresh read. From 3.12,
//! entries read since the interpreter last made a code object need no re-read: see
//! [`CodeVersions`].

use rustc_hash::FxHashMap;
use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::model::FrameCode;
use crate::process::{Fields, ReadMemory, ReadRequest, RemoteAddr};
use crate::python::layout::{Bytecode, CodeCounter, Layout, LineTableFormat};
use crate::python::linetable::{self, LineRange};
use crate::python::strings;

/// Cap on a code object's bytecode, in code units.
const MAX_CODE_UNITS: u64 = 1 << 24;

/// What we keep of one code object.
#[derive(Debug)]
pub struct CodeInfo {
    /// What its frames show: `co_qualname` (3.11+, else `co_name`), `co_filename` (and its
    /// short form unless full names are kept) and `co_firstlineno`.
    pub text: Arc<FrameCode>,
    /// Bytecode length in bytes.
    pub code_len: u64,
    /// The decoded line table.
    pub lines: Vec<LineRange>,
    /// True for an interpreter trampoline rather than Python code: a code object none of
    /// whose instructions is traceable (3.13+ enters a specialised `__init__` call through
    /// one, named `__init__`, with no lines). CPython leaves its frames out of tracebacks
    /// and `sys._current_frames()`, and so do we.
    pub trampoline: bool,
    /// The last `(offset, line)` looked up: a frame that has not moved since the last sample,
    /// or one of a run of recursive calls, needs no search.
    last_line: Cell<(i64, u32)>,
    /// The fields that identify this code object at its address.
    identity: Identity,
    /// The walk that last read it (see [`CodeCache::start_walk`]).
    read_in: u64,
}

/// Fields of a code object that cannot change while it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity([u64; 6]);

impl Identity {
    fn of(buf: &[u8], layout: &Layout) -> Result<Identity> {
        let c = &layout.code;
        let o = &layout.object;
        Ok(Identity([
            buf.u64_at(o.ob_type)?,
            buf.u64_at(o.ob_size)?,
            buf.u64_at(c.qualname.unwrap_or(c.name))?,
            buf.u64_at(c.filename)?,
            buf.u64_at(c.linetable)?,
            u64::from(buf.u32_at(c.firstlineno)?),
        ]))
    }
}

impl CodeInfo {
    /// The line of the instruction at byte `offset` into the bytecode.
    pub fn line_at(&self, offset: i64) -> u32 {
        let (last, line) = self.last_line.get();
        if last == offset {
            return line;
        }
        let line = linetable::line_at(&self.lines, offset, self.text.first_line).unwrap_or(0);
        self.last_line.set((offset, line));
        line
    }

    /// True when byte `offset` can lie in this code object's bytecode. A frame that has not
    /// started yet is one code unit before the first instruction.
    pub fn owns_offset(&self, offset: i64) -> bool {
        (-2..=self.code_len as i64).contains(&offset)
    }
}

/// Code objects and type checks, cached by remote address.
#[derive(Default)]
pub struct CodeCache {
    code: FxHashMap<u64, CodeInfo>,
    /// Type object address → "is the code type".
    types: FxHashMap<u64, bool>,
    /// File name → its shared string and short form.
    files: FxHashMap<String, (Arc<str>, Option<Arc<str>>)>,
    /// Whose file system says which folders are packages, for short file names; `None`
    /// keeps names whole.
    short_names_of: Option<u32>,
    /// [`CodeCache::validate`]'s list of addresses and its requests, kept between samples.
    checking: Vec<u64>,
    requests: Vec<ReadRequest>,
    /// The number of the current walk (one per sample read, all threads together).
    walk: u64,
    /// Entries read in a walk after this one are used without being read again.
    trusted_after: Option<u64>,
    /// True once the current walk has used an entry without reading it again.
    trust_used: bool,
}

/// Entries kept before the cache is emptied (bounds memory on programs that generate code).
const MAX_ENTRIES: usize = 1 << 16;

impl CodeCache {
    /// Starts the walks of one sample (every thread's), numbered one more than the last.
    /// Entries read in a walk after `trusted_after` are used without being read again (the
    /// caller knows that no code object has been made since; see [`CodeVersions`]); `None`
    /// has every entry a stack uses read again.
    pub fn start_walk(&mut self, trusted_after: Option<u64>) {
        self.walk += 1;
        self.trusted_after = trusted_after;
        self.trust_used = false;
    }

    /// The current walk's number.
    pub fn walk(&self) -> u64 {
        self.walk
    }

    /// True when the current walk used an entry without reading it again.
    pub fn trust_used(&self) -> bool {
        self.trust_used
    }

    /// Re-reads every cached code object among `addrs` that the current walk may not trust,
    /// in one batch, and forgets those that are no longer the object we cached (or can no
    /// longer be read).
    pub fn validate(&mut self, mem: &dyn ReadMemory, layout: &Layout, addrs: &[RemoteAddr]) {
        let (code, checking) = (&self.code, &mut self.checking);
        let trusted = |info: &CodeInfo| self.trusted_after.is_some_and(|w| info.read_in > w);
        let mut trust_used = false;
        checking.clear();
        checking.extend(addrs.iter().map(|a| a.0).filter(|a| match code.get(a) {
            Some(info) if trusted(info) => {
                trust_used = true;
                false
            }
            cached => cached.is_some(),
        }));
        self.trust_used |= trust_used;
        checking.sort_unstable();
        checking.dedup();
        if checking.is_empty() {
            return;
        }
        // The requests (and their buffers) are kept from one sample to the next.
        let len = layout.code.size as usize;
        let requests = &mut self.requests;
        ReadRequest::refill(requests, checking.iter().map(|&addr| (addr, len)));
        mem.read_many(requests);
        for r in requests.iter() {
            let identity = r.ok.then(|| Identity::of(&r.buf, layout).ok()).flatten();
            match self.code.get_mut(&r.addr.0) {
                Some(info) if Some(info.identity) == identity => info.read_in = self.walk,
                _ => {
                    self.code.remove(&r.addr.0);
                }
            }
        }
    }

    /// The code object at `addr`, read or taken from the cache, for a frame executing byte
    /// `offset` of it. `Ok(None)` when the object at `addr` is not a code object (a shim
    /// frame's executable).
    pub fn get(
        &mut self,
        mem: &dyn ReadMemory,
        layout: &Layout,
        addr: RemoteAddr,
        offset: i64,
    ) -> Result<Option<&CodeInfo>> {
        let cached = self
            .code
            .get(&addr.0)
            .is_some_and(|info| info.owns_offset(offset));
        if !cached {
            let Some(info) = self.read(mem, layout, addr)? else {
                return Ok(None);
            };
            if self.code.len() >= MAX_ENTRIES {
                self.code.clear();
            }
            self.code.insert(addr.0, info);
        }
        Ok(self.code.get(&addr.0))
    }

    fn read(
        &mut self,
        mem: &dyn ReadMemory,
        layout: &Layout,
        addr: RemoteAddr,
    ) -> Result<Option<CodeInfo>> {
        if addr.is_null() {
            return Err(Error::corrupt("frame without a code object"));
        }
        let c = &layout.code;
        let o = &layout.object;
        let buf = mem.read_vec(addr, c.size as usize)?;
        if !self.is_code_type(mem, layout, buf.addr_at(o.ob_type)?)? {
            return Ok(None);
        }
        let code_len = match c.bytecode {
            Bytecode::Inline { .. } => {
                let units = buf.u64_at(o.ob_size)?;
                if units > MAX_CODE_UNITS {
                    return Err(Error::corrupt(format!("code object of {units} code units")));
                }
                units * 2
            }
            Bytecode::Separate { co_code } => {
                let len = mem.read_u64(buf.addr_at(co_code)?.offset(o.ob_size)?)?;
                if len > MAX_CODE_UNITS * 2 {
                    return Err(Error::corrupt(format!("bytecode of {len} bytes")));
                }
                len
            }
        };
        let trampoline = match c.first_traceable {
            Some(at) => u64::from(buf.u32_at(at)?) * 2 >= code_len,
            None => false,
        };
        let first_line = buf.i32_at(c.firstlineno)?;
        let qualname = strings::read_str(mem, o, buf.addr_at(c.qualname.unwrap_or(c.name))?)?;
        let filename = strings::read_str(mem, o, buf.addr_at(c.filename)?)?;
        let table = strings::read_bytes(mem, o, buf.addr_at(c.linetable)?, linetable::MAX_TABLE)?;
        let lines = match c.line_table {
            LineTableFormat::Locations => linetable::decode_locations(&table, first_line)?,
            LineTableFormat::Linetable310 => linetable::decode_linetable_310(&table, first_line)?,
            LineTableFormat::Lnotab { signed_lines } => {
                linetable::decode_lnotab(&table, first_line, signed_lines)?
            }
        };
        let (filename, short_filename) = self.file_name(filename);
        Ok(Some(CodeInfo {
            identity: Identity::of(&buf, layout)?,
            text: Arc::new(FrameCode {
                name: qualname.into(),
                filename,
                short_filename,
                first_line: u32::try_from(first_line).unwrap_or(0),
            }),
            code_len,
            lines,
            trampoline,
            last_line: Cell::new((i64::MIN, 0)),
            read_in: self.walk,
        }))
    }

    /// Shortens file names to the package-relative form from now on, asking the file
    /// system of process `pid` (its root may not be ours) which folders are packages.
    pub fn shorten_file_names(&mut self, pid: u32) {
        self.short_names_of = Some(pid);
        self.code.clear();
        self.files.clear();
    }

    /// The shared string for a file name, and its short form.
    fn file_name(&mut self, name: String) -> (Arc<str>, Option<Arc<str>>) {
        if let Some(known) = self.files.get(&name) {
            return known.clone();
        }
        if self.files.len() >= MAX_ENTRIES {
            self.files.clear();
        }
        let short = self.short_names_of.and_then(|pid| {
            shorten_filename(&name, |dir| {
                let inside = format!("/proc/{pid}/root{dir}/__init__.py");
                Path::new(&inside).exists() || Path::new(dir).join("__init__.py").exists()
            })
            .map(Arc::from)
        });
        let shared = (Arc::from(name.as_str()), short);
        self.files.insert(name, shared.clone());
        shared
    }

    fn is_code_type(
        &mut self,
        mem: &dyn ReadMemory,
        layout: &Layout,
        ty: RemoteAddr,
    ) -> Result<bool> {
        if let Some(known) = self.types.get(&ty.0) {
            return Ok(*known);
        }
        let name_ptr = mem.read_addr(ty.offset(layout.object.tp_name)?)?;
        let is_code = strings::read_c_str(mem, name_ptr, 256)? == "code";
        self.types.insert(ty.0, is_code);
        Ok(is_code)
    }
}

/// A word the stack check reads for [`CodeVersions`]: a counter of code objects made or freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// The counter's address.
    pub at: RemoteAddr,
    /// Its width in bytes (4 or 8).
    pub width: usize,
    /// What the check found there (`None`: unreadable, or not read yet).
    pub read: Option<u64>,
}

/// Tells which cached code objects a sample may use without reading them again.
///
/// A code object's address can hold another code object only once the first was freed and
/// the second made, and CPython counts both. In 3.12 and 3.13 every code object made takes the
/// next number of a counter as its `co_version` (the global `_Py_next_func_version` in 3.12,
/// the interpreter's `func_state.next_version` in 3.13; it stops at 0 when it wraps around,
/// so 0 is never trusted). From 3.14 each interpreter counts the code objects freed
/// (`_code_object_generation`, in the debug offsets for tools like this one). So a cache
/// entry read while the counter held the value it still holds describes the object at its
/// address, and need not be read again: on a deep recursive stack, that is 4 of the 10
/// pieces of memory a 3.12 sample reads (see [`CodeCounter`]).
///
/// The interpreter reads the counters along with each sample: during the pause for a paused
/// sample, or as part of the stack check (after everything the walk used) for one read
/// without pausing ([`CodeVersions::watched`]). Entries read in a walk after the one that
/// first saw the current values are trusted ([`CodeVersions::trusted_after`]), on condition
/// that the same sample's reading still finds those values; if it does not, the sample is
/// taken again like one that raced, reading every code object it uses.
#[derive(Debug, Default)]
pub struct CodeVersions {
    /// Each counter's address and value, as last read.
    seen: Vec<(RemoteAddr, u64)>,
    /// The walk that first read `seen`; `None` while nothing can be trusted.
    since: Option<u64>,
    /// The counters the current sample reads, and what it found.
    watch: Vec<Watch>,
    /// Whether a counter at 0 proves nothing (see [`CodeCounter::stuck_at_zero`]).
    stuck_at_zero: bool,
}

impl CodeVersions {
    /// Entries read in walks after this one may be used unread, if the current sample still
    /// finds the counters unchanged.
    pub fn trusted_after(&self) -> Option<u64> {
        self.since
    }

    /// Sets the counters of kind `kind` that the current sample reads.
    pub fn watch(&mut self, counters: impl Iterator<Item = RemoteAddr>, kind: CodeCounter) {
        let width = kind.width();
        self.stuck_at_zero = kind.stuck_at_zero();
        self.watch.clear();
        self.watch.extend(counters.map(|at| Watch {
            at,
            width,
            read: None,
        }));
    }

    /// The counters the current sample reads, for the reader to fill in.
    pub fn watched(&mut self) -> &mut [Watch] {
        &mut self.watch
    }

    /// Takes in what walk number `walk` found in the watched counters. True when that differs
    /// from what was seen before (or nothing can be trusted now): the sample cannot stand if
    /// it trusted an entry.
    pub fn observe(&mut self, walk: u64) -> bool {
        let valid = !self.watch.is_empty()
            && self.watch.iter().all(|w| {
                w.read
                    .is_some_and(|value| value != 0 || !self.stuck_at_zero)
            });
        let same = valid
            && self.since.is_some()
            && self.seen.len() == self.watch.len()
            && self
                .seen
                .iter()
                .zip(&self.watch)
                .all(|(&(at, value), w)| at == w.at && w.read == Some(value));
        if same {
            return false;
        }
        self.seen.clear();
        self.since = None;
        if valid {
            self.seen
                .extend(self.watch.iter().map(|w| (w.at, w.read.unwrap_or(0))));
            self.since = Some(walk);
        }
        true
    }
}

/// The package-relative form of a file name: leading folders are dropped up to the outermost
/// folder that is a package (holds `__init__.py`), so `/usr/lib/python3.12/json/decoder.py`
/// becomes `json/decoder.py` and `/home/me/app.py` becomes `app.py`. Names that are not
/// absolute paths (`<string>`, `<frozen …>`) are kept.
pub fn shorten_filename(filename: &str, is_package: impl Fn(&str) -> bool) -> Option<String> {
    if !filename.starts_with('/') {
        return None;
    }
    let path = Path::new(filename);
    let mut root = path.parent()?;
    while let Some(parent) = root.parent() {
        if !is_package(&root.to_string_lossy()) {
            break;
        }
        root = parent;
    }
    path.strip_prefix(root)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_versions_trust_only_what_was_read_after_the_counters_last_moved() {
        let (a, b) = (RemoteAddr(0x1000), RemoteAddr(0x2000));
        let mut v = CodeVersions::default();
        let observe = |v: &mut CodeVersions, values: &[Option<u32>], walk: u64| {
            v.watch([a, b].into_iter().take(values.len()), CodeCounter::Made(0));
            for (w, value) in v.watched().iter_mut().zip(values) {
                w.read = value.map(u64::from);
            }
            v.observe(walk)
        };
        assert_eq!(v.trusted_after(), None, "nothing seen yet");
        // First sight: a change, trusted from then on (entries read in later walks).
        assert!(observe(&mut v, &[Some(7), Some(9)], 1));
        assert_eq!(v.trusted_after(), Some(1));
        // Unchanged: no change, and the trust still dates from walk 1.
        assert!(!observe(&mut v, &[Some(7), Some(9)], 2));
        assert!(!observe(&mut v, &[Some(7), Some(9)], 3));
        assert_eq!(v.trusted_after(), Some(1));
        // One interpreter made a code object: a change, trust starts again.
        assert!(observe(&mut v, &[Some(7), Some(10)], 4));
        assert_eq!(v.trusted_after(), Some(4));
        // A counter that cannot be read, or that wrapped around and stopped at 0, or an
        // interpreter fewer: nothing is trusted until the values hold again.
        for bad in [&[Some(7), None][..], &[Some(0), Some(10)], &[Some(7)]] {
            observe(&mut v, &[Some(7), Some(10)], 5);
            assert!(v.trusted_after().is_some());
            assert!(observe(&mut v, bad, 6), "{bad:?}");
            assert_eq!(
                v.trusted_after(),
                if bad.len() == 1 { Some(6) } else { None }
            );
        }
        // Nothing watched (an unknown counter): nothing trusted.
        v.watch(std::iter::empty(), CodeCounter::Unknown);
        assert!(v.observe(7));
        assert_eq!(v.trusted_after(), None);
        // A count of code objects freed starts at 0, which is then a value like any other.
        v.watch([a].into_iter(), CodeCounter::Freed(0));
        v.watched()[0].read = Some(0);
        assert!(v.observe(8));
        assert_eq!(v.trusted_after(), Some(8));
        assert!(!v.observe(9));
    }

    #[test]
    fn filenames_shorten_to_the_package() {
        let packages = ["/usr/lib/python3.12/json", "/site/pkg", "/site/pkg/sub"];
        let is_pkg = |d: &str| packages.contains(&d);
        let short = |f: &str| shorten_filename(f, is_pkg);
        assert_eq!(
            short("/usr/lib/python3.12/json/decoder.py").unwrap(),
            "json/decoder.py"
        );
        assert_eq!(
            short("/usr/lib/python3.12/threading.py").unwrap(),
            "threading.py"
        );
        assert_eq!(short("/site/pkg/sub/mod.py").unwrap(), "pkg/sub/mod.py");
        assert_eq!(short("/home/me/app.py").unwrap(), "app.py");
        assert_eq!(short("<frozen importlib._bootstrap>"), None);
        assert_eq!(short("<string>"), None);
    }
}
