//! The agent's durable result buffer — the only code that touches sled.
//!
//! Guarantees (each one is tested in `tests.rs` or in `tests/`):
//! * **Produced means durable, and only durable entries are sent.** A
//!   group is produced when [`Buffer::commit`] (append + flush) returns
//!   `Ok`; it then survives kill -9. [`Buffer::read_after`] returns only
//!   entries at or below the *durable mark* (the highest sequence covered
//!   by a successful flush), so the collector never holds a result whose
//!   sequence a crash could hand out again.
//! * **Sequences never repeat.** Each entry gets the next `u64`; the next
//!   value is derived at open from the persisted counter, the highest key
//!   and the highest sequence ever removed, so neither a restart nor an
//!   empty buffer can reissue a number. A freshly created buffer starts at
//!   the current unix time in microseconds (its *origin*), so a buffer
//!   recreated after corruption still issues numbers above the old ones.
//! * **Only acknowledged entries are deleted**, except by the three
//!   counted drops ([`DropReason`]). Every sequence removed without an ack
//!   is at or below the persisted `dropped_through` mark, which travels in
//!   every batch: that is how the collector tells an announced drop from a
//!   loss. Counters and marks are written *before* the removals they
//!   describe, and open/recovery finish any removal at or below the
//!   `removed_through` mark (acks and drop-oldest remove from the bottom),
//!   so a crash can over-report a drop, never hide one.
//! * **Bounded.** Logical bytes (key + value) and entry count never exceed
//!   the configured bounds after a commit: room is made first by dropping
//!   the oldest (counted per reason in a persistent counter). sled uses
//!   about twice the logical size on disk and never returns freed space to
//!   the filesystem, so size `max_bytes` at half the disk you can give.
//! * **A corrupt buffer never stops probing**: [`Buffer::open`] moves an
//!   unusable directory aside (`<path>.corrupt-<unix>`) and starts fresh,
//!   and says so in its [`OpenReport`]. A *locked* buffer (another agent
//!   runs on it) or a full disk is never moved aside (see `open.rs`).
//! * **A write failure never stops the agent.** sled 0.34 poisons itself
//!   after an I/O error (every later write fails, even once space is back),
//!   so [`Buffer::commit`] *abandons* a failed group (counted as
//!   `write_error`, announced, marked for discard) and the buffer recovers
//!   (`recover.rs`): it drops the poisoned database, reopens it from disk,
//!   removes whatever part of the abandoned groups reached the disk,
//!   persists the in-memory counters and flushes, and only then serves
//!   again. Until then commits fail fast and are counted.
//!
//! Entry value layout (version 1): `[1u8][produced_unix_ms: i64 BE][payload]`,
//! where the payload is the prost encoding of the wire `CheckResult`, the
//! same bytes that go on the wire.

mod open;
mod recover;
mod status;
mod write;

pub use status::{maintain, read_status, render, status_path, StatusFile};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use sled::IVec;

use open::{Disposition, Handles};

const VALUE_VERSION: u8 = 1;
const HEADER_LEN: usize = 9;
const KEY_NEXT: &[u8] = b"next_seq";
/// Highest sequence removed by an ack or by drop-oldest: nothing at or
/// below it may remain.
const KEY_REMOVED_THROUGH: &[u8] = b"floor";
const KEY_ORIGIN: &[u8] = b"origin";
const KEY_DROPPED_THROUGH: &[u8] = b"dropped_through";
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
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 3] = [
        DropReason::BufferFull,
        DropReason::WriteError,
        DropReason::Corrupt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::BufferFull => "buffer_full",
            DropReason::WriteError => "write_error",
            DropReason::Corrupt => "corrupt",
        }
    }

    fn index(self) -> usize {
        match self {
            DropReason::BufferFull => 0,
            DropReason::WriteError => 1,
            DropReason::Corrupt => 2,
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
    #[error("buffer at {path} is in use by another process (a running agent?); stop it first — `outpost-agent buffer` shows a running agent's figures from its status file")]
    Locked { path: PathBuf },
    #[error("buffer at {path} is unavailable after a write failure (disk full?); results are counted as dropped (write_error) until it recovers by itself")]
    Unavailable { path: PathBuf },
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
    /// Highest sequence removed without an acknowledgement (0: none).
    pub dropped_through: u64,
    /// Highest sequence covered by a successful flush.
    pub durable_through: u64,
    /// False while the buffer waits to recover from a write failure.
    pub available: bool,
    pub dropped: BTreeMap<&'static str, u64>,
}

impl Stats {
    /// Sum of every dropped counter.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// One dropped counter.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(reason.as_str()).copied().unwrap_or(0)
    }
}

/// The buffer. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Buffer {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    limits: Limits,
    origin: u64,
    /// `None` while the database is closed for recovery.
    handles: RwLock<Option<Handles>>,
    /// Serialises group commits and recoveries.
    writer: tokio::sync::Mutex<()>,
    needs_recovery: AtomicBool,
    /// First sequence of the earliest abandoned group not yet discarded
    /// (0: none). Recovery removes everything at or above it: the
    /// abandoned groups since the last good commit, nothing else.
    discard_from: AtomicU64,
    next_seq: AtomicU64,
    entries: AtomicU64,
    bytes: AtomicU64,
    removed_through: AtomicU64,
    dropped_through: AtomicU64,
    appended_through: AtomicU64,
    durable_through: AtomicU64,
    dropped: [AtomicU64; 3],
    /// Test hook: the next flush fails as if the disk were full.
    #[cfg(test)]
    fail_next_flush: AtomicBool,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn u64_of(v: Option<IVec>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes)
}

fn dropped_key(reason: DropReason) -> String {
    format!("{DROPPED_PREFIX}{}", reason.as_str())
}

pub(crate) fn now_unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64)
        .max(1)
}

/// What a scan of the results tree found.
struct Scan {
    entries: u64,
    bytes: u64,
    last: u64,
}

fn scan(results: &sled::Tree) -> Result<Scan, sled::Error> {
    let mut s = Scan {
        entries: 0,
        bytes: 0,
        last: 0,
    };
    for kv in results.iter() {
        let (k, v) = kv?;
        s.entries += 1;
        s.bytes += (k.len() + v.len()) as u64;
        s.last = u64_of(Some(k));
    }
    Ok(s)
}

/// Removes whatever is left at or below `removed_through` (a removal a
/// crash or a failed flush did not make durable; already counted).
fn finish_removals(results: &sled::Tree, removed_through: u64) -> Result<(), sled::Error> {
    if removed_through == 0 {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    let mut any = false;
    for kv in results.range(..=removed_through.to_be_bytes()) {
        batch.remove(kv?.0);
        any = true;
    }
    if any {
        results.apply_batch(batch)?;
    }
    Ok(())
}

impl Buffer {
    /// Opens (or creates) the buffer at `path`. An unusable existing
    /// buffer is moved aside and replaced by a fresh one; a locked one or
    /// a full disk is an error (never moved aside).
    pub fn open(path: &Path, limits: Limits) -> Result<(Buffer, OpenReport), BufferError> {
        match Self::try_open(path, limits) {
            Ok(b) => Ok((b, OpenReport::default())),
            Err(e) if open::classify(&e) == Disposition::Unusable => {
                let reason = e.to_string();
                let aside = open::move_aside(path, &reason)?;
                let b = Self::try_open(path, limits).map_err(|e| open::open_error(path, e))?;
                Ok((
                    b,
                    OpenReport {
                        moved_aside: Some(aside),
                        reason: Some(reason),
                    },
                ))
            }
            Err(e) => Err(open::open_error(path, e)),
        }
    }

    /// Opens the buffer for inspection: never moves anything aside.
    pub fn inspect(path: &Path, limits: Limits) -> Result<Buffer, BufferError> {
        Self::try_open(path, limits).map_err(|e| open::open_error(path, e))
    }

    fn try_open(path: &Path, limits: Limits) -> Result<Buffer, sled::Error> {
        let h = open::handles(path)?;
        let mut origin = u64_of(h.meta.get(KEY_ORIGIN)?);
        if origin == 0 {
            origin = now_unix_micros();
            h.meta.insert(KEY_ORIGIN, &origin.to_be_bytes())?;
            h.db.flush()?;
        }
        let persisted_next = u64_of(h.meta.get(KEY_NEXT)?);
        let removed_through = u64_of(h.meta.get(KEY_REMOVED_THROUGH)?);
        let dropped_through = u64_of(h.meta.get(KEY_DROPPED_THROUGH)?);
        finish_removals(&h.results, removed_through)?;
        let s = scan(&h.results)?;
        let next = persisted_next
            .max(s.last.saturating_add(1))
            .max(removed_through.saturating_add(1))
            .max(dropped_through.saturating_add(1))
            .max(origin);
        let dropped = DropReason::ALL.map(|_| AtomicU64::new(0));
        for r in DropReason::ALL {
            dropped[r.index()].store(u64_of(h.meta.get(dropped_key(r))?), Ordering::SeqCst);
        }
        Ok(Buffer {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                limits,
                origin,
                handles: RwLock::new(Some(h)),
                writer: tokio::sync::Mutex::new(()),
                needs_recovery: AtomicBool::new(false),
                discard_from: AtomicU64::new(0),
                next_seq: AtomicU64::new(next),
                entries: AtomicU64::new(s.entries),
                bytes: AtomicU64::new(s.bytes),
                removed_through: AtomicU64::new(removed_through),
                dropped_through: AtomicU64::new(dropped_through),
                appended_through: AtomicU64::new(s.last),
                durable_through: AtomicU64::new(s.last),
                dropped,
                #[cfg(test)]
                fail_next_flush: AtomicBool::new(false),
            }),
        })
    }

    /// The directory this buffer lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The configured bounds.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// A clone of the open database's handles, or `Unavailable`.
    fn handles(&self) -> Result<Handles, BufferError> {
        self.inner
            .handles
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| self.unavailable())
    }

    fn unavailable(&self) -> BufferError {
        BufferError::Unavailable {
            path: self.inner.path.clone(),
        }
    }

    /// Wraps a sled failure; any failure marks the database for recovery
    /// (sled 0.34 keeps failing once it has seen an I/O error).
    fn fail(&self, source: sled::Error) -> BufferError {
        self.inner.needs_recovery.store(true, Ordering::SeqCst);
        BufferError::Storage {
            path: self.inner.path.clone(),
            source,
        }
    }

    /// The first sequence this buffer ever issued.
    pub fn origin_seq(&self) -> u64 {
        self.inner.origin
    }

    /// Takes the next sequence number. Every number taken must go through
    /// [`Buffer::commit`], which accounts for it even when the write fails
    /// (an announced `write_error` gap).
    pub fn next_seq(&self) -> u64 {
        self.inner.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    /// Highest sequence removed without an acknowledgement (0: none); sent
    /// with every batch.
    pub fn dropped_through(&self) -> u64 {
        self.inner.dropped_through.load(Ordering::SeqCst)
    }

    /// True after a failure until the buffer recovered.
    pub fn needs_recovery(&self) -> bool {
        self.inner.needs_recovery.load(Ordering::SeqCst)
    }

    /// Up to `max_entries` durable entries (and about `max_bytes`) with
    /// sequence greater than `after`, oldest first. Unreadable entries are
    /// removed and counted as `corrupt`.
    pub fn read_after(
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
        let mut size = 0usize;
        let range = after.saturating_add(1).to_be_bytes()..=durable.to_be_bytes();
        for kv in h.results.range(range) {
            let (k, v) = kv.map_err(|e| self.fail(e))?;
            let seq = u64_of(Some(k.clone()));
            match decode_value(&v) {
                Some((produced, payload_range)) => {
                    size += v.len();
                    out.push(Entry {
                        seq,
                        produced_unix_ms: produced,
                        payload: v.subslice(payload_range.start, payload_range.len()),
                    });
                }
                None => self.remove_corrupt(&h, seq)?,
            }
            if out.len() >= max_entries || size >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    fn remove_corrupt(&self, h: &Handles, seq: u64) -> Result<(), BufferError> {
        let key = seq.to_be_bytes();
        if let Some(old) = h.results.get(key).map_err(|e| self.fail(e))? {
            self.note_dropped(h, DropReason::Corrupt, 1, seq)?;
            h.results.remove(key).map_err(|e| self.fail(e))?;
            self.account_removed(1, key.len() + old.len());
            tracing::error!(
                seq,
                "buffered result is unreadable; dropped it (counted as corrupt)"
            );
        }
        Ok(())
    }

    /// Removes one entry whose payload the transport could not decode;
    /// counted as `corrupt` and announced.
    pub fn drop_corrupt(&self, seq: u64) -> Result<(), BufferError> {
        let h = self.handles()?;
        self.remove_corrupt(&h, seq)
    }

    fn account_removed(&self, n: u64, bytes: usize) {
        self.inner.entries.fetch_sub(n, Ordering::SeqCst);
        self.inner.bytes.fetch_sub(bytes as u64, Ordering::SeqCst);
    }

    /// Current depth, bytes, oldest entry and counters. Works while the
    /// buffer is closed for recovery (then without the oldest entry).
    pub fn stats(&self) -> Stats {
        let first = self
            .handles()
            .ok()
            .and_then(|h| h.results.first().ok().flatten());
        let (oldest_seq, oldest_produced) = match first {
            Some((k, v)) => (Some(u64_of(Some(k))), decode_value(&v).map(|(p, _)| p)),
            None => (None, None),
        };
        let mut dropped = BTreeMap::new();
        for r in DropReason::ALL {
            dropped.insert(
                r.as_str(),
                self.inner.dropped[r.index()].load(Ordering::SeqCst),
            );
        }
        Stats {
            entries: self.inner.entries.load(Ordering::SeqCst),
            bytes: self.inner.bytes.load(Ordering::SeqCst),
            oldest_seq,
            oldest_produced_unix_ms: oldest_produced,
            next_seq: self.inner.next_seq.load(Ordering::SeqCst),
            origin_seq: self.inner.origin,
            dropped_through: self.inner.dropped_through.load(Ordering::SeqCst),
            durable_through: self.inner.durable_through.load(Ordering::SeqCst),
            available: !self.needs_recovery(),
            dropped,
        }
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
