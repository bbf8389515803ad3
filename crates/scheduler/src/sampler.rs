//! Resource samples of instances that are processes, read from `/proc`.

use std::time::Instant;

use crate::strategy::Load;

/// `/proc` reports CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// Raw counters of one process at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcSample {
    cpu_ticks: u64,
    rss_bytes: u64,
    io_bytes: u64,
    at: Instant,
}

/// Reads the counters of `pid`; `None` if it is gone.
pub(crate) fn read(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let io_bytes = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .map(|io| {
            io.lines()
                .filter(|l| l.starts_with("rchar:") || l.starts_with("wchar:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Some(ProcSample {
        cpu_ticks: utime + stime,
        rss_bytes: rss_kib * 1024,
        io_bytes,
        at: Instant::now(),
    })
}

/// The load between two samples: CPU in cores used, memory as a fraction of
/// `memory_limit`, IO in MiB/s.
pub(crate) fn load_between(before: &ProcSample, after: &ProcSample, memory_limit: u64) -> Load {
    let seconds = after.at.duration_since(before.at).as_secs_f64().max(1e-3);
    let cpu = after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / TICKS_PER_SECOND / seconds;
    let io = after.io_bytes.saturating_sub(before.io_bytes) as f64 / (1024.0 * 1024.0) / seconds;
    let memory = if memory_limit == 0 {
        0.0
    } else {
        after.rss_bytes as f64 / memory_limit as f64
    };
    Load { cpu, memory, io }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let before = read(std::process::id()).expect("our own /proc entry");
        // Burn a little CPU.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        let after = read(std::process::id()).unwrap();
        let load = load_between(&before, &after, 1 << 40);
        assert!(load.cpu >= 0.0);
        assert!(after.rss_bytes > 0);
        assert!(load.memory > 0.0 && load.memory < 1.0);
        assert!(read(u32::MAX).is_none());
    }
}
