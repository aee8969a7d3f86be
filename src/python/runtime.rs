//! From `_PyRuntime` to thread states: the interpreters list and each interpreter's thread
//! list. Every walk is capped and checks for cycles.

use crate::error::{Error, Result};
use crate::process::{Fields, ReadMemory, RemoteAddr};
use crate::python::layout::{FrameRoot, GilHolder, Layout};

/// Most interpreters we follow in one process.
pub const MAX_INTERPRETERS: usize = 256;
/// Most threads we follow in one interpreter.
pub const MAX_THREADS: usize = 16384;

/// What a sample needs from one `PyThreadState`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadState {
    /// The thread state's address.
    pub addr: RemoteAddr,
    /// `thread_id`: the pthread id Python reports.
    pub thread_id: u64,
    /// `native_thread_id`: the kernel's thread id.
    pub native_thread_id: Option<u32>,
    /// The innermost interpreter frame (null when the thread runs no Python code).
    pub frame: RemoteAddr,
    /// Where the pointer to the innermost frame lives (`frame` was read from there), or null
    /// when the thread has no C frame to hold it; see [`crate::python::stacks_moved`].
    pub frame_slot: RemoteAddr,
    /// `(datastack_chunk, datastack_top)`: where this thread's frames mostly live.
    pub datastack: Option<(RemoteAddr, RemoteAddr)>,
    /// Whether the thread holds the GIL, when its thread state tells
    /// ([`crate::python::layout::GilHolder::ThreadWord`]).
    pub holds_gil: Option<bool>,
}

/// Addresses of every interpreter, main first.
pub fn interpreters(
    mem: &dyn ReadMemory,
    layout: &Layout,
    runtime: RemoteAddr,
) -> Result<Vec<RemoteAddr>> {
    let head = mem.read_addr(runtime.offset(layout.runtime_interpreters_head)?)?;
    walk_list(head, MAX_INTERPRETERS, "interpreter", |addr| {
        mem.read_addr(addr.offset(layout.interp_next)?)
    })
}

/// Every thread state of one interpreter.
pub fn threads(
    mem: &dyn ReadMemory,
    layout: &Layout,
    interp: RemoteAddr,
) -> Result<Vec<ThreadState>> {
    let head = mem.read_addr(interp.offset(layout.interp_threads_head)?)?;
    let t = &layout.thread;
    let mut out = Vec::new();
    let mut cycle = CycleCheck::new(head);
    let mut addr = head;
    while !addr.is_null() {
        let buf = mem.read_cow(addr, t.size as usize)?;
        if buf.addr_at(t.interp)? != interp {
            return Err(Error::corrupt(format!(
                "thread state {addr} does not belong to interpreter {interp}"
            )));
        }
        let (frame, frame_slot) = match t.root {
            FrameRoot::Direct { current_frame } => {
                (buf.addr_at(current_frame)?, addr.offset(current_frame)?)
            }
            FrameRoot::ViaCFrame {
                cframe,
                current_frame,
            } => {
                let cframe = buf.addr_at(cframe)?;
                if cframe.is_null() {
                    (RemoteAddr::NULL, RemoteAddr::NULL)
                } else {
                    let slot = cframe.offset(current_frame)?;
                    (mem.read_addr(slot)?, slot)
                }
            }
        };
        let native = match t.native_thread_id {
            Some(at) => buf.u64_at(at)?,
            None => 0,
        };
        out.push(ThreadState {
            addr,
            thread_id: buf.u64_at(t.thread_id)?,
            native_thread_id: u32::try_from(native).ok().filter(|n| *n != 0),
            frame,
            frame_slot,
            datastack: match t.datastack {
                Some((chunk, top)) => Some((buf.addr_at(chunk)?, buf.addr_at(top)?)),
                None => None,
            },
            holds_gil: match layout.gil {
                GilHolder::ThreadWord { word, mask, value } => {
                    Some(buf.u32_at(word)? & mask == value)
                }
                _ => None,
            },
        });
        addr = buf.addr_at(t.next)?;
        if !addr.is_null() && (out.len() >= MAX_THREADS || cycle.looped(addr)) {
            return Err(Error::corrupt("thread list too long or cyclic"));
        }
    }
    Ok(out)
}

/// Brent's cycle detection over a chain of addresses, without remembering them all: an
/// address is saved, and moved to where the walk is at every power of two steps; a chain that
/// loops comes back to it within twice the loop's length.
pub(crate) struct CycleCheck {
    saved: RemoteAddr,
    power: usize,
    since: usize,
}

impl CycleCheck {
    /// A check of the chain that starts at `start`.
    pub(crate) fn new(start: RemoteAddr) -> CycleCheck {
        CycleCheck {
            saved: start,
            power: 1,
            since: 0,
        }
    }

    /// Records one step to `next`: true when the chain has come back to where it was.
    pub(crate) fn looped(&mut self, next: RemoteAddr) -> bool {
        if !next.is_null() && next == self.saved {
            return true;
        }
        self.since += 1;
        if self.since == self.power {
            (self.saved, self.power, self.since) = (next, self.power * 2, 0);
        }
        false
    }
}

fn walk_list(
    head: RemoteAddr,
    cap: usize,
    what: &str,
    mut next: impl FnMut(RemoteAddr) -> Result<RemoteAddr>,
) -> Result<Vec<RemoteAddr>> {
    let mut out = Vec::new();
    let mut addr = head;
    while !addr.is_null() {
        if out.len() >= cap || out.contains(&addr) {
            return Err(Error::corrupt(format!("{what} list too long or cyclic")));
        }
        out.push(addr);
        addr = next(addr)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_walks_stop_on_cycles_and_caps() {
        let next = |a: RemoteAddr| Ok(RemoteAddr(if a.0 == 3 { 1 } else { a.0 + 1 }));
        assert!(walk_list(RemoteAddr(1), 10, "x", next).is_err());
        let next = |a: RemoteAddr| Ok(RemoteAddr(a.0 + 1));
        assert!(walk_list(RemoteAddr(1), 10, "x", next).is_err());
        let next = |a: RemoteAddr| Ok(RemoteAddr(if a.0 == 3 { 0 } else { a.0 + 1 }));
        assert_eq!(walk_list(RemoteAddr(1), 10, "x", next).unwrap().len(), 3);
    }

    #[test]
    fn cycle_checks_find_every_loop_soon_and_pass_straight_chains() {
        // Addresses 1..=len, then back to `back_to` (0: the chain ends).
        let steps_to_loop = |len: u64, back_to: u64| {
            let mut cycle = CycleCheck::new(RemoteAddr(1));
            let mut addr = 1;
            for step in 1..=10 * len {
                addr = if addr == len { back_to } else { addr + 1 };
                if addr == 0 {
                    return None;
                }
                if cycle.looped(RemoteAddr(addr)) {
                    return Some(step);
                }
            }
            panic!("a loop of {len} -> {back_to} was never found");
        };
        assert_eq!(steps_to_loop(1000, 0), None);
        for (len, back_to) in [
            (1, 1),
            (2, 1),
            (2, 2),
            (10, 7),
            (300, 3),
            (1000, 999),
            (64, 1),
        ] {
            let found = steps_to_loop(len, back_to).expect("a loop");
            // Only once it looped, and within twice the chain's length plus the loop's.
            let looping = len - back_to + 1;
            assert!(
                found >= len && found <= 2 * len + looping,
                "{len} -> {back_to}: {found}"
            );
        }
    }
}
