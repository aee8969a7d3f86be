//! The target process: spawn or attach, read its memory, pause and resume it, list its threads.
//!
//! Everything that touches the OS or raw memory lives in this folder. Above it, remote memory is
//! only ever seen as byte slices read through [`ReadMemory`], at a [`RemoteAddr`].

pub mod children;
mod linux;
pub mod maps;
pub mod pthread;
pub mod recall;
pub mod snapshot;

use std::borrow::Cow;
use std::fmt;

use crate::error::{Error, Result};

pub use linux::{ChildStdio, OsThread, Pause, Process, ThreadStates};

/// An address in the target's address space. Never dereferenced locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RemoteAddr(pub u64);

impl RemoteAddr {
    /// The null address.
    pub const NULL: RemoteAddr = RemoteAddr(0);

    /// True for the null pointer.
    pub fn is_null(self) -> bool {
        self.0 == 0
    }

    /// `self + offset`, or a [`Error::Corrupt`] if that overflows.
    pub fn offset(self, offset: u64) -> Result<RemoteAddr> {
        self.0
            .checked_add(offset)
            .map(RemoteAddr)
            .ok_or_else(|| Error::corrupt(format!("address {self} + {offset} overflows")))
    }
}

impl fmt::Display for RemoteAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// The most bytes any single read may ask for; larger requests are taken as corrupt lengths.
pub const MAX_READ: usize = 16 << 20;

/// One piece of a batched read: where to read, the buffer (its length is the size to read),
/// and whether it was filled.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// Where to read.
    pub addr: RemoteAddr,
    /// Filled by the read; its length is how much to read.
    pub buf: Vec<u8>,
    /// True once `buf` holds the target's bytes.
    pub ok: bool,
}

impl ReadRequest {
    /// A request for `len` bytes at `addr`.
    pub fn new(addr: RemoteAddr, len: usize) -> ReadRequest {
        ReadRequest {
            addr,
            buf: vec![0; len.min(MAX_READ)],
            ok: false,
        }
    }

    /// Makes `kept` one unfilled request for each `(address, length)` of `spans`, reusing
    /// the requests and buffers it holds, so that a read repeated every sample allocates
    /// nothing once its sizes are known.
    pub fn refill(kept: &mut Vec<ReadRequest>, spans: impl IntoIterator<Item = (u64, usize)>) {
        let mut count = 0;
        for (addr, len) in spans {
            match kept.get_mut(count) {
                Some(r) => {
                    r.addr = RemoteAddr(addr);
                    r.buf.resize(len.min(MAX_READ), 0);
                    r.ok = false;
                }
                None => kept.push(ReadRequest::new(RemoteAddr(addr), len)),
            }
            count += 1;
        }
        kept.truncate(count);
    }
}

/// Byte-level access to another address space.
pub trait ReadMemory {
    /// Fills `buf` from `addr`, entirely or not at all.
    fn read(&self, addr: RemoteAddr, buf: &mut [u8]) -> Result<()>;

    /// Fills several independent buffers; each request says whether it succeeded. Readers
    /// that can (a live process) do this in one system call.
    fn read_many(&self, requests: &mut [ReadRequest]) {
        for r in requests {
            r.ok = self.read(r.addr, &mut r.buf).is_ok();
        }
    }

    /// Reads the spans `spans` (address, length) and hands them to `inspect`, one request per
    /// span in the same order; `kept` holds the buffers from one call to the next. A reader
    /// that already holds fresh copies of exactly these spans (the second copies at the end of
    /// a [`recall::Recall`] batch) lends those instead of copying them.
    fn read_spans(
        &self,
        spans: &[(u64, usize)],
        kept: &mut Vec<ReadRequest>,
        inspect: &mut dyn FnMut(&[ReadRequest]) -> bool,
    ) -> bool {
        ReadRequest::refill(kept, spans.iter().copied());
        self.read_many(kept);
        inspect(kept)
    }

    /// Reads `len` bytes into a new vector. `len` is checked against [`MAX_READ`].
    fn read_vec(&self, addr: RemoteAddr, len: usize) -> Result<Vec<u8>> {
        if len > MAX_READ {
            return Err(Error::corrupt(format!(
                "refusing to read {len} bytes at {addr}"
            )));
        }
        let mut buf = vec![0; len];
        self.read(addr, &mut buf)?;
        Ok(buf)
    }

    /// `len` bytes at `addr`, borrowed from a copy the reader already holds when it has one
    /// (see [`recall::Recall`]), read into a new vector otherwise.
    fn read_cow(&self, addr: RemoteAddr, len: usize) -> Result<Cow<'_, [u8]>> {
        self.read_vec(addr, len).map(Cow::Owned)
    }

    /// Reads a little-endian `u64` (a pointer or a 64-bit integer).
    fn read_u64(&self, addr: RemoteAddr) -> Result<u64> {
        let mut buf = [0; 8];
        self.read(addr, &mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    /// Reads a pointer.
    fn read_addr(&self, addr: RemoteAddr) -> Result<RemoteAddr> {
        self.read_u64(addr).map(RemoteAddr)
    }

    /// Reads a little-endian `u32`.
    fn read_u32(&self, addr: RemoteAddr) -> Result<u32> {
        let mut buf = [0; 4];
        self.read(addr, &mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }
}

impl<T: ReadMemory + ?Sized> ReadMemory for &T {
    fn read(&self, addr: RemoteAddr, buf: &mut [u8]) -> Result<()> {
        (**self).read(addr, buf)
    }
    fn read_many(&self, requests: &mut [ReadRequest]) {
        (**self).read_many(requests)
    }
    fn read_cow(&self, addr: RemoteAddr, len: usize) -> Result<Cow<'_, [u8]>> {
        (**self).read_cow(addr, len)
    }
    fn read_spans(
        &self,
        spans: &[(u64, usize)],
        kept: &mut Vec<ReadRequest>,
        inspect: &mut dyn FnMut(&[ReadRequest]) -> bool,
    ) -> bool {
        (**self).read_spans(spans, kept, inspect)
    }
}

/// Field decoders over a structure already copied out of the target.
///
/// Offsets come from the layout tables; an offset past the end of the buffer is an error, not
/// a panic (a table and a buffer size that disagree must never crash the profiler).
pub trait Fields {
    /// The `u64` at `offset`.
    fn u64_at(&self, offset: u64) -> Result<u64>;
    /// The pointer at `offset`.
    fn addr_at(&self, offset: u64) -> Result<RemoteAddr> {
        self.u64_at(offset).map(RemoteAddr)
    }
    /// The `u32` at `offset`.
    fn u32_at(&self, offset: u64) -> Result<u32>;
    /// The `i32` at `offset`.
    fn i32_at(&self, offset: u64) -> Result<i32> {
        self.u32_at(offset).map(|v| v as i32)
    }
    /// The byte at `offset`.
    fn u8_at(&self, offset: u64) -> Result<u8>;
}

fn field<const N: usize>(buf: &[u8], offset: u64) -> Result<[u8; N]> {
    usize::try_from(offset)
        .ok()
        .and_then(|o| buf.get(o..o.checked_add(N)?))
        .map(|s| s.try_into().expect("slice of length N"))
        .ok_or_else(|| {
            Error::corrupt(format!(
                "field at offset {offset} lies outside a {}-byte structure",
                buf.len()
            ))
        })
}

impl Fields for [u8] {
    fn u64_at(&self, offset: u64) -> Result<u64> {
        field::<8>(self, offset).map(u64::from_le_bytes)
    }
    fn u32_at(&self, offset: u64) -> Result<u32> {
        field::<4>(self, offset).map(u32::from_le_bytes)
    }
    fn u8_at(&self, offset: u64) -> Result<u8> {
        field::<1>(self, offset).map(|b| b[0])
    }
}

/// A reader that counts calls, for benches and for the "reads per sample" figure.
pub struct CountingReader<R> {
    inner: R,
    reads: std::cell::Cell<u64>,
}

impl<R: ReadMemory> CountingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        CountingReader {
            inner,
            reads: std::cell::Cell::new(0),
        }
    }
    /// Reads made so far.
    pub fn reads(&self) -> u64 {
        self.reads.get()
    }
}

impl<R: ReadMemory> ReadMemory for CountingReader<R> {
    fn read(&self, addr: RemoteAddr, buf: &mut [u8]) -> Result<()> {
        self.reads.set(self.reads.get() + 1);
        self.inner.read(addr, buf)
    }
    /// Counts one read for the whole batch: what a live process costs.
    fn read_many(&self, requests: &mut [ReadRequest]) {
        self.reads.set(self.reads.get() + 1);
        self.inner.read_many(requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_out_of_range_are_errors() {
        let buf = [1u8, 0, 0, 0, 0, 0, 0, 0, 2];
        assert_eq!(buf[..].u64_at(0).unwrap(), 1);
        assert_eq!(buf[..].u8_at(8).unwrap(), 2);
        assert!(buf[..].u64_at(2).is_err());
        assert!(buf[..].u32_at(u64::MAX).is_err());
    }

    #[test]
    fn refilled_requests_match_the_spans_and_are_unfilled() {
        let mut kept = Vec::new();
        let spans = |kept: &[ReadRequest]| -> Vec<(u64, usize, bool)> {
            kept.iter().map(|r| (r.addr.0, r.buf.len(), r.ok)).collect()
        };
        ReadRequest::refill(&mut kept, [(0x10, 8), (0x20, 64), (0x30, 4)]);
        assert_eq!(
            spans(&kept),
            [(0x10, 8, false), (0x20, 64, false), (0x30, 4, false)]
        );
        kept[0].ok = true;
        ReadRequest::refill(&mut kept, [(0x40, 16)]);
        assert_eq!(spans(&kept), [(0x40, 16, false)]);
        ReadRequest::refill(&mut kept, [(0x50, 2), (0x60, 32)]);
        assert_eq!(spans(&kept), [(0x50, 2, false), (0x60, 32, false)]);
    }

    #[test]
    fn offset_overflow_is_an_error() {
        assert!(RemoteAddr(u64::MAX).offset(1).is_err());
        assert_eq!(RemoteAddr(8).offset(8).unwrap(), RemoteAddr(16));
    }
}
