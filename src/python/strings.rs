//! Reading `str`, `bytes` and C strings out of the target, with length caps.
//!
//! A `str` (PEP 393) keeps its length and a `state` word of bit fields (`kind` = bytes per
//! character, `compact`, `ascii`) in its header. Compact strings store their characters right
//! after the header: after `PyASCIIObject` when ASCII, after `PyCompactUnicodeObject` otherwise.
//! Non-compact strings point to their characters from the word after `PyCompactUnicodeObject`.

use crate::error::{Error, Result};
use crate::process::{Fields, ReadMemory, RemoteAddr};
use crate::python::layout::{NameStrings, ObjectLayout};

/// Longest name or file name accepted, in characters.
pub const MAX_STR_CHARS: usize = 4096;

/// How many bytes past the header to fetch in the first read, so short strings need one read.
const SPECULATIVE: usize = 128;

/// Reads a name (a `str` object; in Python 2 a byte string) and decodes it.
pub fn read_str(mem: &dyn ReadMemory, layout: &ObjectLayout, addr: RemoteAddr) -> Result<String> {
    if let NameStrings::Bytes = layout.names {
        let bytes = read_bytes(mem, layout, addr, MAX_STR_CHARS * 4)?;
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    let (text, length) = read_str_prefix(mem, layout, addr, MAX_STR_CHARS)?;
    if length > MAX_STR_CHARS as u64 {
        return Err(Error::corrupt(format!(
            "string of length {length} at {addr}"
        )));
    }
    Ok(text)
}

/// Reads at most `max_chars` characters of a Python 3 `str` and returns them with the whole
/// string's length in characters (longer strings are cut on a character boundary).
pub fn read_str_prefix(
    mem: &dyn ReadMemory,
    layout: &ObjectLayout,
    addr: RemoteAddr,
    max_chars: usize,
) -> Result<(String, u64)> {
    if addr.is_null() {
        return Err(Error::corrupt("null string pointer"));
    }
    let NameStrings::Unicode(u) = &layout.names else {
        return Err(Error::corrupt("Python 2 has no PEP 393 strings"));
    };
    // Offsets are bounded when the layout is built (tables are ours, debug offsets are
    // checked), so these sums cannot overflow.
    let header_len = (u.ascii_data as usize)
        .max(u.length as usize + 8)
        .max(u.state as usize + 4);
    // One read covers the header and a short string's characters; fall back to the bare header
    // when the speculative tail crosses into unmapped memory.
    let mut buf = vec![0; header_len + SPECULATIVE];
    if mem.read(addr, &mut buf).is_err() {
        buf.truncate(header_len);
        mem.read(addr, &mut buf)?;
    }
    let full_length = buf.u64_at(u.length)? as i64;
    if full_length < 0 {
        return Err(Error::corrupt(format!(
            "string of length {full_length} at {addr}"
        )));
    }
    let length = full_length.min(max_chars as i64);
    let state = buf.u32_at(u.state)?;
    let kind = (state >> u.kind_shift) & u.kind_mask;
    let compact = (state >> u.compact_shift) & 1 == 1;
    let ascii = (state >> u.ascii_shift) & 1 == 1;
    let width = match kind {
        1 | 2 | 4 => kind as usize,
        _ => return Err(Error::corrupt(format!("string kind {kind} at {addr}"))),
    };
    let nbytes = length as usize * width;
    let data_at = if compact {
        if ascii {
            u.ascii_data
        } else {
            u.compact_data
        }
    } else {
        // Legacy string: the characters live elsewhere; the pointer follows the compact header.
        let ptr = mem.read_addr(addr.offset(u.compact_data)?)?;
        let text = decode(&mem.read_vec(ptr, nbytes)?, width, ascii)?;
        return Ok((text, full_length as u64));
    };
    let start = data_at as usize;
    let text = match buf.get(start..start + nbytes) {
        Some(chars) => decode(chars, width, ascii)?,
        None => decode(&mem.read_vec(addr.offset(data_at)?, nbytes)?, width, ascii)?,
    };
    Ok((text, full_length as u64))
}

fn decode(bytes: &[u8], width: usize, ascii: bool) -> Result<String> {
    match width {
        1 if ascii => {
            if !bytes.is_ascii() {
                return Err(Error::corrupt("non-ASCII bytes in an ASCII string"));
            }
            Ok(bytes.iter().map(|&b| b as char).collect())
        }
        1 => Ok(bytes.iter().map(|&b| b as char).collect()),
        2 => bytes
            .chunks_exact(2)
            .map(|c| {
                char::from_u32(u32::from(u16::from_le_bytes([c[0], c[1]])))
                    .ok_or_else(|| Error::corrupt("surrogate in a 2-byte string"))
            })
            .collect(),
        _ => bytes
            .chunks_exact(4)
            .map(|c| {
                char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .ok_or_else(|| Error::corrupt("invalid code point in a 4-byte string"))
            })
            .collect(),
    }
}

/// Reads a `bytes` object's contents, at most `max` bytes long.
pub fn read_bytes(
    mem: &dyn ReadMemory,
    layout: &ObjectLayout,
    addr: RemoteAddr,
    max: usize,
) -> Result<Vec<u8>> {
    let (bytes, size) = read_bytes_prefix(mem, layout, addr, max)?;
    if size > max as u64 {
        return Err(Error::corrupt(format!("bytes of length {size} at {addr}")));
    }
    Ok(bytes)
}

/// Reads at most `max` bytes of a `bytes` object (Python 2: `str`) and returns them with its
/// whole length.
pub fn read_bytes_prefix(
    mem: &dyn ReadMemory,
    layout: &ObjectLayout,
    addr: RemoteAddr,
    max: usize,
) -> Result<(Vec<u8>, u64)> {
    if addr.is_null() {
        return Err(Error::corrupt("null bytes pointer"));
    }
    let size = mem.read_u64(addr.offset(layout.ob_size)?)? as i64;
    if size < 0 {
        return Err(Error::corrupt(format!("bytes of length {size} at {addr}")));
    }
    let len = (size as u64).min(max as u64) as usize;
    let bytes = mem.read_vec(addr.offset(layout.bytes_data)?, len)?;
    Ok((bytes, size as u64))
}

/// Reads a NUL-terminated C string of at most `max` bytes (a type's `tp_name`).
pub fn read_c_str(mem: &dyn ReadMemory, addr: RemoteAddr, max: usize) -> Result<String> {
    // Read in small steps so a short string near the end of a mapping still reads.
    let mut out = Vec::new();
    let mut chunk = [0u8; 32];
    while out.len() < max {
        mem.read(addr.offset(out.len() as u64)?, &mut chunk)?;
        if let Some(nul) = chunk.iter().position(|b| *b == 0) {
            out.extend_from_slice(&chunk[..nul]);
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&chunk);
    }
    Err(Error::corrupt(format!("unterminated C string at {addr}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::layout::UnicodeLayout;

    #[test]
    fn decodes_every_width() {
        assert_eq!(decode(b"abc", 1, true).unwrap(), "abc");
        assert!(decode(&[0xE9], 1, true).is_err());
        assert_eq!(decode(&[0xE9], 1, false).unwrap(), "é");
        assert_eq!(decode(&[0x3B, 0x04], 2, false).unwrap(), "л");
        assert!(decode(&[0x00, 0xD8], 2, false).is_err());
        assert_eq!(decode(&0x1F600u32.to_le_bytes(), 4, false).unwrap(), "😀");
        assert!(decode(&0x110000u32.to_le_bytes(), 4, false).is_err());
    }

    fn layout() -> ObjectLayout {
        ObjectLayout {
            ob_type: 8,
            ob_size: 16,
            tp_name: 24,
            bytes_data: 32,
            names: NameStrings::Unicode(UnicodeLayout {
                length: 16,
                state: 32,
                ascii_data: 40,
                compact_data: 56,
                kind_shift: 2,
                kind_mask: 7,
                compact_shift: 5,
                ascii_shift: 6,
            }),
        }
    }

    #[test]
    fn reads_compact_strings_from_memory() {
        use crate::process::snapshot::Snapshot;
        use std::collections::BTreeMap;
        let mut ascii = vec![0u8; 40];
        ascii[16] = 5;
        ascii[32] = (1 << 2) | (1 << 5) | (1 << 6);
        ascii.extend_from_slice(b"hello");
        let mut wide = vec![0u8; 56];
        wide[16] = 2;
        wide[32] = (2 << 2) | (1 << 5);
        wide.extend_from_slice(&[0x3B, 0x04, 0x38, 0x04]);
        let mut bogus = vec![0u8; 56];
        bogus[16] = 0xFF;
        bogus[23] = 0x7F;
        let mut pieces = BTreeMap::new();
        pieces.insert(0x1000, ascii);
        pieces.insert(0x2000, wide);
        pieces.insert(0x3000, bogus);
        let snap = Snapshot::from_pieces(serde_json::Value::Null, pieces);
        let l = layout();
        assert_eq!(read_str(&snap, &l, RemoteAddr(0x1000)).unwrap(), "hello");
        assert_eq!(read_str(&snap, &l, RemoteAddr(0x2000)).unwrap(), "ли");
        assert!(read_str(&snap, &l, RemoteAddr(0x3000)).is_err());
        assert!(read_str(&snap, &l, RemoteAddr(0)).is_err());
        assert!(read_str(&snap, &l, RemoteAddr(0x9000)).is_err());
    }
}
