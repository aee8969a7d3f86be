//! [`Layout`]: the offsets plus the few algorithm choices that differ between CPython versions,
//! decided once at attach time. This is the only file that compares version numbers.

use crate::error::{Error, Result};
use crate::python::debug_offsets::DebugOffsets;
use crate::python::offsets::{newest_table_version, Offsets, Table};
use crate::python::version::PyVersion;

/// The oldest version this build can sample.
pub const OLDEST_SUPPORTED: PyVersion = PyVersion::new(3, 11, 0);

/// The supported range, for messages: `3.11 to 3.15`.
pub fn supported_range() -> String {
    let newest = newest_table_version();
    format!(
        "CPython {}.{} to {}.{}",
        OLDEST_SUPPORTED.major, OLDEST_SUPPORTED.minor, newest.major, newest.minor
    )
}

/// How a thread state leads to its innermost frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameRoot {
    /// 3.11, 3.12: `tstate->cframe->current_frame`.
    ViaCFrame {
        /// `PyThreadState.cframe`.
        cframe: u64,
        /// `_PyCFrame.current_frame`.
        current_frame: u64,
    },
    /// 3.13+: `tstate->current_frame`.
    Direct {
        /// `PyThreadState.current_frame`.
        current_frame: u64,
    },
}

/// How a frame refers to its code object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRef {
    /// A plain `PyObject *` (3.11–3.13).
    Plain,
    /// A `_PyStackRef` whose low bits are tags (3.14+): clear them to get the pointer.
    Tagged {
        /// The bits to clear.
        tag_bits: u64,
    },
}

impl CodeRef {
    /// The object address a frame's code reference points to.
    pub fn pointer(self, raw: u64) -> u64 {
        match self {
            CodeRef::Plain => raw,
            CodeRef::Tagged { tag_bits } => raw & !tag_bits,
        }
    }
}

/// How line numbers are encoded in code objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTableFormat {
    /// The 3.11+ location table (`co_linetable`), see [`crate::python::linetable`].
    Locations,
}

/// `PyThreadState` fields.
#[derive(Debug, Clone)]
pub struct ThreadLayout {
    /// Bytes to read for one thread state.
    pub size: u64,
    /// `next`.
    pub next: u64,
    /// `thread_id`.
    pub thread_id: u64,
    /// `native_thread_id`.
    pub native_thread_id: u64,
    /// Where the innermost frame hangs.
    pub root: FrameRoot,
    /// `datastack_chunk` and `datastack_top`, when known, for reading frames in one go.
    pub datastack: Option<(u64, u64)>,
}

/// `_PyInterpreterFrame` fields.
#[derive(Debug, Clone)]
pub struct FrameLayout {
    /// Bytes of the fixed part of a frame (up to `localsplus`).
    pub size: u64,
    /// `previous`.
    pub previous: u64,
    /// `f_executable` / `f_code`.
    pub executable: u64,
    /// `instr_ptr` / `prev_instr`.
    pub instr: u64,
    /// `owner`.
    pub owner: u64,
    /// Owner values of frames that are interpreter shims, not Python code.
    pub shim_owners: Vec<u8>,
    /// How the code reference is encoded.
    pub code_ref: CodeRef,
}

/// `PyCodeObject` fields.
#[derive(Debug, Clone)]
pub struct CodeLayout {
    /// Bytes to read to cover every field below.
    pub size: u64,
    /// `co_filename`.
    pub filename: u64,
    /// `co_name`.
    pub name: u64,
    /// `co_qualname`.
    pub qualname: u64,
    /// `co_firstlineno`.
    pub firstlineno: u64,
    /// `co_linetable`.
    pub linetable: u64,
    /// `co_code_adaptive`: the bytecode's start.
    pub code_start: u64,
    /// The line table's format.
    pub line_table: LineTableFormat,
}

/// Object header and string fields.
#[derive(Debug, Clone)]
pub struct ObjectLayout {
    /// `PyObject.ob_type`.
    pub ob_type: u64,
    /// `PyVarObject.ob_size`.
    pub ob_size: u64,
    /// `PyTypeObject.tp_name`.
    pub tp_name: u64,
    /// `PyBytesObject.ob_sval`.
    pub bytes_data: u64,
    /// Unicode objects.
    pub unicode: UnicodeLayout,
}

/// Where a `str` keeps its length, flags and characters.
#[derive(Debug, Clone)]
pub struct UnicodeLayout {
    /// `PyASCIIObject.length`.
    pub length: u64,
    /// `PyASCIIObject.state`.
    pub state: u64,
    /// Characters of a compact ASCII string start here.
    pub ascii_data: u64,
    /// Characters of a compact non-ASCII string start here.
    pub compact_data: u64,
    /// `kind` bit position and width mask in `state`.
    pub kind_shift: u32,
    /// See `kind_shift`.
    pub kind_mask: u32,
    /// `compact` bit position.
    pub compact_shift: u32,
    /// `ascii` bit position.
    pub ascii_shift: u32,
}

/// Everything the walker needs to know about one interpreter build.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The target's version.
    pub version: PyVersion,
    /// Where the offsets came from, for `-v` and bug reports.
    pub source: String,
    /// `_PyRuntimeState.interpreters.head`.
    pub runtime_interpreters_head: u64,
    /// `PyInterpreterState.next`.
    pub interp_next: u64,
    /// `PyInterpreterState.threads.head`.
    pub interp_threads_head: u64,
    /// Thread states.
    pub thread: ThreadLayout,
    /// Interpreter frames.
    pub frame: FrameLayout,
    /// Code objects.
    pub code: CodeLayout,
    /// Other objects.
    pub object: ObjectLayout,
}

impl Layout {
    /// Checks that `version` is one this build samples.
    pub fn check_supported(version: PyVersion) -> Result<()> {
        let newest = newest_table_version();
        if version < OLDEST_SUPPORTED || version.minor_release() > newest.minor_release() {
            return Err(Error::UnsupportedVersion {
                found: version.to_string(),
                supported: supported_range(),
            });
        }
        Ok(())
    }

    /// Builds the layout for `version` from its table and, on 3.13+, the target's debug offsets.
    pub fn new(version: PyVersion, table: &Table, debug: Option<&DebugOffsets>) -> Result<Layout> {
        Self::check_supported(version)?;
        let mut offsets = Offsets::from_table(table);
        let mut source = format!("python-offsets/{}.toml", table.name);
        if let Some(debug) = debug {
            if debug.version.minor_release() != version.minor_release() {
                return Err(Error::corrupt(format!(
                    "_Py_DebugOffsets says {} but the binary says {version}",
                    debug.version
                )));
            }
            if debug.free_threaded {
                return Err(Error::UnsupportedVersion {
                    found: format!("{version} (free-threaded build)"),
                    supported: format!("{} with the GIL", supported_range()),
                });
            }
            debug.apply(&mut offsets);
            source = format!("_Py_DebugOffsets, then {source}");
        } else if version >= PyVersion::new(3, 13, 0) {
            return Err(Error::corrupt(format!(
                "{version} has no readable _Py_DebugOffsets"
            )));
        }
        let need = |name: &str| offsets.need(name, &source);
        let source_name = source.clone();

        let root = if version < PyVersion::new(3, 13, 0) {
            FrameRoot::ViaCFrame {
                cframe: need("tstate_cframe")?,
                current_frame: need("cframe_current_frame")?,
            }
        } else {
            FrameRoot::Direct {
                current_frame: need("tstate_current_frame")?,
            }
        };
        let code_ref = if version >= PyVersion::new(3, 14, 0) {
            CodeRef::Tagged {
                tag_bits: need("tag_bits")?,
            }
        } else {
            CodeRef::Plain
        };
        // 3.11 has no shim frames; 3.12+ marks C-stack entry frames, 3.14+ also the
        // interpreter's own base frame.
        let shim_owners = [offsets.owner_cstack, offsets.owner_interpreter]
            .into_iter()
            .flatten()
            .map(|o| o as u8)
            .collect();

        let thread = ThreadLayout {
            size: need("tstate_size")?,
            next: need("tstate_next")?,
            thread_id: need("tstate_thread_id")?,
            native_thread_id: need("tstate_native_thread_id")?,
            root,
            datastack: offsets
                .tstate_datastack_chunk
                .zip(offsets.tstate_datastack_top),
        };
        let frame = FrameLayout {
            size: need("frame_localsplus")?,
            previous: need("frame_previous")?,
            executable: need("frame_executable")?,
            instr: need("frame_instr")?,
            owner: need("frame_owner")?,
            shim_owners,
            code_ref,
        };
        let code_fields = [
            "code_filename",
            "code_name",
            "code_qualname",
            "code_firstlineno",
            "code_linetable",
            "code_adaptive",
        ];
        let end_of = |f: &str| -> Result<u64> {
            need(f)?
                .checked_add(8)
                .ok_or_else(|| Error::corrupt(format!("offset of {f} overflows")))
        };
        let mut code_size = 0;
        for f in code_fields {
            code_size = code_size.max(end_of(f)?);
        }
        let code = CodeLayout {
            size: code_size.max(end_of("varobject_size")?),
            filename: need("code_filename")?,
            name: need("code_name")?,
            qualname: need("code_qualname")?,
            firstlineno: need("code_firstlineno")?,
            linetable: need("code_linetable")?,
            code_start: need("code_adaptive")?,
            line_table: LineTableFormat::Locations,
        };
        let unicode = UnicodeLayout {
            length: need("ascii_length")?,
            state: need("ascii_state")?,
            ascii_data: need("ascii_size")?,
            compact_data: need("compact_size")?,
            kind_shift: need("state_kind_shift")? as u32,
            kind_mask: need("state_kind_mask")? as u32,
            compact_shift: need("state_compact_shift")? as u32,
            ascii_shift: need("state_ascii_shift")? as u32,
        };
        let object = ObjectLayout {
            ob_type: need("object_type")?,
            ob_size: need("varobject_size")?,
            tp_name: need("type_name")?,
            bytes_data: need("bytes_data")?,
            unicode,
        };
        Ok(Layout {
            version,
            source: source_name,
            runtime_interpreters_head: need("runtime_interpreters_head")?,
            interp_next: need("interp_next")?,
            interp_threads_head: need("interp_threads_head")?,
            thread,
            frame,
            code,
            object,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::offsets::table_for;

    #[test]
    fn supported_range_is_checked() {
        assert!(Layout::check_supported(PyVersion::new(3, 10, 13)).is_err());
        assert!(Layout::check_supported(PyVersion::new(3, 11, 0)).is_ok());
        assert!(Layout::check_supported(PyVersion::new(3, 15, 2)).is_ok());
        let err = Layout::check_supported(PyVersion::new(3, 99, 0)).unwrap_err();
        assert!(err.to_string().contains("3.11 to"), "{err}");
    }

    #[test]
    fn pre_313_layouts_come_from_tables_alone() {
        for v in [PyVersion::new(3, 11, 7), PyVersion::new(3, 12, 1)] {
            let table = table_for(v).unwrap().unwrap();
            let layout = Layout::new(v, &table, None).unwrap();
            assert!(matches!(layout.thread.root, FrameRoot::ViaCFrame { .. }));
            assert_eq!(layout.frame.code_ref, CodeRef::Plain);
        }
        let v = PyVersion::new(3, 13, 0);
        let table = table_for(v).unwrap().unwrap();
        assert!(
            Layout::new(v, &table, None).is_err(),
            "3.13 needs debug offsets"
        );
    }

    #[test]
    fn tagged_references_lose_their_tags() {
        assert_eq!(CodeRef::Tagged { tag_bits: 3 }.pointer(0x1003), 0x1000);
        assert_eq!(CodeRef::Plain.pointer(0x1003), 0x1003);
    }
}
