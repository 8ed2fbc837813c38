//! Reading a process's memory and CPU from /proc (Linux).

/// kB value of a `Name:   123 kB` line of /proc/PID/status, in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces).
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 when unknown).
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// "model name" of the first CPU.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// First line of a command's output, or "unknown".
pub fn command_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

/// CPU time of all live threads of a process, in nanoseconds (sum of the
/// first field of /proc/PID/task/*/schedstat). Nanosecond resolution, but a
/// thread that exited is no longer counted: compare with [`cpu_ticks`].
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total)
}

/// A CPU reading: precise (live threads) and tick-based (whole process).
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    ns: u64,
    ticks: u64,
}

impl Cpu {
    pub fn read(pid: u32) -> Option<Cpu> {
        Some(Cpu {
            ns: cpu_ns(pid)?,
            ticks: cpu_ticks(pid)?,
        })
    }

    /// Seconds of CPU from `self` to `later`: the nanosecond figure unless
    /// the tick figure says threads exited in between (then ticks).
    pub fn seconds_until(&self, later: &Cpu) -> f64 {
        let ns = later.ns.saturating_sub(self.ns) as f64 / 1e9;
        let tick = 1.0 / ticks_per_second() as f64;
        let by_ticks = later.ticks.saturating_sub(self.ticks) as f64 * tick;
        if by_ticks > ns + 4.0 * tick {
            by_ticks
        } else {
            ns
        }
    }
}
