//! Kernel thread ids of threads known only by their pthread id.
//!
//! CPython before 3.11 records a thread's `pthread_t`, not its kernel id. In glibc a
//! `pthread_t` is the address of the thread's `struct pthread`, which keeps the kernel id in a
//! `tid` field at an offset fixed for a given glibc build. The offset is found once, without
//! pausing anything: the main thread's struct must hold the process id, and every other
//! thread's struct must hold one of the process's thread ids at the same offset. A thread
//! that has just exited still has its thread state for a moment, but the kernel has already
//! cleared its `tid` (glibc starts threads with `CLONE_CHILD_CLEARTID`): when no offset fits
//! every thread, a zero is accepted as such a thread's.

use super::{ReadMemory, ReadRequest, RemoteAddr};

/// How much of a `struct pthread` is searched for the `tid` field.
const SEARCH: usize = 2048;

/// The offset glibc on x86-64 has used for years; preferred when several offsets fit.
const USUAL_OFFSET: u64 = 0x2d0;

/// Finds the offset of `tid` in `struct pthread`, given the pthread ids of the process's
/// Python threads, its pid, and its kernel thread ids. `None` when no offset explains them.
pub fn tid_offset(mem: &dyn ReadMemory, pthreads: &[u64], pid: u32, tids: &[u32]) -> Option<u64> {
    let mut requests: Vec<ReadRequest> = pthreads
        .iter()
        .filter(|p| **p != 0)
        .map(|p| ReadRequest::new(RemoteAddr(*p), SEARCH))
        .collect();
    mem.read_many(&mut requests);
    let structs: Vec<&[u8]> = requests
        .iter()
        .filter(|r| r.ok)
        .map(|r| &r.buf[..])
        .collect();
    let at = |buf: &[u8], off: usize| u32::from_le_bytes(buf[off..off + 4].try_into().unwrap());
    let fits = |off: usize, exited_ok: bool| {
        let mut has_main = false;
        for buf in &structs {
            let tid = at(buf, off);
            if tid == pid {
                has_main = true;
            } else if !(tids.contains(&tid) || exited_ok && tid == 0) {
                return false;
            }
        }
        has_main
    };
    [false, true].into_iter().find_map(|exited_ok| {
        let candidates: Vec<u64> = (0..SEARCH - 4)
            .step_by(4)
            .filter(|off| fits(*off, exited_ok))
            .map(|off| off as u64)
            .collect();
        if candidates.contains(&USUAL_OFFSET) {
            return Some(USUAL_OFFSET);
        }
        match candidates.as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    })
}

/// The kernel thread ids of `pthreads`, read at `offset`, in one batched read.
pub fn tids(mem: &dyn ReadMemory, offset: u64, pthreads: &[u64]) -> Vec<Option<u32>> {
    let mut requests: Vec<ReadRequest> = pthreads
        .iter()
        .map(|p| ReadRequest::new(RemoteAddr(p.wrapping_add(offset)), 4))
        .collect();
    mem.read_many(&mut requests);
    requests
        .iter()
        .map(|r| {
            r.ok.then(|| u32::from_le_bytes(r.buf[..4].try_into().unwrap()))
                .filter(|t| *t != 0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::snapshot::Snapshot;
    use std::collections::BTreeMap;

    fn pthread(tid: u32, decoy_at: usize, decoy: u32) -> Vec<u8> {
        let mut buf = vec![0u8; SEARCH];
        buf[0x2d0..0x2d4].copy_from_slice(&tid.to_le_bytes());
        buf[decoy_at..decoy_at + 4].copy_from_slice(&decoy.to_le_bytes());
        buf
    }

    #[test]
    fn finds_the_tid_field_and_maps_threads() {
        let mut pieces = BTreeMap::new();
        // The main thread (tid = pid = 100) has a decoy copy of the pid elsewhere; the other
        // thread's decoy holds a number that is no thread id, which rules the decoy offset out.
        pieces.insert(0x10000, pthread(100, 0x40, 100));
        pieces.insert(0x20000, pthread(101, 0x40, 7));
        let snap = Snapshot::from_pieces(serde_json::Value::Null, pieces);
        let off = tid_offset(&snap, &[0x10000, 0x20000], 100, &[100, 101]).unwrap();
        assert_eq!(off, 0x2d0);
        assert_eq!(
            tids(&snap, off, &[0x20000, 0x10000, 0x99999]),
            vec![Some(101), Some(100), None]
        );
        // Nothing fits when no struct holds the pid.
        assert_eq!(tid_offset(&snap, &[0x20000], 100, &[100, 101]), None);

        // A thread that has just exited: its struct's tid is already cleared, and its id is
        // gone from the process's list.
        let mut exited = BTreeMap::new();
        exited.insert(0x10000, pthread(100, 0x40, 100));
        exited.insert(0x30000, pthread(0, 0x40, 9));
        let snap = Snapshot::from_pieces(serde_json::Value::Null, exited);
        assert_eq!(
            tid_offset(&snap, &[0x10000, 0x30000], 100, &[100]),
            Some(0x2d0)
        );
    }
}
