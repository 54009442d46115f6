//! CPU and memory accounting from `/proc` (Linux): a process's utime+stime, the machine's busy
//! time, and a process's resident set size.
use std::fs;

/// `/proc` counts CPU time in USER_HZ ticks, which is 100 on every Linux architecture's ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// utime+stime of a process, in seconds (`None` if it is gone or `/proc` is missing).
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

pub fn self_cpu_seconds() -> Option<f64> {
    process_cpu_seconds(std::process::id())
}

/// Busy CPU seconds of the whole machine (all cores; total minus idle and iowait).
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest is already in user).
    let total: f64 = v.iter().take(8).sum();
    Some((total - v[3] - v[4]) / TICKS_PER_SECOND)
}

/// `(VmRSS, VmHWM)` of a process in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub at: std::time::Instant,
    pub server: Option<f64>,
    pub driver: Option<f64>,
    pub machine: Option<f64>,
}

impl Snapshot {
    pub fn take(server_pid: Option<u32>) -> Self {
        Snapshot {
            at: std::time::Instant::now(),
            server: server_pid.and_then(process_cpu_seconds),
            driver: self_cpu_seconds(),
            machine: machine_busy_seconds(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        assert!(self_cpu_seconds().is_some());
        assert!(machine_busy_seconds().is_some());
        let (rss, hwm) = memory_kib(std::process::id()).unwrap();
        assert!(rss > 0 && hwm >= rss);
    }
}
