//! Replay tests: full stack walks over memory snapshots recorded from live interpreters
//! (`tests/fixtures/*.snapshot.json`), compared with the stacks the walk saw while recording.
//! Mutated snapshots must give `Ok` or `Err`, never a panic or a hang. No interpreter and no
//! ptrace are needed, except by the bless switch that re-records the fixtures:
//!
//! ```text
//! cargo test --test suite replay::bless -- --ignored
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sampler::model::Frame;
use sampler::process::recall::Recall;
use sampler::process::snapshot::{Recorder, Snapshot};
use sampler::process::{Process, ReadMemory, RemoteAddr};
use sampler::python::frames::{FrameRef, Mark, MAX_DEPTH};
use sampler::python::linetable::{self, LineRange};
use sampler::python::{stacks_moved, Check, CheckBuffers, Interpreter, PyVersion, ThreadStack};
use serde_json::{json, Value};

use crate::support::{self, Python, Target};

/// Stack fixtures end with this; anything else in `tests/fixtures/` is another kind of fixture.
const SNAPSHOT_SUFFIX: &str = ".snapshot.json";

/// The line-table fixture: a large stdlib function's `co_linetable` and its `co_lines()`.
const LINETABLE_FIXTURE: &str = "linetable-3.12.json";

/// Mutated snapshots walked per fixture.
const MUTATIONS: u64 = 2000;

/// Longest one walk of a mutated snapshot may take (a hang guard, design §1.4).
const WALK_LIMIT: Duration = Duration::from_secs(1);

/// Prefix of the mutation threads' names; the panic hook keeps their panics quiet.
const MUTATOR: &str = "replay-mutate";

fn fixtures_dir() -> PathBuf {
    support::repo().join("tests/fixtures")
}

/// One recorded snapshot with what it takes to walk it and what the walk must give.
struct Fixture {
    name: String,
    snapshot: Snapshot,
    version: PyVersion,
    runtime: RemoteAddr,
    expected: Vec<Vec<String>>,
    /// `(address, length)` of every recorded region, for the mutation test.
    regions: Vec<(u64, usize)>,
}

fn hex_u64(value: &Value, what: &str) -> u64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string"));
    u64::from_str_radix(text.trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("{what} `{text}`: {e}"))
}

fn hex_bytes(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

impl Fixture {
    fn parse(name: &str, text: &str) -> Fixture {
        let value: Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: bad JSON: {e}"));
        let meta = &value["meta"];
        let hex = hex_u64(&meta["version"], "meta.version");
        let version = u32::try_from(hex)
            .ok()
            .and_then(PyVersion::from_hex)
            .unwrap_or_else(|| panic!("{name}: bad version {hex:#x}"));
        let runtime = RemoteAddr(hex_u64(&meta["runtime"], "meta.runtime"));
        let expected: Vec<Vec<String>> = serde_json::from_value(meta["stacks"].clone())
            .unwrap_or_else(|e| panic!("{name}: bad meta.stacks: {e}"));
        let regions = value["regions"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no regions"))
            .iter()
            .map(|r| {
                let addr = r["addr"].as_u64().expect("region address");
                let len = r["bytes"].as_str().expect("region bytes").len() / 2;
                (addr, len)
            })
            .collect();
        let snapshot = Snapshot::from_json(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        Fixture {
            name: name.to_string(),
            snapshot,
            version,
            runtime,
            expected,
            regions,
        }
    }

    fn load(path: &Path) -> Fixture {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name")
            .trim_end_matches(SNAPSHOT_SUFFIX);
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Fixture::parse(name, &text)
    }
}

/// Every stack fixture, sorted by name.
fn fixtures() -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(SNAPSHOT_SUFFIX))
        .collect();
    paths.sort();
    paths.iter().map(|p| Fixture::load(p)).collect()
}

/// Stacks as the fixtures hold them: per thread, `name (file:line)` innermost first, with the
/// file's base name only.
fn describe(stacks: &[ThreadStack]) -> Vec<Vec<String>> {
    stacks
        .iter()
        .map(|t| {
            t.frames
                .iter()
                .map(|f| {
                    let file = f.filename.rsplit('/').next().unwrap_or_default();
                    format!("{} ({file}:{})", f.name, f.line)
                })
                .collect()
        })
        .collect()
}

/// A cold walk: a new interpreter view built from `mem`, then one walk.
fn walk_cold(
    mem: &dyn ReadMemory,
    version: PyVersion,
    runtime: RemoteAddr,
) -> sampler::error::Result<Vec<Vec<String>>> {
    let mut interp = Interpreter::from_memory(mem, version, runtime)?;
    Ok(describe(&interp.stacks(mem, MAX_DEPTH)?))
}

/// Walks `walks` times with one interpreter view, reading through a [`Recall`] as the
/// sampler does; the last walk's stacks.
fn walk_batched(
    mem: &dyn ReadMemory,
    version: PyVersion,
    runtime: RemoteAddr,
    walks: usize,
) -> sampler::error::Result<Vec<Vec<String>>> {
    let mut interp = Interpreter::from_memory(mem, version, runtime)?;
    let mut recall = Recall::default();
    let mut last = Vec::new();
    for _ in 0..walks {
        let stacks = recall.read_through(mem, false, |mem| interp.stacks(mem, MAX_DEPTH));
        last = describe(&stacks?);
    }
    Ok(last)
}

/// The name says "one read" for the walk; checked without pausing, the walk and its check are
/// still one read, since the check is served from the end of the batch.
#[test]
fn batched_walks_of_every_fixture_give_its_stacks_from_one_read() {
    for fixture in fixtures() {
        let mem = sampler::process::CountingReader::new(&fixture.snapshot);
        let stacks = walk_batched(&mem, fixture.version, fixture.runtime, 2).unwrap();
        assert_eq!(stacks, fixture.expected, "{}", fixture.name);
        // Once the batch knows the walk, a walk is the batch alone.
        let before = mem.reads();
        let mut interp = Interpreter::from_memory(&mem, fixture.version, fixture.runtime).unwrap();
        let mut recall = Recall::default();
        let mut kept = CheckBuffers::default();
        let mut walk = |checked: bool| {
            let stacks = recall
                .read_through(&mem, checked, |mem| interp.stacks(mem, MAX_DEPTH))
                .unwrap();
            if checked {
                assert!(
                    !stacks_moved(
                        &recall.checker(&mem),
                        &stacks,
                        Check::Full,
                        &mut kept,
                        &mut []
                    ),
                    "{}: a still snapshot moved",
                    fixture.name
                );
            }
            describe(&stacks)
        };
        walk(false);
        walk(false);
        let warm = mem.reads();
        let again = walk(false);
        assert_eq!(again, fixture.expected, "{}", fixture.name);
        assert_eq!(
            mem.reads() - warm,
            1,
            "{}: reads of a warm batched walk",
            fixture.name
        );
        assert!(warm > before);
        // The first checked walk reads its check's spans; from the next, they come with the
        // batch.
        walk(true);
        walk(true);
        let warm = mem.reads();
        assert_eq!(walk(true), fixture.expected, "{}", fixture.name);
        assert_eq!(
            mem.reads() - warm,
            1,
            "{}: reads of a warm batched walk and its check",
            fixture.name
        );
    }
}

/// A walk given back the last sample's frame lists (as the sampler does after every sample)
/// fills them again and gives the same stacks as a fresh walk: whatever a list holds that the
/// stack does not (a frame that changed, frames past the outermost, a depth cap's marker) is
/// replaced or cut, and a list is only ever filled for the thread it came from.
#[test]
fn recycled_frame_lists_give_the_same_stacks() {
    let stranger = Frame::python("stranger", "/elsewhere/stranger.py", None, 7, 1);
    for fixture in fixtures() {
        let mem = &fixture.snapshot;
        let mut interp = Interpreter::from_memory(mem, fixture.version, fixture.runtime).unwrap();
        let capped = describe(&interp.stacks(mem, 3).unwrap());
        // Frame lists spoiled, and the mark and frame-reference lists given back with junk
        // in them: none of it may show in the next walk.
        let junk_mark = Mark {
            at: RemoteAddr(0x10),
            width: 8,
            value: 0xdead,
        };
        let junk_ref = FrameRef {
            frame: RemoteAddr(0x20),
            code: RemoteAddr(0x30),
        };
        let spoil = |interp: &mut Interpreter, stacks: Vec<ThreadStack>| {
            let mut lists = Vec::new();
            for s in stacks {
                let (mut marks, mut refs) = (s.marks, s.frame_refs);
                marks.extend([junk_mark; 3]);
                refs.push(junk_ref);
                interp.give_back(marks, refs);
                let mut frames = s.frames;
                if !frames.is_empty() {
                    let middle = frames.len() / 2;
                    frames[middle] = stranger.clone();
                }
                frames.extend([stranger.clone(), stranger.clone()]);
                lists.push((s.thread.thread_id, frames));
            }
            interp.recycle(lists);
        };
        let words = |stacks: &[ThreadStack]| -> Vec<_> {
            stacks
                .iter()
                .map(|s| (s.marks.clone(), s.caller, s.frame_refs.clone()))
                .collect()
        };
        // Lists of other threads (none has id 0) are not used.
        interp.recycle([(0, vec![stranger.clone(); 5])]);
        let first = interp.stacks(mem, MAX_DEPTH).unwrap();
        assert_eq!(describe(&first), fixture.expected, "{}", fixture.name);
        let first_words = words(&first);
        spoil(&mut interp, first);
        let second = interp.stacks(mem, MAX_DEPTH).unwrap();
        assert_eq!(describe(&second), fixture.expected, "{}", fixture.name);
        assert_eq!(words(&second), first_words, "{}", fixture.name);
        // Under a depth cap, and back.
        spoil(&mut interp, second);
        let cut = interp.stacks(mem, 3).unwrap();
        assert_eq!(describe(&cut), capped, "{}", fixture.name);
        interp.recycle(cut.into_iter().map(|s| (s.thread.thread_id, s.frames)));
        let whole = interp.stacks(mem, MAX_DEPTH).unwrap();
        assert_eq!(describe(&whole), fixture.expected, "{}", fixture.name);
    }
}

#[test]
fn fixtures_cover_every_supported_minor_release() {
    let fixtures = fixtures();
    let names: Vec<&str> = fixtures.iter().map(|f| f.name.as_str()).collect();
    for minor in 11..=15 {
        assert!(
            fixtures
                .iter()
                .any(|f| f.version.minor == minor && f.name.ends_with("-chain")),
            "no chain.py fixture for 3.{minor} in {names:?}"
        );
    }
    for name in [
        "pyenv-3.12-deep50",
        "pyenv-3.12-deep500",
        "pyenv-3.12-threads",
    ] {
        assert!(names.contains(&name), "no {name} fixture in {names:?}");
    }
}

#[test]
fn replayed_stacks_match_the_recorded_ones() {
    let mut failures = Vec::new();
    for fixture in fixtures() {
        let mem = &fixture.snapshot;
        let result = Interpreter::from_memory(mem, fixture.version, fixture.runtime).and_then(
            |mut interp| {
                let cold = describe(&interp.stacks(mem, MAX_DEPTH)?);
                let warm = describe(&interp.stacks(mem, MAX_DEPTH)?);
                Ok((cold, warm))
            },
        );
        match result {
            Ok((cold, warm)) => {
                if cold != fixture.expected {
                    failures.push(format!(
                        "{}: cold walk gave {cold:#?}\nexpected {:#?}",
                        fixture.name, fixture.expected
                    ));
                }
                if warm != cold {
                    failures.push(format!(
                        "{}: warm walk gave {warm:#?}\nafter a cold walk gave {cold:#?}",
                        fixture.name
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: walk failed: {e}", fixture.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_depth_cap_cuts_the_outermost_frames_with_a_visible_marker() {
    let fixture = fixtures()
        .into_iter()
        .find(|f| f.name.ends_with("deep500"))
        .expect("the 500-deep fixture");
    let mut interp =
        Interpreter::from_memory(&fixture.snapshot, fixture.version, fixture.runtime).unwrap();
    let stacks = interp.stacks(&fixture.snapshot, 100).unwrap();
    let deep = stacks
        .iter()
        .find(|t| t.frames.len() > 50)
        .expect("the recursing thread");
    // The 100 innermost frames are kept as they are, then one marker stands for the rest.
    assert_eq!(deep.frames.len(), 101);
    let full = describe(&interp.stacks(&fixture.snapshot, MAX_DEPTH).unwrap());
    let full_deep = full.iter().find(|t| t.len() > 100).unwrap();
    assert_eq!(
        describe(std::slice::from_ref(deep))[0][..100],
        full_deep[..100]
    );
    let marker = &deep.frames[100];
    assert_eq!(marker.kind, sampler::model::FrameKind::Truncated);
    assert_eq!(&*marker.name, "[stack truncated at 100 frames]");
}

#[test]
fn linetable_decoding_matches_cpython_co_lines() {
    let text = std::fs::read_to_string(fixtures_dir().join(LINETABLE_FIXTURE)).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    let table = hex_bytes(value["linetable"].as_str().unwrap());
    let first_line = i32::try_from(value["first_line"].as_i64().unwrap()).unwrap();
    let expected: Vec<(u32, u32, Option<u32>)> =
        serde_json::from_value(value["co_lines"].clone()).unwrap();
    let ranges = linetable::decode_locations(&table, first_line).unwrap();
    assert_eq!(co_lines(&ranges), expected, "{}", value["function"]);
}

/// What CPython's `code.co_lines()` gives: adjacent ranges on the same line merged.
fn co_lines(ranges: &[LineRange]) -> Vec<(u32, u32, Option<u32>)> {
    let mut out: Vec<(u32, u32, Option<u32>)> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.2 == r.line && last.1 == r.start => last.1 = r.end,
            _ => out.push((r.start, r.end, r.line)),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Mutated snapshots.

/// A fixed-seed xorshift64* generator: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A snapshot with some bytes XORed: `(address, mask)`.
struct Mutated<'a> {
    base: &'a Snapshot,
    flips: &'a [(u64, u8)],
}

impl ReadMemory for Mutated<'_> {
    fn read(&self, addr: RemoteAddr, buf: &mut [u8]) -> sampler::error::Result<()> {
        self.base.read(addr, buf)?;
        for &(at, mask) in self.flips {
            if let Some(i) = at.checked_sub(addr.0).filter(|i| *i < buf.len() as u64) {
                buf[i as usize] ^= mask;
            }
        }
        Ok(())
    }
}

/// 1 to 8 byte flips: each at a uniformly chosen recorded byte, or (half the time) anywhere in
/// a uniformly chosen region, so small regions (thread states, code objects) get hit too.
fn mutations(rng: &mut Rng, regions: &[(u64, usize)], total: u64) -> Vec<(u64, u8)> {
    (0..1 + rng.below(8))
        .map(|_| {
            let at = if rng.below(2) == 0 {
                let (addr, len) = regions[rng.below(regions.len() as u64) as usize];
                addr + rng.below(len as u64)
            } else {
                let mut pos = rng.below(total);
                let mut at = 0;
                for &(addr, len) in regions {
                    if pos < len as u64 {
                        at = addr + pos;
                        break;
                    }
                    pos -= len as u64;
                }
                at
            };
            (at, 1 + rng.below(255) as u8)
        })
        .collect()
}

/// Values that break naive arithmetic on an offset, a length or a pointer.
const EXTREMES: [u64; 9] = [
    0,
    1,
    0xff,
    0x1_0000,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 63,
    u64::MAX - 7,
    u64::MAX,
];

/// Every aligned word of the recorded start of `_PyRuntime` (on 3.13+ the `_Py_DebugOffsets`
/// the layout is built from) set to each of [`EXTREMES`] in turn, as flips.
fn runtime_sweep(fixture: &Fixture) -> Vec<Vec<(u64, u8)>> {
    let runtime = fixture.runtime.0;
    let Some(&(addr, len)) = fixture
        .regions
        .iter()
        .find(|(addr, len)| (*addr..addr + *len as u64).contains(&runtime))
    else {
        return Vec::new();
    };
    let end = (addr + len as u64).min(runtime + 4096);
    let mut out = Vec::new();
    for at in (runtime..end.saturating_sub(7)).step_by(8) {
        let old = fixture
            .snapshot
            .read_u64(RemoteAddr(at))
            .unwrap()
            .to_le_bytes();
        for value in EXTREMES {
            let flips: Vec<(u64, u8)> = (0..8)
                .map(|i| (at + i as u64, old[i] ^ value.to_le_bytes()[i]))
                .filter(|(_, mask)| *mask != 0)
                .collect();
            if !flips.is_empty() {
                out.push(flips);
            }
        }
    }
    out
}

thread_local! {
    /// The last panic on this thread: message and location.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keeps panics on mutation threads off stderr (thousands of them would drown the report) and
/// remembers where they happened; other threads get the previous hook.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let mine = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with(MUTATOR));
            if !mine {
                return previous(info);
            }
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            // The panic's own location is often inside std (a failed `Vec` allocation); the
            // frame that matters is the crate's innermost one.
            let at = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let at = if at.starts_with("src/") {
                at
            } else {
                let trace = std::backtrace::Backtrace::force_capture().to_string();
                match crate_frame(&trace) {
                    Some(ours) => format!("{ours} (via {at})"),
                    None => at,
                }
            };
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("panicked at {at}: {msg}")));
        }));
    });
}

/// CPU time used by this thread so far (`/proc/thread-self/stat`, in 10 ms clock ticks). The
/// hang guard counts work done, not time spent waiting for a core on a busy machine.
fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // After the parenthesised command come the state (field 3), …, utime (14) and stime (15).
    let fields: Vec<u64> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').map(|f| f.parse().unwrap_or(0)).collect())
        .unwrap_or_default();
    let ticks = fields.get(11).unwrap_or(&0) + fields.get(12).unwrap_or(&0);
    Duration::from_millis(ticks * 10)
}

/// Runs one walk: `Ok(its outcome)` when it ended in `Ok` or `Err` within [`WALK_LIMIT`] of
/// CPU time, otherwise `Err(what went wrong)`.
fn guarded(walk: impl FnOnce() -> String) -> Result<String, String> {
    let start = thread_cpu_time();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(walk));
    let took = thread_cpu_time().saturating_sub(start);
    match outcome {
        Err(_) => Err(LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "panicked".into())),
        Ok(_) if took > WALK_LIMIT => Err(format!("took {took:?} of CPU time")),
        Ok(outcome) => Ok(outcome),
    }
}

/// The innermost frame of a printed backtrace that lies in the crate's `src/`.
fn crate_frame(backtrace: &str) -> Option<String> {
    backtrace
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("at ./src/"))
        .map(|l| format!("src/{l}"))
}

fn show_flips(flips: &[(u64, u8)]) -> String {
    let flips: Vec<String> = flips
        .iter()
        .map(|(a, m)| format!("{a:#x}^{m:#04x}"))
        .collect();
    format!("[{}]", flips.join(", "))
}

/// Names the fixture [`mutation_worker`] mutates; unset, the worker does nothing.
const WORKER_ENV: &str = "SAMPLER_REPLAY_MUTATE";

/// Set beside [`WORKER_ENV`] to reproduce one reported mutation: only its cold walk runs (the
/// warm walks run up to it, as the warm cache carries over) and both outcomes are printed:
/// `SAMPLER_REPLAY_MUTATE=FIXTURE SAMPLER_REPLAY_MUTATION=N cargo test --test suite
/// replay::mutation_worker -- --ignored --nocapture`.
const ONLY_ENV: &str = "SAMPLER_REPLAY_MUTATION";

/// A worker that prints no line for this long is taken as hung.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// Walks `MUTATIONS` randomly mutated copies of one fixture, then its [`runtime_sweep`], twice
/// each: cold (a new interpreter view built from the mutated memory) and warm (one
/// interpreter, warmed on the intact snapshot, that walks every mutated copy in turn, as a long
/// sampling run walks torn reads). Prints `mutation N FLIPS` before each and
/// `failure N FLIPS: WHAT` after a panic or a slow walk.
fn mutate_fixture(fixture: &Fixture, only: Option<u64>) {
    let total: u64 = fixture.regions.iter().map(|r| r.1 as u64).sum();
    let seed = fixture.name.bytes().fold(0x5eed_u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let mut rng = Rng::new(seed);
    let clean = &fixture.snapshot;
    let mut warm = Interpreter::from_memory(clean, fixture.version, fixture.runtime)
        .expect("the intact snapshot walks");
    warm.stacks(clean, MAX_DEPTH)
        .expect("the intact snapshot walks");
    // And a view reading through a batch planned from the previous walk, as the sampler does.
    let mut batched = Interpreter::from_memory(clean, fixture.version, fixture.runtime)
        .expect("the intact snapshot walks");
    let mut recall = Recall::default();
    let mut all: Vec<Vec<(u64, u8)>> = (0..MUTATIONS)
        .map(|_| mutations(&mut rng, &fixture.regions, total))
        .collect();
    all.extend(runtime_sweep(fixture));
    let mut out = std::io::stdout().lock();
    for (iteration, flips) in (0..).zip(all) {
        if only.is_some_and(|n| iteration > n) {
            break;
        }
        let selected = only.is_none_or(|n| n == iteration);
        let shown = show_flips(&flips);
        if selected {
            writeln!(out, "mutation {iteration} {shown}").unwrap();
            out.flush().unwrap();
        }
        let mem = Mutated {
            base: clean,
            flips: &flips,
        };
        let cold = selected.then(|| {
            guarded(|| format!("{:?}", walk_cold(&mem, fixture.version, fixture.runtime)))
        });
        let warm = guarded(|| format!("{:?}", warm.stacks(&mem, MAX_DEPTH).map(|s| describe(&s))));
        let through_batch = guarded(|| {
            let stacks = recall.read_through(&mem, false, |mem| batched.stacks(mem, MAX_DEPTH));
            format!("{:?}", stacks.map(|s| describe(&s)))
        });
        if only.is_some() && selected {
            eprintln!("cold walk: {cold:?}\nwarm walk: {warm:?}\nbatched walk: {through_batch:?}");
        }
        for (kind, result) in [
            ("cold", cold),
            ("warm", Some(warm)),
            ("batched", Some(through_batch)),
        ] {
            if let Some(Err(what)) = result {
                writeln!(out, "failure {iteration} {shown}: {kind} walk {what}").unwrap();
            }
        }
    }
    writeln!(out, "mutations done").unwrap();
}

/// The child-process half of [`mutated_snapshots_never_panic_or_hang`]; does nothing unless
/// [`WORKER_ENV`] names a fixture.
#[test]
#[ignore = "run in a child process by replay::mutated_snapshots_never_panic_or_hang"]
fn mutation_worker() {
    let Ok(name) = std::env::var(WORKER_ENV) else {
        return;
    };
    let only = std::env::var(ONLY_ENV)
        .ok()
        .map(|n| n.parse().expect(ONLY_ENV));
    install_panic_hook();
    let fixture = Fixture::load(&fixtures_dir().join(format!("{name}{SNAPSHOT_SUFFIX}")));
    std::thread::Builder::new()
        .name(format!("{MUTATOR}-{name}"))
        .spawn(move || mutate_fixture(&fixture, only))
        .expect("spawn")
        .join()
        .expect("the mutation thread itself does not panic");
}

/// One fixture's mutation worker: this test binary running [`mutation_worker`].
struct Worker {
    name: String,
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Worker {
    fn start(name: &str) -> Worker {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "replay::mutation_worker",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(WORKER_ENV, name)
            .env_remove(ONLY_ENV)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the mutation worker");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        // Both pipes are drained from the start, so no worker ever blocks on a full pipe.
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if line.map(|l| tx.send(l)).is_err() {
                    break;
                }
            }
        });
        Worker {
            name: name.to_string(),
            child,
            lines,
            stderr,
        }
    }

    /// Waits for the worker to finish; returns one line per distinct failure site (with the
    /// first mutation that reached it), a hang, or the worker's death (an abort).
    fn failures(mut self) -> Vec<String> {
        let mut current = String::from("before the first mutation");
        let mut done = false;
        let mut hung = false;
        let mut sites: BTreeMap<String, (usize, String)> = BTreeMap::new();
        while !hung {
            match self.lines.recv_timeout(STALL_LIMIT) {
                Ok(line) if line.starts_with("mutation ") => current = line,
                Ok(line) if line == "mutations done" => done = true,
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("failure ") {
                        let what = rest.split_once(": ").map_or(rest, |(_, w)| w);
                        let site = what.split(": ").next().unwrap_or(what).to_string();
                        sites.entry(site).or_insert((0, rest.to_string())).0 += 1;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    hung = true;
                }
            }
        }
        let status = self.child.wait().expect("wait for the mutation worker");
        let mut out: Vec<String> = sites
            .into_iter()
            .map(|(site, (count, first))| {
                format!(
                    "{}: {site} ({count}x), first at mutation {first}",
                    self.name
                )
            })
            .collect();
        if hung {
            out.push(format!("{}: hangs at {current}", self.name));
        } else if !status.success() || !done {
            // An abort (a failed allocation, say) prints its message, then a backtrace.
            let stderr = self.stderr.join().unwrap_or_default();
            let message = stderr.lines().find(|l| !l.trim().is_empty());
            out.push(format!(
                "{}: worker died ({status}) at {current}: {} at {}",
                self.name,
                message.unwrap_or("no message"),
                crate_frame(&stderr).unwrap_or_default()
            ));
        }
        out
    }
}

/// Mutates every fixture's bytes `MUTATIONS` times and walks the result: every walk must end
/// in `Ok` or `Err` within [`WALK_LIMIT`]. Each fixture runs in a child process, so an abort
/// or a hang is reported with the mutation that caused it instead of taking the whole suite
/// down. The mutations are the same on every run; [`ONLY_ENV`] reproduces one.
#[test]
fn mutated_snapshots_never_panic_or_hang() {
    let workers: Vec<Worker> = fixtures().iter().map(|f| Worker::start(&f.name)).collect();
    let report: Vec<String> = workers.into_iter().flat_map(Worker::failures).collect();
    assert!(report.is_empty(), "{}", report.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Recording (the bless switch).

/// Re-records every fixture from live interpreters. Needs the interpreters of the matrix and
/// ptrace: `cargo test --test suite replay::bless -- --ignored`.
#[test]
#[ignore = "records fixtures from live interpreters: cargo test --test suite replay::bless -- --ignored"]
fn bless_fixtures() {
    let pythons = support::pythons();
    for minor in 11..=15 {
        assert!(
            pythons
                .iter()
                .any(|p| p.version.0 == 3 && p.version.1 == minor),
            "no interpreter for 3.{minor}: run .ci/install-pythons.sh"
        );
    }
    std::fs::create_dir_all(fixtures_dir()).unwrap();
    for py in &pythons {
        record(py, "chain.py", &[], &format!("{}-chain", py.label));
    }
    let py312 = pythons
        .iter()
        .find(|p| p.label == "pyenv-3.12")
        .expect("pyenv 3.12.1 is installed");
    record(py312, "deep.py", &["50"], "pyenv-3.12-deep50");
    record(py312, "deep.py", &["500"], "pyenv-3.12-deep500");
    record(py312, "many_threads.py", &["9"], "pyenv-3.12-threads");
    record_linetable(py312);
}

/// Records one fixture: the target paused, one cold walk through a [`Recorder`], checked
/// against what the script is known to do, then replayed from its saved form.
fn record(py: &Python, script: &str, args: &[&str], name: &str) {
    let target = Target::start(py, script, args);
    let process = Process::attach(target.pid).unwrap();
    // Attach finds the version and root on every interpreter (symbols, version strings,
    // interp_head); the recording then reads everything again through the recorder.
    let attached = sampler::python::Interpreter::attach(&process)
        .unwrap_or_else(|e| panic!("{}: attach failed: {e}", py.label));
    let (version, runtime) = (attached.version, attached.runtime);
    let recorder = Recorder::new(&process);
    let stacks = {
        let _paused = process.pause_all().unwrap();
        let stacks = walk_cold(&recorder, version, runtime)
            .unwrap_or_else(|e| panic!("{}: walk of {script} failed: {e}", py.label));
        // The sampler reads through a batch of the last sample's reads, whose spans join
        // nearby regions (`process::recall`): walking that way too records the spans, so a
        // replay through a batch reads what a live target would give it.
        let batched = walk_batched(&recorder, version, runtime, 3)
            .unwrap_or_else(|e| panic!("{}: batched walk of {script} failed: {e}", py.label));
        assert_eq!(batched, stacks, "{}: batched walk differs", py.label);
        stacks
    };
    drop(target);
    check_known_stacks(py, script, args, &stacks);

    let meta = json!({
        "python": py.label,
        "python_version": version.to_string(),
        "version": format!("{:#010x}", version.to_hex()),
        "runtime": format!("{:#x}", runtime.0),
        "script": script,
        "args": args,
        "stacks": stacks,
        "bless": "cargo test --test suite replay::bless -- --ignored",
    });
    let snapshot = recorder.snapshot(meta);
    let value: Value = serde_json::from_str(&snapshot.to_json()).unwrap();
    let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
    let replayed = Fixture::parse(name, &text);
    let again = walk_cold(&replayed.snapshot, version, runtime).unwrap();
    assert_eq!(again, stacks, "{name}: the snapshot does not replay");
    let path = fixtures_dir().join(format!("{name}{SNAPSHOT_SUFFIX}"));
    std::fs::write(&path, &text).unwrap();
    eprintln!("recorded {} ({} bytes)", path.display(), text.len());
}

/// Fails when a recorded walk disagrees with what the script is known to be doing.
fn check_known_stacks(py: &Python, script: &str, args: &[&str], stacks: &[Vec<String>]) {
    let at = |name: &str, marker: &str| {
        format!(
            "{} ({script}:{})",
            py.shown_name(name),
            support::marker_line(script, marker)
        )
    };
    // The script's `ready` announcer (tests/scripts/ready.py) may still be exiting.
    let stacks: Vec<Vec<String>> = stacks
        .iter()
        .filter(|s| !s.first().is_some_and(|f| f.contains(" (ready.py:")))
        .cloned()
        .collect();
    let stacks = stacks.as_slice();
    match script {
        "chain.py" => {
            let want = vec![
                at("leaf", "leaf"),
                at("Outer.Inner.method", "method"),
                at("main", "main"),
                at("<module>", "module"),
            ];
            assert_eq!(stacks, [want], "chain.py");
        }
        "deep.py" => {
            let depth: usize = args[0].parse().unwrap();
            let mut want = vec![at("recurse", "bottom")];
            want.extend(std::iter::repeat_n(at("recurse", "recurse"), depth - 1));
            want.extend([at("main", "main"), at("<module>", "module")]);
            assert_eq!(stacks, [want], "deep.py {depth}");
        }
        "many_threads.py" => {
            let workers: usize = args[0].parse().unwrap();
            assert_eq!(stacks.len(), workers + 1, "{stacks:#?}");
            let main = vec![at("main", "main"), at("<module>", "module")];
            assert!(stacks.contains(&main), "{stacks:#?}");
            let spinner = at("spinner", "spinner");
            let sleeper = at("sleeper", "sleeper");
            let innermost: Vec<&String> = stacks.iter().filter_map(|s| s.first()).collect();
            let spinning = innermost.iter().filter(|f| ***f == spinner).count();
            let sleeping = innermost.iter().filter(|f| ***f == sleeper).count();
            assert_eq!(spinning, workers.div_ceil(3), "{stacks:#?}");
            assert_eq!(sleeping, workers - workers.div_ceil(3), "{stacks:#?}");
        }
        other => panic!("no known stacks for {other}"),
    }
}

/// Saves a large stdlib function's `co_linetable` and `co_lines()`, for the line-table test and
/// bench.
fn record_linetable(py: &Python) {
    let function = "argparse.ArgumentParser._parse_known_args";
    let program = format!(
        "import argparse, json, sys\n\
         c = {function}.__code__\n\
         print(json.dumps({{'python': sys.version.split()[0], 'function': '{function}', \
         'first_line': c.co_firstlineno, 'linetable': c.co_linetable.hex(), \
         'co_lines': list(c.co_lines())}}, indent=1))"
    );
    let out = std::process::Command::new(&py.path)
        .args(["-c", &program])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let path = fixtures_dir().join(LINETABLE_FIXTURE);
    std::fs::write(&path, &out.stdout).unwrap();
    eprintln!("recorded {} ({} bytes)", path.display(), out.stdout.len());
}

/// A snapshot with one more word: a counter of code objects made, which the test moves.
struct WithCounter<'a> {
    inner: &'a Snapshot,
    at: u64,
    value: std::cell::Cell<u32>,
    /// Every address read, in order.
    log: RefCell<Vec<u64>>,
}

impl ReadMemory for WithCounter<'_> {
    fn read(&self, addr: RemoteAddr, buf: &mut [u8]) -> sampler::error::Result<()> {
        self.log.borrow_mut().push(addr.0);
        if addr.0 == self.at && buf.len() == 4 {
            buf.copy_from_slice(&self.value.get().to_le_bytes());
            return Ok(());
        }
        self.inner.read(addr, buf)
    }
}

/// From 3.12 a sample uses the code objects cached since the interpreter last made one
/// without reading them again (`python::code::CodeVersions`): only once a sample has seen the
/// counter of code objects made and a later one read them, only while the check still finds
/// the counter where it was, and in full again as soon as it moves.
#[test]
fn cached_code_objects_go_unread_while_no_code_is_made() {
    use sampler::python::Confirm;
    for name in ["pyenv-3.12-deep50", "pyenv-3.12-threads"] {
        let fixture = fixtures()
            .into_iter()
            .find(|f| f.name == name)
            .expect("the fixture");
        let mem = WithCounter {
            inner: &fixture.snapshot,
            at: 0x10,
            value: std::cell::Cell::new(500),
            log: RefCell::new(Vec::new()),
        };
        let mut interp = Interpreter::from_memory(&mem, fixture.version, fixture.runtime).unwrap();
        interp.code_version_variable = Some(RemoteAddr(mem.at));
        let mut kept = CheckBuffers::default();
        // One sample as the sampler takes it: its stacks, whether they stand, and how many of
        // the reads the walk made were of code objects.
        let mut sample = |confirm: Confirm| {
            mem.log.borrow_mut().clear();
            let stacks = interp.stacks_confirmed(&mem, MAX_DEPTH, confirm).unwrap();
            let read: Vec<u64> = mem.log.borrow_mut().drain(..).collect();
            let moved = stacks_moved(&mem, &stacks, Check::Quick, &mut kept, interp.watched());
            let stands = interp.code_confirmed() && !moved;
            let codes: Vec<u64> = stacks
                .iter()
                .flat_map(|s| s.frame_refs.iter().map(|r| r.code.0))
                .collect();
            let code_reads = read.iter().filter(|a| codes.contains(a)).count();
            assert_eq!(describe(&stacks), fixture.expected, "{name}");
            (stands, code_reads)
        };
        // The first sample sees the counter; the next reads the code objects once more, after
        // it; from then on they go unread.
        assert!(matches!(sample(Confirm::Check), (true, n) if n > 0));
        assert!(matches!(sample(Confirm::Check), (true, n) if n > 0));
        assert_eq!(sample(Confirm::Check), (true, 0), "{name}");
        assert_eq!(sample(Confirm::Check), (true, 0), "{name}");
        // A paused sample reads the counter itself, and trusts too.
        assert_eq!(sample(Confirm::Paused), (true, 0), "{name}");
        // A sample nothing confirms reads them all.
        assert!(matches!(sample(Confirm::Check), (true, 0)));
        assert!(matches!(sample(Confirm::Nothing), (true, n) if n > 0));
        // The interpreter made a code object: the sample that trusted the cache cannot
        // stand, and the one taken again reads every code object.
        mem.value.set(501);
        assert_eq!(sample(Confirm::Check), (false, 0), "{name}");
        assert!(matches!(sample(Confirm::Check), (true, n) if n > 0));
        assert_eq!(sample(Confirm::Check), (true, 0), "{name}");
        // Paused, a moved counter is seen before the walk: nothing is trusted.
        mem.value.set(502);
        assert!(matches!(sample(Confirm::Paused), (true, n) if n > 0));
        // A counter that wrapped around to 0 stays there: never trusted.
        mem.value.set(0);
        for _ in 0..3 {
            assert!(matches!(sample(Confirm::Check), (_, n) if n > 0));
        }
    }
}
