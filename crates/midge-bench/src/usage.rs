//! CPU time taken by this process (and, optionally, by the broker under test).

use nix::sys::resource::{getrusage, UsageWho};
use serde::Serialize;
use std::time::Duration;

/// User and system CPU time consumed over a wall-clock span.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct CpuUsage {
    /// User CPU seconds.
    pub user_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
    /// User + system seconds.
    pub total_s: f64,
    /// `total_s / wall` in percent of one core (200 = two cores busy).
    pub percent_of_one_core: f64,
}

/// A point-in-time CPU reading (seconds) for computing a [`CpuUsage`] over an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSample {
    user_s: f64,
    sys_s: f64,
}

impl CpuSample {
    /// This process, from `getrusage(RUSAGE_SELF)` (all threads).
    pub fn this_process() -> CpuSample {
        match getrusage(UsageWho::RUSAGE_SELF) {
            Ok(u) => CpuSample {
                user_s: timeval_s(u.user_time()),
                sys_s: timeval_s(u.system_time()),
            },
            Err(_) => CpuSample::default(),
        }
    }

    /// Another process, from `/proc/PID/stat` (fields 14 and 15, in clock ticks).
    pub fn other_process(pid: u32) -> Option<CpuSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (user, sys) = parse_proc_stat(&stat)?;
        let tick = clock_ticks_per_second();
        Some(CpuSample {
            user_s: user as f64 / tick,
            sys_s: sys as f64 / tick,
        })
    }

    /// CPU consumed between `self` (earlier) and `later`, over `wall`.
    pub fn usage_until(&self, later: &CpuSample, wall: Duration) -> CpuUsage {
        let user_s = (later.user_s - self.user_s).max(0.0);
        let sys_s = (later.sys_s - self.sys_s).max(0.0);
        let total_s = user_s + sys_s;
        let wall_s = wall.as_secs_f64();
        CpuUsage {
            user_s: round3(user_s),
            sys_s: round3(sys_s),
            total_s: round3(total_s),
            percent_of_one_core: if wall_s > 0.0 {
                round3(100.0 * total_s / wall_s)
            } else {
                0.0
            },
        }
    }
}

fn timeval_s(tv: nix::sys::time::TimeVal) -> f64 {
    tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6
}

fn clock_ticks_per_second() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// utime and stime from a `/proc/PID/stat` line. The command name (field 2) may hold spaces
/// and parentheses, so fields are counted from the last `)`.
fn parse_proc_stat(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th field here, stime the 13th.
    let utime = fields.nth(11)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// The resident set size of process `pid` in KiB, from `VmRSS` in `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_odd_name() {
        let line = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1";
        assert_eq!(parse_proc_stat(line), Some((250, 75)));
    }

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tmidge\nVmPeak:\t  9000 kB\nVmRSS:\t   4321 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(4321));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }

    #[test]
    fn reads_own_cpu_and_proc_stat() {
        let before = CpuSample::this_process();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let after = CpuSample::this_process();
        let usage = before.usage_until(&after, Duration::from_secs(1));
        assert!(usage.total_s >= 0.0);
        assert!(CpuSample::other_process(std::process::id()).is_some());
    }
}
