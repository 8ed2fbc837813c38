//! The agent's own resource use (RSS, CPU seconds), reported in every
//! hello and heartbeat so the collector can show the fleet's footprint.

use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

/// RSS bytes and CPU seconds of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
}

/// Samples this process. Returns zeros if the platform cannot tell.
pub fn sample() -> Sample {
    let Ok(pid) = sysinfo::get_current_pid() else {
        return Sample::default();
    };
    let mut sys = System::new();
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing().with_memory().with_cpu(),
    );
    sys.process(pid).map_or_else(Sample::default, |p| Sample {
        rss_bytes: p.memory(),
        cpu_seconds: p.accumulated_cpu_time() as f64 / 1000.0,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_process_has_memory() {
        assert!(super::sample().rss_bytes > 0);
    }
}
