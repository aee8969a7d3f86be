//! Reading Python objects from outside the target: type names, dicts, module and instance
//! attributes, and short reprs of common values. Used for thread names (the `threading`
//! module's `_active` mapping) and `dump --locals`. Nothing executes in the target.
//!
//! Every count read from the target (dict sizes, tuple lengths, int digits) is bounded before
//! it sizes a read, and every pointer walk is finite, so garbage memory gives an error or a
//! placeholder, never a panic or a hang.

use crate::error::{Error, Result};
use crate::process::{Fields, ReadMemory, RemoteAddr};
use crate::python::layout::{
    DictLayout, EntryLayout, InstanceDict, KeysLayout, Layout, ValueLayout,
};
use crate::python::strings;

/// Most dict entries read from one dict.
const MAX_DICT_ENTRIES: u64 = 1 << 16;
/// Most digits of an int decoded (about 9,000 decimal digits).
const MAX_INT_DIGITS: u64 = 1000;
/// Most characters of a `str` (or bytes of a `bytes`) shown in a repr.
pub const MAX_REPR_CHARS: usize = 80;
/// Most names read from one tuple of variable names.
const MAX_NAMES: u64 = 1 << 14;

/// A view of the target's objects through one interpreter's layout.
pub struct Objects<'a> {
    mem: &'a dyn ReadMemory,
    layout: &'a Layout,
    v: &'a ValueLayout,
}

/// A type's fields that decide where its instances keep attributes.
struct TypeInfo {
    addr: RemoteAddr,
    flags: u64,
    basicsize: u64,
    dictoffset: i64,
}

impl<'a> Objects<'a> {
    /// A view, or `None` when the layout lacks the offsets for objects.
    pub fn new(mem: &'a dyn ReadMemory, layout: &'a Layout) -> Option<Objects<'a>> {
        Some(Objects {
            mem,
            layout,
            v: layout.values.as_ref()?,
        })
    }

    /// The object's type.
    pub fn type_of(&self, obj: RemoteAddr) -> Result<RemoteAddr> {
        if obj.is_null() {
            return Err(Error::corrupt("null object pointer"));
        }
        self.mem.read_addr(obj.offset(self.layout.object.ob_type)?)
    }

    /// The object's type name (`tp_name`).
    pub fn type_name(&self, obj: RemoteAddr) -> Result<String> {
        let tp = self.type_of(obj)?;
        let name = self.mem.read_addr(tp.offset(self.layout.object.tp_name)?)?;
        strings::read_c_str(self.mem, name, 256)
    }

    fn type_info(&self, obj: RemoteAddr) -> Result<TypeInfo> {
        let addr = self.type_of(obj)?;
        let v = self.v;
        Ok(TypeInfo {
            addr,
            flags: self.mem.read_u64(addr.offset(v.type_flags)?)?,
            basicsize: self.mem.read_u64(addr.offset(v.type_basicsize)?)?,
            dictoffset: self.mem.read_u64(addr.offset(v.type_dictoffset)?)? as i64,
        })
    }

    /// A `str` name (a byte string in Python 2).
    pub fn name(&self, obj: RemoteAddr) -> Result<String> {
        strings::read_str(self.mem, &self.layout.object, obj)
    }

    /// Every `(key, value)` of a dict, in storage order.
    pub fn dict_items(&self, dict: RemoteAddr) -> Result<Vec<(RemoteAddr, RemoteAddr)>> {
        if dict.is_null() {
            return Err(Error::corrupt("null dict pointer"));
        }
        match &self.v.dict {
            DictLayout::Table { mask, table, entry } => {
                let mask = self.mem.read_u64(dict.offset(*mask)?)?;
                let count = mask.checked_add(1).filter(|n| *n <= MAX_DICT_ENTRIES);
                let count = count.ok_or_else(|| Error::corrupt(format!("dict mask {mask}")))?;
                let table = self.mem.read_addr(dict.offset(*table)?)?;
                self.entries(table, count, entry, None)
            }
            DictLayout::Keys {
                keys,
                values,
                values_start,
                ..
            } => {
                let keys = self.mem.read_addr(dict.offset(*keys)?)?;
                let values = self.mem.read_addr(dict.offset(*values)?)?;
                let values = if values.is_null() {
                    None
                } else {
                    Some(values.offset(*values_start)?)
                };
                self.keys_items(keys, values)
            }
        }
    }

    /// The entries of a keys object; for a split table, the values come from `values` (the
    /// array of value pointers, in entry order).
    fn keys_items(
        &self,
        keys: RemoteAddr,
        values: Option<RemoteAddr>,
    ) -> Result<Vec<(RemoteAddr, RemoteAddr)>> {
        let DictLayout::Keys { keys_layout, .. } = &self.v.dict else {
            return Err(Error::corrupt("Python 2 dicts have no keys objects"));
        };
        if keys.is_null() {
            return Err(Error::corrupt("null dict keys pointer"));
        }
        let mem = self.mem;
        let (count, entries_at, entry) = match keys_layout {
            KeysLayout::Sized {
                size,
                nentries,
                indices,
                entry,
            } => {
                let size = mem.read_u64(keys.offset(*size)?)?;
                if size > MAX_DICT_ENTRIES * 2 {
                    return Err(Error::corrupt(format!("dict keys of size {size}")));
                }
                let width = match size {
                    0..=0xff => 1,
                    0x100..=0xffff => 2,
                    _ => 4,
                };
                let nentries = mem.read_u64(keys.offset(*nentries)?)?;
                (nentries, keys.offset(*indices + size * width)?, entry)
            }
            KeysLayout::Log2 {
                log2_index_bytes,
                kind,
                nentries,
                indices,
                general_kind,
                general,
                unicode,
            } => {
                let log2 = u64::from(read_u8(mem, keys.offset(*log2_index_bytes)?)?);
                if log2 > 24 {
                    return Err(Error::corrupt(format!("dict index of 2^{log2} bytes")));
                }
                let kind = u64::from(read_u8(mem, keys.offset(*kind)?)?);
                let entry = if kind == *general_kind {
                    general
                } else {
                    unicode
                };
                let nentries = mem.read_u64(keys.offset(*nentries)?)?;
                (nentries, keys.offset(*indices + (1 << log2))?, entry)
            }
        };
        if count > MAX_DICT_ENTRIES {
            return Err(Error::corrupt(format!("dict of {count} entries")));
        }
        self.entries(entries_at, count, entry, values)
    }

    /// `count` entries from `at`; the values come from `values` instead when it is given.
    fn entries(
        &self,
        at: RemoteAddr,
        count: u64,
        entry: &EntryLayout,
        values: Option<RemoteAddr>,
    ) -> Result<Vec<(RemoteAddr, RemoteAddr)>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let buf = self.mem.read_vec(at, (count * entry.size) as usize)?;
        let split = match values {
            Some(v) => Some(self.mem.read_vec(v, (count * 8) as usize)?),
            None => None,
        };
        let mut out = Vec::new();
        for i in 0..count {
            let key = buf.addr_at(i * entry.size + entry.key)?;
            let value = match &split {
                Some(values) => values.addr_at(i * 8)?,
                None => buf.addr_at(i * entry.size + entry.value)?,
            };
            if !key.is_null() && !value.is_null() {
                out.push((key, value));
            }
        }
        Ok(out)
    }

    /// The value of the `str` key `name` in `items`, comparing names only where the key's
    /// type is a string.
    fn find(&self, items: &[(RemoteAddr, RemoteAddr)], name: &str) -> Option<RemoteAddr> {
        items
            .iter()
            .find(|(key, _)| self.name(*key).is_ok_and(|k| k == name))
            .map(|(_, value)| *value)
    }

    /// `dict[name]` for a `str` key.
    pub fn dict_get(&self, dict: RemoteAddr, name: &str) -> Result<Option<RemoteAddr>> {
        Ok(self.find(&self.dict_items(dict)?, name))
    }

    /// `module.name`.
    pub fn module_attr(&self, module: RemoteAddr, name: &str) -> Result<Option<RemoteAddr>> {
        let dict = self.mem.read_addr(module.offset(self.v.module_dict)?)?;
        self.dict_get(dict, name)
    }

    /// `obj.name` from the instance's own attributes (its `__dict__` or, where the version
    /// keeps them apart, its values array with the type's shared keys). Class attributes and
    /// properties are not looked up.
    pub fn instance_attr(&self, obj: RemoteAddr, name: &str) -> Result<Option<RemoteAddr>> {
        let tp = self.type_info(obj)?;
        let mem = self.mem;
        let before = |n: u64| -> Result<RemoteAddr> {
            obj.0
                .checked_sub(n)
                .map(RemoteAddr)
                .ok_or_else(|| Error::corrupt("object address underflows"))
        };
        match self.v.instance_dict {
            InstanceDict::Managed311 {
                flag,
                dict_before,
                values_before,
            } if tp.flags & flag != 0 => {
                let values = mem.read_addr(before(values_before)?)?;
                if !values.is_null() {
                    return self.split_attr(&tp, values, name);
                }
                self.dict_or_none(mem.read_addr(before(dict_before)?)?, name)
            }
            InstanceDict::Tagged312 { flag, before: at } if tp.flags & flag != 0 => {
                let word = mem.read_u64(before(at)?)?;
                if word & 1 == 1 {
                    // Stored as the values pointer minus one.
                    return self.split_attr(&tp, RemoteAddr(word.wrapping_add(1)), name);
                }
                self.dict_or_none(RemoteAddr(word), name)
            }
            InstanceDict::Inline313 {
                flag,
                inline_flag,
                dict_before,
            } if tp.flags & flag != 0 => {
                let dict = mem.read_addr(before(dict_before)?)?;
                if !dict.is_null() {
                    return self.dict_get(dict, name);
                }
                if tp.flags & inline_flag == 0 {
                    return Ok(None);
                }
                let values = obj.offset(tp.basicsize)?;
                if let DictLayout::Keys {
                    values_valid: Some(valid),
                    ..
                } = self.v.dict
                {
                    if read_u8(mem, values.offset(valid)?)? == 0 {
                        return Ok(None);
                    }
                }
                self.split_attr(&tp, values, name)
            }
            _ if tp.dictoffset > 0 => {
                let dict = mem.read_addr(obj.offset(tp.dictoffset as u64)?)?;
                self.dict_or_none(dict, name)
            }
            _ => Ok(None),
        }
    }

    fn dict_or_none(&self, dict: RemoteAddr, name: &str) -> Result<Option<RemoteAddr>> {
        if dict.is_null() {
            return Ok(None);
        }
        self.dict_get(dict, name)
    }

    /// An attribute kept in a values block whose keys are the type's shared keys.
    fn split_attr(
        &self,
        tp: &TypeInfo,
        values: RemoteAddr,
        name: &str,
    ) -> Result<Option<RemoteAddr>> {
        let (Some(cached_keys), DictLayout::Keys { values_start, .. }) =
            (self.v.cached_keys, &self.v.dict)
        else {
            return Ok(None);
        };
        let keys = self.mem.read_addr(tp.addr.offset(cached_keys)?)?;
        let items = self.keys_items(keys, Some(values.offset(*values_start)?))?;
        Ok(self.find(&items, name))
    }

    /// The items of a tuple.
    pub fn tuple_items(&self, tuple: RemoteAddr) -> Result<Vec<RemoteAddr>> {
        let len = self.len(tuple)?;
        if len > MAX_NAMES {
            return Err(Error::corrupt(format!("tuple of {len} items")));
        }
        let buf = self
            .mem
            .read_vec(tuple.offset(self.v.tuple_items)?, (len * 8) as usize)?;
        (0..len).map(|i| buf.addr_at(i * 8)).collect()
    }

    /// `ob_size` of a variable-size object.
    fn len(&self, obj: RemoteAddr) -> Result<u64> {
        let n = self.mem.read_u64(obj.offset(self.layout.object.ob_size)?)? as i64;
        u64::try_from(n).map_err(|_| Error::corrupt(format!("negative size {n} at {obj}")))
    }

    /// The value of an `int` (or 2.7 `long`), as a sign and magnitude digits.
    fn int_digits(&self, obj: RemoteAddr) -> Result<(bool, Vec<u32>)> {
        let int = &self.v.int;
        let (negative, ndigits) = match int.tag {
            Some(tag) => {
                let tag = self.mem.read_u64(obj.offset(tag)?)?;
                (tag & 3 == 2, tag >> 3)
            }
            None => {
                let size = self.mem.read_u64(obj.offset(self.layout.object.ob_size)?)? as i64;
                (size < 0, size.unsigned_abs())
            }
        };
        if ndigits > MAX_INT_DIGITS {
            return Err(Error::corrupt(format!("int of {ndigits} digits")));
        }
        let size = int.digit_size;
        if size != 2 && size != 4 {
            return Err(Error::corrupt(format!("digits of {size} bytes")));
        }
        let buf = self
            .mem
            .read_vec(obj.offset(int.digits)?, (ndigits * size) as usize)?;
        let digits = buf
            .chunks_exact(size as usize)
            .map(|c| match c {
                [a, b] => u32::from(u16::from_le_bytes([*a, *b])),
                _ => u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            })
            .collect();
        Ok((negative, digits))
    }

    /// An `int`'s value in decimal.
    pub fn int_decimal(&self, obj: RemoteAddr) -> Result<String> {
        let (negative, digits) = self.int_digits(obj)?;
        let text = to_decimal(&digits, self.v.int.shift);
        Ok(if negative && text != "0" {
            format!("-{text}")
        } else {
            text
        })
    }

    /// An `int` that fits in 64 bits (Python 2's `int` too), or `None`.
    pub fn int_u64(&self, obj: RemoteAddr) -> Result<Option<u64>> {
        if let Some(ival) = self.v.int.py2_int_value {
            if self.type_name(obj)? == "int" {
                return Ok(u64::try_from(self.mem.read_u64(obj.offset(ival)?)? as i64).ok());
            }
        }
        let (negative, digits) = self.int_digits(obj)?;
        let mut value: u128 = 0;
        for d in digits.iter().rev() {
            value = (value << self.v.int.shift) | u128::from(*d);
            if value > u128::from(u64::MAX) {
                return Ok(None);
            }
        }
        Ok((!negative || value == 0).then_some(value as u64))
    }

    /// A short repr of any object: the value of common scalar types (strings cut at
    /// [`MAX_REPR_CHARS`] characters), the type and length of containers, else the type and
    /// address. Unreadable memory gives a placeholder, never an error.
    pub fn repr(&self, obj: RemoteAddr) -> String {
        self.try_repr(obj)
            .unwrap_or_else(|e| format!("<unreadable: {e}>"))
    }

    fn try_repr(&self, obj: RemoteAddr) -> Result<String> {
        let type_name = self.type_name(obj)?;
        let mem = self.mem;
        let py2 = self.v.int.py2_int_value.is_some();
        Ok(match type_name.as_str() {
            "NoneType" => "None".into(),
            "bool" => {
                let truth = match self.v.int.py2_int_value {
                    Some(ival) => mem.read_u64(obj.offset(ival)?)? != 0,
                    None => self.int_digits(obj)?.1.iter().any(|d| *d != 0),
                };
                if truth { "True" } else { "False" }.into()
            }
            "int" if py2 => {
                let ival = self.v.int.py2_int_value.unwrap_or_default();
                (mem.read_u64(obj.offset(ival)?)? as i64).to_string()
            }
            "int" => self.int_decimal(obj)?,
            "long" if py2 => format!("{}L", self.int_decimal(obj)?),
            "float" => {
                let bits = mem.read_u64(obj.offset(self.v.float_value)?)?;
                float_repr(f64::from_bits(bits))
            }
            "str" if py2 => self.bytes_repr(obj, "")?,
            "str" => {
                let (text, len) =
                    strings::read_str_prefix(mem, &self.layout.object, obj, MAX_REPR_CHARS)?;
                quote("", &text, len > MAX_REPR_CHARS as u64, false)
            }
            "unicode" if py2 => self.py2_unicode_repr(obj)?,
            "bytes" => self.bytes_repr(obj, "b")?,
            "list" | "tuple" => format!("<{type_name} of length {}>", self.len(obj)?),
            "dict" => {
                let used = mem.read_u64(obj.offset(self.v.dict_used)?)?;
                format!("<dict of length {used}>")
            }
            "set" | "frozenset" => {
                let used = mem.read_u64(obj.offset(self.v.set_used)?)?;
                format!("<{type_name} of length {used}>")
            }
            _ => format!("<{type_name} at {obj}>"),
        })
    }

    fn bytes_repr(&self, obj: RemoteAddr, prefix: &str) -> Result<String> {
        let (bytes, len) =
            strings::read_bytes_prefix(self.mem, &self.layout.object, obj, MAX_REPR_CHARS)?;
        let text: String = bytes.iter().map(|&b| char::from(b)).collect();
        Ok(quote(prefix, &text, len > MAX_REPR_CHARS as u64, true))
    }

    fn py2_unicode_repr(&self, obj: RemoteAddr) -> Result<String> {
        let Some((length, data, unit)) = self.v.py2_unicode else {
            return Err(Error::corrupt("no unicode layout"));
        };
        let len = self.mem.read_u64(obj.offset(length)?)?;
        let shown = len.min(MAX_REPR_CHARS as u64);
        let ptr = self.mem.read_addr(obj.offset(data)?)?;
        let buf = self.mem.read_vec(ptr, (shown * unit) as usize)?;
        let text: String = match unit {
            2 => char::decode_utf16(
                buf.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]])),
            )
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
            _ => buf
                .chunks_exact(4)
                .map(|c| {
                    char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .unwrap_or(char::REPLACEMENT_CHARACTER)
                })
                .collect(),
        };
        Ok(quote("u", &text, len > shown, false))
    }

    /// The layout for objects.
    pub fn values(&self) -> &ValueLayout {
        self.v
    }

    /// The memory read from.
    pub fn mem(&self) -> &dyn ReadMemory {
        self.mem
    }

    /// The interpreter's layout.
    pub fn layout(&self) -> &Layout {
        self.layout
    }
}

fn read_u8(mem: &dyn ReadMemory, addr: RemoteAddr) -> Result<u8> {
    let mut b = [0u8; 1];
    mem.read(addr, &mut b)?;
    Ok(b[0])
}

/// Base-2^`shift` digits (least significant first) in decimal.
fn to_decimal(digits: &[u32], shift: u32) -> String {
    // Repeated division by 10^9 of the magnitude held as base-2^shift digits.
    let mut n: Vec<u64> = digits.iter().rev().map(|d| u64::from(*d)).collect();
    let mut chunks = Vec::new();
    while n.iter().any(|d| *d != 0) {
        let mut rem = 0u64;
        for d in n.iter_mut() {
            let cur = (rem << shift) | *d;
            *d = cur / 1_000_000_000;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem);
        while n.first() == Some(&0) {
            n.remove(0);
        }
    }
    match chunks.split_last() {
        None => "0".into(),
        Some((top, rest)) => {
            let mut s = top.to_string();
            for c in rest.iter().rev() {
                s.push_str(&format!("{c:09}"));
            }
            s
        }
    }
}

/// A float the way Python's `repr` writes most of them.
fn float_repr(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        let text = format!("{x:?}");
        // Python writes exponents with a sign and at least two digits: 1e+300, 1e-07.
        match text.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = match e.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', e),
                };
                format!("{m}e{sign}{digits:0>2}")
            }
            None => text,
        }
    }
}

/// A Python-style quoted string: `'…'`, with `...` after the quote when cut. For bytes
/// (`bytes` true, one char per byte), bytes outside ASCII are escaped too.
fn quote(prefix: &str, text: &str, cut: bool, bytes: bool) -> String {
    let mut out = String::from(prefix);
    let q = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(q);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f || (bytes && c as u32 >= 0x80) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(q);
    if cut {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::offsets::table_for;
    use crate::python::PyVersion;

    /// Memory where every address holds bytes derived from the address: pointers lead
    /// everywhere and every count is arbitrary.
    struct Garbage(u64);

    impl ReadMemory for Garbage {
        fn read(&self, addr: RemoteAddr, buf: &mut [u8]) -> Result<()> {
            if addr.0 % 7 == 3 {
                return Err(Error::corrupt("unmapped"));
            }
            for (i, b) in buf.iter_mut().enumerate() {
                let mut x = (addr.0.wrapping_add(i as u64) / 8) ^ self.0;
                x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                x ^= x >> 29;
                // Mostly small values and plausible pointers, sometimes anything.
                let word = match x % 4 {
                    0 => x % 64,
                    1 => 0x1000 + (x % 0x10000) * 8,
                    2 => 0,
                    _ => x,
                };
                *b = word.to_le_bytes()[(addr.0.wrapping_add(i as u64) % 8) as usize];
            }
            Ok(())
        }
    }

    #[test]
    fn garbage_memory_gives_errors_or_placeholders_never_panics() {
        for v in ["2.7.18", "3.6.15", "3.10.13", "3.11.7", "3.12.1"] {
            let version = PyVersion::parse(v).unwrap();
            let table = table_for(version).unwrap().unwrap();
            let layout = Layout::new(version, &table, None).unwrap();
            for seed in 0..200u64 {
                let mem = Garbage(seed);
                let objects = Objects::new(&mem, &layout).unwrap();
                let obj = RemoteAddr(0x1000 + seed * 8);
                let _ = objects.repr(obj);
                let _ = objects.dict_items(obj);
                let _ = objects.instance_attr(obj, "_name");
                let _ = objects.int_decimal(obj);
                let _ = objects.int_u64(obj);
                let at = crate::python::frames::FrameRef {
                    frame: obj,
                    code: RemoteAddr(0x2000 + seed * 16),
                };
                let _ = crate::python::locals::frame_locals(&objects, at);
                let _ = crate::python::threading::names_in(&objects, obj);
            }
        }
    }

    #[test]
    fn ints_convert_to_decimal() {
        assert_eq!(to_decimal(&[], 30), "0");
        assert_eq!(to_decimal(&[5], 30), "5");
        // 2^30 = 1073741824
        assert_eq!(to_decimal(&[0, 1], 30), "1073741824");
        // 2**100 = 1267650600228229401496703205376: digits of 30 bits, least first.
        assert_eq!(
            to_decimal(&[0, 0, 0, 1 << 10], 30),
            "1267650600228229401496703205376"
        );
        assert_eq!(to_decimal(&[0, 1], 15), "32768");
    }

    #[test]
    fn floats_and_strings_look_like_python() {
        assert_eq!(float_repr(1.5), "1.5");
        assert_eq!(float_repr(1.0), "1.0");
        assert_eq!(float_repr(1e300), "1e+300");
        assert_eq!(float_repr(1e-7), "1e-07");
        assert_eq!(float_repr(f64::NAN), "nan");
        assert_eq!(quote("", "a'b", false, false), "\"a'b\"");
        assert_eq!(quote("", "tab\there", true, false), "'tab\\there'...");
        assert_eq!(quote("", "héllo 名前", false, false), "'héllo 名前'");
        assert_eq!(quote("b", "a\u{ff}\n\\x", false, true), "b'a\\xff\\n\\\\x'");
    }
}
