//! The offset tables: regenerated from headers they match byte for byte, the folder and the
//! code's list agree, and on 3.13+ the tables agree with the target's own `_Py_DebugOffsets`.

use std::collections::BTreeSet;

use sampler::binary;
use sampler::process::{Process, ReadMemory, RemoteAddr};
use sampler::python::debug_offsets::DebugOffsets;
use sampler::python::offsets::{table_for, TABLES};
use sampler::python::PyVersion;

use crate::support::{for_each_python, in_ci, repo, text, Target};

#[test]
fn tables_regenerate_bit_identically_from_headers() {
    let mut cmd = std::process::Command::new(repo().join("python-offsets/extract.sh"));
    cmd.arg("--check");
    if in_ci() {
        // In CI every table's headers must be present: an unchecked table is a failure.
        cmd.env("SAMPLER_OFFSETS_STRICT", "1");
    }
    let out = cmd.output().expect("run extract.sh");
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{report}");
    assert!(report.contains("identical"), "{report}");
    eprintln!("{report}");
}

#[test]
fn every_table_file_is_registered_and_every_registration_has_a_file() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(repo().join("python-offsets"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".toml")
                .map(String::from)
        })
        .collect();
    let registered: BTreeSet<String> = TABLES.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(on_disk, registered);
    for (name, text) in TABLES {
        let file = std::fs::read_to_string(repo().join(format!("python-offsets/{name}.toml")));
        assert_eq!(file.unwrap(), *text, "{name} is embedded as it is on disk");
    }
}

#[test]
fn tables_agree_with_the_targets_debug_offsets() {
    for_each_python(|py| {
        if (py.version.0, py.version.1) < (3, 13) {
            return;
        }
        let target = Target::start(py, "chain.py", &[]);
        let process = Process::attach(target.pid).unwrap();
        let found = binary::locate(&process, &process.maps().unwrap()).unwrap();
        let hex = process
            .read_u32(RemoteAddr(found.symbol("Py_Version").unwrap()))
            .unwrap();
        let version = PyVersion::from_hex(hex).unwrap();
        let table = table_for(version).unwrap().unwrap();
        let runtime = RemoteAddr(found.symbol("_PyRuntime").unwrap());
        let debug = DebugOffsets::read(&process, runtime, &table)
            .unwrap()
            .expect("3.13+ tables describe _Py_DebugOffsets");
        assert_eq!(debug.version, version);
        assert!(!debug.free_threaded);
        let disagree = debug.disagreements(&table);
        // Patch releases may grow a struct at its end (3.13.18's PyThreadState is 8 bytes
        // longer than 3.13.0's, and so is the interpreter state that ends with one); a
        // build may differ in size too (Debian's 3.15). The debug offsets win for such
        // sizes. Every field offset must agree.
        let fields: Vec<_> = disagree
            .iter()
            .filter(|(f, _, _)| !matches!(*f, "tstate_size" | "interp_size"))
            .collect();
        assert!(fields.is_empty(), "{version}: table vs target: {fields:?}");
        eprintln!(
            "[{}] debug offsets agree with {}.toml ({disagree:?})",
            py.label, table.name
        );
    });
}
