//! Find the CPython interpreter's code in a target: which mapped ELF file holds it (the python
//! executable or `libpython`), its symbols, and the load bias that turns a symbol's value into a
//! runtime address.
//!
//! A file counts as Python because it *defines* interpreter symbols, not because of its name:
//! the name only decides the order in which files are inspected.

use std::collections::HashMap;
use std::path::Path;

use goblin::container::Ctx;
use goblin::elf::program_header::ProgramHeader;
use goblin::elf::section_header::SectionHeader;
use goblin::elf::{header, program_header, section_header, Elf, Symtab};
use goblin::strtab::Strtab;

use crate::error::{Error, Result};
use crate::process::maps::MapRange;
use crate::process::Process;
use crate::python::version::PyVersion;

/// Symbols the interpreter locator may use. Only these are kept.
const WANTED: &[&str] = &[
    "_PyRuntime",
    "Py_Version",
    "interp_head",
    "_PyThreadState_Current",
    "PyEval_SaveThread",
];

/// Symbols that prove a file contains the interpreter when it defines one of them.
const PROOF: &[&str] = &[
    "_PyRuntime",
    "Py_Version",
    "interp_head",
    "_PyThreadState_Current",
    "PyEval_SaveThread",
];

/// How many mapped files we inspect at most before giving up.
const MAX_CANDIDATES: usize = 64;

/// The ELF file in the target that contains the interpreter.
#[derive(Debug, Clone)]
pub struct PythonBinary {
    /// The path as the target maps it.
    pub path: String,
    /// Added to a symbol's value to get its runtime address (0 for fixed-address executables).
    pub load_bias: u64,
    /// Runtime addresses of the interpreter symbols the file defines (`_PyRuntime`, `Py_Version`, …).
    pub symbols: HashMap<&'static str, u64>,
    /// The version found in the file's read-only data, for versions without `Py_Version`.
    pub version_string: Option<PyVersion>,
    /// Runtime address ranges of the writable data sections (`.PyRuntime`, `.data`, `.bss`),
    /// where the interpreter's root structures live; searched when symbols are missing.
    pub data_ranges: Vec<(u64, u64)>,
}

impl PythonBinary {
    /// The runtime address of `name`, if the file defines it.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).copied()
    }
}

/// Inspects the target's mapped files and returns the one holding the interpreter.
pub fn locate(process: &Process, maps: &[MapRange]) -> Result<PythonBinary> {
    let exe = process
        .exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    for path in candidates(maps, &exe) {
        let file_path = process.file_path(&path);
        let Ok(file) = std::fs::File::open(&file_path) else {
            continue;
        };
        match inspect(&path, &file, maps) {
            Ok(Some(found)) => {
                log::debug!("interpreter found in {path} (bias {:#x})", found.load_bias);
                return Ok(found);
            }
            Ok(None) => {}
            Err(e) => log::debug!("skipping {path}: {e}"),
        }
    }
    Err(Error::NotPython {
        pid: process.pid(),
        exe: if exe.is_empty() {
            "unknown".into()
        } else {
            exe
        },
    })
}

/// Mapped regular files, most likely interpreter first: `libpython*`, the executable, other
/// files named like python, then everything else.
fn candidates(maps: &[MapRange], exe: &str) -> Vec<String> {
    let mut seen = Vec::<String>::new();
    for m in maps.iter().filter(|m| m.is_file()) {
        if !seen.contains(&m.path) {
            seen.push(m.path.clone());
        }
    }
    let rank = |p: &str| {
        let base = Path::new(p)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        if base.starts_with("libpython") {
            0
        } else if p == exe {
            1
        } else if base.contains("python") {
            2
        } else {
            3
        }
    };
    seen.sort_by_key(|p| rank(p));
    seen.truncate(MAX_CANDIDATES);
    seen
}

/// Positioned reads from an ELF file, so that only the parts needed are read (a `libpython`
/// is tens of megabytes; its headers and symbol tables are a small part of it).
pub trait ElfSource {
    /// `len` bytes at `offset`, or `None` past the end.
    fn bytes_at(&self, offset: u64, len: u64) -> Option<Vec<u8>>;
}

impl ElfSource for std::fs::File {
    fn bytes_at(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0; usize::try_from(len).ok().filter(|l| *l <= MAX_SECTION)?];
        self.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }
}

impl ElfSource for &[u8] {
    fn bytes_at(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.get(start..end).map(<[u8]>::to_vec)
    }
}

/// The largest section we read (a symbol table or `.rodata`).
const MAX_SECTION: usize = 256 << 20;

/// An ELF file's headers, read piece by piece.
struct ElfFile<'a> {
    source: &'a dyn ElfSource,
    header: goblin::elf::Header,
    ctx: Ctx,
    sections: Vec<SectionHeader>,
    section_names: Vec<u8>,
}

impl<'a> ElfFile<'a> {
    fn open(path: &str, source: &'a dyn ElfSource) -> Result<ElfFile<'a>> {
        let bad = |reason: String| Error::Binary {
            path: path.into(),
            reason,
        };
        let head = source
            .bytes_at(0, 64)
            .ok_or_else(|| bad("shorter than an ELF header".into()))?;
        let header = Elf::parse_header(&head).map_err(|e| bad(e.to_string()))?;
        let ctx = Ctx::new(
            header.container().map_err(|e| bad(e.to_string()))?,
            header.endianness().map_err(|e| bad(e.to_string()))?,
        );
        // No section headers (offset or count 0): no symbols, which is not an error.
        let sections = if header.e_shoff == 0 || header.e_shnum == 0 {
            Vec::new()
        } else {
            let table = source
                .bytes_at(
                    header.e_shoff,
                    u64::from(header.e_shnum) * u64::from(header.e_shentsize),
                )
                .ok_or_else(|| bad("section headers past the end".into()))?;
            SectionHeader::parse_from(&table, 0, usize::from(header.e_shnum), ctx)
                .map_err(|e| bad(e.to_string()))?
        };
        let mut file = ElfFile {
            source,
            header,
            ctx,
            sections,
            section_names: Vec::new(),
        };
        if let Some(names) = file.sections.get(usize::from(header.e_shstrndx)) {
            file.section_names = file.contents(names).unwrap_or_default();
        }
        Ok(file)
    }

    fn program_headers(&self) -> Vec<ProgramHeader> {
        let h = &self.header;
        self.source
            .bytes_at(h.e_phoff, u64::from(h.e_phnum) * u64::from(h.e_phentsize))
            .and_then(|b| ProgramHeader::parse(&b, 0, usize::from(h.e_phnum), self.ctx).ok())
            .unwrap_or_default()
    }

    fn contents(&self, section: &SectionHeader) -> Option<Vec<u8>> {
        if section.sh_type == section_header::SHT_NOBITS {
            return None;
        }
        self.source.bytes_at(section.sh_offset, section.sh_size)
    }

    fn name(&self, section: &SectionHeader) -> Option<&str> {
        let names = Strtab::parse(&self.section_names, 0, self.section_names.len(), 0).ok()?;
        let name = names.get_at(section.sh_name)?;
        // Borrow from our own buffer rather than the temporary table.
        let start = section.sh_name;
        std::str::from_utf8(self.section_names.get(start..start + name.len())?).ok()
    }

    fn section(&self, name: &str) -> Option<&SectionHeader> {
        self.sections.iter().find(|s| self.name(s) == Some(name))
    }

    /// Adds the [`WANTED`] symbols defined in every symbol table of kind `kind`.
    fn collect_symbols(&self, kind: u32, out: &mut HashMap<&'static str, u64>) {
        for table in self.sections.iter().filter(|s| s.sh_type == kind) {
            let Some(strings) = self.sections.get(table.sh_link as usize) else {
                continue;
            };
            let (Some(syms), Some(strs)) = (self.contents(table), self.contents(strings)) else {
                continue;
            };
            let count = (table.sh_size / table.sh_entsize.max(1)) as usize;
            let (Ok(symtab), Ok(strtab)) = (
                Symtab::parse(&syms, 0, count, self.ctx),
                Strtab::parse(&strs, 0, strs.len(), 0),
            ) else {
                continue;
            };
            for sym in symtab.iter() {
                if !defined(&sym) {
                    continue;
                }
                let Some(name) = strtab.get_at(sym.st_name) else {
                    continue;
                };
                if let Some(wanted) = WANTED.iter().find(|w| **w == name) {
                    out.entry(*wanted).or_insert(sym.st_value);
                }
            }
        }
    }
}

/// The runtime address of the symbol `name` from the interpreter file's full symbol table
/// (`.symtab`), for a symbol the dynamic table leaves out, such as 3.12's file-local
/// `_Py_next_func_version`. The address must lie in the file's writable data. `None` when the
/// file has no full table (it was stripped) or the symbol is not in it.
pub fn local_data_symbol(process: &Process, binary: &PythonBinary, name: &str) -> Option<u64> {
    let file = std::fs::File::open(process.file_path(&binary.path)).ok()?;
    let value = symtab_value(&binary.path, &file, name, SCAN_PIECE)?;
    let addr = value.wrapping_add(binary.load_bias);
    binary
        .data_ranges
        .iter()
        .any(|&(start, end)| (start..end).contains(&addr))
        .then_some(addr)
}

/// Bytes of a symbol or string table read at a time by [`symtab_value`]: a libpython's full
/// tables are most of a megabyte together, more than the profiler's whole working set, and
/// only one symbol is wanted.
const SCAN_PIECE: usize = 64 << 10;

/// The value of the defined symbol `name` in `source`'s full symbol tables, reading them
/// `piece` bytes at a time: first the string table, for every place that holds `name` and a
/// NUL (a name may also be the tail of a longer one), then the symbols for one named there.
fn symtab_value(path: &str, source: &dyn ElfSource, name: &str, piece: usize) -> Option<u64> {
    let elf = ElfFile::open(path, source).ok()?;
    let mut wanted = name.as_bytes().to_vec();
    wanted.push(0);
    for table in elf
        .sections
        .iter()
        .filter(|s| s.sh_type == section_header::SHT_SYMTAB)
    {
        let Some(strings) = elf.sections.get(table.sh_link as usize) else {
            continue;
        };
        let names = occurrences(source, strings, &wanted, piece);
        let entry = if elf.ctx.container.is_big() {
            goblin::elf::sym::sym64::SIZEOF_SYM
        } else {
            goblin::elf::sym::sym32::SIZEOF_SYM
        } as u64;
        if names.is_empty() || table.sh_entsize < entry {
            continue;
        }
        let count = table.sh_size / table.sh_entsize;
        let per_piece = (piece as u64 / table.sh_entsize).max(1);
        let mut first = 0;
        while first < count {
            let n = per_piece.min(count - first);
            let at = table.sh_offset + first * table.sh_entsize;
            let bytes = source.bytes_at(at, n * table.sh_entsize)?;
            let syms = Symtab::parse(&bytes, 0, n as usize, elf.ctx).ok()?;
            let found = syms
                .iter()
                .find(|sym| defined(sym) && names.contains(&sym.st_name));
            if let Some(sym) = found {
                return Some(sym.st_value);
            }
            first += n;
        }
    }
    None
}

/// True for a symbol the file defines (not one it imports), with an address.
fn defined(sym: &goblin::elf::Sym) -> bool {
    sym.st_shndx != section_header::SHN_UNDEF as usize && sym.st_value != 0
}

/// Every offset in the string table `strings` at which `wanted` (a name and its NUL) starts,
/// reading `piece` bytes at a time.
fn occurrences(
    source: &dyn ElfSource,
    strings: &SectionHeader,
    wanted: &[u8],
    piece: usize,
) -> Vec<usize> {
    let (size, piece) = (strings.sh_size as usize, piece.max(1));
    let mut found = Vec::new();
    let mut start = 0;
    while start < size {
        // Each piece reaches a name's length into the next, so a name across the boundary
        // is seen whole, and only matches starting inside the piece count.
        let len = (piece + wanted.len() - 1).min(size - start);
        let Some(bytes) = source.bytes_at(strings.sh_offset + start as u64, len as u64) else {
            break;
        };
        found.extend(
            bytes
                .windows(wanted.len())
                .enumerate()
                .take(piece)
                .filter(|(_, w)| *w == wanted)
                .map(|(i, _)| start + i),
        );
        start += piece;
    }
    found
}

/// Inspects one file; `Ok(None)` when it is a fine ELF file without the interpreter.
pub fn inspect(
    path: &str,
    source: &dyn ElfSource,
    maps: &[MapRange],
) -> Result<Option<PythonBinary>> {
    let elf = ElfFile::open(path, source)?;
    let mut raw = HashMap::new();
    elf.collect_symbols(section_header::SHT_DYNSYM, &mut raw);
    // The full symbol table is large: read it only when the exported symbols lack the root
    // (2.7 and 3.6 keep `interp_head` static) or the proof that this is Python.
    let has_root = raw.contains_key("_PyRuntime") || raw.contains_key("interp_head");
    if !has_root || !PROOF.iter().any(|p| raw.contains_key(p)) {
        elf.collect_symbols(section_header::SHT_SYMTAB, &mut raw);
    }
    if !PROOF.iter().any(|p| raw.contains_key(p)) {
        return Ok(None);
    }
    let is_dyn = elf.header.e_type == header::ET_DYN;
    let load_bias = if is_dyn {
        let first_load = elf
            .program_headers()
            .iter()
            .filter(|ph| ph.p_type == program_header::PT_LOAD)
            .map(|ph| ph.p_vaddr - ph.p_offset.min(ph.p_vaddr))
            .min()
            .unwrap_or(0);
        let base = maps
            .iter()
            .filter(|m| m.path == path)
            .map(|m| m.start - m.offset.min(m.start))
            .min()
            .ok_or_else(|| Error::Binary {
                path: path.into(),
                reason: "not mapped in the target".into(),
            })?;
        base.wrapping_sub(first_load)
    } else {
        0
    };
    let symbols: HashMap<&'static str, u64> = raw
        .into_iter()
        .map(|(k, v)| (k, v.wrapping_add(load_bias)))
        .collect();
    let version_string = if symbols.contains_key("Py_Version") {
        None
    } else {
        elf.section(".rodata")
            .and_then(|s| elf.contents(s))
            .and_then(|data| version_in(&data, PyVersion::from_file_name(path)))
    };
    let data_ranges = elf
        .sections
        .iter()
        .filter(|sh| {
            sh.sh_flags & u64::from(section_header::SHF_WRITE) != 0
                && sh.sh_flags & u64::from(section_header::SHF_ALLOC) != 0
                && sh.sh_size > 0
                && matches!(elf.name(sh), Some(".PyRuntime" | ".data" | ".bss"))
        })
        .map(|sh| {
            let start = sh.sh_addr.wrapping_add(load_bias);
            (start, start.wrapping_add(sh.sh_size))
        })
        .collect();
    Ok(Some(PythonBinary {
        path: path.into(),
        load_bias,
        symbols,
        version_string,
        data_ranges,
    }))
}

/// The interpreter's version among the `X.Y.Z` strings in `data`. The linker may merge the
/// `PY_VERSION` literal into the tail of a longer string (`…/Python-3.9.18`), so a candidate
/// only has to end with a NUL and not follow a digit or a dot. Candidates must match `hint`'s
/// minor release when given; the most frequent one wins.
fn version_in(data: &[u8], hint: Option<PyVersion>) -> Option<PyVersion> {
    let mut counts: Vec<(PyVersion, usize)> = Vec::new();
    for i in 0..data.len().saturating_sub(4) {
        if !matches!(data[i], b'2' | b'3') || data[i + 1] != b'.' {
            continue;
        }
        if i > 0 && (data[i - 1].is_ascii_digit() || data[i - 1] == b'.') {
            continue;
        }
        let tail = &data[i..data.len().min(i + 17)];
        let Some(len) = tail.iter().position(|b| *b == 0) else {
            continue;
        };
        let text = &tail[..len];
        if text.iter().filter(|b| **b == b'.').count() != 2 {
            continue;
        }
        let Some(v) = std::str::from_utf8(text).ok().and_then(PyVersion::parse) else {
            continue;
        };
        if hint.is_some_and(|h| h.minor_release() != v.minor_release()) {
            continue;
        }
        match counts.iter_mut().find(|(c, _)| *c == v) {
            Some((_, n)) => *n += 1,
            None => counts.push((v, 1)),
        }
    }
    // The most frequent candidate; among equals, the first found.
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts.into_iter().find(|(_, n)| *n == best).map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(path: &str, start: u64, offset: u64) -> MapRange {
        MapRange {
            start,
            end: start + 0x1000,
            perms: "r--p".into(),
            offset,
            path: path.into(),
        }
    }

    #[test]
    fn candidates_put_libpython_and_exe_first() {
        let maps = vec![
            map("/usr/lib/libc.so.6", 0x1000, 0),
            map("/usr/bin/app", 0x2000, 0),
            map("/opt/lib/libpython3.12.so.1.0", 0x3000, 0),
            map("/opt/lib/libpython3.12.so.1.0", 0x4000, 0x1000),
            map("/x/_python_ext.so", 0x5000, 0),
        ];
        assert_eq!(
            candidates(&maps, "/usr/bin/app"),
            vec![
                "/opt/lib/libpython3.12.so.1.0",
                "/usr/bin/app",
                "/x/_python_ext.so",
                "/usr/lib/libc.so.6"
            ]
        );
    }

    #[test]
    fn version_strings_are_found_and_anchored() {
        let data = b"\0zlib\x001.2.13\x00/tmp/build/Python-3.9.18\x003.9.18\x00v13.9.1\x002.7.18\0";
        assert_eq!(version_in(data, None), Some(PyVersion::new(3, 9, 18)));
        let hint = PyVersion::new(2, 7, 0);
        assert_eq!(version_in(data, Some(hint)), Some(PyVersion::new(2, 7, 18)));
        assert_eq!(
            version_in(b"\x003.10.13rc1\0", None).unwrap().to_string(),
            "3.10.13rc1"
        );
        assert_eq!(version_in(b"\x00nothing here\0", None), None);
    }

    #[test]
    fn full_symbol_table_lookups_read_a_piece_at_a_time() {
        // This test program's own full symbol table, whole through goblin and in pieces of
        // every size from smaller than one symbol up: the same values.
        let me = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&me).unwrap();
        let elf = Elf::parse(&bytes).unwrap();
        let mut names: Vec<(String, u64)> = elf
            .syms
            .iter()
            .filter(defined)
            .filter_map(|s| Some((elf.strtab.get_at(s.st_name)?.to_string(), s.st_value)))
            .filter(|(n, _)| n.len() > 3)
            .collect();
        assert!(names.len() > 100, "{} symbols", names.len());
        // A few spread over the table, each the first definition of its name.
        names.dedup_by(|a, b| a.0 == b.0);
        let step = names.len() / 5;
        let file = std::fs::File::open(&me).unwrap();
        for (name, value) in names.iter().step_by(step) {
            let first = elf
                .syms
                .iter()
                .find(|s| defined(s) && elf.strtab.get_at(s.st_name) == Some(name.as_str()))
                .map(|s| s.st_value);
            assert_eq!(first, Some(*value));
            for piece in [7, 24, 1000, SCAN_PIECE] {
                assert_eq!(
                    symtab_value("me", &file, name, piece),
                    Some(*value),
                    "{name} in pieces of {piece}"
                );
            }
        }
        assert_eq!(symtab_value("me", &file, "no_such_symbol_here", 1000), None);
    }

    #[test]
    fn a_file_without_interpreter_symbols_is_not_python() {
        let me = std::env::current_exe().unwrap();
        let file = std::fs::File::open(&me).unwrap();
        let path = me.to_string_lossy().into_owned();
        assert!(inspect(&path, &file, &[]).unwrap().is_none());
        assert!(inspect("junk", &&b"not an elf file at all"[..], &[]).is_err());
        assert!(inspect("short", &&b"\x7fELF"[..], &[]).is_err());
    }
}
