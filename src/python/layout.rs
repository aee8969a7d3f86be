//! [`Layout`]: the offsets plus the few algorithm choices that differ between CPython versions,
//! decided once at attach time. This is the only file that compares version numbers.

use crate::error::{Error, Result};
use crate::python::debug_offsets::DebugOffsets;
use crate::python::offsets::{newest_table_version, Offsets, Table};
use crate::python::version::PyVersion;

/// The oldest Python 3 this build can sample (besides 2.7).
pub const OLDEST_SUPPORTED: PyVersion = PyVersion::new(3, 6, 0);

/// The supported range, for messages: `CPython 2.7 and 3.6 to 3.15`.
pub fn supported_range() -> String {
    let newest = newest_table_version();
    format!(
        "CPython 2.7 and {}.{} to {}.{}",
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
    /// 3.13+: `tstate->current_frame`; up to 3.10: `tstate->frame`.
    Direct {
        /// `PyThreadState.current_frame` or `PyThreadState.frame`.
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

/// How line numbers are encoded in code objects (see [`crate::python::linetable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTableFormat {
    /// `co_lnotab` (2.7–3.9); line increments are signed from 3.6 on.
    Lnotab {
        /// False for 2.7's unsigned line increments.
        signed_lines: bool,
    },
    /// The 3.10 `co_linetable`.
    Linetable310,
    /// The 3.11+ location table (`co_linetable`).
    Locations,
}

/// Where a code object's bytecode lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bytecode {
    /// Inside the code object from this offset (3.11+, `co_code_adaptive`); its length is the
    /// code object's `ob_size` in code units.
    Inline {
        /// Offset of the first instruction.
        start: u64,
    },
    /// In a separate bytes object (`co_code`, up to 3.10).
    Separate {
        /// Offset of the `co_code` pointer.
        co_code: u64,
    },
}

/// The frame model.
#[derive(Debug, Clone)]
pub enum FrameModel {
    /// 3.11+: `_PyInterpreterFrame`s, mostly in the thread's data stack.
    Interpreter(FrameLayout),
    /// 2.7–3.10: heap-allocated frame objects chained by `f_back`.
    Objects(FrameObjectLayout),
}

/// `PyFrameObject` fields (2.7–3.10).
#[derive(Debug, Clone)]
pub struct FrameObjectLayout {
    /// Bytes of the fixed part (up to `f_localsplus`).
    pub size: u64,
    /// `f_back`.
    pub back: u64,
    /// `f_code`.
    pub code: u64,
    /// `f_lasti`.
    pub lasti: u64,
    /// Bytes per unit of `f_lasti`: 1 up to 3.9 (a byte offset), 2 in 3.10 (code units).
    pub lasti_bytes: i64,
}

/// Where the interpreter says which thread holds the GIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GilHolder {
    /// A variable holding the GIL holder's thread state (NULL when released): the
    /// `_PyThreadState_Current` symbol (2.7, 3.6) or, at this offset in the runtime,
    /// `_PyRuntime.gilstate.tstate_current` (3.7–3.11).
    CurrentThread {
        /// Offset in `_PyRuntime`; `None` for the `_PyThreadState_Current` symbol.
        runtime_offset: Option<u64>,
    },
    /// 3.12+: each interpreter's GIL, at these offsets in `PyInterpreterState`: `locked`
    /// (an int) and `last_holder` (the holder while locked).
    InterpreterGil {
        /// Offset of `_gil.locked`.
        locked: u64,
        /// Offset of `_gil.last_holder`.
        holder: u64,
    },
    /// 3.12+: each thread state says whether its thread holds the GIL, in the 32-bit word at
    /// `word`: it does when `word & mask == value` (3.12: the `active` bit of `_status`,
    /// 3.13+: `state == _Py_THREAD_ATTACHED`). Read with the thread state, this costs nothing
    /// more, where the interpreter's GIL is a read of its own, often on a page of its own.
    ThreadWord {
        /// Offset in `PyThreadState`.
        word: u64,
        /// The bits that tell.
        mask: u32,
        /// What they hold while the thread holds the GIL.
        value: u32,
    },
}

/// How names and file names are stored.
#[derive(Debug, Clone)]
pub enum NameStrings {
    /// `str` objects (Python 3, PEP 393).
    Unicode(UnicodeLayout),
    /// Byte strings (Python 2's `str`), decoded as UTF-8.
    Bytes,
}

/// `PyThreadState` fields.
#[derive(Debug, Clone)]
pub struct ThreadLayout {
    /// Bytes to read for one thread state.
    pub size: u64,
    /// `next`.
    pub next: u64,
    /// `interp`: the thread state's interpreter, which must point back to the list's owner.
    pub interp: u64,
    /// `thread_id`.
    pub thread_id: u64,
    /// `native_thread_id` (3.11+; older versions are mapped through glibc, see
    /// [`crate::process::pthread`]).
    pub native_thread_id: Option<u64>,
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
    /// The data stack's chunks, when their fields are known: frames in older chunks are then
    /// read a chunk at a time.
    pub chunk: Option<ChunkLayout>,
}

/// `_PyStackChunk` fields.
#[derive(Debug, Clone, Copy)]
pub struct ChunkLayout {
    /// `previous`.
    pub previous: u64,
    /// `size`, in bytes with the header.
    pub size: u64,
    /// `top`, in words of `data`.
    pub top: u64,
    /// `data`.
    pub data: u64,
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
    /// `co_qualname` (3.11+; older versions show `co_name`).
    pub qualname: Option<u64>,
    /// `co_firstlineno`.
    pub firstlineno: u64,
    /// `co_linetable`.
    pub linetable: u64,
    /// Where the bytecode is.
    pub bytecode: Bytecode,
    /// The line table's format.
    pub line_table: LineTableFormat,
    /// `_co_firsttraceable` (3.12+), a 32-bit count of code units.
    pub first_traceable: Option<u64>,
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
    /// `PyBytesObject.ob_sval` (`PyStringObject.ob_sval` in 2.7).
    pub bytes_data: u64,
    /// How names are stored.
    pub names: NameStrings,
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

/// Where an instance keeps its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceDict {
    /// A dict pointer at the type's `tp_dictoffset` (2.7–3.10, and types without a managed
    /// dict later).
    AtDictOffset,
    /// 3.11: with `Py_TPFLAGS_MANAGED_DICT`, a values pointer `values_before` bytes before the
    /// object (attributes in the type's shared keys) or else a dict pointer `dict_before`
    /// bytes before it.
    Managed311 {
        /// `Py_TPFLAGS_MANAGED_DICT`.
        flag: u64,
        /// Bytes before the object of the dict pointer.
        dict_before: u64,
        /// Bytes before the object of the values pointer.
        values_before: u64,
    },
    /// 3.12: one word `before` bytes before the object: a dict pointer or, when its low bit
    /// is set, the values pointer minus one.
    Tagged312 {
        /// `Py_TPFLAGS_MANAGED_DICT`.
        flag: u64,
        /// Bytes before the object.
        before: u64,
    },
    /// 3.13+: a dict pointer `dict_before` bytes before the object when the dict exists, else
    /// (with `Py_TPFLAGS_INLINE_VALUES`) values inline at the end of the object's basic size.
    Inline313 {
        /// `Py_TPFLAGS_MANAGED_DICT`.
        flag: u64,
        /// `Py_TPFLAGS_INLINE_VALUES`.
        inline_flag: u64,
        /// Bytes before the object of the dict pointer.
        dict_before: u64,
    },
}

/// A dict's entries table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryLayout {
    /// Bytes per entry.
    pub size: u64,
    /// The key pointer.
    pub key: u64,
    /// The value pointer.
    pub value: u64,
}

/// How a dict stores its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DictLayout {
    /// 2.7: an open-addressing table of `ma_mask + 1` entries at `ma_table`.
    Table {
        /// `ma_mask`.
        mask: u64,
        /// `ma_table`.
        table: u64,
        /// `PyDictEntry`.
        entry: EntryLayout,
    },
    /// 3.6+: a keys object (indices, then entries in insertion order) and, for split dicts,
    /// a separate values array.
    Keys {
        /// `ma_keys`.
        keys: u64,
        /// `ma_values`.
        values: u64,
        /// The keys object.
        keys_layout: KeysLayout,
        /// Where the value pointers start in a values block (3.11+ `PyDictValues.values`;
        /// 0 for the plain array of 3.6–3.10).
        values_start: u64,
        /// `PyDictValues.valid` (3.13+).
        values_valid: Option<u64>,
    },
}

/// `PyDictKeysObject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysLayout {
    /// 3.6–3.10: `dk_size` slots of 1–8 byte indices, then entries with a hash.
    Sized {
        /// `dk_size`.
        size: u64,
        /// `dk_nentries`.
        nentries: u64,
        /// `dk_indices`.
        indices: u64,
        /// The entries.
        entry: EntryLayout,
    },
    /// 3.11+: `1 << dk_log2_index_bytes` bytes of indices, then entries whose shape
    /// `dk_kind` tells.
    Log2 {
        /// `dk_log2_index_bytes`.
        log2_index_bytes: u64,
        /// `dk_kind`.
        kind: u64,
        /// `dk_nentries`.
        nentries: u64,
        /// `dk_indices`.
        indices: u64,
        /// The `dk_kind` of tables with hashed entries.
        general_kind: u64,
        /// Entries with a hash.
        general: EntryLayout,
        /// Entries of `str`-keyed tables.
        unicode: EntryLayout,
    },
}

/// How an `int` stores its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntLayout {
    /// Where the digits start.
    pub digits: u64,
    /// `long_value.lv_tag` (3.12+: digit count << 3 | sign); else the sign and count are
    /// `ob_size`.
    pub tag: Option<u64>,
    /// Bits per digit.
    pub shift: u32,
    /// Bytes per digit.
    pub digit_size: u64,
    /// 2.7's small `int`: `ob_ival`.
    pub py2_int_value: Option<u64>,
}

/// Where a frame keeps its arguments and locals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalsLayout {
    /// 2.7–3.10: `f_localsplus` holds `co_nlocals` locals (named by `co_varnames`), then the
    /// cells (`co_cellvars`) and free variables (`co_freevars`).
    Objects {
        /// `PyFrameObject.f_localsplus`.
        localsplus: u64,
        /// `co_nlocals`.
        nlocals: u64,
        /// `co_varnames`.
        varnames: u64,
        /// `co_cellvars`.
        cellvars: u64,
        /// `co_freevars`.
        freevars: u64,
    },
    /// 3.11+: `co_nlocalsplus` slots at `localsplus`, named by `co_localsplusnames`, each of a
    /// kind from `co_localspluskinds`.
    Interpreter {
        /// `_PyInterpreterFrame.localsplus`.
        localsplus: u64,
        /// `co_nlocalsplus`.
        nlocalsplus: u64,
        /// `co_localsplusnames`.
        names: u64,
        /// `co_localspluskinds`.
        kinds: u64,
        /// `CO_FAST_CELL | CO_FAST_FREE`: slots that hold a cell.
        cell_kinds: u8,
        /// `CO_FAST_HIDDEN` (3.12+): compiler temporaries, not shown.
        hidden_kind: u8,
        /// Tag bits of a `_PyStackRef` slot (3.14+); 0 before.
        tag_bits: u64,
    },
}

/// Objects read for thread names and `dump --locals`: optional, as sampling needs none of it.
#[derive(Debug, Clone)]
pub struct ValueLayout {
    /// `PyInterpreterState.modules` / `imports.modules`.
    pub interp_modules: u64,
    /// `tp_flags`.
    pub type_flags: u64,
    /// `tp_basicsize`.
    pub type_basicsize: u64,
    /// `tp_dictoffset`.
    pub type_dictoffset: u64,
    /// `PyHeapTypeObject.ht_cached_keys` (3.x).
    pub cached_keys: Option<u64>,
    /// Where instances keep attributes.
    pub instance_dict: InstanceDict,
    /// `PyModuleObject.md_dict`.
    pub module_dict: u64,
    /// `ma_used`.
    pub dict_used: u64,
    /// The dict's storage.
    pub dict: DictLayout,
    /// `int`s.
    pub int: IntLayout,
    /// `PyFloatObject.ob_fval`.
    pub float_value: u64,
    /// `PySetObject.used`.
    pub set_used: u64,
    /// `PyCellObject.ob_ref`.
    pub cell_ref: u64,
    /// 2.7's `unicode`: `(length, str, bytes per code unit)`.
    pub py2_unicode: Option<(u64, u64, u64)>,
    /// `PyTupleObject.ob_item`.
    pub tuple_items: u64,
    /// `co_argcount`.
    pub code_argcount: u64,
    /// `co_kwonlyargcount` (3.x).
    pub code_kwonlyargcount: Option<u64>,
    /// `co_flags`.
    pub code_flags: u64,
    /// `CO_VARARGS | CO_VARKEYWORDS`, each an extra argument slot.
    pub varargs_flags: (u32, u32),
    /// Frame slots.
    pub locals: LocalsLayout,
}

impl ValueLayout {
    fn new(version: PyVersion, offsets: &Offsets, source: &str) -> Result<ValueLayout> {
        let need = |name: &str| offsets.need(name, source);
        let at_least = |major, minor| version >= PyVersion::new(major, minor, 0);
        let entry = |size: &str, key: &str, value: &str| -> Result<EntryLayout> {
            Ok(EntryLayout {
                size: need(size)?,
                key: need(key)?,
                value: need(value)?,
            })
        };
        let dict = if version.major == 2 {
            DictLayout::Table {
                mask: need("py2_dict_mask")?,
                table: need("py2_dict_table")?,
                entry: entry("py2_entry_size", "py2_entry_key", "py2_entry_value")?,
            }
        } else {
            let general = entry("entry_size", "entry_key", "entry_value")?;
            let keys_layout = if at_least(3, 11) {
                KeysLayout::Log2 {
                    log2_index_bytes: need("keys_log2_index_bytes")?,
                    kind: need("keys_kind")?,
                    nentries: need("keys_nentries")?,
                    indices: need("keys_indices")?,
                    general_kind: need("dict_keys_general")?,
                    general,
                    unicode: entry(
                        "unicode_entry_size",
                        "unicode_entry_key",
                        "unicode_entry_value",
                    )?,
                }
            } else {
                KeysLayout::Sized {
                    size: need("keys_size")?,
                    nentries: need("keys_nentries")?,
                    indices: need("keys_indices")?,
                    entry: general,
                }
            };
            DictLayout::Keys {
                keys: need("dict_keys")?,
                values: need("dict_values")?,
                keys_layout,
                values_start: if at_least(3, 11) {
                    need("dict_values_values")?
                } else {
                    0
                },
                values_valid: if at_least(3, 13) {
                    Some(need("dict_values_valid")?)
                } else {
                    None
                },
            }
        };
        let instance_dict = if at_least(3, 13) {
            InstanceDict::Inline313 {
                flag: need("tpflags_managed_dict")?,
                inline_flag: need("tpflags_inline_values")?,
                dict_before: need("managed_dict_before")?,
            }
        } else if at_least(3, 12) {
            InstanceDict::Tagged312 {
                flag: need("tpflags_managed_dict")?,
                before: need("managed_dict_before")?,
            }
        } else if at_least(3, 11) {
            InstanceDict::Managed311 {
                flag: need("tpflags_managed_dict")?,
                dict_before: need("managed_dict_before")?,
                values_before: need("managed_values_before")?,
            }
        } else {
            InstanceDict::AtDictOffset
        };
        let int = IntLayout {
            digits: need("long_digits")?,
            tag: if at_least(3, 12) {
                Some(need("long_tag")?)
            } else {
                None
            },
            shift: need("long_shift")? as u32,
            digit_size: need("digit_size")?,
            py2_int_value: if version.major == 2 {
                Some(need("py2_int_value")?)
            } else {
                None
            },
        };
        let locals = if at_least(3, 11) {
            LocalsLayout::Interpreter {
                localsplus: need("frame_localsplus")?,
                nlocalsplus: need("code_nlocalsplus")?,
                names: need("code_localsplusnames")?,
                kinds: need("code_localspluskinds")?,
                cell_kinds: (need("co_fast_cell")? | need("co_fast_free")?) as u8,
                hidden_kind: offsets.co_fast_hidden.unwrap_or(0) as u8,
                tag_bits: if at_least(3, 14) {
                    need("tag_bits")?
                } else {
                    0
                },
            }
        } else {
            LocalsLayout::Objects {
                localsplus: need("fobj_localsplus")?,
                nlocals: need("code_nlocals")?,
                varnames: need("code_varnames")?,
                cellvars: need("code_cellvars")?,
                freevars: need("code_freevars")?,
            }
        };
        Ok(ValueLayout {
            interp_modules: need("interp_modules")?,
            type_flags: need("type_flags")?,
            type_basicsize: need("type_basicsize")?,
            type_dictoffset: need("type_dictoffset")?,
            cached_keys: if version.major == 3 {
                Some(need("heaptype_cached_keys")?)
            } else {
                None
            },
            instance_dict,
            module_dict: need("module_dict")?,
            dict_used: need("dict_used")?,
            dict,
            int,
            float_value: need("float_value")?,
            set_used: need("set_used")?,
            cell_ref: need("cell_ref")?,
            py2_unicode: if version.major == 2 {
                Some((
                    need("py2_unicode_length")?,
                    need("py2_unicode_str")?,
                    need("py2_unicode_size")?,
                ))
            } else {
                None
            },
            tuple_items: need("tuple_items")?,
            code_argcount: need("code_argcount")?,
            code_kwonlyargcount: if version.major == 3 {
                Some(need("code_kwonlyargcount")?)
            } else {
                None
            },
            code_flags: need("code_flags")?,
            varargs_flags: (need("co_varargs")? as u32, need("co_varkeywords")? as u32),
            locals,
        })
    }
}

/// Where the counter is that moves before a code object's address can hold another one (see
/// [`crate::python::code::CodeVersions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCounter {
    /// No such counter (before 3.12), or none found: every cached code object a sample uses is
    /// read again.
    Unknown,
    /// 3.12: the global `_Py_next_func_version` (32 bits), the number the next code object
    /// made takes as its `co_version`; found by its symbol.
    Global,
    /// 3.13: `PyInterpreterState.func_state.next_version` (32 bits), the same number, at this
    /// offset in each interpreter.
    Made(u64),
    /// 3.14+: `PyInterpreterState._code_object_generation` (64 bits), which counts the code
    /// objects freed, at this offset in each interpreter (from the target's debug offsets,
    /// which carry it for out-of-process tools' caches).
    Freed(u64),
}

impl CodeCounter {
    /// The counter's width in bytes.
    pub fn width(self) -> usize {
        match self {
            CodeCounter::Freed(_) => 8,
            _ => 4,
        }
    }

    /// True when the counter stops at 0 once it wraps around, so that 0 proves nothing: the
    /// numbers of code objects made do; the count of those freed starts at 0.
    pub fn stuck_at_zero(self) -> bool {
        !matches!(self, CodeCounter::Freed(_))
    }
}

/// Everything the walker needs to know about one interpreter build.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The target's version.
    pub version: PyVersion,
    /// Where the offsets came from, for `-v` and bug reports.
    pub source: String,
    /// `_PyRuntimeState.interpreters.head`; 0 for 2.7 and 3.6, whose root is the `interp_head`
    /// variable itself.
    pub runtime_interpreters_head: u64,
    /// `PyInterpreterState.next`.
    pub interp_next: u64,
    /// `PyInterpreterState.threads.head`.
    pub interp_threads_head: u64,
    /// Thread states.
    pub thread: ThreadLayout,
    /// Frames.
    pub frames: FrameModel,
    /// Where the GIL's holder is recorded.
    pub gil: GilHolder,
    /// Code objects.
    pub code: CodeLayout,
    /// Other objects.
    pub object: ObjectLayout,
    /// Objects read for thread names and locals; `None` (with the reason logged) when the
    /// offsets lack something, which costs those features but not sampling.
    pub values: Option<ValueLayout>,
    /// The counter that numbers new code objects.
    pub code_counter: CodeCounter,
}

impl Layout {
    /// Checks that `version` is one this build samples.
    pub fn check_supported(version: PyVersion) -> Result<()> {
        let newest = newest_table_version();
        let old_enough = version.minor_release() == (2, 7) || version >= OLDEST_SUPPORTED;
        if !old_enough || version.minor_release() > newest.minor_release() {
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
        // The table's own, before the target's debug offsets replace it.
        let table_status = offsets.tstate_status;
        let mut source = format!("python-offsets/{}.toml", table.name);
        let code_counter = code_counter(version, table, debug, offsets.interp_code_version);
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
        let at_least = |major, minor| version >= PyVersion::new(major, minor, 0);
        let frame_objects = !at_least(3, 11);

        let root = if frame_objects || at_least(3, 13) {
            FrameRoot::Direct {
                current_frame: need("tstate_current_frame")?,
            }
        } else {
            FrameRoot::ViaCFrame {
                cframe: need("tstate_cframe")?,
                current_frame: need("cframe_current_frame")?,
            }
        };
        let thread = ThreadLayout {
            size: need("tstate_size")?,
            next: need("tstate_next")?,
            interp: need("tstate_interp")?,
            thread_id: need("tstate_thread_id")?,
            // 3.11+ record the kernel's thread id; older versions need it found another way.
            native_thread_id: if at_least(3, 11) {
                Some(need("tstate_native_thread_id")?)
            } else {
                None
            },
            root,
            datastack: offsets
                .tstate_datastack_chunk
                .zip(offsets.tstate_datastack_top),
        };
        let frames = if frame_objects {
            FrameModel::Objects(FrameObjectLayout {
                size: need("fobj_localsplus")?,
                back: need("fobj_back")?,
                code: need("fobj_code")?,
                lasti: need("fobj_lasti")?,
                lasti_bytes: if at_least(3, 10) { 2 } else { 1 },
            })
        } else {
            let code_ref = if at_least(3, 14) {
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
            FrameModel::Interpreter(FrameLayout {
                size: need("frame_localsplus")?,
                previous: need("frame_previous")?,
                executable: need("frame_executable")?,
                instr: need("frame_instr")?,
                owner: need("frame_owner")?,
                shim_owners,
                code_ref,
                chunk: match (
                    offsets.chunk_previous,
                    offsets.chunk_size,
                    offsets.chunk_top,
                    offsets.chunk_data,
                ) {
                    (Some(previous), Some(size), Some(top), Some(data)) => Some(ChunkLayout {
                        previous,
                        size,
                        top,
                        data,
                    }),
                    _ => None,
                },
            })
        };

        let line_table = if at_least(3, 11) {
            LineTableFormat::Locations
        } else if at_least(3, 10) {
            LineTableFormat::Linetable310
        } else {
            LineTableFormat::Lnotab {
                signed_lines: at_least(3, 6),
            }
        };
        let (bytecode, bytecode_field) = if frame_objects {
            let co_code = need("code_code")?;
            (Bytecode::Separate { co_code }, co_code)
        } else {
            let start = need("code_adaptive")?;
            (Bytecode::Inline { start }, start)
        };
        let qualname = if at_least(3, 11) {
            Some(need("code_qualname")?)
        } else {
            None
        };
        let end_of = |offset: u64| -> Result<u64> {
            offset
                .checked_add(8)
                .ok_or_else(|| Error::corrupt(format!("code field offset {offset} overflows")))
        };
        let mut code_size = end_of(need("varobject_size")?)?;
        for f in [
            "code_filename",
            "code_name",
            "code_firstlineno",
            "code_linetable",
        ] {
            code_size = code_size.max(end_of(need(f)?)?);
        }
        let first_traceable = if frame_objects {
            None
        } else {
            offsets.code_firsttraceable
        };
        for offset in qualname
            .into_iter()
            .chain(first_traceable)
            .chain([bytecode_field])
        {
            code_size = code_size.max(end_of(offset)?);
        }
        let code = CodeLayout {
            size: code_size,
            filename: need("code_filename")?,
            name: need("code_name")?,
            qualname,
            firstlineno: need("code_firstlineno")?,
            linetable: need("code_linetable")?,
            bytecode,
            line_table,
            first_traceable,
        };
        let (names, bytes_data) = if version.major == 2 {
            (NameStrings::Bytes, need("py2_str_data")?)
        } else {
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
            (NameStrings::Unicode(unicode), need("bytes_data")?)
        };
        let object = ObjectLayout {
            ob_type: need("object_type")?,
            ob_size: need("varobject_size")?,
            tp_name: need("type_name")?,
            bytes_data,
            names,
        };
        let gil = if let Some(word) = thread_gil_word(version, &offsets, table_status) {
            word
        } else if at_least(3, 12) {
            let locked = match offsets.interp_gil_locked {
                Some(at) => at,
                None => need("interp_gil_struct")? + need("gil_locked")?,
            };
            let holder = match offsets.interp_gil_holder {
                Some(at) => at,
                None => need("interp_gil_struct")? + need("gil_last_holder")?,
            };
            GilHolder::InterpreterGil { locked, holder }
        } else if at_least(3, 7) {
            GilHolder::CurrentThread {
                runtime_offset: Some(need("runtime_gil_tstate_current")?),
            }
        } else {
            GilHolder::CurrentThread {
                runtime_offset: None,
            }
        };
        let runtime_interpreters_head = if at_least(3, 7) {
            need("runtime_interpreters_head")?
        } else {
            0
        };
        let values = ValueLayout::new(version, &offsets, &source_name)
            .map_err(|e| log::info!("thread names and locals are unavailable: {e}"))
            .ok();
        Ok(Layout {
            values,
            version,
            source: source_name,
            runtime_interpreters_head,
            interp_next: need("interp_next")?,
            interp_threads_head: need("interp_threads_head")?,
            thread,
            frames,
            gil,
            code,
            object,
            code_counter,
        })
    }
}

/// Where `version` keeps a counter of code objects (see [`CodeCounter`]). From 3.14 the
/// target's debug offsets say where it counts those freed. In 3.13 the number of those made
/// is a member of the interpreter state known only from the table, which the debug offsets
/// do not cover: the table is trusted with it only when it agrees with them on the
/// interpreter state's size and on the members before it that both give, since a wrong word
/// that never moves would have stale code objects taken for current ones.
/// [`GilHolder::ThreadWord`] for 3.12+ when the offsets have it. From 3.13 the word
/// (`state`) comes from the table only, so it is used only when the table agrees with the
/// target's debug offsets on where `_status`, just before it, is (`table_status` is the
/// table's).
fn thread_gil_word(
    version: PyVersion,
    offsets: &Offsets,
    table_status: Option<u64>,
) -> Option<GilHolder> {
    if version < PyVersion::new(3, 12, 0) {
        return None;
    }
    if version < PyVersion::new(3, 13, 0) {
        let shift = offsets.status_active_shift.filter(|s| *s < 32)?;
        let mask = 1u32 << shift;
        return Some(GilHolder::ThreadWord {
            word: offsets.tstate_status?,
            mask,
            value: mask,
        });
    }
    if table_status.is_none() || table_status != offsets.tstate_status {
        log::info!(
            "the thread state's layout differs from the table's (_status at {:?}, {:?} in the \
             table): the GIL is read from the interpreter",
            offsets.tstate_status,
            table_status
        );
        return None;
    }
    Some(GilHolder::ThreadWord {
        word: offsets.tstate_state?,
        mask: u32::MAX,
        value: u32::try_from(offsets.thread_attached?).ok()?,
    })
}

fn code_counter(
    version: PyVersion,
    table: &Table,
    debug: Option<&DebugOffsets>,
    in_interp: Option<u64>,
) -> CodeCounter {
    if version.major != 3 || version.minor < 12 {
        return CodeCounter::Unknown;
    }
    if version.minor == 12 {
        return CodeCounter::Global;
    }
    let freed = debug.and_then(|d| d.values.get("interpreter_state.code_object_generation"));
    if let Some(&offset) = freed {
        return CodeCounter::Freed(offset);
    }
    let (Some(offset), Some(debug)) = (in_interp, debug) else {
        return CodeCounter::Unknown;
    };
    let pairs = [
        ("sizeof", "interpreter_state.size"),
        ("threads.head", "interpreter_state.threads_head"),
        ("_gil", "interpreter_state.gil_runtime_state"),
    ];
    let differs = pairs.iter().find_map(|(member, path)| {
        let (ours, theirs) = (
            table.get("PyInterpreterState", member),
            debug.values.get(*path).copied(),
        );
        (ours.is_none() || ours != theirs).then(|| format!("{member} {ours:?} vs {theirs:?}"))
    });
    match differs {
        None => CodeCounter::Made(offset),
        Some(what) => {
            log::info!(
                "the interpreter state's layout differs from {}.toml's ({what}): code objects \
                 are read again every sample",
                table.name
            );
            CodeCounter::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::offsets::table_for;

    #[test]
    fn supported_range_is_checked() {
        assert!(Layout::check_supported(PyVersion::new(3, 5, 10)).is_err());
        assert!(Layout::check_supported(PyVersion::new(2, 6, 9)).is_err());
        assert!(Layout::check_supported(PyVersion::new(2, 7, 18)).is_ok());
        assert!(Layout::check_supported(PyVersion::new(3, 6, 0)).is_ok());
        assert!(Layout::check_supported(PyVersion::new(3, 11, 0)).is_ok());
        assert!(Layout::check_supported(PyVersion::new(3, 15, 2)).is_ok());
        let err = Layout::check_supported(PyVersion::new(3, 99, 0)).unwrap_err();
        assert!(err.to_string().contains("2.7 and 3.6 to"), "{err}");
    }

    #[test]
    fn pre_313_layouts_come_from_tables_alone() {
        for v in [PyVersion::new(3, 11, 7), PyVersion::new(3, 12, 1)] {
            let table = table_for(v).unwrap().unwrap();
            let layout = Layout::new(v, &table, None).unwrap();
            assert!(matches!(layout.thread.root, FrameRoot::ViaCFrame { .. }));
            let FrameModel::Interpreter(frame) = &layout.frames else {
                panic!("3.11 and 3.12 use interpreter frames")
            };
            assert_eq!(frame.code_ref, CodeRef::Plain);
        }
        let v = PyVersion::new(3, 13, 0);
        let table = table_for(v).unwrap().unwrap();
        assert!(
            Layout::new(v, &table, None).is_err(),
            "3.13 needs debug offsets"
        );
    }

    #[test]
    fn every_table_before_313_builds_a_complete_layout() {
        for (name, _) in crate::python::offsets::TABLES {
            let v = PyVersion::parse(name).unwrap();
            if v >= PyVersion::new(3, 13, 0) {
                continue; // these need the target's debug offsets; live tests cover them
            }
            let table = table_for(v).unwrap().unwrap();
            let layout = Layout::new(v, &table, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            let objects = matches!(layout.frames, FrameModel::Objects(_));
            assert_eq!(objects, v < PyVersion::new(3, 11, 0), "{name}");
            assert_eq!(layout.code.qualname.is_some(), !objects, "{name}");
            assert_eq!(
                layout.code.first_traceable.is_some(),
                v >= PyVersion::new(3, 12, 0),
                "{name}"
            );
            assert_eq!(
                matches!(layout.object.names, NameStrings::Bytes),
                v.major == 2,
                "{name}"
            );
            assert_eq!(
                layout.runtime_interpreters_head == 0,
                v < PyVersion::new(3, 7, 0)
            );
            assert!(layout.values.is_some(), "{name}: no value layout");
        }
    }

    #[test]
    fn tagged_references_lose_their_tags() {
        assert_eq!(CodeRef::Tagged { tag_bits: 3 }.pointer(0x1003), 0x1000);
        assert_eq!(CodeRef::Plain.pointer(0x1003), 0x1003);
    }
}
