//! Parse `/proc/PID/maps`.

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRange {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `rwxp` flags as the kernel prints them.
    pub perms: String,
    /// Offset in the mapped file.
    pub offset: u64,
    /// The mapped file, or a pseudo-name like `[heap]`; empty for anonymous memory.
    pub path: String,
}

impl MapRange {
    /// True when the range is readable.
    pub fn readable(&self) -> bool {
        self.perms.starts_with('r')
    }
    /// True when the range is writable.
    pub fn writable(&self) -> bool {
        self.perms.as_bytes().get(1) == Some(&b'w')
    }
    /// True when the range is executable.
    pub fn executable(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }
    /// True when `addr` lies inside.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
    /// True for a mapping of a regular file (not anonymous, not `[heap]`, not deleted).
    pub fn is_file(&self) -> bool {
        self.path.starts_with('/') && !self.path.ends_with(" (deleted)")
    }
}

/// Parses the whole text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MapRange> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MapRange> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let perms = fields.next()?;
    let offset = fields.next()?;
    let _dev = fields.next()?;
    let _inode = fields.next()?;
    let path = fields.next().unwrap_or("").trim_start().to_string();
    let (start, end) = range.split_once('-')?;
    Some(MapRange {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        perms: perms.to_string(),
        offset: u64::from_str_radix(offset, 16).ok()?,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_and_anonymous_lines() {
        let text = "55d0c0a00000-55d0c0a2a000 r--p 00000000 fe:01 1234   /usr/bin/python3.11\n\
                    7f00-8f00 rw-p 00001000 00:00 0 \n\
                    7ffd1000-7ffd2000 rw-p 00000000 00:00 0                  [stack]\n\
                    garbage\n\
                    1000-2000 r-xp 00000000 fe:01 99 /tmp/with space/lib.so\n";
        let maps = parse(text);
        assert_eq!(maps.len(), 4);
        assert_eq!(maps[0].start, 0x55d0c0a00000);
        assert_eq!(maps[0].path, "/usr/bin/python3.11");
        assert!(maps[0].is_file() && maps[0].readable() && !maps[0].writable());
        assert_eq!(maps[1].offset, 0x1000);
        assert_eq!(maps[1].path, "");
        assert!(maps[1].writable());
        assert_eq!(maps[2].path, "[stack]");
        assert!(!maps[2].is_file());
        assert_eq!(maps[3].path, "/tmp/with space/lib.so");
        assert!(maps[3].executable());
    }
}
