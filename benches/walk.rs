//! The cost of one sample: a full stack walk ([`Interpreter::stacks`]) over the 3.12 replay
//! fixtures in `tests/fixtures/` (50 frames deep, 500 frames deep, ten threads), and decoding
//! a real line table.
//!
//! A warm walk reuses one interpreter view and its code-object cache, as every sample after
//! the first does in a long run; `warm-batched` also reads through the batch of the last
//! walk's reads and gives its frame lists back, as the sampler does. A cold walk builds the
//! view first, as attaching does. The
//! snapshot serves reads from memory, so the times leave out the system calls a live target
//! costs: the reads per walk, printed before the benches, are that other half of the cost.
//!
//! `cargo bench --bench walk` (add `-- --quick` for a fast look).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_main, Criterion, Throughput};
use sampler::process::recall::Recall;
use sampler::process::snapshot::Snapshot;
use sampler::process::{CountingReader, RemoteAddr};
use sampler::python::frames::MAX_DEPTH;
use sampler::python::linetable::decode_locations;
use sampler::python::{stacks_moved, Check, CheckBuffers, Interpreter, PyVersion};

/// The walk fixtures: bench name and file stem.
const WALKS: [(&str, &str); 3] = [
    ("deep50", "pyenv-3.12-deep50"),
    ("deep500", "pyenv-3.12-deep500"),
    ("threads", "pyenv-3.12-threads"),
];

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A recorded snapshot and where to start walking it.
struct Fixture {
    snapshot: Snapshot,
    version: PyVersion,
    runtime: RemoteAddr,
}

fn hex_u64(text: &serde_json::Value) -> u64 {
    let text = text.as_str().expect("a hex string");
    u64::from_str_radix(text.trim_start_matches("0x"), 16).expect("a hex number")
}

fn load(stem: &str) -> Fixture {
    let path = fixtures_dir().join(format!("{stem}.snapshot.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let snapshot = Snapshot::from_json(&text).expect("a snapshot");
    let hex = u32::try_from(hex_u64(&snapshot.meta["version"])).expect("a 32-bit version");
    Fixture {
        version: PyVersion::from_hex(hex).expect("a version"),
        runtime: RemoteAddr(hex_u64(&snapshot.meta["runtime"])),
        snapshot,
    }
}

impl Fixture {
    /// A view of the interpreter whose caches one walk has filled.
    fn warm(&self) -> Interpreter {
        let mut interp = Interpreter::from_memory(&self.snapshot, self.version, self.runtime)
            .expect("the fixture walks");
        interp
            .stacks(&self.snapshot, MAX_DEPTH)
            .expect("the fixture walks");
        interp
    }

    /// Python frames in one walk, over all threads.
    fn frames(&self) -> u64 {
        let mut interp = self.warm();
        let stacks = interp.stacks(&self.snapshot, MAX_DEPTH).unwrap();
        stacks.iter().map(|t| t.frames.len() as u64).sum()
    }

    /// Reads made by a warm walk through a [`Recall`] and its check, as the sampler makes
    /// them without pausing: one batch of the last walk's reads and the last check's spans,
    /// plus whatever that batch did not hold.
    fn recalled_reads(&self) -> u64 {
        let mem = CountingReader::new(&self.snapshot);
        let mut interp = Interpreter::from_memory(&mem, self.version, self.runtime).unwrap();
        let mut recall = Recall::default();
        let mut kept = CheckBuffers::default();
        let mut walk = |recall: &mut Recall| {
            let stacks =
                recall.read_through(&mem, true, |mem| interp.stacks(mem, MAX_DEPTH).unwrap());
            let checker = recall.checker(&mem);
            assert!(!stacks_moved(
                &checker,
                &stacks,
                Check::Full,
                &mut kept,
                &mut []
            ));
        };
        walk(&mut recall);
        walk(&mut recall);
        let before = mem.reads();
        walk(&mut recall);
        mem.reads() - before
    }

    /// Reads made by one cold walk (the view built too) and by one warm walk.
    fn reads(&self) -> (u64, u64) {
        let mem = CountingReader::new(&self.snapshot);
        let mut interp = Interpreter::from_memory(&mem, self.version, self.runtime).unwrap();
        interp.stacks(&mem, MAX_DEPTH).unwrap();
        let cold = mem.reads();
        interp.stacks(&mem, MAX_DEPTH).unwrap();
        (cold, mem.reads() - cold)
    }
}

fn walks(c: &mut Criterion) {
    let fixtures: Vec<(&str, Fixture)> = WALKS
        .iter()
        .map(|(name, stem)| (*name, load(stem)))
        .collect();
    for (name, fixture) in &fixtures {
        let (cold, warm) = fixture.reads();
        eprintln!(
            "{name}: {} frames, {} reads per warm walk and its check through a batch of the \
             last walk's reads, {warm} per warm walk without, {cold} per cold walk",
            fixture.frames(),
            fixture.recalled_reads(),
        );
    }

    let mut group = c.benchmark_group("walk");
    for (name, fixture) in &fixtures {
        group.throughput(Throughput::Elements(fixture.frames()));
        let mut interp = fixture.warm();
        group.bench_function(format!("warm/{name}"), |b| {
            b.iter(|| {
                interp
                    .stacks(black_box(&fixture.snapshot), MAX_DEPTH)
                    .unwrap()
            })
        });
    }
    for (name, fixture) in &fixtures {
        group.throughput(Throughput::Elements(fixture.frames()));
        let mut interp = fixture.warm();
        let mut recall = Recall::default();
        group.bench_function(format!("warm-batched/{name}"), |b| {
            b.iter(|| {
                let stacks = recall.read_through(black_box(&fixture.snapshot), false, |mem| {
                    interp.stacks(mem, MAX_DEPTH).unwrap()
                });
                // Everything a sample's stacks hold is given back, as the sampler does.
                let mut frames = Vec::with_capacity(stacks.len());
                for s in stacks {
                    interp.give_back(s.marks, s.frame_refs);
                    frames.push((s.thread.thread_id, s.frames));
                }
                interp.recycle(frames);
            })
        });
    }
    let (name, deep50) = &fixtures[0];
    group.throughput(Throughput::Elements(deep50.frames()));
    group.bench_function(format!("cold/{name}"), |b| {
        b.iter(|| {
            let mem = black_box(&deep50.snapshot);
            let mut interp = Interpreter::from_memory(mem, deep50.version, deep50.runtime).unwrap();
            interp.stacks(mem, MAX_DEPTH).unwrap()
        })
    });
    group.finish();
}

/// The line-table fixture: a large standard-library function's `co_linetable`.
fn linetable() -> (String, Vec<u8>, i32) {
    let path = fixtures_dir().join("linetable-3.12.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let hex = value["linetable"].as_str().expect("linetable");
    let table = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let first_line = value["first_line"].as_i64().expect("first_line");
    (
        value["function"].as_str().unwrap_or("function").to_string(),
        table,
        i32::try_from(first_line).expect("a line number"),
    )
}

fn linetables(c: &mut Criterion) {
    let (function, table, first_line) = linetable();
    let entries = decode_locations(&table, first_line).unwrap().len();
    eprintln!("{function}: {} table bytes, {entries} entries", table.len());
    let mut group = c.benchmark_group("linetable");
    group.throughput(Throughput::Bytes(table.len() as u64));
    group.bench_function("decode_locations", |b| {
        b.iter(|| decode_locations(black_box(&table), first_line).unwrap())
    });
    group.finish();
}

/// Criterion's generated entry points (kept in a private module: they carry no docs).
mod registry {
    criterion::criterion_group!(benches, super::walks, super::linetables);
}

criterion_main!(registry::benches);
