//! CPython versions: parsed from `Py_Version` (the `PY_VERSION_HEX` number, 3.11+), from a
//! version string such as `3.12.1` or `3.13.0rc2`, or from a file name like `libpython3.11.so`.

use std::fmt;

/// A CPython version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PyVersion {
    /// 2 or 3.
    pub major: u8,
    /// The minor release.
    pub minor: u8,
    /// The patch release.
    pub micro: u8,
    /// 0xA alpha, 0xB beta, 0xC release candidate, 0xF final.
    pub level: u8,
    /// The alpha/beta/rc number.
    pub serial: u8,
}

impl PyVersion {
    /// A final release.
    pub const fn new(major: u8, minor: u8, micro: u8) -> PyVersion {
        PyVersion {
            major,
            minor,
            micro,
            level: 0xF,
            serial: 0,
        }
    }

    /// Decodes a `PY_VERSION_HEX` value (`0x030C01F0` is 3.12.1 final).
    pub fn from_hex(hex: u32) -> Option<PyVersion> {
        let v = PyVersion {
            major: (hex >> 24) as u8,
            minor: (hex >> 16) as u8,
            micro: (hex >> 8) as u8,
            level: ((hex >> 4) & 0xF) as u8,
            serial: (hex & 0xF) as u8,
        };
        v.is_plausible().then_some(v)
    }

    /// The `PY_VERSION_HEX` value.
    pub fn to_hex(self) -> u32 {
        u32::from(self.major) << 24
            | u32::from(self.minor) << 16
            | u32::from(self.micro) << 8
            | u32::from(self.level) << 4
            | u32::from(self.serial)
    }

    /// Parses `3.12.1`, `3.13.0rc2`, `3.14.0a1`, `3.15.0b1+`, `2.7.18`, or `3.11` (micro 0).
    pub fn parse(text: &str) -> Option<PyVersion> {
        let text = text.trim().trim_end_matches('+');
        let mut parts = text.splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor_text = parts.next()?;
        let (minor, rest) = split_digits(minor_text);
        let (micro, rest) = match parts.next() {
            Some(micro_text) if rest.is_empty() => split_digits(micro_text),
            None => (Some(0), rest),
            Some(_) => return None,
        };
        let (level, serial) = match rest {
            "" => (0xF, 0),
            r => {
                let (tag, num) = r.split_at(r.find(|c: char| c.is_ascii_digit())?);
                let level = match tag {
                    "a" => 0xA,
                    "b" => 0xB,
                    "rc" | "c" => 0xC,
                    _ => return None,
                };
                (level, num.parse().ok()?)
            }
        };
        let v = PyVersion {
            major,
            minor: minor?,
            micro: micro?,
            level,
            serial,
        };
        v.is_plausible().then_some(v)
    }

    /// Finds `pythonX.Y` in a file name such as `libpython3.11.so.1.0` or `python3.12`.
    pub fn from_file_name(name: &str) -> Option<PyVersion> {
        let at = name.rfind("python")? + "python".len();
        let tail = &name[at..];
        let (major, rest) = split_digits(tail);
        let rest = rest.strip_prefix('.')?;
        let (minor, _) = split_digits(rest);
        let v = PyVersion::new(major?, minor?, 0);
        v.is_plausible().then_some(v)
    }

    fn is_plausible(self) -> bool {
        matches!(self.major, 2 | 3)
            && self.minor < 64
            && matches!(self.level, 0xA | 0xB | 0xC | 0xF)
            && self.serial < 16
    }

    /// `(major, minor)`.
    pub fn minor_release(self) -> (u8, u8) {
        (self.major, self.minor)
    }
}

fn split_digits(s: &str) -> (Option<u8>, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    (s[..end].parse().ok(), &s[end..])
}

impl fmt::Display for PyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)?;
        match self.level {
            0xA => write!(f, "a{}", self.serial),
            0xB => write!(f, "b{}", self.serial),
            0xC => write!(f, "rc{}", self.serial),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let v = PyVersion::from_hex(0x030C01F0).unwrap();
        assert_eq!(v, PyVersion::new(3, 12, 1));
        assert_eq!(v.to_hex(), 0x030C01F0);
        let rc = PyVersion::from_hex(0x030D00C2).unwrap();
        assert_eq!(rc.to_string(), "3.13.0rc2");
        assert!(PyVersion::from_hex(0).is_none());
        assert!(PyVersion::from_hex(0xFFFF_FFFF).is_none());
        assert!(
            PyVersion::from_hex(0x030B0700).is_none(),
            "level 0 is not a release level"
        );
    }

    #[test]
    fn strings_parse() {
        assert_eq!(PyVersion::parse("3.11.7"), Some(PyVersion::new(3, 11, 7)));
        assert_eq!(PyVersion::parse("2.7.18"), Some(PyVersion::new(2, 7, 18)));
        assert_eq!(PyVersion::parse("3.11"), Some(PyVersion::new(3, 11, 0)));
        assert_eq!(
            PyVersion::parse("3.15.0a2").unwrap().to_string(),
            "3.15.0a2"
        );
        assert_eq!(PyVersion::parse("3.14.0b3+").unwrap().level, 0xB);
        assert_eq!(PyVersion::parse("3.13.0rc1").unwrap().serial, 1);
        assert!(PyVersion::parse("3.x.1").is_none());
        assert!(PyVersion::parse("4.0.0").is_none());
        assert!(PyVersion::parse("3.12.1zz").is_none());
        assert!(PyVersion::parse("").is_none());
    }

    #[test]
    fn file_names_give_minor_release() {
        assert_eq!(
            PyVersion::from_file_name("libpython3.11.so.1.0"),
            Some(PyVersion::new(3, 11, 0))
        );
        assert_eq!(
            PyVersion::from_file_name("/usr/bin/python3.13"),
            Some(PyVersion::new(3, 13, 0))
        );
        assert_eq!(PyVersion::from_file_name("/usr/bin/python3"), None);
        assert_eq!(PyVersion::from_file_name("/bin/bash"), None);
    }

    #[test]
    fn ordering_follows_release_order() {
        assert!(PyVersion::parse("3.13.0rc2").unwrap() < PyVersion::new(3, 13, 0));
        assert!(PyVersion::new(3, 12, 9) < PyVersion::new(3, 13, 0));
    }
}
