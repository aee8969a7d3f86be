//! Find the CPython interpreter's code in a target: which mapped ELF file holds it (the python
//! executable or `libpython`), its symbols, and the load bias that turns a symbol's value into a
//! runtime address.
//!
//! A file counts as Python because it *defines* interpreter symbols, not because of its name:
//! the name only decides the order in which files are inspected.

use std::collections::HashMap;
use std::path::Path;

use goblin::elf::{header, program_header, section_header, Elf};

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
    "Py_GetVersion",
];

/// Symbols that prove a file contains the interpreter when it defines one of them.
const PROOF: &[&str] = &[
    "_PyRuntime",
    "Py_Version",
    "interp_head",
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

    /// The file's base name, for messages.
    pub fn file_name(&self) -> &str {
        Path::new(&self.path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&self.path)
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
        let Ok(bytes) = std::fs::read(&file_path) else {
            continue;
        };
        match inspect(&path, &bytes, maps) {
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

/// Parses one file; `Ok(None)` when it is a fine ELF file without the interpreter.
pub fn inspect(path: &str, bytes: &[u8], maps: &[MapRange]) -> Result<Option<PythonBinary>> {
    let elf = Elf::parse(bytes).map_err(|e| Error::Binary {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let mut raw = HashMap::new();
    collect_symbols(&elf, &elf.dynsyms, &elf.dynstrtab, &mut raw);
    collect_symbols(&elf, &elf.syms, &elf.strtab, &mut raw);
    if !PROOF.iter().any(|p| raw.contains_key(p)) {
        return Ok(None);
    }
    let is_dyn = elf.header.e_type == header::ET_DYN;
    let load_bias = if is_dyn {
        let first_load = elf
            .program_headers
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
        find_version_string(&elf, bytes, PyVersion::from_file_name(path))
    };
    let data_ranges = elf
        .section_headers
        .iter()
        .filter(|sh| {
            sh.sh_flags & u64::from(section_header::SHF_WRITE) != 0
                && sh.sh_flags & u64::from(section_header::SHF_ALLOC) != 0
                && sh.sh_size > 0
                && matches!(
                    elf.shdr_strtab.get_at(sh.sh_name),
                    Some(".PyRuntime" | ".data" | ".bss")
                )
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

/// Finds the interpreter's `PY_VERSION` string (`"3.9.18"`, a NUL-terminated literal) in the
/// file's `.rodata`. When the file name tells the minor release, only strings of that release
/// count, which rules out the version strings of bundled libraries.
fn find_version_string(elf: &Elf<'_>, bytes: &[u8], hint: Option<PyVersion>) -> Option<PyVersion> {
    let rodata = elf.section_headers.iter().find(|sh| {
        elf.shdr_strtab.get_at(sh.sh_name) == Some(".rodata")
            && sh.sh_type != section_header::SHT_NOBITS
    })?;
    let start = usize::try_from(rodata.sh_offset).ok()?;
    let data = bytes.get(start..start.checked_add(usize::try_from(rodata.sh_size).ok()?)?)?;
    version_in(data, hint)
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

fn collect_symbols(
    elf: &Elf<'_>,
    syms: &goblin::elf::Symtab<'_>,
    strtab: &goblin::strtab::Strtab<'_>,
    out: &mut HashMap<&'static str, u64>,
) {
    let _ = elf;
    for sym in syms.iter() {
        if sym.st_shndx == section_header::SHN_UNDEF as usize || sym.st_value == 0 {
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
    fn a_file_without_interpreter_symbols_is_not_python() {
        let me = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&me).unwrap();
        let path = me.to_string_lossy().into_owned();
        assert!(inspect(&path, &bytes, &[]).unwrap().is_none());
        assert!(inspect("junk", b"not an elf file at all", &[]).is_err());
    }
}
