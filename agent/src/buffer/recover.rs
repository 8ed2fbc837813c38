//! Recovery after a write failure.
//!
//! sled 0.34 sets a sticky global error on its first I/O failure (ENOSPC
//! included): every later write and flush fails, even after space returns,
//! while reads keep working. The only way back is to drop every handle to
//! the database and open it again from disk. Recovery does that and then
//! reconciles the disk with what the agent knows:
//! * the state record on disk is the truth for entries and counters
//!   (state and entries changed together, so they agree; changes that
//!   had not reached the disk simply did not happen — e.g. an unflushed
//!   ack, whose entries are sent again and dropped as duplicates);
//! * the abandoned groups (`discard_from..`) are removed if any part of
//!   them reached the disk: they were counted as `write_error` and must
//!   never be sent;
//! * the pending `write_error` count and mark, and the next sequence, are
//!   added to the record;
//! * one batch, one flush, and only then the database is handed back.
//!
//! Any step failing (the disk is still full) leaves the buffer closed;
//! the next commit or the maintenance task tries again.

use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Duration;

use super::chunk;
use super::state::STATE_KEY;
use super::{load_state, open, Buffer, BufferError, DropReason};

/// How often a reopen that finds the database still locked (the poisoned
/// instance's last handles are being dropped) is retried, and how far apart.
const REOPEN_ATTEMPTS: u32 = 40;
const REOPEN_PAUSE: Duration = Duration::from_millis(50);

impl Buffer {
    /// Recovers from a write failure (see the module doc). Returns
    /// `Ok(true)` when it recovered now, `Ok(false)` when nothing needed
    /// recovering, and an error (the buffer stays closed; try again later)
    /// when the reopen or the flush failed.
    pub async fn recover(&self) -> Result<bool, BufferError> {
        let _serial = self.inner.writer.lock().await;
        if !self.needs_recovery() {
            return Ok(false);
        }
        self.recover_locked().await.map(|()| true)
    }

    /// [`Buffer::recover`] with the writer lock already held; also the
    /// periodic reopen that sheds sled's cache (then nothing is pending).
    pub(super) async fn recover_locked(&self) -> Result<(), BufferError> {
        // Close: commits now fail fast. The old database is released once
        // the last in-flight clone of its handles is dropped.
        drop(
            self.inner
                .handles
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let mut attempt = 0;
        loop {
            let this = self.clone();
            let reopened = tokio::task::spawn_blocking(move || this.reopen())
                .await
                .unwrap_or_else(|_| Err(self.unavailable()));
            match reopened {
                Err(BufferError::Locked { .. }) if attempt < REOPEN_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(REOPEN_PAUSE).await;
                }
                other => return other,
            }
        }
    }

    /// Blocking part of recovery.
    fn reopen(&self) -> Result<(), BufferError> {
        let path = &self.inner.path;
        let storage = |source| BufferError::Storage {
            path: path.clone(),
            source,
        };
        let h = open::handles(path).map_err(|e| open::open_error(path, e))?;
        let mut d = load_state(&h.results).map_err(storage)?;
        let mut batch = sled::Batch::default();
        let discard_from = self.inner.discard_from.load(Ordering::SeqCst);
        if discard_from > 0 {
            // Chunks holding anything at or above discard_from: the tail.
            for kv in h.results.range(..STATE_KEY).rev() {
                let (k, v) = kv.map_err(storage)?;
                let Some(items) = chunk::decode(&k, &v) else {
                    break;
                };
                if items.last().is_none_or(|i| i.seq < discard_from) {
                    break;
                }
                for i in items.iter().filter(|i| i.seq >= discard_from) {
                    if i.seq > d.removed_through {
                        d.entries -= 1;
                        d.bytes -= i.size();
                    }
                }
                batch.remove(k);
                let keep: Vec<(u64, i64, &[u8])> = items
                    .iter()
                    .filter(|i| i.seq < discard_from)
                    .map(|i| (i.seq, i.produced, &v[i.payload.clone()]))
                    .collect();
                if let Some(first) = keep.first() {
                    batch.insert(&chunk::key(first.0), chunk::encode(keep.iter().copied()));
                }
            }
        }
        let pending = self.inner.pending_write_errors.load(Ordering::SeqCst);
        d.dropped[DropReason::WriteError.index()] += pending;
        d.dropped_through = d
            .dropped_through
            .max(self.inner.pending_dropped_through.load(Ordering::SeqCst));
        d.next_seq = d.next_seq.max(self.inner.next_seq.load(Ordering::SeqCst));
        batch.insert(STATE_KEY, d.encode().as_slice());
        h.results.apply_batch(batch).map_err(storage)?;
        h.db.flush().map_err(storage)?;
        let last = self.last_stored(&h)?;
        *self.state() = d;
        self.inner
            .pending_write_errors
            .fetch_sub(pending, Ordering::SeqCst);
        self.inner
            .pending_dropped_through
            .store(0, Ordering::SeqCst);
        self.inner.discard_from.store(0, Ordering::SeqCst);
        self.inner
            .appended_through
            .fetch_max(last, Ordering::SeqCst);
        self.inner.durable_through.fetch_max(last, Ordering::SeqCst);
        self.inner
            .announced_through
            .fetch_max(d.dropped_through, Ordering::SeqCst);
        self.inner.written_since_open.store(0, Ordering::SeqCst);
        self.inner.needs_recovery.store(false, Ordering::SeqCst);
        *self
            .inner
            .handles
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(h);
        Ok(())
    }
}
