//! Recovery after a write failure.
//!
//! sled 0.34 sets a sticky global error on its first I/O failure (ENOSPC
//! included): every later write and flush fails, even after space returns,
//! while reads keep working. The only way back is to drop every handle to
//! the database and open it again from disk. Recovery does that, then
//! puts the disk in the state the in-memory counters describe:
//! * removes what is left of the abandoned groups (`discard_from..`): they
//!   were counted as `write_error` and must never be sent;
//! * finishes removals at or below `removed_through` (acks and drop-oldest
//!   whose removal had not reached the disk);
//! * persists the next sequence, the marks and the dropped counters;
//! * flushes, recounts, and only then hands the database back.
//!
//! Any step failing (the disk is still full) leaves the buffer closed;
//! the next commit or the maintenance task tries again.

use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Duration;

use super::{
    dropped_key, finish_removals, open, scan, u64_of, Buffer, BufferError, DropReason,
    KEY_DROPPED_THROUGH, KEY_NEXT, KEY_REMOVED_THROUGH,
};

/// How often a reopen that finds the database still locked (the poisoned
/// instance's last handles are being dropped) is retried, and how far apart.
const REOPEN_ATTEMPTS: u32 = 20;
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

    /// [`Buffer::recover`] with the writer lock already held.
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
        let discard_from = self.inner.discard_from.load(Ordering::SeqCst);
        if discard_from > 0 {
            let mut batch = sled::Batch::default();
            for kv in h.results.range(discard_from.to_be_bytes()..) {
                batch.remove(kv.map_err(storage)?.0);
            }
            h.results.apply_batch(batch).map_err(storage)?;
        }
        let persisted = u64_of(h.meta.get(KEY_REMOVED_THROUGH).map_err(storage)?);
        let removed_through = self
            .inner
            .removed_through
            .fetch_max(persisted, Ordering::SeqCst)
            .max(persisted);
        finish_removals(&h.results, removed_through).map_err(storage)?;
        let put = |k: &[u8], v: u64| h.meta.insert(k, &v.to_be_bytes()).map(|_| ());
        put(KEY_NEXT, self.inner.next_seq.load(Ordering::SeqCst)).map_err(storage)?;
        put(KEY_REMOVED_THROUGH, removed_through).map_err(storage)?;
        put(
            KEY_DROPPED_THROUGH,
            self.inner.dropped_through.load(Ordering::SeqCst),
        )
        .map_err(storage)?;
        for r in DropReason::ALL {
            put(
                dropped_key(r).as_bytes(),
                self.inner.dropped[r.index()].load(Ordering::SeqCst),
            )
            .map_err(storage)?;
        }
        h.db.flush().map_err(storage)?;
        let s = scan(&h.results).map_err(storage)?;
        self.inner.entries.store(s.entries, Ordering::SeqCst);
        self.inner.bytes.store(s.bytes, Ordering::SeqCst);
        self.inner
            .appended_through
            .fetch_max(s.last, Ordering::SeqCst);
        self.inner
            .durable_through
            .fetch_max(s.last, Ordering::SeqCst);
        self.inner.discard_from.store(0, Ordering::SeqCst);
        self.inner.needs_recovery.store(false, Ordering::SeqCst);
        *self
            .inner
            .handles
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(h);
        Ok(())
    }
}
