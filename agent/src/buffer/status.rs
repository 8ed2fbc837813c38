//! The buffer's status file and its maintenance task.
//!
//! `outpost-agent buffer` cannot open a buffer a running agent holds (sled
//! locks it), so the running agent writes its figures to `<path>.status`
//! (a temporary file renamed into place: readers never see half a file)
//! once a second when they changed and at least every
//! [`STATUS_REFRESH`]; the command prints that file, with its age, when
//! the buffer is locked. The same task retries [`Buffer::recover`] after a
//! write failure, for agents whose recorder is idle (no checks).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Buffer, Limits, Stats};

/// Longest time between two status writes.
pub const STATUS_REFRESH: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_secs(1);
/// Largest status file read back (it is a few hundred bytes).
const MAX_STATUS_BYTES: u64 = 64 * 1024;

/// Where the running agent writes the status of the buffer at `buffer`.
pub fn status_path(buffer: &Path) -> PathBuf {
    PathBuf::from(format!("{}.status", buffer.display()))
}

/// The human-readable figures, one `name: value` per line (the format of
/// `outpost-agent buffer`; tests parse it).
pub fn render(path: &Path, stats: &Stats, limits: Limits, now_unix_ms: i64) -> String {
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let age = stats.oldest_produced_unix_ms.map_or("-".to_string(), |p| {
        format!("{:.1}s", (now_unix_ms - p).max(0) as f64 / 1000.0)
    });
    let mut out = String::new();
    let mut line = |k: &str, v: String| {
        out.push_str(&format!("{:<20}{v}\n", format!("{k}:")));
    };
    line("path", path.display().to_string());
    line(
        "state",
        if stats.available {
            "ok".to_string()
        } else {
            "recovering from a write failure (disk full?)".to_string()
        },
    );
    line(
        "entries",
        format!("{} (max {})", stats.entries, limits.max_entries),
    );
    line(
        "bytes",
        format!("{} (max {})", stats.bytes, limits.max_bytes),
    );
    line("oldest unsent age", age);
    line("oldest seq", opt(stats.oldest_seq));
    line("next seq", stats.next_seq.to_string());
    line("origin seq", stats.origin_seq.to_string());
    line("dropped through", stats.dropped_through.to_string());
    for (reason, n) in &stats.dropped {
        out.push_str(&format!("dropped {reason:<12} {n}\n"));
    }
    out
}

/// A status file written by a running agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusFile {
    /// The figures, as [`render`] wrote them.
    pub text: String,
    pub written_unix_ms: i64,
    pub pid: u32,
}

/// Reads the status file of the buffer at `buffer`, if there is one.
pub fn read_status(buffer: &Path) -> std::io::Result<Option<StatusFile>> {
    use std::io::Read;
    let file = match std::fs::File::open(status_path(buffer)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut raw = String::new();
    file.take(MAX_STATUS_BYTES).read_to_string(&mut raw)?;
    let mut status = StatusFile {
        text: String::new(),
        written_unix_ms: 0,
        pid: 0,
    };
    for l in raw.lines() {
        if let Some(v) = l.strip_prefix("written_unix_ms: ") {
            status.written_unix_ms = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("pid: ") {
            status.pid = v.trim().parse().unwrap_or(0);
        } else {
            status.text.push_str(l);
            status.text.push('\n');
        }
    }
    Ok(Some(status))
}

fn now_unix_ms() -> i64 {
    (super::now_unix_micros() / 1000) as i64
}

async fn write_status(buffer: &Buffer, stats: &Stats) -> std::io::Result<()> {
    let path = status_path(buffer.path());
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let now = now_unix_ms();
    let text = format!(
        "{}written_unix_ms: {now}\npid: {}\n",
        render(buffer.path(), stats, buffer.limits(), now),
        std::process::id()
    );
    tokio::fs::write(&tmp, text).await?;
    tokio::fs::rename(&tmp, &path).await
}

/// Runs until `shutdown`: retries recovery when the buffer needs it, and
/// keeps the status file current. Writes a last status on the way out.
pub async fn maintain(buffer: Buffer, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last: Option<(Stats, Instant)> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if buffer.needs_recovery() {
            match buffer.recover().await {
                Ok(true) => tracing::info!(
                    path = %buffer.path().display(),
                    "buffer recovered after a write failure; buffering resumed"
                ),
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "buffer not recovered yet"),
            }
        }
        let stats = buffer.stats();
        let stale = last
            .as_ref()
            .is_none_or(|(s, at)| *s != stats || at.elapsed() >= STATUS_REFRESH);
        if stale {
            match write_status(&buffer, &stats).await {
                Ok(()) => last = Some((stats, Instant::now())),
                Err(e) => tracing::debug!(error = %e, "could not write the buffer status file"),
            }
        }
    }
    if let Err(e) = write_status(&buffer, &buffer.stats()).await {
        tracing::debug!(error = %e, "could not write the final buffer status file");
    }
}
