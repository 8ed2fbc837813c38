//! The buffer's write path: the group commit (make room, append, flush),
//! what happens when it fails, and deletion on acknowledgement.
//!
//! Ordering rule: a counter or mark is written before the removal it
//! describes, in the same flush, so a crash between the two over-reports
//! a drop (and open finishes the removal) instead of hiding one.

use std::sync::atomic::Ordering;

use super::open::Handles;
use super::{
    dropped_key, u64_of, Buffer, BufferError, DropReason, HEADER_LEN, KEY_DROPPED_THROUGH,
    KEY_NEXT, KEY_REMOVED_THROUGH, VALUE_VERSION,
};

/// Logical size of one stored entry (key + value).
fn entry_size(payload_len: usize) -> u64 {
    (8 + HEADER_LEN + payload_len) as u64
}

/// How to make room for an incoming group.
struct Room {
    /// Oldest stored keys to drop.
    victims: Vec<sled::IVec>,
    victim_bytes: u64,
    /// Leading entries of the group itself not to write (only when the
    /// group alone exceeds the bounds).
    skip: usize,
    /// Highest sequence dropped.
    highest: u64,
}

impl Buffer {
    /// The group commit: makes room (drop-oldest), appends `entries`
    /// (taken with [`Buffer::next_seq`], ascending) and flushes. When the
    /// buffer waits for recovery it recovers first. On failure the part of
    /// the group not already dropped for room is *abandoned*: counted as
    /// `write_error`, announced, never sent, and discarded from disk by the
    /// next recovery. Returns how many results were dropped for room.
    /// Serialised with recovery, so a recovery never splits a group.
    pub async fn commit(&self, entries: &[(u64, i64, Vec<u8>)]) -> Result<u64, BufferError> {
        let Some(last) = entries.last().map(|e| e.0) else {
            return Ok(0);
        };
        let _serial = self.inner.writer.lock().await;
        // Index of the first entry whose fate is still open.
        let mut open_from = 0usize;
        let written = async {
            if self.needs_recovery() {
                self.recover_locked().await?;
            }
            let h = self.handles()?;
            let room = self.plan_room(&h, entries)?;
            open_from = room.skip;
            let dropped = (room.victims.len() + room.skip) as u64;
            self.make_room(&h, room)?;
            if let Some(rest) = entries.get(open_from..).filter(|r| !r.is_empty()) {
                self.append(&h, rest)?;
                drop(h);
                self.flush().await?;
            }
            Ok(dropped)
        }
        .await;
        if written.is_err() {
            if let Some((first, _, _)) = entries.get(open_from) {
                self.abandon(*first, last);
            }
        }
        written
    }

    /// Decides what to drop so that the group fits: the oldest stored
    /// entries first, then (if the group alone is too big) its own oldest.
    fn plan_room(&self, h: &Handles, entries: &[(u64, i64, Vec<u8>)]) -> Result<Room, BufferError> {
        let limits = self.inner.limits;
        let mut n = self.inner.entries.load(Ordering::SeqCst) + entries.len() as u64;
        let mut bytes = self.inner.bytes.load(Ordering::SeqCst)
            + entries.iter().map(|e| entry_size(e.2.len())).sum::<u64>();
        let over = |n: u64, bytes: u64| n > limits.max_entries || bytes > limits.max_bytes;
        let mut room = Room {
            victims: Vec::new(),
            victim_bytes: 0,
            skip: 0,
            highest: 0,
        };
        if over(n, bytes) {
            for kv in h.results.iter() {
                if !over(n, bytes) {
                    break;
                }
                let (k, v) = kv.map_err(|e| self.fail(e))?;
                let size = (k.len() + v.len()) as u64;
                room.highest = u64_of(Some(k.clone()));
                room.victims.push(k);
                room.victim_bytes += size;
                n -= 1;
                bytes -= size;
            }
        }
        while over(n, bytes) && room.skip < entries.len() {
            let (seq, _, payload) = &entries[room.skip];
            room.highest = *seq;
            room.skip += 1;
            n -= 1;
            bytes -= entry_size(payload.len());
        }
        Ok(room)
    }

    /// Counts the drops, then removes the victims.
    fn make_room(&self, h: &Handles, room: Room) -> Result<(), BufferError> {
        let count = (room.victims.len() + room.skip) as u64;
        if count == 0 {
            return Ok(());
        }
        // In memory first: if persisting fails, recovery still finishes
        // the removal of everything counted here.
        self.inner
            .removed_through
            .fetch_max(room.highest, Ordering::SeqCst);
        self.note_dropped(h, DropReason::BufferFull, count, room.highest)?;
        h.meta
            .insert(
                KEY_REMOVED_THROUGH,
                &self
                    .inner
                    .removed_through
                    .load(Ordering::SeqCst)
                    .to_be_bytes(),
            )
            .map_err(|e| self.fail(e))?;
        let victims = room.victims.len() as u64;
        if victims > 0 {
            let mut batch = sled::Batch::default();
            for k in room.victims {
                batch.remove(k);
            }
            h.results.apply_batch(batch).map_err(|e| self.fail(e))?;
            self.account_removed(victims, room.victim_bytes as usize);
        }
        Ok(())
    }

    /// Writes entries (not durable until [`Buffer::flush`]).
    pub(super) fn append(
        &self,
        h: &Handles,
        entries: &[(u64, i64, Vec<u8>)],
    ) -> Result<(), BufferError> {
        let mut batch = sled::Batch::default();
        let mut added_bytes = 0u64;
        let mut max_seq = 0u64;
        for (seq, produced, payload) in entries {
            let mut value = Vec::with_capacity(HEADER_LEN + payload.len());
            value.push(VALUE_VERSION);
            value.extend_from_slice(&produced.to_be_bytes());
            value.extend_from_slice(payload);
            added_bytes += entry_size(payload.len());
            max_seq = max_seq.max(*seq);
            batch.insert(&seq.to_be_bytes(), value);
        }
        h.meta
            .insert(
                KEY_NEXT,
                &self.inner.next_seq.load(Ordering::SeqCst).to_be_bytes(),
            )
            .map_err(|e| self.fail(e))?;
        h.results.apply_batch(batch).map_err(|e| self.fail(e))?;
        self.inner
            .entries
            .fetch_add(entries.len() as u64, Ordering::SeqCst);
        self.inner.bytes.fetch_add(added_bytes, Ordering::SeqCst);
        self.inner
            .appended_through
            .fetch_max(max_seq, Ordering::SeqCst);
        Ok(())
    }

    /// Counts `n` dropped entries, the highest being `through`, and
    /// persists the counter and the `dropped_through` mark (durable at the
    /// next flush).
    pub(super) fn note_dropped(
        &self,
        h: &Handles,
        reason: DropReason,
        n: u64,
        through: u64,
    ) -> Result<(), BufferError> {
        let total = self.inner.dropped[reason.index()].fetch_add(n, Ordering::SeqCst) + n;
        let mark = self
            .inner
            .dropped_through
            .fetch_max(through, Ordering::SeqCst)
            .max(through);
        h.meta
            .insert(dropped_key(reason), &total.to_be_bytes())
            .map_err(|e| self.fail(e))?;
        h.meta
            .insert(KEY_DROPPED_THROUGH, &mark.to_be_bytes())
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    fn raise_removed_through(&self, h: &Handles, seq: u64) -> Result<(), BufferError> {
        if self.inner.removed_through.fetch_max(seq, Ordering::SeqCst) < seq {
            h.meta
                .insert(KEY_REMOVED_THROUGH, &seq.to_be_bytes())
                .map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// Gives up on the group part `first..=last` whose write failed.
    fn abandon(&self, first: u64, last: u64) {
        let n = last.saturating_sub(first) + 1;
        self.inner.dropped[DropReason::WriteError.index()].fetch_add(n, Ordering::SeqCst);
        self.inner.dropped_through.fetch_max(last, Ordering::SeqCst);
        let _ = self
            .inner
            .discard_from
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                Some(if cur == 0 { first } else { cur.min(first) })
            });
        self.inner.needs_recovery.store(true, Ordering::SeqCst);
    }

    /// Makes every prior write durable and moves the durable mark.
    pub async fn flush(&self) -> Result<(), BufferError> {
        if self.needs_recovery() {
            // A poisoned database cannot flush, and an abandoned group must
            // never fall under the durable mark.
            return Err(self.unavailable());
        }
        let target = self.inner.appended_through.load(Ordering::SeqCst);
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
        self.raise_removed_through(&h, seq)?;
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        let mut bytes = 0usize;
        for kv in h.results.range(..=seq.to_be_bytes()) {
            let (k, v) = kv.map_err(|e| self.fail(e))?;
            bytes += k.len() + v.len();
            batch.remove(k);
            removed += 1;
        }
        if removed > 0 {
            h.results.apply_batch(batch).map_err(|e| self.fail(e))?;
            self.account_removed(removed, bytes);
        }
        Ok(removed)
    }
}
