//! `_Py_DebugOffsets` (3.13+): the table of offsets CPython keeps at the very start of
//! `_PyRuntime` for out-of-process tools. Its own layout is fixed within a minor release and is
//! described by the `[_Py_DebugOffsets]` section of that release's table; the values in it come
//! from the target and are the source of truth for every field they cover.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::process::{Fields, ReadMemory, RemoteAddr};
use crate::python::offsets::{Offsets, Table, FIELD_SOURCES};
use crate::python::version::PyVersion;

/// The section of a table that describes `_Py_DebugOffsets` itself.
pub const SECTION: &str = "_Py_DebugOffsets";

/// The cookie `_Py_DebugOffsets` starts with.
pub const COOKIE: &[u8; 8] = b"xdebugpy";

/// The largest `_Py_DebugOffsets` we accept: a bigger size in a table is a broken table.
const MAX_SIZE: u64 = 64 << 10;

/// The largest offset or size we accept from a target's debug offsets. The values come from
/// the target's memory, so they are checked like any other remote data.
const MAX_VALUE: u64 = 1 << 20;

/// Values read from a target's `_Py_DebugOffsets`.
#[derive(Debug, Clone)]
pub struct DebugOffsets {
    /// The version the target wrote into the table.
    pub version: PyVersion,
    /// True for a free-threaded build.
    pub free_threaded: bool,
    /// Every leaf the table layout names, by its dotted path.
    pub values: BTreeMap<String, u64>,
}

impl DebugOffsets {
    /// Reads the debug offsets at `runtime` using the layout in `table`. `Ok(None)` when the
    /// table has no `_Py_DebugOffsets` section (before 3.13).
    pub fn read(
        mem: &dyn ReadMemory,
        runtime: RemoteAddr,
        table: &Table,
    ) -> Result<Option<DebugOffsets>> {
        let Some(size) = table.get(SECTION, "sizeof") else {
            return Ok(None);
        };
        if size > MAX_SIZE {
            return Err(Error::Offsets {
                table: table.name.into(),
                reason: format!("_Py_DebugOffsets of {size} bytes"),
            });
        }
        let bytes = mem.read_vec(runtime, size as usize)?;
        Self::decode(&bytes, table).map(Some)
    }

    /// Decodes a copy of the structure.
    pub fn decode(bytes: &[u8], table: &Table) -> Result<DebugOffsets> {
        let cookie_at = table.require(SECTION, "cookie")? as usize;
        if bytes.get(cookie_at..cookie_at + COOKIE.len()) != Some(&COOKIE[..]) {
            return Err(Error::corrupt(
                "no _Py_DebugOffsets cookie at the start of _PyRuntime",
            ));
        }
        let hex = bytes.u64_at(table.require(SECTION, "version")?)?;
        let version = u32::try_from(hex)
            .ok()
            .and_then(PyVersion::from_hex)
            .ok_or_else(|| Error::corrupt(format!("_Py_DebugOffsets version {hex:#x}")))?;
        let free_threaded = match table.get(SECTION, "free_threaded") {
            Some(at) => bytes.u64_at(at)? != 0,
            None => false,
        };
        let mut values = BTreeMap::new();
        for (key, at) in table_keys(table) {
            let value = bytes.u64_at(at)?;
            if value > MAX_VALUE {
                return Err(Error::corrupt(format!(
                    "_Py_DebugOffsets gives {key} = {value}"
                )));
            }
            values.insert(key, value);
        }
        Ok(DebugOffsets {
            version,
            free_threaded,
            values,
        })
    }

    /// Overwrites every field of `offsets` that the debug offsets cover. Returns the names of
    /// the fields it set.
    pub fn apply(&self, offsets: &mut Offsets) -> Vec<&'static str> {
        let mut set = Vec::new();
        for (field, _, _, debug_path) in FIELD_SOURCES {
            if let Some(value) = debug_path.and_then(|p| self.values.get(p)) {
                offsets.set(field, *value);
                set.push(*field);
            }
        }
        set
    }

    /// Fields where the target's debug offsets and the shipped table disagree:
    /// `(field, from the table, from the target)`.
    pub fn disagreements(&self, table: &Table) -> Vec<(&'static str, u64, u64)> {
        let from_table = Offsets::from_table(table);
        let mut from_target = from_table.clone();
        let covered = self.apply(&mut from_target);
        covered
            .into_iter()
            .filter_map(|f| match (from_table.get(f), from_target.get(f)) {
                (Some(a), Some(b)) if a != b => Some((f, a, b)),
                _ => None,
            })
            .collect()
    }
}

/// The leaf paths of the section with their positions, without the header fields.
fn table_keys(table: &Table) -> Vec<(String, u64)> {
    FIELD_SOURCES
        .iter()
        .filter_map(|(_, _, _, p)| *p)
        .filter_map(|p| table.get(SECTION, p).map(|at| (p.to_string(), at)))
        .collect()
}
