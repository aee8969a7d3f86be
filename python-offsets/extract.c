/*
 * extract.c - print the CPython struct layout that `sampler` needs, as TOML.
 *
 * Build it against one interpreter's headers (extract.sh does this):
 *
 *     gcc -DPy_BUILD_CORE -I<pyconfig dir> -I<include dir> extract.c
 *
 * Everything is decided at compile time by the headers found, so the
 * program takes no arguments and prints the same bytes every time it runs.
 *
 * Output format (see README.md): one `[Section]` per CPython struct, named
 * as in CPython; keys are the member names as written in C, dotted for
 * nested members; `sizeof` is the size of the struct. All values are
 * integers. Sections and keys come out in the order of this file, which must
 * stay fixed so the committed tables do not churn.
 *
 * Fields exist only in some versions; each is guarded with PY_VERSION_HEX so
 * that a table lists exactly the members its interpreter has. To support a
 * new version, add guarded lines in the relevant section and run
 * `extract.sh --all`.
 */

#ifndef Py_BUILD_CORE
#  define Py_BUILD_CORE 1
#endif

#include "Python.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if PY_VERSION_HEX < 0x02070000 || \
    (PY_VERSION_HEX >= 0x03000000 && PY_VERSION_HEX < 0x03060000)
#  error "extract.c describes CPython 2.7 and 3.6+ only"
#endif

#if PY_VERSION_HEX < 0x030B0000
/* Legacy layouts (2.7, 3.6-3.10): the call stack is a chain of
 * PyFrameObject, declared in the public frameobject.h (cpython/ from 3.9);
 * Python.h does not include it. Where the runtime and interpreter structs
 * live moved from release to release:
 *   2.7, 3.6  no _PyRuntimeState; PyInterpreterState in pystate.h, and the
 *             interpreter list head is the static `interp_head` in pystate.c
 *   3.7       _PyRuntimeState in internal/pystate.h (gil: internal/gil.h)
 *   3.8       _PyRuntimeState and struct _is in internal/pycore_pystate.h
 *   3.9, 3.10 internal/pycore_runtime.h and internal/pycore_interp.h
 * All internal headers need only Py_BUILD_CORE. */
#  include "code.h"
#  include "frameobject.h"
#  include "longintrepr.h"
#  if PY_VERSION_HEX >= 0x03090000
#    include "internal/pycore_runtime.h"
#    include "internal/pycore_interp.h"
#  elif PY_VERSION_HEX >= 0x03080000
#    include "internal/pycore_pystate.h"
#  elif PY_VERSION_HEX >= 0x03070000
#    include "internal/pystate.h"
#  endif
#else
#  include "internal/pycore_runtime.h"
#  include "internal/pycore_interp.h"
#  include "internal/pycore_frame.h"
#  include "internal/pycore_gil.h"
#  include "internal/pycore_dict.h"
#  include "internal/pycore_code.h"
#  include "internal/pycore_object.h"
#  if defined(__has_include)
#    if __has_include("internal/pycore_stackref.h")
#      include "internal/pycore_stackref.h"
#    endif
#    if __has_include("internal/pycore_debug_offsets.h")
#      include "internal/pycore_debug_offsets.h"
#    endif
#  endif
#endif

/* Which layout families the headers describe. */
#define LEGACY  (PY_VERSION_HEX < 0x030B0000)   /* PyFrameObject stack */
#define PY3     (PY_MAJOR_VERSION >= 3)
#define RUNTIME (PY_VERSION_HEX >= 0x03070000)  /* has _PyRuntimeState */

#define STR_(x) #x
#define STR(x) STR_(x)

/* Structs that these versions keep private to a .c file, mirrored member for
 * member so the compiler lays them out as the interpreter does:
 *   PyModuleObject   Objects/moduleobject.c (all versions): md_dict follows
 *                    the object header
 *   PyDictKeysObject Objects/dict-common.h (3.6-3.10): refcount, size,
 *                    lookup function, usable, nentries, then the index
 *                    table; the entries follow the index table */
typedef struct {
    PyObject_HEAD
    PyObject *md_dict;
} mirror_module;
#if PY3 && LEGACY
typedef struct {
    Py_ssize_t dk_refcnt;
    Py_ssize_t dk_size;
    void *dk_lookup;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[8];
} mirror_dict_keys;
typedef struct {
    Py_hash_t me_hash;
    PyObject *me_key;
    PyObject *me_value;
} mirror_dict_key_entry;
#endif

/* ------------------------------------------------------------------ */
/* Printing                                                            */

static int n_sections;

static void section(const char *name)
{
    printf("%s[%s]\n", n_sections++ ? "\n" : "", name);
}

/* TOML bare keys may use only A-Z a-z 0-9 _ -; anything else is quoted. */
static void entry(const char *key, long long value)
{
    const char *p;
    int bare = *key != '\0';
    for (p = key; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            bare = 0;
        }
    }
    if (bare) {
        printf("%s = %lld\n", key, value);
    } else {
        printf("\"%s\" = %lld\n", key, value);
    }
}

/* `sizeof` of the struct, and the offset of a (possibly nested) member.
 * The member designator is printed exactly as written in the macro call,
 * so write nested members without spaces: OFF(T, threads.head). */
#define SIZE(T)       entry("sizeof", (long long)sizeof(T))
#define OFF(T, m)     entry(#m, (long long)offsetof(T, m))
#define CONST(name)   entry(#name, (long long)(name))

/* ------------------------------------------------------------------ */
/* Bitfields of PyASCIIObject.state (3.x only)                         */

#if PY3

/* The bits of the state word (read as a little-endian integer) that are
 * set in `after` but not in `before`. */
static unsigned long long
changed_bits(const unsigned char *before, const unsigned char *after,
             size_t len)
{
    unsigned long long bits = 0;
    size_t i;
    for (i = 0; i < len; i++) {
        bits |= (unsigned long long)(unsigned char)(before[i] ^ after[i])
                << (8 * i);
    }
    return bits;
}

static int lowest_bit(unsigned long long bits)
{
    int n = 0;
    if (bits == 0) {
        fprintf(stderr, "extract: bitfield probe changed no bit\n");
        exit(1);
    }
    while (!(bits & 1)) {
        bits >>= 1;
        n++;
    }
    return n;
}

/* Set one bitfield of an all-zero PyASCIIObject to all ones and report
 * where its bits landed within the `state` word. */
#define STATE_BITFIELD(field, NAME)                                        \
    do {                                                                   \
        PyASCIIObject zero_, probe_;                                       \
        volatile unsigned int ones_ = ~0u;                                 \
        unsigned long long bits_;                                          \
        int shift_;                                                        \
        memset(&zero_, 0, sizeof zero_);                                   \
        memset(&probe_, 0, sizeof probe_);                                 \
        probe_.state.field = ones_;                                        \
        bits_ = changed_bits((const unsigned char *)&zero_.state,          \
                             (const unsigned char *)&probe_.state,         \
                             sizeof zero_.state);                          \
        shift_ = lowest_bit(bits_);                                        \
        entry("STATE_" NAME "_SHIFT", shift_);                             \
        entry("STATE_" NAME "_MASK", (long long)(bits_ >> shift_));        \
    } while (0)

#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
/* The same for the `active` bit of PyThreadState._status (3.12). */
static void status_active_bit(void)
{
    static PyThreadState zero_, probe_;
    volatile unsigned int one_ = 1;
    memset(&zero_, 0, sizeof zero_);
    memset(&probe_, 0, sizeof probe_);
    probe_._status.active = one_;
    entry("STATUS_ACTIVE_SHIFT",
          lowest_bit(changed_bits((const unsigned char *)&zero_._status,
                                  (const unsigned char *)&probe_._status,
                                  sizeof zero_._status)));
}
#endif
#endif /* PY3 */

/* ------------------------------------------------------------------ */
/* _Py_DebugOffsets coverage check                                     */

#ifdef _Py_Debug_Cookie
static unsigned char dbg_cover[sizeof(_Py_DebugOffsets)];

static void dbg_entry(const char *key, size_t off, size_t size)
{
    size_t i;
    for (i = off; i < off + size && i < sizeof dbg_cover; i++) {
        dbg_cover[i]++;
    }
    entry(key, (long long)off);
}

/* Every byte of _Py_DebugOffsets must belong to exactly one listed leaf;
 * otherwise a field was added to (or listed twice for) this version. */
static void dbg_check(void)
{
    size_t i;
    int ok = 1;
    for (i = 0; i < sizeof dbg_cover; i++) {
        if (dbg_cover[i] != 1) {
            fprintf(stderr,
                    "extract: _Py_DebugOffsets byte %zu is covered by %d "
                    "listed fields (expected 1): update the _Py_DebugOffsets "
                    "list in extract.c for this version\n",
                    i, dbg_cover[i]);
            ok = 0;
            i = (i | 7);  /* one message per 8-byte slot */
        }
    }
    if (!ok) {
        exit(1);
    }
}

#define DBG(m) dbg_entry(#m, offsetof(_Py_DebugOffsets, m), \
                         sizeof(((_Py_DebugOffsets *)0)->m))
#endif

/* ------------------------------------------------------------------ */

int main(void)
{
    /* The patch release is deliberately not printed: the Debian builds move from patch to
     * patch, and a table must only change when a layout does. */
    printf("# CPython %d.%d struct layout, extracted from its headers "
           "by python-offsets/extract.sh. Do not edit.\n",
           PY_MAJOR_VERSION, PY_MINOR_VERSION);

#if RUNTIME
    section("_PyRuntimeState");
    SIZE(_PyRuntimeState);
#if PY_VERSION_HEX >= 0x030D0000
    OFF(_PyRuntimeState, debug_offsets);
#endif
    OFF(_PyRuntimeState, interpreters.head);
    OFF(_PyRuntimeState, interpreters.main);
#if PY_VERSION_HEX < 0x030C0000
    /* From 3.12 on the current thread state is a C thread-local, not a
     * field of the runtime. */
    OFF(_PyRuntimeState, gilstate.tstate_current);
    /* Before 3.12 the one GIL lives in the runtime, not the interpreter. */
    OFF(_PyRuntimeState, ceval.gil);
#endif
#endif /* RUNTIME */

    /* 2.7 and 3.6 have no _PyRuntimeState: the list of interpreters starts
     * at the static `interp_head` in Python/pystate.c, found by symbol. */
    section("PyInterpreterState");
    SIZE(PyInterpreterState);
    OFF(PyInterpreterState, next);
#if RUNTIME
    OFF(PyInterpreterState, id);
#endif
#if LEGACY
    OFF(PyInterpreterState, tstate_head);  /* threads.head from 3.11 */
#else
    OFF(PyInterpreterState, threads.head);
#endif
    OFF(PyInterpreterState, sysdict);
#if PY_VERSION_HEX < 0x030C0000
    OFF(PyInterpreterState, modules);
#else
    OFF(PyInterpreterState, imports.modules);
#endif
#if PY_VERSION_HEX >= 0x030C0000
    OFF(PyInterpreterState, ceval.gil);
    OFF(PyInterpreterState, _gil);
#endif
#if PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000
    /* The counter every new code object takes its co_version from, as sampler uses it in
     * 3.13 (3.12 keeps it in the global _Py_next_func_version, and its func_state counts
     * something else; 3.14+ count the code objects freed instead, see below). */
    OFF(PyInterpreterState, func_state.next_version);
#endif
#if PY_VERSION_HEX >= 0x030E0000
    /* Counts the code objects freed (3.14+), for out-of-process tools' caches. */
    OFF(PyInterpreterState, _code_object_generation);
#endif

    section("PyThreadState");
    SIZE(PyThreadState);
#if PY3
    OFF(PyThreadState, prev);
#endif
    OFF(PyThreadState, next);
    OFF(PyThreadState, interp);
    OFF(PyThreadState, thread_id);
#if LEGACY
    /* The innermost PyFrameObject; 3.11 replaced it with cframe. */
    OFF(PyThreadState, frame);
    OFF(PyThreadState, recursion_depth);
#else
    OFF(PyThreadState, native_thread_id);
    OFF(PyThreadState, datastack_chunk);
    OFF(PyThreadState, datastack_top);
#if PY_VERSION_HEX < 0x030D0000
    OFF(PyThreadState, cframe);
#else
    OFF(PyThreadState, current_frame);
#endif
#endif /* !LEGACY */
#if PY_VERSION_HEX >= 0x030C0000
    /* Whether the thread holds the GIL, read with the thread state: the
     * `active` bit of `_status` in 3.12 (set while the thread is the current
     * one, which it is exactly while it holds the GIL), `state` equal to
     * _Py_THREAD_ATTACHED from 3.13. */
    OFF(PyThreadState, _status);
#endif
#if PY_VERSION_HEX >= 0x030D0000
    OFF(PyThreadState, state);
#endif

#if LEGACY
    section("PyFrameObject");
    SIZE(PyFrameObject);
    OFF(PyFrameObject, f_back);
    OFF(PyFrameObject, f_code);
    OFF(PyFrameObject, f_globals);
    OFF(PyFrameObject, f_locals);
    OFF(PyFrameObject, f_valuestack);
#if PY_VERSION_HEX < 0x030A0000
    OFF(PyFrameObject, f_stacktop);
#endif
    OFF(PyFrameObject, f_trace);
#if PY_VERSION_HEX >= 0x030A0000
    OFF(PyFrameObject, f_stackdepth);      /* replaced f_stacktop in 3.10 */
#endif
#if PY3
    OFF(PyFrameObject, f_gen);
#endif
    OFF(PyFrameObject, f_lasti);
    OFF(PyFrameObject, f_lineno);
#if PY3 && PY_VERSION_HEX < 0x030A0000
    OFF(PyFrameObject, f_executing);
#elif PY3
    OFF(PyFrameObject, f_state);           /* replaced f_executing in 3.10 */
#endif
    OFF(PyFrameObject, f_localsplus);
#endif /* LEGACY */

#if !LEGACY
#if PY_VERSION_HEX < 0x030D0000
    section("_PyCFrame");
    SIZE(_PyCFrame);
    OFF(_PyCFrame, current_frame);
    OFF(_PyCFrame, previous);
#endif

    section("_PyInterpreterFrame");
    SIZE(_PyInterpreterFrame);
    OFF(_PyInterpreterFrame, previous);
    OFF(_PyInterpreterFrame, owner);
    OFF(_PyInterpreterFrame, localsplus);
#if PY_VERSION_HEX < 0x030E0000
    OFF(_PyInterpreterFrame, stacktop);
#else
    OFF(_PyInterpreterFrame, stackpointer);
#endif
#if PY_VERSION_HEX < 0x030D0000
    OFF(_PyInterpreterFrame, f_code);
    OFF(_PyInterpreterFrame, prev_instr);
#else
    OFF(_PyInterpreterFrame, f_executable);
    OFF(_PyInterpreterFrame, instr_ptr);
#endif
#if PY_VERSION_HEX < 0x030C0000
    OFF(_PyInterpreterFrame, is_entry);
#endif
    OFF(_PyInterpreterFrame, f_globals);
    OFF(_PyInterpreterFrame, f_locals);
#if PY_VERSION_HEX < 0x030C0000
    OFF(_PyInterpreterFrame, f_func);      /* renamed f_funcobj in 3.12 */
#else
    OFF(_PyInterpreterFrame, f_funcobj);
#endif

    section("_PyStackChunk");
    SIZE(_PyStackChunk);
    OFF(_PyStackChunk, previous);
    OFF(_PyStackChunk, size);
    OFF(_PyStackChunk, top);
    OFF(_PyStackChunk, data);

#endif /* !LEGACY */

    section("PyCodeObject");
    SIZE(PyCodeObject);
#if LEGACY
    /* Declaration order. */
    OFF(PyCodeObject, co_argcount);
#if PY_VERSION_HEX >= 0x03080000
    OFF(PyCodeObject, co_posonlyargcount);
#endif
#if PY3
    OFF(PyCodeObject, co_kwonlyargcount);
#endif
    OFF(PyCodeObject, co_nlocals);
    OFF(PyCodeObject, co_flags);
    OFF(PyCodeObject, co_firstlineno);
    OFF(PyCodeObject, co_code);
    OFF(PyCodeObject, co_consts);
    OFF(PyCodeObject, co_names);
    OFF(PyCodeObject, co_varnames);
    OFF(PyCodeObject, co_freevars);
    OFF(PyCodeObject, co_cellvars);
    OFF(PyCodeObject, co_filename);
    OFF(PyCodeObject, co_name);
#if PY_VERSION_HEX < 0x030A0000
    OFF(PyCodeObject, co_lnotab);
#else
    OFF(PyCodeObject, co_linetable);       /* PEP 626 table, 3.10 only */
#endif
#else /* !LEGACY */
    OFF(PyCodeObject, co_filename);
    OFF(PyCodeObject, co_name);
    OFF(PyCodeObject, co_qualname);
    OFF(PyCodeObject, co_firstlineno);
    OFF(PyCodeObject, co_linetable);
    OFF(PyCodeObject, co_code_adaptive);
    OFF(PyCodeObject, co_flags);
    OFF(PyCodeObject, co_argcount);
    OFF(PyCodeObject, co_nlocalsplus);
    OFF(PyCodeObject, co_nlocals);
    OFF(PyCodeObject, co_localsplusnames);
    OFF(PyCodeObject, co_localspluskinds);
    OFF(PyCodeObject, co_kwonlyargcount);
#if PY_VERSION_HEX >= 0x030C0000
    OFF(PyCodeObject, _co_firsttraceable);
#endif
#endif /* !LEGACY */

    section("PyObject");
    SIZE(PyObject);
    OFF(PyObject, ob_type);

    section("PyVarObject");
    SIZE(PyVarObject);
    OFF(PyVarObject, ob_size);

    section("PyTypeObject");
    SIZE(PyTypeObject);
    OFF(PyTypeObject, tp_name);
    OFF(PyTypeObject, tp_flags);
    OFF(PyTypeObject, tp_basicsize);
    OFF(PyTypeObject, tp_dictoffset);
#if PY3
    section("PyHeapTypeObject");
    SIZE(PyHeapTypeObject);
    OFF(PyHeapTypeObject, ht_cached_keys);
#endif

    /* Objects read for thread names and `dump --locals`. */
    section("PyModuleObject");
    OFF(mirror_module, md_dict);

    section("PyDictObject");
    SIZE(PyDictObject);
    OFF(PyDictObject, ma_used);
#if PY3
    OFF(PyDictObject, ma_keys);
    OFF(PyDictObject, ma_values);
#else
    OFF(PyDictObject, ma_mask);
    OFF(PyDictObject, ma_table);

    section("PyDictEntry");
    SIZE(PyDictEntry);
    OFF(PyDictEntry, me_key);
    OFF(PyDictEntry, me_value);
#endif
#if PY3 && LEGACY
    section("PyDictKeysObject");
    OFF(mirror_dict_keys, dk_size);
    OFF(mirror_dict_keys, dk_nentries);
    OFF(mirror_dict_keys, dk_indices);

    section("PyDictKeyEntry");
    SIZE(mirror_dict_key_entry);
    OFF(mirror_dict_key_entry, me_key);
    OFF(mirror_dict_key_entry, me_value);
#elif PY3
    section("PyDictKeysObject");
    SIZE(PyDictKeysObject);
    OFF(PyDictKeysObject, dk_log2_size);
    OFF(PyDictKeysObject, dk_log2_index_bytes);
    OFF(PyDictKeysObject, dk_kind);
    OFF(PyDictKeysObject, dk_nentries);
    OFF(PyDictKeysObject, dk_indices);

    section("PyDictKeyEntry");
    SIZE(PyDictKeyEntry);
    OFF(PyDictKeyEntry, me_key);
    OFF(PyDictKeyEntry, me_value);

    section("PyDictUnicodeEntry");
    SIZE(PyDictUnicodeEntry);
    OFF(PyDictUnicodeEntry, me_key);
    OFF(PyDictUnicodeEntry, me_value);

    section("PyDictValues");
    OFF(PyDictValues, values);
#if PY_VERSION_HEX >= 0x030D0000
    OFF(PyDictValues, valid);
#endif
#endif

    section("PyLongObject");
    SIZE(PyLongObject);
#if PY_VERSION_HEX >= 0x030C0000
    OFF(PyLongObject, long_value.lv_tag);
    OFF(PyLongObject, long_value.ob_digit);
#else
    OFF(PyLongObject, ob_digit);
#endif
#if !PY3
    section("PyIntObject");
    SIZE(PyIntObject);
    OFF(PyIntObject, ob_ival);
#endif

    section("PyFloatObject");
    SIZE(PyFloatObject);
    OFF(PyFloatObject, ob_fval);

    section("PyListObject");
    SIZE(PyListObject);
    OFF(PyListObject, ob_item);

    section("PySetObject");
    SIZE(PySetObject);
    OFF(PySetObject, used);

    section("PyCellObject");
    SIZE(PyCellObject);
    OFF(PyCellObject, ob_ref);

#if PY3
    section("PyBytesObject");
    SIZE(PyBytesObject);
    OFF(PyBytesObject, ob_sval);
#else
    /* 2.7's str; its PyBytesObject is only a #define for this. */
    section("PyStringObject");
    SIZE(PyStringObject);
    OFF(PyStringObject, ob_shash);
    OFF(PyStringObject, ob_sstate);
    OFF(PyStringObject, ob_sval);
#endif

    section("PyTupleObject");
    SIZE(PyTupleObject);
    OFF(PyTupleObject, ob_item);

#if PY3
    section("PyASCIIObject");
    SIZE(PyASCIIObject);
    OFF(PyASCIIObject, length);
    OFF(PyASCIIObject, state);
#if LEGACY
    OFF(PyASCIIObject, wstr);
#endif

    section("PyCompactUnicodeObject");
    SIZE(PyCompactUnicodeObject);
#if LEGACY
    OFF(PyCompactUnicodeObject, utf8_length);
    OFF(PyCompactUnicodeObject, utf8);
    OFF(PyCompactUnicodeObject, wstr_length);
#endif
#endif /* PY3 */

#if LEGACY
    /* 3.x: a non-compact ("legacy") string keeps its characters behind
     * the data pointer. 2.7: the whole unicode object is this one struct,
     * with Py_UNICODE_SIZE-byte code units at str. */
    section("PyUnicodeObject");
    SIZE(PyUnicodeObject);
#if PY3
    OFF(PyUnicodeObject, data);
    OFF(PyUnicodeObject, data.any);
#else
    OFF(PyUnicodeObject, length);
    OFF(PyUnicodeObject, str);
#endif
#endif /* LEGACY */

#if RUNTIME
    section("_gil_runtime_state");
    SIZE(struct _gil_runtime_state);
    OFF(struct _gil_runtime_state, last_holder);
    OFF(struct _gil_runtime_state, locked);
#endif

#ifdef _Py_Debug_Cookie
    section("_Py_DebugOffsets");
    SIZE(_Py_DebugOffsets);
    /* Every leaf, in declaration order. dbg_check() fails the run if the
     * list does not account for every byte of the struct. */
    DBG(cookie);
    DBG(version);
#if PY_VERSION_HEX >= 0x030D0000
    DBG(free_threaded);
#endif
    DBG(runtime_state.size);
    DBG(runtime_state.finalizing);
    DBG(runtime_state.interpreters_head);

    DBG(interpreter_state.size);
    DBG(interpreter_state.id);
    DBG(interpreter_state.next);
    DBG(interpreter_state.threads_head);
#if PY_VERSION_HEX >= 0x030E0000
    DBG(interpreter_state.threads_main);
#endif
    DBG(interpreter_state.gc);
    DBG(interpreter_state.imports_modules);
    DBG(interpreter_state.sysdict);
    DBG(interpreter_state.builtins);
    DBG(interpreter_state.ceval_gil);
    DBG(interpreter_state.gil_runtime_state);
    DBG(interpreter_state.gil_runtime_state_enabled);
    DBG(interpreter_state.gil_runtime_state_locked);
    DBG(interpreter_state.gil_runtime_state_holder);
#if PY_VERSION_HEX >= 0x030E0000
    DBG(interpreter_state.code_object_generation);
    DBG(interpreter_state.tlbc_generation);
#endif

    DBG(thread_state.size);
    DBG(thread_state.prev);
    DBG(thread_state.next);
    DBG(thread_state.interp);
    DBG(thread_state.current_frame);
#if PY_VERSION_HEX >= 0x030F0000
    DBG(thread_state.base_frame);
    DBG(thread_state.last_profiled_frame);
    DBG(thread_state.last_profiled_frame_seq);
#endif
    DBG(thread_state.thread_id);
    DBG(thread_state.native_thread_id);
    DBG(thread_state.datastack_chunk);
    DBG(thread_state.status);
#if PY_VERSION_HEX >= 0x030F0000
    DBG(thread_state.holds_gil);
    DBG(thread_state.gil_requested);
    DBG(thread_state.current_exception);
    DBG(thread_state.exc_state);

    DBG(err_stackitem.exc_value);
#endif

    DBG(interpreter_frame.size);
    DBG(interpreter_frame.previous);
    DBG(interpreter_frame.executable);
    DBG(interpreter_frame.instr_ptr);
    DBG(interpreter_frame.localsplus);
    DBG(interpreter_frame.owner);
#if PY_VERSION_HEX >= 0x030E0000
    DBG(interpreter_frame.stackpointer);
    DBG(interpreter_frame.tlbc_index);
#endif

    DBG(code_object.size);
    DBG(code_object.filename);
    DBG(code_object.name);
    DBG(code_object.qualname);
    DBG(code_object.linetable);
    DBG(code_object.firstlineno);
    DBG(code_object.argcount);
    DBG(code_object.localsplusnames);
    DBG(code_object.localspluskinds);
    DBG(code_object.co_code_adaptive);
#if PY_VERSION_HEX >= 0x030E0000
    DBG(code_object.co_tlbc);
#endif

    DBG(pyobject.size);
    DBG(pyobject.ob_type);

    DBG(type_object.size);
    DBG(type_object.tp_name);
    DBG(type_object.tp_repr);
    DBG(type_object.tp_flags);
#if PY_VERSION_HEX >= 0x030F0000
    DBG(type_object.tp_basicsize);
    DBG(type_object.tp_dictoffset);

    DBG(heap_type_object.size);
    DBG(heap_type_object.ht_cached_keys);
#endif

    DBG(tuple_object.size);
    DBG(tuple_object.ob_item);
    DBG(tuple_object.ob_size);

    DBG(list_object.size);
    DBG(list_object.ob_item);
    DBG(list_object.ob_size);

#if PY_VERSION_HEX >= 0x030E0000
    DBG(set_object.size);
    DBG(set_object.used);
    DBG(set_object.table);
    DBG(set_object.mask);
#endif

    DBG(dict_object.size);
    DBG(dict_object.ma_keys);
    DBG(dict_object.ma_values);

    DBG(float_object.size);
    DBG(float_object.ob_fval);

    DBG(long_object.size);
    DBG(long_object.lv_tag);
    DBG(long_object.ob_digit);

    DBG(bytes_object.size);
    DBG(bytes_object.ob_size);
    DBG(bytes_object.ob_sval);

    DBG(unicode_object.size);
    DBG(unicode_object.state);
    DBG(unicode_object.length);
    DBG(unicode_object.asciiobject_size);
#if PY_VERSION_HEX >= 0x030F0000
    DBG(unicode_object.compactunicodeobject_size);
#endif

    DBG(gc.size);
    DBG(gc.collecting);
#if PY_VERSION_HEX >= 0x030F0000
    DBG(gc.frame);
    DBG(gc.generation_stats_size);
    DBG(gc.generation_stats);
#endif

#if PY_VERSION_HEX >= 0x030E0000
    DBG(gen_object.size);
    DBG(gen_object.gi_name);
    DBG(gen_object.gi_iframe);
    DBG(gen_object.gi_frame_state);

    DBG(llist_node.next);
    DBG(llist_node.prev);

    DBG(debugger_support.eval_breaker);
    DBG(debugger_support.remote_debugger_support);
    DBG(debugger_support.remote_debugging_enabled);
    DBG(debugger_support.debugger_pending_call);
    DBG(debugger_support.debugger_script_path);
    DBG(debugger_support.debugger_script_path_size);
#endif
    dbg_check();
#endif /* _Py_Debug_Cookie */

    section("constants");
#if LEGACY
#if PY_VERSION_HEX >= 0x030A0000
    /* Values of PyFrameObject.f_state (enum _framestate), 3.10 only. */
    CONST(FRAME_CREATED);
    CONST(FRAME_SUSPENDED);
    CONST(FRAME_EXECUTING);
    CONST(FRAME_RETURNED);
    CONST(FRAME_UNWINDING);
    CONST(FRAME_RAISED);
    CONST(FRAME_CLEARED);
#endif
#else
    CONST(FRAME_OWNED_BY_THREAD);
    CONST(FRAME_OWNED_BY_GENERATOR);
    CONST(FRAME_OWNED_BY_FRAME_OBJECT);
#endif
#if PY_VERSION_HEX >= 0x030E0000
    CONST(FRAME_OWNED_BY_INTERPRETER);
#endif
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030F0000
    /* 3.12-3.14 only: 3.15 removed it from enum _frameowner. */
    CONST(FRAME_OWNED_BY_CSTACK);
#endif
#if defined(Py_TAG_BITS)
    CONST(Py_TAG_BITS);
#endif
#if PY3
    STATE_BITFIELD(kind, "KIND");
    STATE_BITFIELD(compact, "COMPACT");
    STATE_BITFIELD(ascii, "ASCII");
#if LEGACY
    /* `ready` exists up to 3.11; 3.11's table predates this line and is
     * kept as it is. */
    STATE_BITFIELD(ready, "READY");
#endif
#endif
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
    status_active_bit();
#endif
#if PY_VERSION_HEX >= 0x030D0000
    CONST(_Py_THREAD_ATTACHED);
#endif
#ifdef Py_GIL_DISABLED
    entry("Py_GIL_DISABLED", 1);
#else
    entry("Py_GIL_DISABLED", 0);
#endif
    CONST(SIZEOF_VOID_P);
    CONST(PyLong_SHIFT);
    entry("SIZEOF_DIGIT", (long long)sizeof(digit));
    CONST(CO_VARARGS);
    CONST(CO_VARKEYWORDS);
#if !LEGACY
    CONST(Py_TPFLAGS_MANAGED_DICT);
    CONST(DICT_KEYS_GENERAL);
    CONST(CO_FAST_LOCAL);
    CONST(CO_FAST_CELL);
    CONST(CO_FAST_FREE);
#endif
#if !LEGACY
    {
        /* Where an object with a managed dict keeps the pointer to it
         * (3.12: to the dict or, tagged, its values), in bytes before the
         * object; 3.11 keeps its values pointer in the word before that.
         * The headers' own accessors compute it on a stand-in object. */
        static PyTypeObject probe_type;
        static PyObject probe[4];
        PyObject *obj = &probe[2];
        probe_type.tp_flags = Py_TPFLAGS_MANAGED_DICT;  /* for their asserts */
        Py_SET_TYPE(obj, &probe_type);
#if PY_VERSION_HEX < 0x030C0000
        entry("MANAGED_DICT_BEFORE",
              (long long)((char *)obj - (char *)_PyObject_ManagedDictPointer(obj)));
        entry("MANAGED_VALUES_BEFORE",
              (long long)((char *)obj - (char *)_PyObject_ValuesPointer(obj)));
#elif PY_VERSION_HEX < 0x030D0000
        entry("MANAGED_DICT_BEFORE",
              (long long)((char *)obj - (char *)_PyObject_DictOrValuesPointer(obj)));
#else
        entry("MANAGED_DICT_BEFORE",
              (long long)((char *)obj - (char *)_PyObject_ManagedDictPointer(obj)));
#endif
    }
#endif
#if PY_VERSION_HEX >= 0x030C0000
    CONST(CO_FAST_HIDDEN);
#endif
#if PY_VERSION_HEX >= 0x030D0000
    CONST(Py_TPFLAGS_INLINE_VALUES);
#endif
#if LEGACY
    CONST(SIZEOF_WCHAR_T);
    /* 2.7: width of a code unit of its unicode (2 or 4, a build option);
     * 3.x: sizeof(wchar_t), the unit of PyASCIIObject.wstr. */
    CONST(Py_UNICODE_SIZE);
    CONST(CO_GENERATOR);
#if PY3
    CONST(CO_COROUTINE);
#endif
#endif

    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "extract: write error\n");
        return 1;
    }
    return 0;
}
