//! The agent's durable result buffer — the only code that touches sled.
//!
//! Guarantees (each one is tested in this file or in `tests/`):
//! * **Produced means durable.** [`Buffer::append`] followed by
//!   [`Buffer::flush`] returning `Ok` means the entries survive kill -9;
//!   the recorder flushes before it reports a result as produced.
//! * **Sequences never repeat.** Each entry gets the next `u64`; the next
//!   value is derived at open from the persisted counter, the highest key
//!   and the highest key ever removed (`floor`), so neither a restart nor
//!   an empty buffer can reissue a number. A freshly created buffer starts
//!   at the current unix time in microseconds (its *origin*), so a buffer
//!   recreated after corruption still issues numbers above the old ones.
//! * **Only acknowledged entries are deleted**, except by drop-oldest.
//! * **Bounded.** Logical bytes (key + value) and entry count never exceed
//!   the configured bounds after an append returns: the oldest entries are
//!   dropped and counted per reason in a persistent counter. sled uses
//!   about twice the logical size on disk and never returns freed space to
//!   the filesystem, so size `max_bytes` at half the disk you can give.
//! * **A corrupt buffer never stops probing**: [`Buffer::open`] moves an
//!   unreadable directory aside (`<path>.corrupt-<unix>`) and starts fresh,
//!   and says so in its [`OpenReport`].
//!
//! Entry value layout (version 1): `[1u8][produced_unix_ms: i64 BE][payload]`,
//! where the payload is the prost encoding of the wire `CheckResult`, the
//! same bytes that go on the wire.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sled::IVec;

/// Cache for sled's page cache; its default is 1 GiB.
const CACHE_CAPACITY: u64 = 4 * 1024 * 1024;
const VALUE_VERSION: u8 = 1;
const HEADER_LEN: usize = 9;
const KEY_NEXT: &[u8] = b"next_seq";
const KEY_FLOOR: &[u8] = b"floor";
const KEY_ORIGIN: &[u8] = b"origin";
const DROPPED_PREFIX: &str = "dropped.";

/// Why results were dropped (the label on the dropped counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    /// The buffer hit its byte or entry bound; the oldest went.
    BufferFull,
    /// The entry could not be written (disk full, I/O error).
    WriteError,
    /// The entry was unreadable when read back.
    Corrupt,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::BufferFull => "buffer_full",
            DropReason::WriteError => "write_error",
            DropReason::Corrupt => "corrupt",
        }
    }
}

/// A buffer failure; the text says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("buffer at {path}: {source}; check the directory exists, is writable by the agent, and the disk has space")]
    Storage {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("buffer at {path}: cannot seal a record: {reason}")]
    Seal { path: PathBuf, reason: String },
    #[error("buffer at {path} was unusable ({reason}) and could not be moved aside: {source}; move or delete it by hand")]
    MoveAside {
        path: PathBuf,
        reason: String,
        #[source]
        source: std::io::Error,
    },
}

/// The buffer's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

/// What happened at open.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// Set when the old directory was unusable and moved here.
    pub moved_aside: Option<PathBuf>,
    pub reason: Option<String>,
}

/// One buffered entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub produced_unix_ms: i64,
    pub payload: IVec,
}

/// A point-in-time view for heartbeats, metrics and `outpost-agent buffer`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
    pub oldest_seq: Option<u64>,
    pub oldest_produced_unix_ms: Option<i64>,
    pub next_seq: u64,
    pub origin_seq: u64,
    pub dropped: BTreeMap<&'static str, u64>,
}

impl Stats {
    /// Sum of every dropped counter.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// The buffer. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Buffer {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    db: sled::Db,
    results: sled::Tree,
    meta: sled::Tree,
    limits: Limits,
    next_seq: AtomicU64,
    origin: u64,
    entries: AtomicU64,
    bytes: AtomicU64,
    dropped: [AtomicU64; 3],
    /// Encryption at rest (a no-op without a key): see `crate::seal`.
    sealer: crate::seal::Sealer,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn reasons() -> [DropReason; 3] {
    [
        DropReason::BufferFull,
        DropReason::WriteError,
        DropReason::Corrupt,
    ]
}

fn u64_of(v: Option<IVec>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes)
}

fn now_unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64)
        .max(1)
}

impl Buffer {
    /// Opens (or creates) the buffer at `path`. An unusable existing
    /// buffer is moved aside and replaced by a fresh one.
    pub fn open(path: &Path, limits: Limits) -> Result<(Buffer, OpenReport), BufferError> {
        Self::open_sealed(path, limits, crate::seal::Sealer::none())
    }

    /// As [`Buffer::open`], sealing payloads with `sealer` (encryption at
    /// rest); records that fail to open are dropped and counted `corrupt`.
    pub fn open_sealed(
        path: &Path,
        limits: Limits,
        sealer: crate::seal::Sealer,
    ) -> Result<(Buffer, OpenReport), BufferError> {
        let mut sealer = Some(sealer);
        match Self::open_once(path, limits, &mut sealer) {
            Ok(b) => Ok((b, OpenReport::default())),
            Err(first) => {
                let reason = first.to_string();
                let aside = PathBuf::from(format!(
                    "{}.corrupt-{}",
                    path.display(),
                    now_unix_micros() / 1_000_000
                ));
                std::fs::rename(path, &aside).map_err(|source| BufferError::MoveAside {
                    path: path.to_path_buf(),
                    reason: reason.clone(),
                    source,
                })?;
                let b = Self::open_once(path, limits, &mut sealer)?;
                Ok((
                    b,
                    OpenReport {
                        moved_aside: Some(aside),
                        reason: Some(reason),
                    },
                ))
            }
        }
    }

    fn open_once(
        path: &Path,
        limits: Limits,
        sealer: &mut Option<crate::seal::Sealer>,
    ) -> Result<Buffer, BufferError> {
        let storage = |source| BufferError::Storage {
            path: path.to_path_buf(),
            source,
        };
        // The one place this crate opens sled (clippy.toml disallows it elsewhere).
        #[allow(clippy::disallowed_methods)]
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_CAPACITY)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(storage)?;
        let results = db.open_tree("results").map_err(storage)?;
        let meta = db.open_tree("meta").map_err(storage)?;

        let mut origin = u64_of(meta.get(KEY_ORIGIN).map_err(storage)?);
        if origin == 0 {
            origin = now_unix_micros();
            meta.insert(KEY_ORIGIN, &origin.to_be_bytes())
                .map_err(storage)?;
            db.flush().map_err(storage)?;
        }
        let persisted_next = u64_of(meta.get(KEY_NEXT).map_err(storage)?);
        let floor = u64_of(meta.get(KEY_FLOOR).map_err(storage)?);
        let last_key = match results.last().map_err(storage)? {
            Some((k, _)) => u64_of(Some(k)),
            None => 0,
        };
        let next = persisted_next
            .max(last_key.saturating_add(1))
            .max(floor.saturating_add(1))
            .max(origin);

        let (mut entries, mut bytes) = (0u64, 0u64);
        for kv in results.iter() {
            let (k, v) = kv.map_err(storage)?;
            entries += 1;
            bytes += (k.len() + v.len()) as u64;
        }
        let dropped = reasons().map(|_| AtomicU64::new(0));
        for (i, r) in reasons().iter().enumerate() {
            let v = u64_of(
                meta.get(format!("{DROPPED_PREFIX}{}", r.as_str()))
                    .map_err(storage)?,
            );
            dropped[i].store(v, Ordering::Relaxed);
        }
        Ok(Buffer {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                db,
                results,
                meta,
                limits,
                next_seq: AtomicU64::new(next),
                origin,
                entries: AtomicU64::new(entries),
                bytes: AtomicU64::new(bytes),
                dropped,
                sealer: sealer.take().unwrap_or_else(crate::seal::Sealer::none),
            }),
        })
    }

    fn seal_error(&self, e: crate::seal::SealError) -> BufferError {
        BufferError::Seal {
            path: self.inner.path.clone(),
            reason: e.to_string(),
        }
    }

    fn storage(&self, source: sled::Error) -> BufferError {
        BufferError::Storage {
            path: self.inner.path.clone(),
            source,
        }
    }

    /// The first sequence this buffer ever issued.
    pub fn origin_seq(&self) -> u64 {
        self.inner.origin
    }

    /// Takes the next sequence number. Numbers taken but never appended
    /// (a failed write) become announced gaps, counted as `write_error`.
    pub fn next_seq(&self) -> u64 {
        self.inner.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    /// Writes entries (not yet durable: call [`Buffer::flush`]) and then
    /// enforces the bounds by dropping the oldest. Returns how many were
    /// dropped to make room.
    pub fn append(&self, entries: &[(u64, i64, Vec<u8>)]) -> Result<u64, BufferError> {
        let mut batch = sled::Batch::default();
        let mut added_bytes = 0u64;
        for (seq, produced, payload) in entries {
            let sealed;
            let payload = if self.inner.sealer.encrypting() {
                sealed = self
                    .inner
                    .sealer
                    .seal(*seq, payload.clone())
                    .map_err(|e| self.seal_error(e))?;
                &sealed
            } else {
                payload
            };
            let mut value = Vec::with_capacity(HEADER_LEN + payload.len());
            value.push(VALUE_VERSION);
            value.extend_from_slice(&produced.to_be_bytes());
            value.extend_from_slice(payload);
            added_bytes += (8 + value.len()) as u64;
            batch.insert(&seq.to_be_bytes(), value);
        }
        self.inner
            .meta
            .insert(
                KEY_NEXT,
                &self.inner.next_seq.load(Ordering::SeqCst).to_be_bytes(),
            )
            .map_err(|e| self.storage(e))?;
        self.inner
            .results
            .apply_batch(batch)
            .map_err(|e| self.storage(e))?;
        self.inner
            .entries
            .fetch_add(entries.len() as u64, Ordering::SeqCst);
        self.inner.bytes.fetch_add(added_bytes, Ordering::SeqCst);
        self.enforce_bounds()
    }

    fn enforce_bounds(&self) -> Result<u64, BufferError> {
        let limits = self.inner.limits;
        let mut dropped = 0;
        while self.inner.entries.load(Ordering::SeqCst) > limits.max_entries
            || self.inner.bytes.load(Ordering::SeqCst) > limits.max_bytes
        {
            let Some((k, _)) = self.inner.results.first().map_err(|e| self.storage(e))? else {
                break;
            };
            self.raise_floor(u64_of(Some(k.clone())))?;
            if let Some(v) = self.inner.results.remove(&k).map_err(|e| self.storage(e))? {
                self.account_removed(k.len() + v.len());
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.count_dropped(DropReason::BufferFull, dropped)?;
        }
        Ok(dropped)
    }

    fn account_removed(&self, bytes: usize) {
        self.inner.entries.fetch_sub(1, Ordering::SeqCst);
        self.inner.bytes.fetch_sub(bytes as u64, Ordering::SeqCst);
    }

    fn raise_floor(&self, seq: u64) -> Result<(), BufferError> {
        let floor = u64_of(
            self.inner
                .meta
                .get(KEY_FLOOR)
                .map_err(|e| self.storage(e))?,
        );
        if seq > floor {
            self.inner
                .meta
                .insert(KEY_FLOOR, &seq.to_be_bytes())
                .map_err(|e| self.storage(e))?;
        }
        Ok(())
    }

    /// Adds `n` to the persistent dropped counter for `reason` (durable at
    /// the next flush).
    pub fn count_dropped(&self, reason: DropReason, n: u64) -> Result<(), BufferError> {
        let idx = reasons().iter().position(|r| *r == reason).unwrap_or(0);
        let total = self.inner.dropped[idx].fetch_add(n, Ordering::SeqCst) + n;
        self.inner
            .meta
            .insert(
                format!("{DROPPED_PREFIX}{}", reason.as_str()),
                &total.to_be_bytes(),
            )
            .map_err(|e| self.storage(e))?;
        Ok(())
    }

    /// Makes every prior write durable.
    pub async fn flush(&self) -> Result<(), BufferError> {
        self.inner
            .db
            .flush_async()
            .await
            .map(|_| ())
            .map_err(|e| self.storage(e))
    }

    /// Up to `max_entries` entries (and about `max_bytes`) with sequence
    /// greater than `after`, oldest first. Unreadable entries are removed
    /// and counted as `corrupt`.
    pub fn read_after(
        &self,
        after: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, BufferError> {
        let mut out = Vec::new();
        let mut size = 0usize;
        let start = after.saturating_add(1).to_be_bytes();
        for kv in self.inner.results.range(start..) {
            let (k, v) = kv.map_err(|e| self.storage(e))?;
            let seq = u64_of(Some(k.clone()));
            let opened = decode_value(&v).and_then(|(produced, range)| {
                let raw = v.subslice(range.start, range.len());
                if !self.inner.sealer.encrypting() && !raw.starts_with(b"OPS1") {
                    return Some((produced, raw));
                }
                match self.inner.sealer.open(seq, &raw) {
                    Ok(plain) => Some((produced, IVec::from(plain))),
                    Err(e) => {
                        tracing::error!(seq, error = %e, "buffered record failed to open; dropping and counting it");
                        None
                    }
                }
            });
            match opened {
                Some((produced, payload)) => {
                    size += v.len();
                    out.push(Entry {
                        seq,
                        produced_unix_ms: produced,
                        payload,
                    });
                }
                None => {
                    if let Some(old) = self.inner.results.remove(&k).map_err(|e| self.storage(e))? {
                        self.account_removed(k.len() + old.len());
                        self.count_dropped(DropReason::Corrupt, 1)?;
                    }
                }
            }
            if out.len() >= max_entries || size >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes every entry with sequence `<= seq` (the collector has
    /// stored them). Returns how many were deleted.
    pub fn ack_through(&self, seq: u64) -> Result<u64, BufferError> {
        self.raise_floor(seq)?;
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        let mut bytes = 0usize;
        for kv in self.inner.results.range(..=seq.to_be_bytes()) {
            let (k, v) = kv.map_err(|e| self.storage(e))?;
            bytes += k.len() + v.len();
            batch.remove(k);
            removed += 1;
        }
        if removed > 0 {
            self.inner
                .results
                .apply_batch(batch)
                .map_err(|e| self.storage(e))?;
            self.inner.entries.fetch_sub(removed, Ordering::SeqCst);
            self.inner.bytes.fetch_sub(bytes as u64, Ordering::SeqCst);
        }
        Ok(removed)
    }

    /// Current depth, bytes, oldest entry and counters.
    pub fn stats(&self) -> Result<Stats, BufferError> {
        let first = self.inner.results.first().map_err(|e| self.storage(e))?;
        let (oldest_seq, oldest_produced) = match first {
            Some((k, v)) => (Some(u64_of(Some(k))), decode_value(&v).map(|(p, _)| p)),
            None => (None, None),
        };
        let mut dropped = BTreeMap::new();
        for (i, r) in reasons().iter().enumerate() {
            dropped.insert(r.as_str(), self.inner.dropped[i].load(Ordering::SeqCst));
        }
        Ok(Stats {
            entries: self.inner.entries.load(Ordering::SeqCst),
            bytes: self.inner.bytes.load(Ordering::SeqCst),
            oldest_seq,
            oldest_produced_unix_ms: oldest_produced,
            next_seq: self.inner.next_seq.load(Ordering::SeqCst),
            origin_seq: self.inner.origin,
            dropped,
        })
    }
}

/// Splits a stored value into (produced_unix_ms, payload byte range).
fn decode_value(v: &[u8]) -> Option<(i64, std::ops::Range<usize>)> {
    if v.len() < HEADER_LEN || v[0] != VALUE_VERSION {
        return None;
    }
    let produced = i64::from_be_bytes(v[1..HEADER_LEN].try_into().ok()?);
    Some((produced, HEADER_LEN..v.len()))
}

#[cfg(test)]
mod tests;
