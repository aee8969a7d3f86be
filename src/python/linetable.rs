//! Line tables: from a code object's encoded table and an instruction offset to a line number.
//! Pure functions over bytes.
//!
//! The 3.11+ location table (`co_linetable`) is a sequence of entries. Each starts with a byte
//! `1 cccc lll`: the top bit marks the start of an entry, `cccc` is the entry's form and `lll + 1`
//! is how many code units (2 bytes each) it covers. The forms:
//!
//! | code | form | line delta | what follows |
//! |---|---|---|---|
//! | 0–9 | short | 0 | one column byte |
//! | 10–12 | one line | code − 10 | two column bytes |
//! | 13 | no columns | signed varint | — |
//! | 14 | long | signed varint | end-line, column and end-column varints |
//! | 15 | no location | (line unchanged, entry has no line) | — |
//!
//! Varints are little-endian groups of 6 bits with bit 6 as the continuation flag; a signed
//! varint keeps the sign in its lowest bit. Lines start at `co_firstlineno`.
//!
//! Older tables, decoded into the same [`LineRange`]s:
//! - `co_lnotab` (2.7–3.9): pairs of (bytecode increment, line increment); an address's line is
//!   the first line plus every line increment whose pair's cumulative address is not past it.
//!   Line increments are unsigned bytes in 2.7 and signed from 3.6 on.
//! - `co_linetable` (3.10): pairs of (bytecode length, signed line delta), each pair one range;
//!   a delta of −128 marks a range without a line.

use crate::error::{Error, Result};

/// One run of instructions sharing a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRange {
    /// First byte offset into the bytecode (inclusive).
    pub start: u32,
    /// Last byte offset (exclusive).
    pub end: u32,
    /// The line, or `None` for instructions without a location.
    pub line: Option<u32>,
}

/// The largest table we decode; anything bigger is taken as garbage.
pub const MAX_TABLE: usize = 1 << 20;

/// Decodes a whole 3.11+ location table.
pub fn decode_locations(table: &[u8], first_line: i32) -> Result<Vec<LineRange>> {
    check_size(table)?;
    let mut reader = Reader {
        bytes: table,
        at: 0,
    };
    let mut line = i64::from(first_line);
    let mut offset: u32 = 0;
    let mut ranges = Vec::new();
    while let Some(head) = reader.next() {
        if head & 0x80 == 0 {
            return Err(Error::corrupt("line table entry without a start bit"));
        }
        let code = (head >> 3) & 0xF;
        let units = u32::from(head & 7) + 1;
        let has_line = match code {
            15 => false,
            14 => {
                line += reader.svarint()?;
                reader.varint()?; // end line delta
                reader.varint()?; // column + 1
                reader.varint()?; // end column + 1
                true
            }
            13 => {
                line += reader.svarint()?;
                true
            }
            10..=12 => {
                line += i64::from(code - 10);
                reader.skip(2)?;
                true
            }
            _ => {
                reader.skip(1)?;
                true
            }
        };
        let start = offset;
        offset = offset
            .checked_add(units * 2)
            .ok_or_else(|| Error::corrupt("line table covers too much bytecode"))?;
        ranges.push(LineRange {
            start,
            end: offset,
            line: if has_line {
                u32::try_from(line).ok()
            } else {
                None
            },
        });
    }
    Ok(ranges)
}

/// Refuses tables larger than [`MAX_TABLE`]: such a size is garbage, not code.
fn check_size(table: &[u8]) -> Result<()> {
    if table.len() > MAX_TABLE {
        return Err(Error::corrupt(format!(
            "line table of {} bytes",
            table.len()
        )));
    }
    Ok(())
}

/// Decodes a 2.7–3.9 `co_lnotab`. `signed_lines` is false for 2.7, whose line increments are
/// unsigned.
pub fn decode_lnotab(table: &[u8], first_line: i32, signed_lines: bool) -> Result<Vec<LineRange>> {
    check_size(table)?;
    let mut ranges = Vec::new();
    let mut start: u32 = 0;
    let mut addr: u32 = 0;
    let mut line = i64::from(first_line);
    for pair in table.chunks_exact(2) {
        addr = addr
            .checked_add(u32::from(pair[0]))
            .ok_or_else(|| Error::corrupt("line table covers too much bytecode"))?;
        if addr > start {
            ranges.push(LineRange {
                start,
                end: addr,
                line: u32::try_from(line).ok(),
            });
            start = addr;
        }
        line += if signed_lines {
            i64::from(pair[1] as i8)
        } else {
            i64::from(pair[1])
        };
    }
    // The last line holds for every address after the table's end.
    ranges.push(LineRange {
        start,
        end: u32::MAX,
        line: u32::try_from(line).ok(),
    });
    Ok(ranges)
}

/// Decodes a 3.10 `co_linetable`.
pub fn decode_linetable_310(table: &[u8], first_line: i32) -> Result<Vec<LineRange>> {
    check_size(table)?;
    let mut ranges = Vec::new();
    let mut end: u32 = 0;
    let mut line = i64::from(first_line);
    for pair in table.chunks_exact(2) {
        let start = end;
        end = end
            .checked_add(u32::from(pair[0]))
            .ok_or_else(|| Error::corrupt("line table covers too much bytecode"))?;
        let delta = pair[1] as i8;
        let has_line = delta != -128;
        if has_line {
            line += i64::from(delta);
        }
        if end > start {
            ranges.push(LineRange {
                start,
                end,
                line: if has_line {
                    u32::try_from(line).ok()
                } else {
                    None
                },
            });
        }
    }
    Ok(ranges)
}

/// The line of the instruction at `byte_offset`, as CPython's `PyCode_Addr2Line` gives it:
/// the first line for a negative offset (a frame that has not started), `None` past the end or
/// for instructions without a location.
pub fn line_at(ranges: &[LineRange], byte_offset: i64, first_line: u32) -> Option<u32> {
    if byte_offset < 0 {
        return Some(first_line);
    }
    let offset = u32::try_from(byte_offset).ok()?;
    let idx = ranges.partition_point(|r| r.end <= offset);
    ranges
        .get(idx)
        .filter(|r| r.start <= offset)
        .and_then(|r| r.line)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn byte(&mut self) -> Result<u8> {
        self.next()
            .ok_or_else(|| Error::corrupt("line table ends inside an entry"))
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.byte()?;
        }
        Ok(())
    }

    fn varint(&mut self) -> Result<u64> {
        let mut b = self.byte()?;
        let mut value = u64::from(b & 63);
        let mut shift = 0;
        while b & 64 != 0 {
            b = self.byte()?;
            shift += 6;
            if shift > 60 {
                return Err(Error::corrupt("line table varint too long"));
            }
            value |= u64::from(b & 63) << shift;
        }
        Ok(value)
    }

    fn svarint(&mut self) -> Result<i64> {
        let raw = self.varint()?;
        let magnitude = (raw >> 1) as i64;
        Ok(if raw & 1 != 0 { -magnitude } else { magnitude })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an entry head byte.
    fn head(code: u8, units: u8) -> u8 {
        0x80 | (code << 3) | (units - 1)
    }

    #[test]
    fn decodes_each_form() {
        let table = [
            // 1 unit, no columns, line +2 (svarint 4)
            head(13, 1),
            4,
            // 2 units, one-line form, +1 line
            head(11, 2),
            0,
            5,
            // 1 unit, short form (same line)
            head(3, 1),
            0x12,
            // 3 units, long form, line -1 (svarint 3), end +0, col 1, endcol 2
            head(14, 3),
            3,
            0,
            1,
            2,
            // 1 unit, no location
            head(15, 1),
            // 8 units, no columns, line +70 (svarint 140 = 0b10_001100 -> 12 | 64, 2)
            head(13, 8),
            12 | 64,
            2,
        ];
        let r = decode_locations(&table, 10).unwrap();
        let lines: Vec<_> = r.iter().map(|x| (x.start, x.end, x.line)).collect();
        assert_eq!(
            lines,
            vec![
                (0, 2, Some(12)),
                (2, 6, Some(13)),
                (6, 8, Some(13)),
                (8, 14, Some(12)),
                (14, 16, None),
                (16, 32, Some(82)),
            ]
        );
        assert_eq!(line_at(&r, 0, 10), Some(12));
        assert_eq!(line_at(&r, 4, 10), Some(13));
        assert_eq!(line_at(&r, 13, 10), Some(12));
        assert_eq!(line_at(&r, 14, 10), None);
        assert_eq!(line_at(&r, 30, 10), Some(82));
        assert_eq!(line_at(&r, 32, 10), None, "past the end");
        assert_eq!(line_at(&r, -2, 10), Some(10), "not started yet");
    }

    #[test]
    fn lnotab_follows_cpythons_addr2line() {
        // Lines 10, then +1 at byte 6, +2 at byte 10, a jump of 300 bytes done as (255, 0)
        // and (45, 1), then a negative step (3.6+) of -3 at byte 320.
        let table = [6, 1, 4, 2, 255, 0, 45, 1, 10, 0xFD];
        let r = decode_lnotab(&table, 10, true).unwrap();
        for (addr, line) in [
            (0, 10),
            (5, 10),
            (6, 11),
            (9, 11),
            (10, 13),
            (309, 13),
            (310, 14),
            (319, 14),
            (320, 11),
            (5000, 11),
        ] {
            assert_eq!(line_at(&r, addr, 10), Some(line), "addr {addr}");
        }
        // 2.7 reads the same increment as +253.
        let r = decode_lnotab(&table, 10, false).unwrap();
        assert_eq!(line_at(&r, 320, 10), Some(267));
        assert_eq!(line_at(&r, 0, 10), Some(10));
        // An empty table: every address is on the first line.
        assert_eq!(
            line_at(&decode_lnotab(&[], 7, true).unwrap(), 40, 7),
            Some(7)
        );
    }

    #[test]
    fn linetable_310_has_ranges_and_holes() {
        // 4 bytes on first line +1, 2 bytes without a line, 0-length entry adding 2 lines,
        // then 6 bytes on the line after that.
        let table = [4, 1, 2, 0x80, 0, 2, 6, 1];
        let r = decode_linetable_310(&table, 20).unwrap();
        assert_eq!(line_at(&r, 0, 20), Some(21));
        assert_eq!(line_at(&r, 3, 20), Some(21));
        assert_eq!(line_at(&r, 4, 20), None);
        assert_eq!(line_at(&r, 6, 20), Some(24));
        assert_eq!(line_at(&r, 11, 20), Some(24));
        assert_eq!(line_at(&r, 12, 20), None, "past the end");
        assert_eq!(line_at(&r, -1, 20), Some(20));
    }

    #[test]
    fn truncated_and_garbage_tables_are_errors_not_panics() {
        for a in 0..=255u8 {
            for b in [0u8, 1, 127, 128, 255] {
                let _ = decode_lnotab(&[a, b, b, a, a], i32::MAX, true);
                let _ = decode_linetable_310(&[a, b, b, a, a], i32::MIN);
            }
        }
        assert!(decode_locations(&[head(14, 1), 3], 1).is_err());
        assert!(decode_locations(&[0x01], 1).is_err());
        assert!(decode_locations(
            &[
                head(13, 1),
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0x7F
            ],
            1
        )
        .is_err());
        // Every single byte and every pair: never panics.
        for a in 0..=255u8 {
            let _ = decode_locations(&[a], 1);
            for b in [0u8, 1, 64, 127, 128, 255] {
                let _ = decode_locations(&[a, b, a], i32::MAX);
            }
        }
    }

    #[test]
    fn matches_cpython_for_a_real_function() {
        // `def f(x):\n    y = x + 1\n    return y` on line 2 of a `-c` script, compiled by
        // CPython 3.12.1; its `co_lines()` is [(0, 2, 2), (2, 12, 3), (12, 16, 4)].
        let table = [
            128, 0, 216, 8, 9, 136, 65, 137, 5, 128, 65, 216, 11, 12, 128, 72,
        ];
        let r = decode_locations(&table, 2).unwrap();
        for (offset, line) in [(0, 2), (2, 3), (10, 3), (12, 4), (14, 4)] {
            assert_eq!(line_at(&r, offset, 2), Some(line), "offset {offset}");
        }
    }
}
