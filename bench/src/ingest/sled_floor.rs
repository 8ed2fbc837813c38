//! The sled floor: sled alone doing the writes a durable store of the
//! same load needs, with nothing else (no network, no decode, no
//! evaluation).
//!
//! What it does, exactly: the same sled version and settings as the
//! collector's store (64 MiB cache, background flush every second), two
//! trees. Per group commit it takes one batch from each of
//! `min(streams, 256)` agents (256 = the store task's largest group), and
//! for each batch inserts the batch's results in chunks of [`CHUNK`] (the
//! encoded bytes of 32 real results per value, the collector store's
//! chunk) under `agent \0 first_seq`, plus the agent's state record (a
//! 160-byte value) under the agent id; then it flushes (`Db::flush`, an
//! fsync) before the next group. That is the least a sled store with the
//! collector's layout must do to make these results durable before
//! acknowledging them: one key per chunk, one state write per agent, one
//! flush per group.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::payload::Templates;

/// The store task's largest group of commands.
pub const MAX_GROUP: usize = 256;
/// Results per stored value: the collector's `store::CHUNK_RESULTS`.
pub const CHUNK: u64 = 32;

/// Runs for `duration`; returns (results made durable, elapsed).
pub fn run(
    dir: &Path,
    streams: usize,
    batch: u64,
    duration: Duration,
    templates: Arc<Templates>,
) -> Result<(u64, Duration)> {
    // The bench is not the collector: this is the floor's own database.
    #[allow(clippy::disallowed_methods)]
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(64 * 1024 * 1024)
        .flush_every_ms(Some(1000))
        .open()
        .context("open the floor's sled database")?;
    let results = db.open_tree("results")?;
    let agents = db.open_tree("agents")?;
    let group = streams.clamp(1, MAX_GROUP);
    let ids: Vec<String> = (0..streams).map(|i| format!("floor-{i}")).collect();
    let mut next: Vec<u64> = vec![1; streams];
    let state = vec![0x5au8; 160];
    let mut cursor = 0usize;
    let mut done = 0u64;
    let t0 = Instant::now();
    while t0.elapsed() < duration {
        for _ in 0..group {
            let i = cursor % streams;
            cursor += 1;
            let mut first = next[i];
            while first < next[i] + batch {
                let n = CHUNK.min(next[i] + batch - first);
                let value = templates.batch(first, n, None);
                let mut key = Vec::with_capacity(ids[i].len() + 9);
                key.extend_from_slice(ids[i].as_bytes());
                key.push(0);
                key.extend_from_slice(&first.to_be_bytes());
                results.insert(key, value.as_ref())?;
                first += n;
            }
            agents.insert(ids[i].as_bytes(), state.as_slice())?;
            next[i] += batch;
            done += batch;
        }
        db.flush()?;
    }
    Ok((done, t0.elapsed()))
}
