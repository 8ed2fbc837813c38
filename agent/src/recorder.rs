//! The recorder: the single task that turns finished runs into durable
//! buffer entries.
//!
//! It receives results from every check over one bounded channel, gives
//! each the next sequence number, encodes it (prost, via
//! `transport::convert`), and commits the group with one flush
//! ([`Buffer::commit`], group commit; a group gathers what arrives within
//! [`LINGER`] of its first result); then it wakes the transport. When
//! the channel is full the checks wait: a check's next run is delayed,
//! nothing is dropped. If a write fails (disk full), `commit` counts the
//! group as dropped (`write_error`) and announces it; the recorder logs
//! the failure once, a summary every [`FAILURE_LOG_EVERY`] while it lasts
//! and the recovery when it ends, and keeps going: each later group first
//! tries to recover the buffer, so buffering resumes by itself when space
//! returns.
//!
//! It ends when every sender is gone (all checks stopped), after flushing:
//! a result that reached the recorder before shutdown is not lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use crate::buffer::Buffer;
use crate::result::CheckResult;
use crate::transport::convert;

/// How long the recorder waits, after a result arrives, for more to join
/// its group before committing. One group is one sled flush (an fsync and
/// a handful of thread wake-ups) and, downstream, one batch to the
/// collector and one acknowledgement; at a steady trickle of results that
/// per-group cost was most of the agent's CPU (BENCHMARKS.md). A result
/// becomes durable (produced, sent) at most this much later.
pub const LINGER: Duration = Duration::from_millis(200);

/// Capacity of the channel from the checks to the recorder.
pub const CHANNEL_CAPACITY: usize = 1024;
/// Most results appended in one group commit.
pub const MAX_GROUP: usize = 512;
/// While writes keep failing, how often the recorder logs a summary.
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(30);

/// Counters the recorder keeps in memory (the buffer persists its own).
#[derive(Debug, Default)]
pub struct RecorderStats {
    pub recorded: AtomicU64,
    pub write_errors: AtomicU64,
}

/// An ongoing write failure, for logging.
struct Failing {
    since: Instant,
    last_log: Instant,
    results: u64,
}

/// Runs until all senders are dropped.
pub async fn run(
    buffer: Buffer,
    mut rx: mpsc::Receiver<CheckResult>,
    produced: Arc<Notify>,
    stats: Arc<RecorderStats>,
) {
    let mut group: Vec<CheckResult> = Vec::with_capacity(MAX_GROUP);
    let mut failing: Option<Failing> = None;
    loop {
        if rx.recv_many(&mut group, MAX_GROUP).await == 0 {
            break;
        }
        // Linger: gather what else finishes within LINGER into the same
        // group, so a steady trickle of results costs one flush per
        // LINGER, not one per result (a channel that closes ends it).
        let linger_until = Instant::now() + LINGER;
        while group.len() < MAX_GROUP {
            let room = MAX_GROUP - group.len();
            match tokio::time::timeout_at(linger_until, rx.recv_many(&mut group, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let entries: Vec<(u64, i64, Vec<u8>)> = group
            .drain(..)
            .map(|r| {
                let seq = buffer.next_seq();
                (
                    seq,
                    convert::started_unix_ms(&r),
                    convert::encode_result(&r, seq),
                )
            })
            .collect();
        let n = entries.len() as u64;
        match buffer.commit(&entries).await {
            Ok(_) => {
                stats.recorded.fetch_add(n, Ordering::Relaxed);
                produced.notify_one();
                if let Some(f) = failing.take() {
                    tracing::warn!(
                        dropped = f.results,
                        failed_for_s = f.since.elapsed().as_secs(),
                        "buffer writable again; results produced while it failed were dropped and counted (write_error)"
                    );
                }
            }
            Err(e) => {
                stats.write_errors.fetch_add(1, Ordering::Relaxed);
                match failing.as_mut() {
                    None => {
                        tracing::error!(error = %e, results = n,
                            "could not write results to the buffer; counting them as dropped (write_error) and retrying with the next group");
                        let now = Instant::now();
                        failing = Some(Failing {
                            since: now,
                            last_log: now,
                            results: n,
                        });
                    }
                    Some(f) => {
                        f.results += n;
                        if f.last_log.elapsed() >= FAILURE_LOG_EVERY {
                            f.last_log = Instant::now();
                            tracing::error!(error = %e, dropped = f.results,
                                failing_for_s = f.since.elapsed().as_secs(),
                                "buffer writes still failing; results are dropped and counted (write_error)");
                        }
                    }
                }
            }
        }
    }
    if let Err(e) = buffer.flush().await {
        tracing::error!(error = %e, "final buffer flush failed");
    }
}
