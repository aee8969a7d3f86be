//! Struct layouts as data: the TOML tables in `python-offsets/`, embedded at build time, and the
//! [`Offsets`] the walker reads with.
//!
//! A table is named for the first version it applies to and holds until the next table. Its
//! sections are CPython struct names and its keys CPython field names (see
//! `python-offsets/README.md`). Nothing here knows about versions beyond "which table".

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::python::version::PyVersion;

/// Every table shipped with the profiler: (first version it applies to, its text).
/// A test checks this list against the files in `python-offsets/`.
pub const TABLES: &[(&str, &str)] = &[
    ("2.7.0", include_str!("../../python-offsets/2.7.0.toml")),
    ("3.6.0", include_str!("../../python-offsets/3.6.0.toml")),
    ("3.7.0", include_str!("../../python-offsets/3.7.0.toml")),
    ("3.8.0", include_str!("../../python-offsets/3.8.0.toml")),
    ("3.9.0", include_str!("../../python-offsets/3.9.0.toml")),
    ("3.10.0", include_str!("../../python-offsets/3.10.0.toml")),
    ("3.11.0", include_str!("../../python-offsets/3.11.0.toml")),
    ("3.12.0", include_str!("../../python-offsets/3.12.0.toml")),
    ("3.13.0", include_str!("../../python-offsets/3.13.0.toml")),
    ("3.14.0", include_str!("../../python-offsets/3.14.0.toml")),
    ("3.15.0", include_str!("../../python-offsets/3.15.0.toml")),
];

/// One parsed table.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file's name without `.toml`.
    pub name: &'static str,
    /// The first version it applies to.
    pub first_version: PyVersion,
    sections: BTreeMap<String, BTreeMap<String, i64>>,
}

impl Table {
    /// Parses one table's text.
    pub fn parse(name: &'static str, text: &str) -> Result<Table> {
        let bad = |reason: String| Error::Offsets {
            table: name.into(),
            reason,
        };
        let first_version =
            PyVersion::parse(name).ok_or_else(|| bad("the name is not a version".into()))?;
        let sections = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        Ok(Table {
            name,
            first_version,
            sections,
        })
    }

    /// The value of `section.key`, if the table has it.
    pub fn get(&self, section: &str, key: &str) -> Option<u64> {
        let value = *self.sections.get(section)?.get(key)?;
        u64::try_from(value).ok()
    }

    /// The value of `section.key`, or an error naming the table.
    pub fn require(&self, section: &str, key: &str) -> Result<u64> {
        self.get(section, key).ok_or_else(|| Error::Offsets {
            table: self.name.into(),
            reason: format!("missing {section}.{key}"),
        })
    }

    /// True when the table has a section of that name.
    pub fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }
}

/// Every shipped table, parsed once.
fn parsed_tables() -> Result<&'static [Table]> {
    static PARSED: std::sync::OnceLock<Result<Vec<Table>, String>> = std::sync::OnceLock::new();
    PARSED
        .get_or_init(|| {
            TABLES
                .iter()
                .map(|(name, text)| Table::parse(name, text).map_err(|e| e.to_string()))
                .collect()
        })
        .as_deref()
        .map_err(|reason| Error::Offsets {
            table: "python-offsets".into(),
            reason: reason.clone(),
        })
}

/// The table that applies to `version`: the newest one whose first version is not after it.
/// `None` when the version is older than every table.
pub fn table_for(version: PyVersion) -> Result<Option<Table>> {
    Ok(parsed_tables()?
        .iter()
        .filter(|t| t.first_version <= version)
        .max_by_key(|t| t.first_version)
        .cloned())
}

/// The first version of the newest table shipped.
pub fn newest_table_version() -> PyVersion {
    TABLES
        .iter()
        .filter_map(|(name, _)| PyVersion::parse(name))
        .max()
        .expect("at least one table ships")
}

/// Where each field of [`Offsets`] comes from: the table's section and candidate keys (the
/// first present wins), and the `_Py_DebugOffsets` path that overrides it on 3.13+.
macro_rules! offsets {
    ($( $(#[$doc:meta])* $field:ident : $section:literal [$($key:literal),+] $(debug $dbg:literal)? ;)*) => {
        /// Byte offsets (and sizes) of every field the walker reads.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Offsets {
            $( $(#[$doc])* pub $field: Option<u64>, )*
        }

        /// `(field name, table section, table keys, debug-offsets path)` for every field.
        pub const FIELD_SOURCES: &[(&str, &str, &[&str], Option<&str>)] = &[
            $( (stringify!($field), $section, &[$($key),+], offsets!(@dbg $($dbg)?)), )*
        ];

        impl Offsets {
            /// Fills every field the table has.
            pub fn from_table(table: &Table) -> Offsets {
                Offsets {
                    $( $field: [$($key),+].iter().find_map(|k| table.get($section, k)), )*
                }
            }

            /// Sets the field named `name`; false when there is no such field.
            pub fn set(&mut self, name: &str, value: u64) -> bool {
                match name {
                    $( stringify!($field) => { self.$field = Some(value); true } )*
                    _ => false,
                }
            }

            /// The field named `name`.
            pub fn get(&self, name: &str) -> Option<u64> {
                match name {
                    $( stringify!($field) => self.$field, )*
                    _ => None,
                }
            }
        }
    };
    (@dbg $dbg:literal) => { Some($dbg) };
    (@dbg) => { None };
}

offsets! {
    /// `_PyRuntimeState.interpreters.head`.
    runtime_interpreters_head: "_PyRuntimeState" ["interpreters.head"] debug "runtime_state.interpreters_head";
    /// `PyInterpreterState.next`.
    interp_next: "PyInterpreterState" ["next"] debug "interpreter_state.next";
    /// `sizeof(PyInterpreterState)`: compared with the target's in `layout::code_counter`.
    interp_size: "PyInterpreterState" ["sizeof"] debug "interpreter_state.size";
    /// `PyInterpreterState.func_state.next_version` (3.13+): the number the next code object
    /// made takes as its `co_version`.
    interp_code_version: "PyInterpreterState" ["func_state.next_version"];
    /// `PyInterpreterState._code_object_generation` (3.14+): how many code objects were freed;
    /// taken from the target's debug offsets in `layout::code_counter`.
    interp_code_generation: "PyInterpreterState" ["_code_object_generation"] debug "interpreter_state.code_object_generation";
    /// `PyInterpreterState.threads.head`.
    interp_threads_head: "PyInterpreterState" ["threads.head", "tstate_head"] debug "interpreter_state.threads_head";
    /// `sizeof(PyThreadState)`.
    tstate_size: "PyThreadState" ["sizeof"] debug "thread_state.size";
    /// `PyThreadState.next`.
    tstate_next: "PyThreadState" ["next"] debug "thread_state.next";
    /// `PyThreadState.interp`.
    tstate_interp: "PyThreadState" ["interp"] debug "thread_state.interp";
    /// `PyThreadState.thread_id`.
    tstate_thread_id: "PyThreadState" ["thread_id"] debug "thread_state.thread_id";
    /// `PyThreadState.native_thread_id`.
    tstate_native_thread_id: "PyThreadState" ["native_thread_id"] debug "thread_state.native_thread_id";
    /// `PyThreadState.cframe` (3.11, 3.12).
    tstate_cframe: "PyThreadState" ["cframe"];
    /// `PyThreadState.current_frame` (3.13+) or `frame` (a frame object, up to 3.10).
    tstate_current_frame: "PyThreadState" ["current_frame", "frame"] debug "thread_state.current_frame";
    /// `PyThreadState.datastack_chunk`.
    tstate_datastack_chunk: "PyThreadState" ["datastack_chunk"] debug "thread_state.datastack_chunk";
    /// `PyThreadState.datastack_top`.
    tstate_datastack_top: "PyThreadState" ["datastack_top"];
    /// `_PyStackChunk.previous`: the older chunk of a thread's data stack.
    chunk_previous: "_PyStackChunk" ["previous"];
    /// `_PyStackChunk.size`: the chunk's size in bytes, header included.
    chunk_size: "_PyStackChunk" ["size"];
    /// `_PyStackChunk.top`: in an older chunk, how many words of `data` are in use.
    chunk_top: "_PyStackChunk" ["top"];
    /// `_PyStackChunk.data`: where the frames start.
    chunk_data: "_PyStackChunk" ["data"];
    /// `_PyCFrame.current_frame` (3.11, 3.12).
    cframe_current_frame: "_PyCFrame" ["current_frame"];
    /// `_PyInterpreterFrame.previous`.
    frame_previous: "_PyInterpreterFrame" ["previous"] debug "interpreter_frame.previous";
    /// `_PyInterpreterFrame.f_executable` (3.13+) or `f_code` (3.11, 3.12).
    frame_executable: "_PyInterpreterFrame" ["f_executable", "f_code"] debug "interpreter_frame.executable";
    /// `_PyInterpreterFrame.instr_ptr` (3.13+) or `prev_instr` (3.11, 3.12).
    frame_instr: "_PyInterpreterFrame" ["instr_ptr", "prev_instr"] debug "interpreter_frame.instr_ptr";
    /// `_PyInterpreterFrame.owner`.
    frame_owner: "_PyInterpreterFrame" ["owner"] debug "interpreter_frame.owner";
    /// `_PyInterpreterFrame.localsplus`: where the fixed part of a frame ends.
    frame_localsplus: "_PyInterpreterFrame" ["localsplus"] debug "interpreter_frame.localsplus";
    /// `PyFrameObject.f_back` (up to 3.10).
    fobj_back: "PyFrameObject" ["f_back"];
    /// `PyFrameObject.f_code`.
    fobj_code: "PyFrameObject" ["f_code"];
    /// `PyFrameObject.f_lasti`: the last instruction, in bytes up to 3.9, in code units in 3.10.
    fobj_lasti: "PyFrameObject" ["f_lasti"];
    /// `PyFrameObject.f_localsplus`: where the fixed part of a frame object ends.
    fobj_localsplus: "PyFrameObject" ["f_localsplus"];
    /// `PyCodeObject.co_code` (up to 3.10: the bytecode is a separate bytes object).
    code_code: "PyCodeObject" ["co_code"];
    /// `PyCodeObject.co_filename`.
    code_filename: "PyCodeObject" ["co_filename"] debug "code_object.filename";
    /// `PyCodeObject.co_name`.
    code_name: "PyCodeObject" ["co_name"] debug "code_object.name";
    /// `PyCodeObject.co_qualname`.
    code_qualname: "PyCodeObject" ["co_qualname"] debug "code_object.qualname";
    /// `PyCodeObject.co_firstlineno`.
    code_firstlineno: "PyCodeObject" ["co_firstlineno"] debug "code_object.firstlineno";
    /// `PyCodeObject.co_linetable` (3.10+) or `co_lnotab` (up to 3.9).
    code_linetable: "PyCodeObject" ["co_linetable", "co_lnotab"] debug "code_object.linetable";
    /// `PyCodeObject.co_code_adaptive`: where the bytecode starts.
    code_adaptive: "PyCodeObject" ["co_code_adaptive"] debug "code_object.co_code_adaptive";
    /// `PyCodeObject._co_firsttraceable` (3.12+): the first instruction, in code units, that
    /// a frame shows to tracebacks; a frame before it is still being set up.
    code_firsttraceable: "PyCodeObject" ["_co_firsttraceable"];
    /// `PyObject.ob_type`.
    object_type: "PyObject" ["ob_type"] debug "pyobject.ob_type";
    /// `PyVarObject.ob_size`.
    varobject_size: "PyVarObject" ["ob_size"] debug "bytes_object.ob_size";
    /// `PyTypeObject.tp_name`.
    type_name: "PyTypeObject" ["tp_name"] debug "type_object.tp_name";
    /// `PyBytesObject.ob_sval` (`PyStringObject.ob_sval` in 2.7).
    bytes_data: "PyBytesObject" ["ob_sval"] debug "bytes_object.ob_sval";
    /// `PyStringObject.ob_sval` (2.7, whose names are byte strings).
    py2_str_data: "PyStringObject" ["ob_sval"];
    /// `sizeof(PyASCIIObject)`: where compact ASCII data starts.
    ascii_size: "PyASCIIObject" ["sizeof"] debug "unicode_object.asciiobject_size";
    /// `PyASCIIObject.length`.
    ascii_length: "PyASCIIObject" ["length"] debug "unicode_object.length";
    /// `PyASCIIObject.state`.
    ascii_state: "PyASCIIObject" ["state"] debug "unicode_object.state";
    /// `sizeof(PyCompactUnicodeObject)`: where compact non-ASCII data starts.
    compact_size: "PyCompactUnicodeObject" ["sizeof"];
    /// Bit position of `kind` in `PyASCIIObject.state`.
    state_kind_shift: "constants" ["STATE_KIND_SHIFT"];
    /// Width mask of `kind`.
    state_kind_mask: "constants" ["STATE_KIND_MASK"];
    /// Bit position of `compact`.
    state_compact_shift: "constants" ["STATE_COMPACT_SHIFT"];
    /// Bit position of `ascii`.
    state_ascii_shift: "constants" ["STATE_ASCII_SHIFT"];
    /// `_PyRuntimeState.gilstate.tstate_current` (3.7–3.11): the thread state holding the GIL.
    runtime_gil_tstate_current: "_PyRuntimeState" ["gilstate.tstate_current"];
    /// `PyInterpreterState._gil` (3.12+): the interpreter's own GIL.
    interp_gil_struct: "PyInterpreterState" ["_gil"] debug "interpreter_state.gil_runtime_state";
    /// `_gil_runtime_state.locked`.
    gil_locked: "_gil_runtime_state" ["locked"];
    /// `_gil_runtime_state.last_holder`.
    gil_last_holder: "_gil_runtime_state" ["last_holder"];
    /// `PyInterpreterState._gil.locked` as the debug offsets give it (3.13+).
    interp_gil_locked: "PyInterpreterState" ["_gil.locked"] debug "interpreter_state.gil_runtime_state_locked";
    /// `PyInterpreterState._gil.last_holder` as the debug offsets give it (3.13+).
    interp_gil_holder: "PyInterpreterState" ["_gil.last_holder"] debug "interpreter_state.gil_runtime_state_holder";
    /// `PyThreadState._status` (3.12+): bits of the thread's life; in 3.12 `active`, set while
    /// the thread holds the GIL.
    tstate_status: "PyThreadState" ["_status"] debug "thread_state.status";
    /// Bit position of `active` in `PyThreadState._status` (3.12).
    status_active_shift: "constants" ["STATUS_ACTIVE_SHIFT"];
    /// `PyThreadState.state` (3.13+): attached (holding the GIL), detached or suspended.
    tstate_state: "PyThreadState" ["state"];
    /// `_Py_THREAD_ATTACHED` (3.13+): the `state` of a thread that holds the GIL.
    thread_attached: "constants" ["_Py_THREAD_ATTACHED"];
    /// `FRAME_OWNED_BY_CSTACK` (3.12+): shim frames of C calls into Python.
    owner_cstack: "constants" ["FRAME_OWNED_BY_CSTACK"];
    /// `FRAME_OWNED_BY_INTERPRETER` (3.14+): the interpreter's own base frames.
    owner_interpreter: "constants" ["FRAME_OWNED_BY_INTERPRETER"];
    /// `Py_TAG_BITS` (3.14+): low bits of a tagged stack reference.
    tag_bits: "constants" ["Py_TAG_BITS"];

    // Objects, read for thread names and `dump --locals`.
    /// `PyInterpreterState.imports.modules` (3.12+) or `modules`: `sys.modules`.
    interp_modules: "PyInterpreterState" ["imports.modules", "modules"] debug "interpreter_state.imports_modules";
    /// `PyTypeObject.tp_flags`.
    type_flags: "PyTypeObject" ["tp_flags"] debug "type_object.tp_flags";
    /// `PyTypeObject.tp_basicsize`.
    type_basicsize: "PyTypeObject" ["tp_basicsize"] debug "type_object.tp_basicsize";
    /// `PyTypeObject.tp_dictoffset`.
    type_dictoffset: "PyTypeObject" ["tp_dictoffset"] debug "type_object.tp_dictoffset";
    /// `PyHeapTypeObject.ht_cached_keys`: the keys shared by instances' split dicts.
    heaptype_cached_keys: "PyHeapTypeObject" ["ht_cached_keys"] debug "heap_type_object.ht_cached_keys";
    /// `PyModuleObject.md_dict`.
    module_dict: "PyModuleObject" ["md_dict"];
    /// `PyDictObject.ma_used`.
    dict_used: "PyDictObject" ["ma_used"];
    /// `PyDictObject.ma_keys` (3.x).
    dict_keys: "PyDictObject" ["ma_keys"] debug "dict_object.ma_keys";
    /// `PyDictObject.ma_values` (3.x): the values of a split dict.
    dict_values: "PyDictObject" ["ma_values"] debug "dict_object.ma_values";
    /// `PyDictObject.ma_mask` (2.7).
    py2_dict_mask: "PyDictObject" ["ma_mask"];
    /// `PyDictObject.ma_table` (2.7).
    py2_dict_table: "PyDictObject" ["ma_table"];
    /// `sizeof(PyDictEntry)` (2.7).
    py2_entry_size: "PyDictEntry" ["sizeof"];
    /// `PyDictEntry.me_key` (2.7).
    py2_entry_key: "PyDictEntry" ["me_key"];
    /// `PyDictEntry.me_value` (2.7).
    py2_entry_value: "PyDictEntry" ["me_value"];
    /// `PyDictKeysObject.dk_size` (3.6–3.10).
    keys_size: "PyDictKeysObject" ["dk_size"];
    /// `PyDictKeysObject.dk_log2_size` (3.11+).
    keys_log2_size: "PyDictKeysObject" ["dk_log2_size"];
    /// `PyDictKeysObject.dk_log2_index_bytes` (3.11+).
    keys_log2_index_bytes: "PyDictKeysObject" ["dk_log2_index_bytes"];
    /// `PyDictKeysObject.dk_kind` (3.11+).
    keys_kind: "PyDictKeysObject" ["dk_kind"];
    /// `PyDictKeysObject.dk_nentries`.
    keys_nentries: "PyDictKeysObject" ["dk_nentries"];
    /// `PyDictKeysObject.dk_indices`: the index table, followed by the entries.
    keys_indices: "PyDictKeysObject" ["dk_indices"];
    /// `sizeof(PyDictKeyEntry)`: an entry with a hash.
    entry_size: "PyDictKeyEntry" ["sizeof"];
    /// `PyDictKeyEntry.me_key`.
    entry_key: "PyDictKeyEntry" ["me_key"];
    /// `PyDictKeyEntry.me_value`.
    entry_value: "PyDictKeyEntry" ["me_value"];
    /// `sizeof(PyDictUnicodeEntry)` (3.11+): an entry of a `str`-keyed table.
    unicode_entry_size: "PyDictUnicodeEntry" ["sizeof"];
    /// `PyDictUnicodeEntry.me_key`.
    unicode_entry_key: "PyDictUnicodeEntry" ["me_key"];
    /// `PyDictUnicodeEntry.me_value`.
    unicode_entry_value: "PyDictUnicodeEntry" ["me_value"];
    /// `PyDictValues.values` (3.11+).
    dict_values_values: "PyDictValues" ["values"];
    /// `PyDictValues.valid` (3.13+): false once an object's inline values moved to a dict.
    dict_values_valid: "PyDictValues" ["valid"];
    /// `PyLongObject.long_value.ob_digit` (3.12+) or `ob_digit`.
    long_digits: "PyLongObject" ["long_value.ob_digit", "ob_digit"] debug "long_object.ob_digit";
    /// `PyLongObject.long_value.lv_tag` (3.12+): digit count and sign.
    long_tag: "PyLongObject" ["long_value.lv_tag"] debug "long_object.lv_tag";
    /// `PyIntObject.ob_ival` (2.7).
    py2_int_value: "PyIntObject" ["ob_ival"];
    /// `PyFloatObject.ob_fval`.
    float_value: "PyFloatObject" ["ob_fval"] debug "float_object.ob_fval";
    /// `PySetObject.used`.
    set_used: "PySetObject" ["used"] debug "set_object.used";
    /// `PyCellObject.ob_ref`.
    cell_ref: "PyCellObject" ["ob_ref"];
    /// `PyCodeObject.co_argcount`.
    code_argcount: "PyCodeObject" ["co_argcount"] debug "code_object.argcount";
    /// `PyCodeObject.co_kwonlyargcount` (3.x).
    code_kwonlyargcount: "PyCodeObject" ["co_kwonlyargcount"];
    /// `PyCodeObject.co_flags`.
    code_flags: "PyCodeObject" ["co_flags"];
    /// `PyCodeObject.co_nlocals` (up to 3.10: the fast locals before the cells).
    code_nlocals: "PyCodeObject" ["co_nlocals"];
    /// `PyCodeObject.co_varnames` (up to 3.10).
    code_varnames: "PyCodeObject" ["co_varnames"];
    /// `PyCodeObject.co_cellvars` (up to 3.10).
    code_cellvars: "PyCodeObject" ["co_cellvars"];
    /// `PyCodeObject.co_freevars` (up to 3.10).
    code_freevars: "PyCodeObject" ["co_freevars"];
    /// `PyCodeObject.co_nlocalsplus` (3.11+).
    code_nlocalsplus: "PyCodeObject" ["co_nlocalsplus"];
    /// `PyCodeObject.co_localsplusnames` (3.11+).
    code_localsplusnames: "PyCodeObject" ["co_localsplusnames"] debug "code_object.localsplusnames";
    /// `PyCodeObject.co_localspluskinds` (3.11+).
    code_localspluskinds: "PyCodeObject" ["co_localspluskinds"] debug "code_object.localspluskinds";
    /// `PyTupleObject.ob_item`.
    tuple_items: "PyTupleObject" ["ob_item"] debug "tuple_object.ob_item";
    /// `PyUnicodeObject.length` (2.7's `unicode`).
    py2_unicode_length: "PyUnicodeObject" ["length"];
    /// `PyUnicodeObject.str` (2.7): the code units.
    py2_unicode_str: "PyUnicodeObject" ["str"];
    /// `Py_UNICODE_SIZE` (2.7): bytes per code unit.
    py2_unicode_size: "constants" ["Py_UNICODE_SIZE"];
    /// `PyLong_SHIFT`: bits per digit of an int.
    long_shift: "constants" ["PyLong_SHIFT"];
    /// `sizeof(digit)`.
    digit_size: "constants" ["SIZEOF_DIGIT"];
    /// `CO_VARARGS`.
    co_varargs: "constants" ["CO_VARARGS"];
    /// `CO_VARKEYWORDS`.
    co_varkeywords: "constants" ["CO_VARKEYWORDS"];
    /// `Py_TPFLAGS_MANAGED_DICT` (3.11+).
    tpflags_managed_dict: "constants" ["Py_TPFLAGS_MANAGED_DICT"];
    /// `Py_TPFLAGS_INLINE_VALUES` (3.13+).
    tpflags_inline_values: "constants" ["Py_TPFLAGS_INLINE_VALUES"];
    /// Bytes before an object where its managed dict pointer lives (3.11+).
    managed_dict_before: "constants" ["MANAGED_DICT_BEFORE"];
    /// Bytes before an object where its values pointer lives (3.11).
    managed_values_before: "constants" ["MANAGED_VALUES_BEFORE"];
    /// `DICT_KEYS_GENERAL` (3.11+): the `dk_kind` of tables whose entries carry a hash.
    dict_keys_general: "constants" ["DICT_KEYS_GENERAL"];
    /// `CO_FAST_LOCAL` (3.11+).
    co_fast_local: "constants" ["CO_FAST_LOCAL"];
    /// `CO_FAST_CELL` (3.11+).
    co_fast_cell: "constants" ["CO_FAST_CELL"];
    /// `CO_FAST_FREE` (3.11+).
    co_fast_free: "constants" ["CO_FAST_FREE"];
    /// `CO_FAST_HIDDEN` (3.12+): compiler temporaries.
    co_fast_hidden: "constants" ["CO_FAST_HIDDEN"];
}

impl Offsets {
    /// The field named `name`, or an error saying which table lacks it.
    pub fn need(&self, name: &str, source: &str) -> Result<u64> {
        self.get(name).ok_or_else(|| Error::Offsets {
            table: source.into(),
            reason: format!("no value for {name}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_parses_and_names_a_version() {
        for (name, text) in TABLES {
            let table = Table::parse(name, text).unwrap();
            assert_eq!(table.first_version.to_string(), *name);
            let offsets = Offsets::from_table(&table);
            assert!(offsets.code_name.is_some(), "{name}");
            assert!(offsets.code_filename.is_some(), "{name}");
            assert!(offsets.tstate_next.is_some(), "{name}");
        }
    }

    #[test]
    fn table_for_picks_the_newest_applicable() {
        let t = table_for(PyVersion::new(3, 12, 7)).unwrap().unwrap();
        assert_eq!(t.name, "3.12.0");
        let t = table_for(PyVersion::new(3, 11, 2)).unwrap().unwrap();
        assert_eq!(t.name, "3.11.0");
        let t = table_for(PyVersion::new(3, 10, 13)).unwrap().unwrap();
        assert_eq!(t.name, "3.10.0");
        assert!(table_for(PyVersion::new(2, 6, 9)).unwrap().is_none());
    }

    #[test]
    fn bad_tables_are_errors() {
        assert!(Table::parse("3.40.0", "[x]\ny = \"str\"").is_err());
        assert!(Table::parse("nonsense", "").is_err());
        let t = Table::parse("3.40.0", "[A]\nb = 1\nneg = -1").unwrap();
        assert_eq!(t.get("A", "b"), Some(1));
        assert_eq!(t.get("A", "neg"), None);
        assert!(t.require("A", "c").is_err());
    }
}
