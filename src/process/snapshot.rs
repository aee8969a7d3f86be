//! Recorded target memory: a [`Recorder`] keeps every byte a walk read, and a [`Snapshot`] serves
//! those bytes back as a [`ReadMemory`]. Replay tests, benches and bug reports run the real
//! stack walk over a snapshot, with no live process.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ReadMemory, RemoteAddr};
use crate::error::{Error, Result};

/// Memory regions recorded from a target, plus free-form metadata about how to walk them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Whatever the recorder wants to keep beside the bytes (version, addresses, expected stacks).
    pub meta: serde_json::Value,
    /// Non-overlapping regions, sorted by address.
    regions: Vec<Region>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Region {
    addr: u64,
    #[serde(with = "hex_bytes")]
    bytes: Vec<u8>,
}

impl Snapshot {
    /// Builds a snapshot from possibly overlapping `(address, bytes)` pieces.
    pub fn from_pieces(meta: serde_json::Value, pieces: BTreeMap<u64, Vec<u8>>) -> Snapshot {
        let mut regions: Vec<Region> = Vec::new();
        for (addr, bytes) in pieces {
            if let Some(last) = regions.last_mut() {
                let last_end = last.addr + last.bytes.len() as u64;
                if addr <= last_end {
                    let end = addr + bytes.len() as u64;
                    if end > last_end {
                        let skip = (last_end - addr) as usize;
                        last.bytes.extend_from_slice(&bytes[skip..]);
                    }
                    continue;
                }
            }
            regions.push(Region { addr, bytes });
        }
        Snapshot { meta, regions }
    }

    /// Parses a snapshot from its JSON form.
    pub fn from_json(text: &str) -> Result<Snapshot> {
        serde_json::from_str(text).map_err(|e| Error::corrupt(format!("bad snapshot: {e}")))
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a snapshot always serialises")
    }
}

impl ReadMemory for Snapshot {
    fn read(&self, addr: RemoteAddr, buf: &mut [u8]) -> Result<()> {
        let fail = || Error::Read {
            addr,
            len: buf.len(),
        };
        let idx = self.regions.partition_point(|r| r.addr <= addr.0);
        let region = idx
            .checked_sub(1)
            .map(|i| &self.regions[i])
            .ok_or_else(fail)?;
        let start = (addr.0 - region.addr) as usize;
        let src = region
            .bytes
            .get(start..start.checked_add(buf.len()).ok_or_else(fail)?)
            .ok_or_else(fail)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Wraps a reader and keeps a copy of every successful read.
pub struct Recorder<R> {
    inner: R,
    pieces: RefCell<BTreeMap<u64, Vec<u8>>>,
}

impl<R: ReadMemory> Recorder<R> {
    /// Starts recording reads made through `inner`.
    pub fn new(inner: R) -> Self {
        Recorder {
            inner,
            pieces: RefCell::new(BTreeMap::new()),
        }
    }

    /// Everything read so far, as a snapshot carrying `meta`.
    pub fn snapshot(&self, meta: serde_json::Value) -> Snapshot {
        Snapshot::from_pieces(meta, self.pieces.borrow().clone())
    }
}

impl<R: ReadMemory> ReadMemory for Recorder<R> {
    fn read(&self, addr: RemoteAddr, buf: &mut [u8]) -> Result<()> {
        self.inner.read(addr, buf)?;
        let mut pieces = self.pieces.borrow_mut();
        let entry = pieces.entry(addr.0).or_default();
        if entry.len() < buf.len() {
            *entry = buf.to_vec();
        }
        Ok(())
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd hex length"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(text.get(i..i + 2).unwrap_or("zz"), 16)
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_pieces_merge_and_read_back() {
        let mut pieces = BTreeMap::new();
        pieces.insert(100, vec![1, 2, 3, 4]);
        pieces.insert(102, vec![3, 4, 5, 6]);
        pieces.insert(200, vec![9]);
        let snap = Snapshot::from_pieces(serde_json::json!({"v": 1}), pieces);
        let snap = Snapshot::from_json(&snap.to_json()).unwrap();
        let mut buf = [0; 6];
        snap.read(RemoteAddr(100), &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4, 5, 6]);
        assert!(snap.read(RemoteAddr(104), &mut [0; 4]).is_err());
        assert!(snap.read(RemoteAddr(99), &mut [0; 1]).is_err());
        assert_eq!(snap.read_vec(RemoteAddr(200), 1).unwrap(), vec![9]);
        assert_eq!(snap.meta["v"], 1);
    }
}
