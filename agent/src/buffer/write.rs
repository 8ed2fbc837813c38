//! The buffer's write path: the group commit (make room, pack, write,
//! flush), what happens when it fails, deletion on acknowledgement, and
//! removal of unreadable entries.
//!
//! Every change is one sled batch that carries the new state record
//! (`state.rs`) with it, built and applied under the state lock.

use std::sync::atomic::Ordering;

use sled::IVec;

use super::chunk::{self, Item, PACK_ENTRIES};
use super::open::Handles;
use super::state::STATE_KEY;
use super::{last_seq, Buffer, BufferError, DropReason, REFRESH_AFTER_BYTES};

/// One entry to write: (seq, produced_unix_ms, payload).
type Incoming = (u64, i64, Vec<u8>);

/// An entry of a small tail chunk, copied out to be packed again.
struct Carried {
    seq: u64,
    produced: i64,
    payload: IVec,
}

impl Buffer {
    /// The group commit: makes room (drop-oldest), writes `entries`
    /// (taken with [`Buffer::next_seq`], ascending) and flushes. When the
    /// buffer waits for recovery it recovers first. On failure the part of
    /// the group not already dropped for room is *abandoned*: counted as
    /// `write_error`, announced, never sent, and discarded from disk by the
    /// recovery. Returns how many results were dropped for room.
    pub async fn commit(&self, entries: &[Incoming]) -> Result<u64, BufferError> {
        let Some(last) = entries.last().map(|e| e.0) else {
            return Ok(0);
        };
        let _serial = self.inner.writer.lock().await;
        // (result, leading entries whose fate is settled: dropped for room)
        let (written, settled) = async {
            if self.needs_recovery() {
                if let Err(e) = self.recover_locked().await {
                    return (Err(e), 0);
                }
            }
            let h = match self.handles() {
                Ok(h) => h,
                Err(e) => return (Err(e), 0),
            };
            let sealed_group;
            let entries = if self.inner.sealer.encrypting() {
                let mut sealed = Vec::with_capacity(entries.len());
                for (seq, produced, payload) in entries {
                    match self.inner.sealer.seal(*seq, payload.clone()) {
                        Ok(p) => sealed.push((*seq, *produced, p)),
                        Err(e) => {
                            let err = BufferError::Seal {
                                path: self.inner.path.clone(),
                                reason: e.to_string(),
                            };
                            return (Err(err), 0);
                        }
                    }
                }
                sealed_group = sealed;
                &sealed_group[..]
            } else {
                entries
            };
            let (dropped, skip) = match self.write_group(&h, entries) {
                Ok(r) => r,
                Err((e, skip)) => return (Err(e), skip),
            };
            drop(h);
            if let Err(e) = self.flush_locked().await {
                return (Err(e), skip);
            }
            let bytes: u64 = entries[skip..]
                .iter()
                .map(|e| chunk::entry_size(e.2.len()))
                .sum();
            let written = self
                .inner
                .written_since_open
                .fetch_add(bytes, Ordering::SeqCst)
                + bytes;
            if written >= REFRESH_AFTER_BYTES {
                self.refresh_locked().await;
            }
            (Ok(dropped), skip)
        }
        .await;
        if written.is_err() {
            if let Some((first, _, _)) = entries.get(settled) {
                self.abandon(*first, last);
            }
        }
        written
    }

    /// Builds and applies the batch of one group: victims for room, the
    /// group (packed with the small chunks at the tail once they reach a
    /// chunk's worth), the new state. Returns (dropped for room, leading
    /// group entries not written); on error also how many were skipped.
    pub(super) fn write_group(
        &self,
        h: &Handles,
        entries: &[Incoming],
    ) -> Result<(u64, usize), (BufferError, usize)> {
        let limits = self.inner.limits;
        let mut st = self.state();
        let mut new = *st;
        let mut batch = sled::Batch::default();
        let incoming: u64 = entries.iter().map(|e| chunk::entry_size(e.2.len())).sum();
        let mut n = st.entries + entries.len() as u64;
        let mut bytes = st.bytes + incoming;
        let over = |n: u64, b: u64| n > limits.max_entries || b > limits.max_bytes;

        // 1. Room: the oldest live entries go first, then (only if the
        //    group alone is too big) the group's own oldest.
        let mut victims = 0u64;
        let mut highest = 0u64;
        if over(n, bytes) {
            for kv in h.results.range(..STATE_KEY) {
                if !over(n, bytes) {
                    break;
                }
                let (k, v) = kv.map_err(|e| (self.fail(e), 0))?;
                // An unreadable chunk stops the search: the next read
                // removes it and counts it (`remove_corrupt`); until then
                // the bound may be exceeded by it.
                let Some(items) = chunk::decode(&k, &v) else {
                    break;
                };
                let mut all_dead = true;
                for item in items.iter().filter(|i| i.seq > st.removed_through) {
                    if !over(n, bytes) {
                        all_dead = false;
                        break;
                    }
                    n -= 1;
                    bytes -= item.size();
                    victims += 1;
                    highest = item.seq;
                }
                if all_dead {
                    batch.remove(k);
                }
            }
        }
        let mut skip = 0usize;
        while over(n, bytes) && skip < entries.len() {
            n -= 1;
            bytes -= chunk::entry_size(entries[skip].2.len());
            highest = entries[skip].0;
            skip += 1;
        }
        let dropped = victims + skip as u64;
        if dropped > 0 {
            new.removed_through = new.removed_through.max(highest);
            new.dropped_through = new.dropped_through.max(highest);
            new.dropped[DropReason::BufferFull.index()] += dropped;
        }

        // 2. The group, packed with the small chunks at the tail.
        let rest = &entries[skip..];
        if let Some(last) = rest.last().map(|e| e.0) {
            let mut carried: Vec<Carried> = Vec::new();
            let mut tail_keys = Vec::new();
            for kv in h.results.range(..STATE_KEY).rev() {
                let (k, v) = kv.map_err(|e| (self.fail(e), skip))?;
                let Some(items) = chunk::decode(&k, &v) else {
                    break;
                };
                let live: Vec<&Item> = items
                    .iter()
                    .filter(|i| i.seq > new.removed_through)
                    .collect();
                if live.len() >= PACK_ENTRIES || carried.len() + live.len() >= PACK_ENTRIES {
                    break;
                }
                let mut mine: Vec<Carried> = live
                    .into_iter()
                    .map(|i| Carried {
                        seq: i.seq,
                        produced: i.produced,
                        payload: v.subslice(i.payload.start, i.payload.len()),
                    })
                    .collect();
                mine.append(&mut carried);
                carried = mine;
                tail_keys.push(k);
            }
            let all: Vec<(u64, i64, &[u8])> = if carried.len() + rest.len() >= PACK_ENTRIES {
                for k in tail_keys {
                    batch.remove(k);
                }
                carried
                    .iter()
                    .map(|c| (c.seq, c.produced, c.payload.as_ref()))
                    .chain(rest.iter().map(|e| (e.0, e.1, e.2.as_slice())))
                    .collect()
            } else {
                rest.iter().map(|e| (e.0, e.1, e.2.as_slice())).collect()
            };
            for run in chunk::runs(&all, |e| e.2.len()) {
                batch.insert(&chunk::key(run[0].0), chunk::encode(run.iter().copied()));
            }
            self.inner
                .appended_through
                .fetch_max(last, Ordering::SeqCst);
        }
        new.entries = n;
        new.bytes = bytes;
        new.next_seq = new.next_seq.max(self.inner.next_seq.load(Ordering::SeqCst));
        batch.insert(STATE_KEY, new.encode().as_slice());
        h.results
            .apply_batch(batch)
            .map_err(|e| (self.fail(e), skip))?;
        *st = new;
        Ok((dropped, skip))
    }

    /// Reopens the database (everything is flushed) to shed sled's cache.
    /// A failure leaves the buffer closed, to be recovered like after a
    /// write failure; the group just committed is durable either way.
    async fn refresh_locked(&self) {
        if let Err(e) = self.recover_locked().await {
            self.inner.needs_recovery.store(true, Ordering::SeqCst);
            tracing::warn!(error = %e, "reopening the buffer failed; it will be recovered");
        }
    }

    /// Gives up on the group part `first..=last` whose write failed.
    fn abandon(&self, first: u64, last: u64) {
        let n = last.saturating_sub(first) + 1;
        self.inner
            .pending_write_errors
            .fetch_add(n, Ordering::SeqCst);
        self.inner
            .pending_dropped_through
            .fetch_max(last, Ordering::SeqCst);
        let _ = self
            .inner
            .discard_from
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                Some(if cur == 0 { first } else { cur.min(first) })
            });
        self.inner.needs_recovery.store(true, Ordering::SeqCst);
    }

    /// Makes every prior write durable; moves the durable and announced
    /// marks.
    pub async fn flush(&self) -> Result<(), BufferError> {
        let _serial = self.inner.writer.lock().await;
        self.flush_locked().await
    }

    pub(super) async fn flush_locked(&self) -> Result<(), BufferError> {
        if self.needs_recovery() {
            // A poisoned database cannot flush, and an abandoned group must
            // never fall under the durable mark.
            return Err(self.unavailable());
        }
        let target = self.inner.appended_through.load(Ordering::SeqCst);
        let announce = self.state().dropped_through;
        #[cfg(test)]
        if self.inner.fail_next_flush.swap(false, Ordering::SeqCst) {
            return Err(self.fail(sled::Error::Io(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "injected by a test",
            ))));
        }
        let h = self.handles()?;
        h.db.flush_async().await.map_err(|e| self.fail(e))?;
        self.inner
            .durable_through
            .fetch_max(target, Ordering::SeqCst);
        self.inner
            .announced_through
            .fetch_max(announce, Ordering::SeqCst);
        Ok(())
    }

    /// Test hook: makes the next flush fail as if the disk were full.
    #[cfg(test)]
    pub(super) fn fail_next_flush(&self) {
        self.inner.fail_next_flush.store(true, Ordering::SeqCst);
    }

    /// Deletes every entry with sequence `<= seq` (the collector has
    /// stored them). Returns how many were deleted.
    pub fn ack_through(&self, seq: u64) -> Result<u64, BufferError> {
        let h = self.handles()?;
        let mut st = self.state();
        if seq <= st.removed_through {
            return Ok(0);
        }
        // The collector holds sequences this buffer never issued (another
        // agent with the same id, a buffer restored from a backup): carry
        // on above them, or new results would be taken for duplicates.
        let issued = self.inner.next_seq.fetch_max(seq + 1, Ordering::SeqCst);
        if issued <= seq {
            tracing::warn!(
                acked = seq,
                next_seq = issued,
                "the collector acknowledged sequences this buffer never issued (two agents with one id?); continuing above them"
            );
        }
        let mut new = *st;
        let mut batch = sled::Batch::default();
        let mut removed = 0u64;
        let mut unreadable = Vec::new();
        for kv in h.results.range(..STATE_KEY) {
            let (k, v) = kv.map_err(|e| self.fail(e))?;
            if chunk::key_seq(&k) > seq {
                break;
            }
            match chunk::decode(&k, &v) {
                Some(items) => {
                    for i in items
                        .iter()
                        .filter(|i| i.seq > st.removed_through && i.seq <= seq)
                    {
                        removed += 1;
                        new.entries -= 1;
                        new.bytes -= i.size();
                    }
                    if items.last().is_some_and(|i| i.seq <= seq) {
                        batch.remove(k);
                    }
                }
                None => {
                    // Unreadable and below the ack: gone either way; its
                    // size is unknown, so count again.
                    batch.remove(k.clone());
                    unreadable.push(k);
                }
            }
        }
        new.removed_through = seq;
        if !unreadable.is_empty() {
            let (entries, bytes) = self.recount_without(&h, &unreadable, seq)?;
            new.entries = entries;
            new.bytes = bytes;
        }
        batch.insert(STATE_KEY, new.encode().as_slice());
        h.results.apply_batch(batch).map_err(|e| self.fail(e))?;
        *st = new;
        Ok(removed)
    }

    /// Live entries and bytes once the chunks in `gone` are removed, by
    /// reading everything. Rare: only when an unreadable chunk goes.
    fn recount_without(
        &self,
        h: &Handles,
        gone: &[IVec],
        removed_through: u64,
    ) -> Result<(u64, u64), BufferError> {
        let (mut entries, mut bytes) = (0, 0);
        for kv in h.results.range(..STATE_KEY) {
            let (k, v) = kv.map_err(|e| self.fail(e))?;
            if gone.contains(&k) {
                continue;
            }
            for i in chunk::decode(&k, &v).unwrap_or_default() {
                if i.seq > removed_through {
                    entries += 1;
                    bytes += i.size();
                }
            }
        }
        Ok((entries, bytes))
    }

    /// Removes unreadable chunks: counted as `corrupt` (the live entries
    /// they held, found by counting again), announced up to the next
    /// chunk, flushed at once so the announcement is durable before any
    /// later entry is sent.
    pub(super) fn remove_corrupt(&self, h: &Handles, keys: &[IVec]) -> Result<(), BufferError> {
        let mut st = self.state();
        let mut new = *st;
        let mut batch = sled::Batch::default();
        let mut announce = 0u64;
        for k in keys {
            batch.remove(k.clone());
            let next = h
                .results
                .range(k.clone()..IVec::from(STATE_KEY))
                .nth(1)
                .and_then(Result::ok)
                .map(|(nk, _)| chunk::key_seq(&nk));
            let bound = next.unwrap_or_else(|| self.inner.next_seq.load(Ordering::SeqCst));
            announce = announce.max(bound.saturating_sub(1));
            tracing::error!(
                first_seq = chunk::key_seq(k),
                "buffered results are unreadable; dropped them (counted as corrupt)"
            );
        }
        let (entries, bytes) = self.recount_without(h, keys, st.removed_through)?;
        new.dropped[DropReason::Corrupt.index()] += st.entries.saturating_sub(entries).max(1);
        new.entries = entries;
        new.bytes = bytes;
        new.dropped_through = new.dropped_through.max(announce);
        batch.insert(STATE_KEY, new.encode().as_slice());
        h.results.apply_batch(batch).map_err(|e| self.fail(e))?;
        h.db.flush().map_err(|e| self.fail(e))?;
        *st = new;
        self.inner
            .announced_through
            .fetch_max(new.dropped_through, Ordering::SeqCst);
        Ok(())
    }

    /// Removes one entry whose payload the transport could not decode;
    /// counted as `corrupt` and announced (durably, before returning).
    pub async fn drop_corrupt(&self, seq: u64) -> Result<(), BufferError> {
        let _serial = self.inner.writer.lock().await;
        let h = self.handles()?;
        {
            let mut st = self.state();
            let Some(kv) = h
                .results
                .range(..=chunk::key(seq))
                .next_back()
                .transpose()
                .map_err(|e| self.fail(e))?
            else {
                return Ok(());
            };
            let (k, v) = kv;
            let Some(items) = chunk::decode(&k, &v) else {
                return Ok(());
            };
            let Some(gone) = items
                .iter()
                .find(|i| i.seq == seq && i.seq > st.removed_through)
            else {
                return Ok(());
            };
            let mut new = *st;
            new.entries -= 1;
            new.bytes -= gone.size();
            new.dropped[DropReason::Corrupt.index()] += 1;
            new.dropped_through = new.dropped_through.max(seq);
            let keep: Vec<(u64, i64, &[u8])> = items
                .iter()
                .filter(|i| i.seq != seq)
                .map(|i| (i.seq, i.produced, &v[i.payload.clone()]))
                .collect();
            let mut batch = sled::Batch::default();
            batch.remove(k);
            if let Some(first) = keep.first() {
                batch.insert(&chunk::key(first.0), chunk::encode(keep.iter().copied()));
            }
            batch.insert(STATE_KEY, new.encode().as_slice());
            h.results.apply_batch(batch).map_err(|e| self.fail(e))?;
            *st = new;
        }
        tracing::error!(
            seq,
            "buffered result does not decode; dropped it (counted as corrupt)"
        );
        self.flush_locked().await
    }

    /// The highest stored sequence (for recovery).
    pub(super) fn last_stored(&self, h: &Handles) -> Result<u64, BufferError> {
        last_seq(&h.results).map_err(|e| self.fail(e))
    }
}
