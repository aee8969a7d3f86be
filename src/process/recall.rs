//! Reads served from one batch. A steady program's samples read the same places again and
//! again: the runtime's list heads, each thread state, the current data-stack chunk, the code
//! objects on the stack. [`Recall`] remembers where the last sample read and, when the next one
//! starts, reads all of it again in one scattered `process_vm_readv`; the sample's reads are
//! then served from those fresh copies, and only what the last sample did not read costs a
//! system call of its own.
//!
//! The copies are as fresh as separate reads would be (the batch is taken when the sample
//! starts, after the target is paused in the pausing mode) and more coherent (one call rather
//! than a dozen spread over the walk). They stop being served when the sample ends, so nothing
//! read for one sample is ever served to the next.
//!
//! A sample read without pausing is checked afterwards by reading again the words its stacks
//! were built from ([`crate::python::stacks_moved`], through [`Recall::checker`]). The spans
//! the last check read are read a second time at the end of the batch, in the same system
//! call: the kernel copies the spans in order, so that second copy is taken after everything
//! the walk was served, and the check is served from it when the walk needed nothing outside
//! the batch and asks for the same spans. A steady sample and its check are then one call.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};

use rustc_hash::FxHashMap;

use crate::error::Result;
use crate::process::{ReadMemory, ReadRequest, RemoteAddr};

/// Most regions read in one batch.
const MAX_REGIONS: usize = 8192;
/// Most bytes read in one batch.
const MAX_BYTES: u64 = 8 << 20;
/// Regions this close are read as one span.
const MERGE_GAP: u64 = 1024;
/// The longest span regions are merged into.
const MAX_SPAN: u64 = 1 << 20;

/// How long a region stays in the batch after the last sample that read it: [`KEEP_FOR`]
/// samples for each sample that read it, up to [`MOST_USES`] of them. Regions of the stacks a
/// program keeps coming back to stay for long, those of one-off stacks leave soon.
///
/// A program that goes back and forth between a few stacks (a loop calling one function,
/// then another) then has each of them in the batch: its samples are served whole, and so are
/// their checks. Besides saving system calls, that keeps a sample's read as short in one of
/// those stacks as in the other. A read that took longer in one function than in the next
/// would race more often as the first one ends, and a raced sample is taken again after the
/// change: the next function would gain samples at the first one's expense.
const KEEP_FOR: u8 = 4;
/// See [`KEEP_FOR`].
const MOST_USES: u8 = 8;

/// A region an earlier sample read and the last one did not.
#[derive(Debug, Clone, Copy)]
struct Older {
    region: (u64, usize),
    /// Samples since the last that read it.
    age: u8,
    /// Samples that read it, up to [`MOST_USES`].
    uses: u8,
}

/// Regions `(address, length)` recent samples used, each kept for as long as [`KEEP_FOR`]
/// says.
#[derive(Debug, Default)]
struct Retained {
    /// The last sample's, in the order it used them, and how many samples used each.
    last: Vec<(u64, usize)>,
    last_uses: Vec<u8>,
    /// Those of the samples before it that it did not use.
    older: Vec<Older>,
}

impl Retained {
    /// Takes `now`, the regions of the sample just taken in order, as the last sample's (and
    /// hands back the old list in `now`), and ages the others. A steady program uses the same
    /// regions sample after sample: nothing is then allocated.
    /// Returns false when nothing changed.
    fn update(&mut self, now: &mut Vec<(u64, usize)>) -> bool {
        if *now == self.last && self.older.is_empty() {
            for uses in &mut self.last_uses {
                *uses = (*uses + 1).min(MOST_USES);
            }
            return false;
        }
        // A sample can use a region twice: the larger count holds.
        let mut uses: FxHashMap<(u64, usize), u8> = FxHashMap::default();
        let seen = self
            .last
            .iter()
            .copied()
            .zip(self.last_uses.iter().copied());
        for (region, n) in seen.chain(self.older.iter().map(|o| (o.region, o.uses))) {
            let count = uses.entry(region).or_default();
            *count = (*count).max(n);
        }
        let last_uses = now
            .iter()
            .map(|region| (uses.get(region).copied().unwrap_or(0) + 1).min(MOST_USES))
            .collect();
        // Used by this sample: not older.
        for region in now.iter() {
            uses.insert(*region, 0);
        }
        // `last` and `older` have no region in common: `older` was made without the regions
        // that became `last`.
        self.older = self
            .last
            .iter()
            .map(|&region| (region, 1))
            .chain(self.older.iter().map(|o| (o.region, o.age + 1)))
            .filter_map(|(region, age)| {
                let uses = *uses.get(&region).filter(|&&n| n > 0)?;
                Some(Older { region, age, uses })
            })
            .filter(|o| o.age <= KEEP_FOR * o.uses)
            .collect();
        std::mem::swap(now, &mut self.last);
        self.last_uses = last_uses;
        true
    }

    /// Every region kept: the last sample's in its order, then the older ones.
    fn all(&self) -> impl Iterator<Item = (u64, usize)> + Clone + '_ {
        self.last
            .iter()
            .copied()
            .chain(self.older.iter().map(|o| o.region))
    }
}

/// The regions recent samples read, and this sample's copies of them.
#[derive(Debug, Default)]
pub struct Recall {
    /// Regions read since the last [`Recall::refresh`], in order: the next batch.
    wanted: RefCell<Vec<(u64, usize)>>,
    /// The regions recent samples read.
    read: Retained,
    /// The regions that `batch` and `index` were planned for: `read.all()`.
    planned: Vec<(u64, usize)>,
    /// The spans read in one batch, with this sample's copies.
    batch: Vec<ReadRequest>,
    /// A region's start address → (index in `batch`, offset in its buffer).
    index: FxHashMap<u64, (usize, usize)>,
    /// True while the copies are this sample's (between `refresh` and `settle`).
    live: bool,
    hits: Cell<u64>,
    misses: Cell<u64>,
    /// The spans the last check read (see [`Recall::checker`]), those recent checks read,
    /// and the spans the end of `batch` holds second copies of, from `tail` on: every one
    /// of those, by address, overlapping ones merged.
    checked: RefCell<Vec<(u64, usize)>>,
    checks: Retained,
    tail_plan: Vec<(u64, usize)>,
    /// True when `tail_plan` is by address (more than one check's spans).
    tail_sorted: bool,
    tail: usize,
    /// True from a batch read with its tail until a check is served from it, or the walk
    /// needed a read of its own (whose copy would be later than the tail's).
    tail_live: Cell<bool>,
    misses_before: u64,
}

impl Recall {
    /// Runs one sample's reads, `walk`, through this recall: the regions the last sample read
    /// are read again in one batch first, `walk` reads from those copies where it can (and
    /// records every read for the next batch), and the copies stop being served when it
    /// returns.
    ///
    /// With `checked`, the spans the last check read are read again at the end of the batch,
    /// for the check that will follow this walk (see [`Recall::checker`]).
    pub fn read_through<R>(
        &mut self,
        mem: &dyn ReadMemory,
        checked: bool,
        walk: impl FnOnce(&dyn ReadMemory) -> R,
    ) -> R {
        self.refresh(mem, checked);
        let result = walk(&self.reader(mem));
        self.settle();
        result
    }

    /// Reads every region the last [`KEEP_FOR`] samples read, in one batch (with the tail
    /// when `checked`), and forgets the list: the sample about to start records its own.
    fn refresh(&mut self, mem: &dyn ReadMemory, checked: bool) {
        let replan = self.remember();
        if replan {
            self.plan();
        }
        self.wanted.get_mut().clear();
        // A sample taken without a check leaves the tail as it was.
        let checked_spans = self.checked.get_mut();
        let retail =
            !checked_spans.is_empty() && self.checks.update(checked_spans) && self.merge_checks();
        if retail || replan {
            self.plan_tail();
        }
        self.checked.get_mut().clear();
        let end = if checked { self.batch.len() } else { self.tail };
        if end > 0 {
            mem.read_many(&mut self.batch[..end]);
        }
        self.tail_live.set(checked && self.tail < self.batch.len());
        self.misses_before = self.misses.get();
        self.live = true;
    }

    /// Records the regions the sample just taken read, and returns true when the regions to
    /// plan for changed.
    fn remember(&mut self) -> bool {
        if !self.read.update(self.wanted.get_mut()) {
            return false;
        }
        let all = self.read.all();
        if all.clone().eq(self.planned.iter().copied()) {
            return false;
        }
        self.planned.clear();
        self.planned.extend(all);
        true
    }

    /// Makes `tail_plan` of the spans recent checks read; returns true when it changed.
    fn merge_checks(&mut self) -> bool {
        // Only the last check's: in its order, for the check to be lent them as they are.
        let sorted = !self.checks.older.is_empty();
        let mut spans: Vec<(u64, usize)> = self.checks.all().collect();
        if !sorted {
            self.tail_sorted = false;
            if spans == self.tail_plan {
                return false;
            }
            self.tail_plan = spans;
            return true;
        }
        self.tail_sorted = true;
        spans.sort_unstable();
        let mut merged: Vec<(u64, usize)> = Vec::with_capacity(spans.len());
        for (addr, len) in spans {
            let end = addr.saturating_add(len as u64);
            match merged.last_mut() {
                Some((start, span)) if addr <= *start + *span as u64 => {
                    *span = (*span).max((end - *start) as usize);
                }
                _ => merged.push((addr, len)),
            }
        }
        if merged == self.tail_plan {
            return false;
        }
        self.tail_plan = merged;
        true
    }

    /// Puts the spans of `tail_plan` at the end of the batch.
    fn plan_tail(&mut self) {
        self.batch.truncate(self.tail);
        self.batch.extend(
            self.tail_plan
                .iter()
                .map(|&(addr, len)| ReadRequest::new(RemoteAddr(addr), len)),
        );
    }

    /// Plans the batch for the regions of `planned`: regions close to each other are read
    /// as one span, so the kernel has fewer pieces to look up and pin. A gap shorter than a
    /// page lies in pages that hold the end of one readable region or the start of the next,
    /// so it is readable too.
    fn plan(&mut self) {
        let mut regions = self.planned.clone();
        regions.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut spans: Vec<(u64, u64)> = Vec::new();
        let mut bytes = 0u64;
        for &(addr, len) in &regions {
            let end = addr.saturating_add(len as u64);
            match spans.last_mut() {
                Some((start, span_end))
                    if addr <= span_end.saturating_add(MERGE_GAP)
                        && end.max(*span_end) - *start <= MAX_SPAN =>
                {
                    bytes += end.saturating_sub(*span_end);
                    *span_end = (*span_end).max(end);
                }
                _ => {
                    if spans.len() == MAX_REGIONS || bytes + len as u64 > MAX_BYTES {
                        break;
                    }
                    bytes += len as u64;
                    spans.push((addr, end));
                }
            }
        }
        // Each region's span, found by address.
        let mut span_of: FxHashMap<u64, usize> = FxHashMap::default();
        let mut span = 0;
        for &(addr, _) in &regions {
            while span < spans.len() && spans[span].1 <= addr {
                span += 1;
            }
            match spans.get(span) {
                Some(&(start, _)) if start <= addr => {
                    span_of.insert(addr, span);
                }
                Some(_) => {}
                None => break,
            }
        }
        // The kernel copies the spans one after the other, in the order given, while the
        // target may run (`--nonblocking`). Copy them in the order the last sample first read
        // them: a pointer before what it points to (a thread's current frame before the frames),
        // so that a call made during the copy leaves the frames copied later consistent with
        // the pointer, rather than the pointer ahead of stale frames.
        let mut order: Vec<usize> = Vec::with_capacity(spans.len());
        let mut placed = vec![usize::MAX; spans.len()];
        for (addr, _) in &self.planned {
            if let Some(&span) = span_of.get(addr) {
                if placed[span] == usize::MAX {
                    placed[span] = order.len();
                    order.push(span);
                }
            }
        }
        self.batch = order
            .iter()
            .map(|&span| {
                let (start, end) = spans[span];
                ReadRequest::new(RemoteAddr(start), (end - start) as usize)
            })
            .collect();
        self.tail = self.batch.len();
        self.index.clear();
        for (addr, span) in span_of {
            self.index
                .insert(addr, (placed[span], (addr - spans[span].0) as usize));
        }
    }

    /// Stops serving this sample's copies (what is recorded for the next batch stays).
    fn settle(&mut self) {
        self.live = false;
        if self.misses.get() != self.misses_before {
            self.tail_live.set(false);
        }
    }

    /// A reader for the check of the sample just read: its `read_many` is served from the
    /// second copies at the end of the batch when they are for the same spans and the walk
    /// was served from the batch alone (once: a second check reads the target), and reads
    /// the target otherwise. Either way the spans asked for are read again in the next batch.
    pub fn checker<'a>(&'a self, mem: &'a dyn ReadMemory) -> Checker<'a> {
        Checker { recall: self, mem }
    }

    /// A reader that serves reads from this sample's copies where it can and from `mem`
    /// otherwise, and records every read for the next batch.
    fn reader<'a>(&'a self, mem: &'a dyn ReadMemory) -> Recalled<'a> {
        Recalled { recall: self, mem }
    }

    /// Reads served from the copies so far.
    pub fn hits(&self) -> u64 {
        self.hits.get()
    }

    /// Reads that needed a system call of their own so far.
    pub fn misses(&self) -> u64 {
        self.misses.get()
    }

    /// The copy of `len` bytes at `addr`, when this sample's batch has one.
    fn copy(&self, addr: RemoteAddr, len: usize) -> Option<&[u8]> {
        if !self.live {
            return None;
        }
        let (span, at) = *self.index.get(&addr.0)?;
        let span = &self.batch[span];
        if !span.ok {
            return None;
        }
        span.buf.get(at..at.checked_add(len)?)
    }

    fn note(&self, addr: RemoteAddr, len: usize, hit: bool) {
        self.wanted.borrow_mut().push((addr.0, len));
        let counter = if hit { &self.hits } else { &self.misses };
        counter.set(counter.get() + 1);
    }
}

/// What [`Recall::checker`] returns.
pub struct Checker<'a> {
    recall: &'a Recall,
    mem: &'a dyn ReadMemory,
}

impl ReadMemory for Checker<'_> {
    fn read(&self, addr: RemoteAddr, buf: &mut [u8]) -> Result<()> {
        self.mem.read(addr, buf)
    }

    fn read_many(&self, requests: &mut [ReadRequest]) {
        match self.served(requests.iter().map(|r| (r.addr.0, r.buf.len()))) {
            Some(Served::Same(tail)) => {
                for (r, t) in requests.iter_mut().zip(tail) {
                    r.buf.copy_from_slice(&t.buf);
                    r.ok = t.ok;
                }
            }
            Some(Served::Within(tail)) => fill_within(tail, requests),
            None => self.mem.read_many(requests),
        }
    }

    /// The check's path: the second copies are inspected where they lie when they are of
    /// the same spans, and copied out of the larger spans that hold them otherwise.
    fn read_spans(
        &self,
        spans: &[(u64, usize)],
        kept: &mut Vec<ReadRequest>,
        inspect: &mut dyn FnMut(&[ReadRequest]) -> bool,
    ) -> bool {
        match self.served(spans.iter().copied()) {
            Some(Served::Same(tail)) => inspect(tail),
            Some(Served::Within(tail)) => {
                ReadRequest::refill(kept, spans.iter().copied());
                fill_within(tail, kept);
                inspect(kept)
            }
            None => self.mem.read_spans(spans, kept, inspect),
        }
    }
}

/// How a check is served from the batch's second copies.
enum Served<'a> {
    /// The copies are of exactly the spans asked for, in the same order.
    Same(&'a [ReadRequest]),
    /// Each span asked for lies inside one of the copies, which are by address.
    Within(&'a [ReadRequest]),
}

/// The bytes `addr..addr + len` in the copy in `tail` (by address) that holds them, when
/// one was read.
fn holding(tail: &[ReadRequest], addr: u64, len: usize) -> Option<&[u8]> {
    let t = tail[..tail.partition_point(|t| t.addr.0 <= addr)].last()?;
    let at = (addr - t.addr.0) as usize;
    t.buf.get(at..at.checked_add(len)?).filter(|_| t.ok)
}

/// Fills each request from the copy in `tail` that holds it.
fn fill_within(tail: &[ReadRequest], requests: &mut [ReadRequest]) {
    for r in requests {
        match holding(tail, r.addr.0, r.buf.len()) {
            Some(copy) => {
                r.buf.copy_from_slice(copy);
                r.ok = true;
            }
            None => r.ok = false,
        }
    }
}

impl Checker<'_> {
    /// Records `spans` as the ones the next batch copies a second time, and returns this
    /// batch's second copies when they hold these spans and may serve (once, and only when
    /// the walk read nothing outside the batch).
    fn served(
        &self,
        spans: impl ExactSizeIterator<Item = (u64, usize)> + Clone,
    ) -> Option<Served<'_>> {
        let recall = self.recall;
        {
            // Kept from one check to the next (`refresh` empties it without freeing it).
            let mut checked = recall.checked.borrow_mut();
            checked.clear();
            checked.extend(spans.clone());
        }
        if !recall.tail_live.replace(false) {
            return None;
        }
        let tail = &recall.batch[recall.tail..];
        let same = tail.len() == spans.len()
            && tail
                .iter()
                .zip(spans.clone())
                .all(|(t, (addr, len))| t.addr.0 == addr && t.buf.len() == len);
        if same {
            return Some(Served::Same(tail));
        }
        // Every span inside one copy that was read.
        let held = || {
            spans
                .clone()
                .all(|(addr, len)| holding(tail, addr, len).is_some())
        };
        (recall.tail_sorted && held()).then_some(Served::Within(tail))
    }
}

/// What [`Recall::read_through`] hands its walk: reads through a [`Recall`].
pub struct Recalled<'a> {
    recall: &'a Recall,
    mem: &'a dyn ReadMemory,
}

impl ReadMemory for Recalled<'_> {
    fn read(&self, addr: RemoteAddr, buf: &mut [u8]) -> Result<()> {
        if let Some(copy) = self.recall.copy(addr, buf.len()) {
            buf.copy_from_slice(copy);
            self.recall.note(addr, buf.len(), true);
            return Ok(());
        }
        self.recall.note(addr, buf.len(), false);
        self.mem.read(addr, buf)
    }

    fn read_cow(&self, addr: RemoteAddr, len: usize) -> Result<Cow<'_, [u8]>> {
        if let Some(copy) = self.recall.copy(addr, len) {
            self.recall.note(addr, len, true);
            return Ok(Cow::Borrowed(copy));
        }
        self.recall.note(addr, len, false);
        self.mem.read_vec(addr, len).map(Cow::Owned)
    }

    fn read_many(&self, requests: &mut [ReadRequest]) {
        let mut missed = Vec::new();
        for (i, r) in requests.iter_mut().enumerate() {
            if let Some(copy) = self.recall.copy(r.addr, r.buf.len()) {
                r.buf.copy_from_slice(copy);
                r.ok = true;
                self.recall.note(r.addr, r.buf.len(), true);
            } else {
                self.recall.note(r.addr, r.buf.len(), false);
                missed.push(i);
            }
        }
        if missed.is_empty() {
            return;
        }
        // The misses in one batch of their own.
        let mut batch: Vec<ReadRequest> = missed
            .iter()
            .map(|&i| ReadRequest {
                addr: requests[i].addr,
                buf: std::mem::take(&mut requests[i].buf),
                ok: false,
            })
            .collect();
        self.mem.read_many(&mut batch);
        for (&i, r) in missed.iter().zip(batch) {
            requests[i].buf = r.buf;
            requests[i].ok = r.ok;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::snapshot::Snapshot;
    use crate::process::CountingReader;
    use std::collections::BTreeMap;

    fn memory() -> CountingReader<Snapshot> {
        let mut pieces = BTreeMap::new();
        pieces.insert(0x1000, (0..=255u8).collect::<Vec<_>>());
        pieces.insert(0x9000, vec![7u8; 64]);
        CountingReader::new(Snapshot::from_pieces(serde_json::Value::Null, pieces))
    }

    #[test]
    fn the_next_sample_is_served_from_one_batch() {
        let mem = memory();
        let mut recall = Recall::default();
        recall.refresh(&mem, false);
        assert_eq!(mem.reads(), 0, "nothing recorded yet: no batch");
        {
            let r = recall.reader(&mem);
            assert_eq!(r.read_u64(RemoteAddr(0x1000)).unwrap(), 0x0706050403020100);
            assert_eq!(r.read_vec(RemoteAddr(0x9000), 16).unwrap(), vec![7; 16]);
            assert!(r.read_u64(RemoteAddr(0x5000)).is_err());
        }
        assert_eq!(mem.reads(), 3);
        recall.refresh(&mem, false);
        assert_eq!(mem.reads(), 4, "one batch for the three regions");
        {
            let r = recall.reader(&mem);
            // Same start, same or shorter length: served from the copies.
            assert_eq!(r.read_u32(RemoteAddr(0x1000)).unwrap(), 0x03020100);
            assert_eq!(r.read_vec(RemoteAddr(0x9000), 16).unwrap(), vec![7; 16]);
            assert_eq!(mem.reads(), 4);
            // Longer than the copy, or elsewhere: a read of its own.
            assert_eq!(r.read_vec(RemoteAddr(0x9000), 32).unwrap(), vec![7; 32]);
            assert_eq!(r.read_u64(RemoteAddr(0x1008)).unwrap(), 0x0f0e0d0c0b0a0908);
            assert_eq!(mem.reads(), 6);
            // The failed region failed in the batch too, and fails again.
            assert!(r.read_u64(RemoteAddr(0x5000)).is_err());
        }
        assert_eq!(recall.hits(), 2);
        assert_eq!(recall.misses(), 6);
        recall.settle();
        // Settled: nothing is served any more, but the regions stay wanted.
        assert!(recall.copy(RemoteAddr(0x1000), 4).is_none());
        recall.refresh(&mem, false);
        // The batch covers what the last sample read; the regions at 0x1000 and 0x1008 are
        // one span, and the failed one is not served.
        assert_eq!(recall.batch.len(), 3);
        assert!(recall.copy(RemoteAddr(0x1000), 16).is_some());
        assert!(recall.copy(RemoteAddr(0x1000), 17).is_none());
        assert!(recall.copy(RemoteAddr(0x1008), 8).is_some());
        assert!(recall.copy(RemoteAddr(0x9000), 32).is_some());
        assert!(recall.copy(RemoteAddr(0x5000), 8).is_none());
    }

    #[test]
    fn spans_are_copied_in_the_order_first_read() {
        let mem = memory();
        let mut recall = Recall::default();
        {
            let r = recall.reader(&mem);
            r.read_u64(RemoteAddr(0x9000)).unwrap();
            r.read_u64(RemoteAddr(0x1010)).unwrap();
            r.read_u64(RemoteAddr(0x1000)).unwrap();
            r.read_u64(RemoteAddr(0x9000)).unwrap();
        }
        recall.refresh(&mem, false);
        let starts: Vec<u64> = recall.batch.iter().map(|r| r.addr.0).collect();
        assert_eq!(starts, [0x9000, 0x1000]);
        let r = recall.reader(&mem);
        assert_eq!(r.read_u64(RemoteAddr(0x1010)).unwrap(), 0x1716151413121110);
        assert_eq!(r.read_vec(RemoteAddr(0x9000), 8).unwrap(), vec![7; 8]);
        assert_eq!(recall.misses(), 4, "only the first sample's reads missed");
    }

    #[test]
    fn batched_reads_mix_copies_and_fresh_reads() {
        let mem = memory();
        let mut recall = Recall::default();
        recall.reader(&mem).read_u64(RemoteAddr(0x1000)).unwrap();
        recall.refresh(&mem, false);
        let before = mem.reads();
        let mut requests = vec![
            ReadRequest::new(RemoteAddr(0x1000), 8),
            ReadRequest::new(RemoteAddr(0x9000), 8),
            ReadRequest::new(RemoteAddr(0x5000), 8),
        ];
        recall.reader(&mem).read_many(&mut requests);
        assert_eq!(mem.reads(), before + 1, "the two misses in one batch");
        assert!(requests[0].ok && requests[1].ok && !requests[2].ok);
        assert_eq!(requests[0].buf[1], 1);
        assert_eq!(requests[1].buf, vec![7; 8]);
    }

    #[test]
    fn what_the_target_changed_is_seen_at_the_next_refresh() {
        let mut recall = Recall::default();
        let old = memory();
        recall.reader(&old).read_u64(RemoteAddr(0x9000)).unwrap();
        let mut pieces = BTreeMap::new();
        pieces.insert(0x9000, vec![9u8; 64]);
        let new = Snapshot::from_pieces(serde_json::Value::Null, pieces);
        recall.refresh(&new, false);
        assert_eq!(
            recall.reader(&new).read_vec(RemoteAddr(0x9000), 2).unwrap(),
            vec![9, 9]
        );
    }

    #[test]
    fn a_check_is_served_from_the_end_of_the_batch_after_a_walk_served_by_it() {
        // Both ways a check can read: copies into its requests, or spans lent to it.
        for lent in [false, true] {
            checks_served_from_the_batch(lent);
        }
    }

    fn checks_served_from_the_batch(lent: bool) {
        let mem = memory();
        let mut recall = Recall::default();
        let walk = |recall: &mut Recall, extra: bool| {
            recall.read_through(&mem, true, |r| {
                r.read_u64(RemoteAddr(0x1000)).unwrap();
                if extra {
                    r.read_u64(RemoteAddr(0x1080)).unwrap();
                }
            })
        };
        let mut kept = Vec::new();
        let mut check = |recall: &Recall| {
            let expect = |reads: &[ReadRequest]| {
                assert_eq!(reads.len(), 2);
                assert!(reads.iter().all(|r| r.ok));
                assert_eq!(reads[0].buf, (0x10..0x18).collect::<Vec<u8>>());
                assert_eq!(reads[1].buf, vec![7; 4]);
            };
            if lent {
                let spans = [(0x1010, 8), (0x9000, 4)];
                let seen = recall
                    .checker(&mem)
                    .read_spans(&spans, &mut kept, &mut |reads| {
                        expect(reads);
                        true
                    });
                assert!(seen);
            } else {
                let mut requests = vec![
                    ReadRequest::new(RemoteAddr(0x1010), 8),
                    ReadRequest::new(RemoteAddr(0x9000), 4),
                ];
                recall.checker(&mem).read_many(&mut requests);
                expect(&requests);
            }
        };
        walk(&mut recall, false);
        check(&recall);
        walk(&mut recall, false);
        let before = mem.reads();
        // The batch was read with the last check's spans at its end: this check reads nothing.
        check(&recall);
        assert_eq!(mem.reads(), before);
        // Served once only: a second check reads the target.
        check(&recall);
        assert_eq!(mem.reads(), before + 1);
        // A walk that needed a read of its own: its check reads the target too.
        walk(&mut recall, true);
        let before = mem.reads();
        check(&recall);
        assert_eq!(mem.reads(), before + 1);
        // So does a check asking for other spans.
        walk(&mut recall, true);
        let before = mem.reads();
        let mut other = vec![ReadRequest::new(RemoteAddr(0x1020), 8)];
        recall.checker(&mem).read_many(&mut other);
        assert_eq!(mem.reads(), before + 1);
        // Without a check to come, the batch leaves the spans out, and keeps them planned:
        // those of the recent checks, by address.
        recall.read_through(&mem, false, |_| ());
        assert_eq!(recall.tail_plan, [(0x1010, 8), (0x1020, 8), (0x9000, 4)]);
        assert_eq!(recall.batch.len(), recall.tail + 3);
        assert!(!recall.tail_live.get());
        // A walk served by the batch: a check of any of those spans, or of a part of one,
        // is served from their second copies.
        walk(&mut recall, true);
        let before = mem.reads();
        let mut parts = vec![
            ReadRequest::new(RemoteAddr(0x9002), 2),
            ReadRequest::new(RemoteAddr(0x1020), 4),
        ];
        recall.checker(&mem).read_many(&mut parts);
        assert_eq!(mem.reads(), before);
        assert!(parts.iter().all(|r| r.ok));
        assert_eq!(parts[0].buf, [7, 7]);
        assert_eq!(parts[1].buf, [0x20, 0x21, 0x22, 0x23]);
    }

    #[test]
    fn a_program_going_back_and_forth_between_stacks_has_both_in_the_batch() {
        let mem = memory();
        let mut recall = Recall::default();
        let sample = |recall: &mut Recall, at: u64| {
            recall.read_through(&mem, false, |r| {
                r.read_u64(RemoteAddr(0x1000)).unwrap();
                r.read_u64(RemoteAddr(at)).unwrap();
            })
        };
        for at in [0x1080, 0x9000, 0x1080, 0x9000] {
            sample(&mut recall, at);
        }
        let misses = recall.misses();
        for at in [0x1080, 0x9000, 0x9000, 0x1080, 0x1080, 0x9000] {
            sample(&mut recall, at);
        }
        assert_eq!(recall.misses(), misses, "both stacks served from the batch");
        // A region read once leaves after KEEP_FOR samples (the batch is planned as the next
        // sample starts); one read often stays longer.
        sample(&mut recall, 0x1040);
        for _ in 0..KEEP_FOR + 2 {
            sample(&mut recall, 0x9000);
        }
        let kept = |recall: &Recall, addr| recall.planned.iter().any(|r| r.0 == addr);
        assert!(!kept(&recall, 0x1040));
        assert!(kept(&recall, 0x1080));
        for _ in 0..KEEP_FOR * MOST_USES {
            sample(&mut recall, 0x9000);
        }
        assert!(!kept(&recall, 0x1080));
        assert_eq!(recall.planned, [(0x1000, 8), (0x9000, 8)]);
    }
}
