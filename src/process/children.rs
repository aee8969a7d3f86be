//! A process's descendants, from `/proc`: one pass over every `/proc/PID/stat` gives each
//! process's parent, and the descendants of a root are what that parent map reaches from it.
//! Processes come and go during the scan; one that vanishes is simply left out.
//!
//! A pid alone does not name a process for long: it is reused after an exit, and `exec`
//! replaces the program behind it. [`Identity`] tells the two cases apart, so that whoever
//! follows a process knows when to look at it afresh.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use nix::unistd::{sysconf, SysconfVar};

/// The most descendants [`descendants`] returns: a fork bomb must not become a sampling bomb.
pub const MAX_DESCENDANTS: usize = 1024;

/// What a process is right now: it changes when the pid is reused and when the process
/// `exec`s another program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// When the process started, in clock ticks since boot (`starttime` in `/proc/PID/stat`):
    /// differs between two processes that had the same pid.
    pub start_time: u64,
    /// Where its program's code starts (`startcode`): moves on every `exec` of a
    /// position-independent program, even of the same file.
    pub start_code: u64,
    /// Its executable (`/proc/PID/exe`), when readable: changes when a shell `exec`s Python.
    pub exe: Option<PathBuf>,
}

impl Identity {
    /// True when `now` (read later for the same pid) is another process or another program:
    /// the pid was reused, or the process `exec`ed. A process that is exiting loses its
    /// memory before it becomes a zombie, and with it its `startcode` and executable (read one
    /// after the other, so either may be gone already): a field that cannot be read is no
    /// sign of an `exec`, only two readings that differ are.
    pub fn is_replaced_by(&self, now: &Identity) -> bool {
        let code_moved =
            self.start_code != 0 && now.start_code != 0 && self.start_code != now.start_code;
        let exe_changed = matches!((&self.exe, &now.exe), (Some(a), Some(b)) if a != b);
        self.start_time != now.start_time || code_moved || exe_changed
    }
}

/// The fields of one `/proc/PID/stat` line that following processes needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// The process.
    pub pid: u32,
    /// Its parent.
    pub ppid: u32,
    /// True for a zombie or a dead process: it has exited.
    pub exited: bool,
    /// `starttime`.
    pub start_time: u64,
    /// `startcode` (0 when the kernel hides it from us).
    pub start_code: u64,
}

/// Parses a `/proc/PID/stat` line. The command name in parentheses may contain anything,
/// spaces and parentheses included, so fields are counted from the last `)`.
pub fn parse_stat(line: &[u8]) -> Option<Stat> {
    let open = line.iter().position(|b| *b == b'(')?;
    let close = line.iter().rposition(|b| *b == b')')?;
    let pid = std::str::from_utf8(line.get(..open)?)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let rest = std::str::from_utf8(line.get(close + 1..)?).ok()?;
    // Field 3 (state) is the first after the name; `ppid` is field 4, `starttime` field 22,
    // `startcode` field 26.
    let fields: Vec<&str> = rest.split_ascii_whitespace().take(24).collect();
    let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    let state = fields.first()?.bytes().next()?;
    Some(Stat {
        pid,
        ppid: u32::try_from(number(4)?).ok()?,
        exited: matches!(state, b'Z' | b'X' | b'x'),
        start_time: number(22)?,
        start_code: number(26).unwrap_or(0),
    })
}

/// Every process on the system that has not exited, read from `/proc/*/stat`.
pub fn scan() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        // A process that exits between the listing and this read is left out.
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/stat")).ok())
        .filter_map(|line| parse_stat(&line))
        .filter(|stat| !stat.exited)
        .collect()
}

/// One process's [`Stat`], or `None` when it has exited.
pub fn stat_of(pid: u32) -> Option<Stat> {
    let line = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&line).filter(|stat| !stat.exited)
}

/// The descendants of `root` (children, grandchildren, …; not `root` itself) among
/// `processes`, parents before their children and siblings in pid order. At most
/// [`MAX_DESCENDANTS`]; a parent map with a cycle (pids reused during the scan) cannot loop.
pub fn descendants(root: u32, processes: &[Stat]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in processes {
        if p.pid != p.ppid {
            children.entry(p.ppid).or_default().push(p.pid);
        }
    }
    for list in children.values_mut() {
        list.sort_unstable();
    }
    let mut seen = HashSet::from([root]);
    let mut found = Vec::new();
    let mut next = 0;
    let mut parent = root;
    loop {
        for &child in children.get(&parent).map(Vec::as_slice).unwrap_or_default() {
            if found.len() < MAX_DESCENDANTS && seen.insert(child) {
                found.push(child);
            }
        }
        // Breadth first: `found` doubles as the queue of parents still to expand.
        let Some(&following) = found.get(next) else {
            return found;
        };
        parent = following;
        next += 1;
    }
}

/// How long ago the process of `stat` started (was forked), or `None` when the clock cannot be
/// read.
pub fn age(stat: &Stat) -> Option<Duration> {
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let hz = sysconf(SysconfVar::CLK_TCK).ok().flatten()?;
    age_at(stat.start_time, &uptime, u64::try_from(hz).ok()?)
}

/// `start_time` (clock ticks after boot, `hz` a second) seen from a `/proc/uptime` line.
fn age_at(start_time: u64, uptime: &str, hz: u64) -> Option<Duration> {
    let now: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    let started = start_time as f64 / hz.max(1) as f64;
    Duration::try_from_secs_f64((now - started).max(0.0)).ok()
}

/// The identity of `pid` as `stat` (from [`scan`]) describes it, with its executable.
pub fn identity(stat: &Stat) -> Identity {
    Identity {
        start_time: stat.start_time,
        start_code: stat.start_code,
        exe: std::fs::read_link(format!("/proc/{}/exe", stat.pid)).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: u32, ppid: u32) -> Stat {
        Stat {
            pid,
            ppid,
            exited: false,
            start_time: u64::from(pid),
            start_code: 0,
        }
    }

    #[test]
    fn an_exiting_process_is_not_an_exec() {
        let running = Identity {
            start_time: 100,
            start_code: 0x5000,
            exe: Some("/usr/bin/python3".into()),
        };
        let exiting = Identity {
            start_code: 0,
            exe: None,
            ..running.clone()
        };
        let execed = Identity {
            start_code: 0x7000,
            exe: Some("/usr/bin/python3".into()),
            ..running.clone()
        };
        // The executable's link goes with the memory after `startcode` was read.
        let half_gone = Identity {
            exe: None,
            ..running.clone()
        };
        let reused = Identity {
            start_time: 200,
            ..exiting.clone()
        };
        assert!(!running.is_replaced_by(&running));
        assert!(!running.is_replaced_by(&exiting));
        assert!(!running.is_replaced_by(&half_gone));
        assert!(running.is_replaced_by(&execed));
        assert!(running.is_replaced_by(&reused));
        // Never readable (another user's process): the same blank reading each time.
        assert!(!exiting.is_replaced_by(&exiting));
    }

    #[test]
    fn stat_lines_parse_whatever_the_command_name() {
        let line = b"4242 (a (b) c) S 17 4242 17 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 \
                     987654 3133440 410 18446744073709551615 94234695319552 94234695339433 0";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.pid, s.ppid, s.exited), (4242, 17, false));
        assert_eq!(s.start_time, 987654);
        assert_eq!(s.start_code, 94234695319552);
        let zombie = b"7 (x) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0 0 0 0";
        assert!(parse_stat(zombie).unwrap().exited);
        assert_eq!(parse_stat(b"7 (x) S 1"), None, "truncated");
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b""), None);
    }

    #[test]
    fn descendants_are_found_breadth_first_across_generations() {
        // 1 ─┬─ 10 ─┬─ 30 ── 40
        //    │      └─ 20
        //    └─ 11        (5 is unrelated: its parent is 2)
        let procs = [
            stat(1, 0),
            stat(40, 30),
            stat(10, 1),
            stat(30, 10),
            stat(20, 10),
            stat(11, 1),
            stat(5, 2),
        ];
        assert_eq!(descendants(1, &procs), vec![10, 11, 20, 30, 40]);
        assert_eq!(descendants(10, &procs), vec![20, 30, 40]);
        assert_eq!(descendants(40, &procs), Vec::<u32>::new());
        assert_eq!(descendants(999, &procs), Vec::<u32>::new(), "no such root");
    }

    #[test]
    fn cycles_and_self_parents_do_not_loop() {
        // A torn scan can show 2 as 3's parent and 3 as 2's (pids reused meanwhile).
        let procs = [stat(2, 3), stat(3, 2), stat(4, 4), stat(5, 2)];
        assert_eq!(descendants(2, &procs), vec![3, 5]);
        assert_eq!(descendants(4, &procs), Vec::<u32>::new());
    }

    #[test]
    fn a_huge_family_is_capped() {
        let procs: Vec<Stat> = (2..5000).map(|pid| stat(pid, 1)).collect();
        assert_eq!(descendants(1, &procs).len(), MAX_DESCENDANTS);
    }

    #[test]
    fn ages_come_from_uptime_and_clock_ticks() {
        let age = |start, uptime| age_at(start, uptime, 100);
        assert_eq!(
            age(12_345, "200.00 50.00"),
            Some(Duration::from_millis(76_550))
        );
        assert_eq!(age(20_000, "200.00 50.00"), Some(Duration::ZERO));
        assert_eq!(
            age(30_000, "200.00 50.00"),
            Some(Duration::ZERO),
            "clock skew"
        );
        assert_eq!(age(1, "garbage"), None);
        assert_eq!(age(1, ""), None);
    }

    #[test]
    fn our_own_children_are_seen() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let procs = scan();
        let found = descendants(me, &procs);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
        let own = procs.iter().find(|s| s.pid == me).unwrap();
        assert_eq!(identity(own), identity(own), "stable while nothing changes");
        assert!(identity(own).exe.is_some());
        assert!(age(own).is_some());
    }
}
