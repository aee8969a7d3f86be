//! Kernel thread ids of threads known only by their pthread id.
//!
//! CPython before 3.11 records a thread's `pthread_t`, not its kernel id. In glibc a
//! `pthread_t` is the address of the thread's `struct pthread`, which keeps the kernel id in a
//! `tid` field at an offset fixed for a given glibc build. The offset is found once, without
//! pausing anything: the main thread's struct must hold the process id, and every other
//! thread's struct must hold one of the process's thread ids at the same offset. A thread
//! that has just exited still has its thread state for a moment, but the kernel has already
//! cleared its `tid` (glibc starts threads with `CLONE_CHILD_CLEARTID`): when no offset fits
//! every thread, a zero is accepted as such a thread's. And a process forked from a threaded
//! Python before 3.7 keeps its parent's other thread states, whose structs (copies) hold the
//! parent's thread ids: when still nothing fits, only the main thread's struct decides.

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
    // How strict the other threads' structs are judged: their tid must be a thread of the
    // process; or that or 0 (exited); or anything (stale copies in a forked child).
    #[derive(Clone, Copy, PartialEq)]
    enum Others {
        Live,
        LiveOrExited,
        Any,
    }
    let fits = |off: usize, others: Others| {
        let mut has_main = false;
        for buf in &structs {
            let tid = at(buf, off);
            if tid == pid {
                has_main = true;
            } else if !(others == Others::Any
                || tids.contains(&tid)
                || others == Others::LiveOrExited && tid == 0)
            {
                return false;
            }
        }
        has_main
    };
    [Others::Live, Others::LiveOrExited, Others::Any]
        .into_iter()
        .find_map(|others| {
            let candidates: Vec<u64> = (0..SEARCH - 4)
                .step_by(4)
                .filter(|off| fits(*off, others))
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

        // A forked child (pid 200) with a stale copy of its parent's other thread (tid 101):
        // only the main struct decides, the usual offset preferred to the decoy.
        let mut forked = BTreeMap::new();
        forked.insert(0x10000, pthread(200, 0x40, 200));
        forked.insert(0x20000, pthread(101, 0x40, 7));
        let snap = Snapshot::from_pieces(serde_json::Value::Null, forked);
        let off = tid_offset(&snap, &[0x10000, 0x20000], 200, &[200]).unwrap();
        assert_eq!(off, 0x2d0);
        assert_eq!(
            tids(&snap, off, &[0x10000, 0x20000]),
            vec![Some(200), Some(101)]
        );
    }
}
