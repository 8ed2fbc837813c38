//! The recorder: the single task that turns finished runs into durable
//! buffer entries.
//!
//! It receives results from every check over one bounded channel, gives
//! each the next sequence number, encodes it (prost, via
//! `transport::convert`), appends a group and flushes once per group
//! (group commit), then wakes the transport. When the channel is full the
//! checks wait: a check's next run is delayed, nothing is dropped. If a
//! write fails (disk full), the results of that group are counted as
//! dropped (`write_error`), logged, and the recorder keeps going: when
//! space returns, buffering resumes by itself.
//!
//! It ends when every sender is gone (all checks stopped), after flushing:
//! a result that reached the recorder before shutdown is not lost.

use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

use crate::buffer::{Buffer, DropReason};
use crate::result::CheckResult;
use crate::transport::convert;

/// Capacity of the channel from the checks to the recorder.
pub const CHANNEL_CAPACITY: usize = 1024;
/// Most results appended in one group commit.
pub const MAX_GROUP: usize = 512;

/// Counters the recorder keeps in memory (also persisted by the buffer).
#[derive(Debug, Default)]
pub struct RecorderStats {
    pub recorded: std::sync::atomic::AtomicU64,
    pub write_errors: std::sync::atomic::AtomicU64,
}

/// Runs until all senders are dropped.
pub async fn run(
    buffer: Buffer,
    mut rx: mpsc::Receiver<CheckResult>,
    produced: Arc<Notify>,
    stats: Arc<RecorderStats>,
) {
    let mut group: Vec<CheckResult> = Vec::with_capacity(MAX_GROUP);
    loop {
        if rx.recv_many(&mut group, MAX_GROUP).await == 0 {
            break;
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
        let written = match buffer.append(&entries) {
            Ok(_) => buffer.flush().await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                stats
                    .recorded
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                produced.notify_one();
            }
            Err(e) => {
                stats
                    .write_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(error = %e, results = n, "could not write results to the buffer; counting them as dropped");
                if let Err(e) = buffer.count_dropped(DropReason::WriteError, n) {
                    tracing::error!(error = %e, "could not persist the dropped count either");
                }
            }
        }
    }
    if let Err(e) = buffer.flush().await {
        tracing::error!(error = %e, "final buffer flush failed");
    }
}
