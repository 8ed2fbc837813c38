//! The buffer's read side: the next batch to send, and the figures for
//! heartbeats and `outpost-agent buffer`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use sled::IVec;

use super::chunk;
use super::state::STATE_KEY;
use super::{Buffer, BufferError, DropReason, Entry, Stats};

impl Buffer {
    /// Up to `max_entries` durable entries (and about `max_bytes`) with
    /// sequence greater than `after`, oldest first. Waits for a commit in
    /// progress. Unreadable chunks are removed and counted as `corrupt`.
    pub async fn read_after(
        &self,
        after: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, BufferError> {
        let _serial = self.inner.writer.lock().await;
        self.read_after_locked(after, max_entries, max_bytes)
    }

    fn read_after_locked(
        &self,
        after: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, BufferError> {
        let durable = self.inner.durable_through.load(Ordering::SeqCst);
        let mut out = Vec::new();
        if after >= durable {
            return Ok(out);
        }
        let h = self.handles()?;
        let from = after.max(self.state().removed_through).saturating_add(1);
        // The chunk holding `from` starts at or before it.
        let start = match h.results.range(..=chunk::key(from)).next_back() {
            Some(kv) => kv.map_err(|e| self.fail(e))?.0,
            None => IVec::from(&chunk::key(from)),
        };
        let mut corrupt = Vec::new();
        let mut size = 0usize;
        'chunks: for kv in h.results.range(start..IVec::from(STATE_KEY)) {
            let (k, v) = kv.map_err(|e| self.fail(e))?;
            let Some(items) = chunk::decode(&k, &v) else {
                corrupt.push(k);
                continue;
            };
            for item in items {
                if item.seq < from {
                    continue;
                }
                if item.seq > durable || out.len() >= max_entries || size >= max_bytes {
                    break 'chunks;
                }
                size += item.payload.len();
                out.push(Entry {
                    seq: item.seq,
                    produced_unix_ms: item.produced,
                    payload: v.subslice(item.payload.start, item.payload.len()),
                });
            }
        }
        if !corrupt.is_empty() {
            self.remove_corrupt(&h, &corrupt)?;
        }
        Ok(out)
    }

    /// Current depth, bytes, oldest entry and counters. Works while the
    /// buffer is closed for recovery (then without the oldest entry).
    pub fn stats(&self) -> Stats {
        let st = *self.state();
        let oldest = self.handles().ok().and_then(|h| {
            h.results
                .range(..STATE_KEY)
                .filter_map(Result::ok)
                .find_map(|(k, v)| {
                    chunk::decode(&k, &v)?
                        .into_iter()
                        .find(|i| i.seq > st.removed_through)
                })
        });
        let pending = self.inner.pending_write_errors.load(Ordering::SeqCst);
        let mut dropped = BTreeMap::new();
        for r in DropReason::ALL {
            let extra = if r == DropReason::WriteError {
                pending
            } else {
                0
            };
            dropped.insert(r.as_str(), st.dropped[r.index()] + extra);
        }
        Stats {
            entries: st.entries,
            bytes: st.bytes,
            oldest_seq: oldest.as_ref().map(|i| i.seq),
            oldest_produced_unix_ms: oldest.map(|i| i.produced),
            next_seq: self.inner.next_seq.load(Ordering::SeqCst),
            origin_seq: self.inner.origin,
            dropped_through: st
                .dropped_through
                .max(self.inner.pending_dropped_through.load(Ordering::SeqCst)),
            durable_through: self.inner.durable_through.load(Ordering::SeqCst),
            available: !self.needs_recovery(),
            dropped,
        }
    }
}
