//! The agent's durable result buffer — the only code that touches sled.
//!
//! Guarantees (each one is tested in `tests.rs` or in `tests/`):
//! * **Produced means durable, and only durable entries are sent.** A
//!   group is produced when [`Buffer::commit`] (write + flush) returns
//!   `Ok`; it then survives kill -9. [`Buffer::read_after`] returns only
//!   entries at or below the *durable mark* (the highest sequence covered
//!   by a successful flush) and never runs in the middle of a commit, so
//!   the collector never holds a result whose sequence a crash could hand
//!   out again, nor sees a drop before it is durable.
//! * **Sequences never repeat and never vanish.** Each entry gets the next
//!   `u64`. The next value is persisted in the same atomic batch as the
//!   entries that used it (`state.rs`), so after a crash it resumes exactly
//!   after the last durable entry: no reuse, and no number burnt without
//!   an entry (which the collector would count as lost). A freshly created
//!   buffer starts at the current unix time in microseconds (its
//!   *origin*), so a buffer recreated after corruption issues numbers
//!   above the old ones.
//! * **Only acknowledged entries are deleted**, except by the three
//!   counted drops ([`DropReason`]). Every sequence removed without an ack
//!   is at or below the persisted `dropped_through` mark, announced in
//!   every batch (as of the last flush): that is how the collector tells
//!   an announced drop from a loss. Counters, marks and the removals they
//!   describe change together in one batch.
//! * **Bounded.** Logical bytes and entry count never exceed the
//!   configured bounds after a commit: room is made first by dropping the
//!   oldest (counted per reason). sled uses more than the logical size on
//!   disk and never returns freed space to the filesystem, so size
//!   `max_bytes` at half the disk you can give.
//! * **Bounded memory.** Entries are stored several per value (`chunk.rs`)
//!   so sled's per-page memory stays small, nothing scans the whole buffer
//!   at open, and after every [`REFRESH_AFTER_BYTES`] written the database
//!   is reopened (sled's page cache, sharded 256 ways, hardly evicts what
//!   was written: without this a long outage grows the agent's RSS with
//!   the backlog).
//! * **A corrupt buffer never stops probing**: [`Buffer::open`] moves an
//!   unusable directory aside (`<path>.corrupt-<unix>`) and starts fresh,
//!   and says so in its [`OpenReport`]. A *locked* buffer (another agent
//!   runs on it) or a full disk is never moved aside (see `open.rs`).
//! * **A write failure never stops the agent.** sled 0.34 poisons itself
//!   after an I/O error (every later write fails, even once space is back),
//!   so [`Buffer::commit`] *abandons* a failed group (counted as
//!   `write_error`, announced, never sent) and the buffer recovers
//!   (`recover.rs`) by reopening the database from disk once it can.

mod chunk;
mod open;
mod read;
mod recover;
mod state;
mod status;
mod write;

pub use status::{maintain, read_status, render, status_path, StatusFile};

/// Opens sled at `path` exactly as the buffer does (same config, same
/// trees) and nothing else; dropping the value closes it. For the
/// benchmarks' baseline (`outpost-bench sled-baseline`): the memory an
/// empty sled database costs on its own.
pub fn open_sled_only(path: &Path) -> Result<SledOnly, BufferError> {
    open::handles(path)
        .map(SledOnly)
        .map_err(|source| open::open_error(path, source))
}

/// An open sled database and nothing else (see [`open_sled_only`]).
pub struct SledOnly(#[allow(dead_code)] open::Handles);

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use sled::IVec;

use open::{Disposition, Handles};
use state::{State, STATE_KEY};

const KEY_ORIGIN: &[u8] = b"origin";
/// Logical bytes written after which the database is reopened to shed
/// sled's cache of what was written (see BENCHMARKS.md).
pub const REFRESH_AFTER_BYTES: u64 = 16 * 1024 * 1024;

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

/// One buffered entry. The payload shares memory with the stored value.
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
    /// Serialises commits (write + flush), reads for sending, and
    /// recoveries: a reader never sees a commit half done.
    writer: tokio::sync::Mutex<()>,
    /// The state as last written to the open database; held while a
    /// batch is built and applied, so state and entries change together.
    state: Mutex<State>,
    needs_recovery: AtomicBool,
    /// First sequence of the earliest abandoned group not yet discarded
    /// (0: none); recovery removes everything from it on.
    discard_from: AtomicU64,
    /// Abandoned since the last recovery: counted here until recovery
    /// can persist them.
    pending_write_errors: AtomicU64,
    pending_dropped_through: AtomicU64,
    next_seq: AtomicU64,
    appended_through: AtomicU64,
    durable_through: AtomicU64,
    /// `dropped_through` as of the last successful flush: what batches
    /// announce.
    announced_through: AtomicU64,
    /// Logical bytes committed since the database was (re)opened.
    written_since_open: AtomicU64,
    /// Encryption at rest (a no-op without a key): payloads are sealed in
    /// `commit` and opened by the transport after reading (see `crate::seal`).
    sealer: Arc<crate::seal::Sealer>,
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

pub(crate) fn now_unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64)
        .max(1)
}

/// Counts live entries and bytes and finds the last sequence, by reading
/// everything: only for a buffer without a state record (or after
/// corruption), never on a normal open.
fn scan(results: &sled::Tree, removed_through: u64) -> Result<(u64, u64, u64), sled::Error> {
    let (mut entries, mut bytes, mut last) = (0, 0, 0);
    for kv in results.range(..STATE_KEY) {
        let (k, v) = kv?;
        for item in chunk::decode(&k, &v).unwrap_or_default() {
            if item.seq > removed_through {
                entries += 1;
                bytes += item.size();
            }
            last = last.max(item.seq);
        }
    }
    Ok((entries, bytes, last))
}

/// The highest sequence stored (0: none).
fn last_seq(results: &sled::Tree) -> Result<u64, sled::Error> {
    Ok(match results.range(..STATE_KEY).next_back() {
        Some(kv) => {
            let (k, v) = kv?;
            chunk::decode(&k, &v)
                .and_then(|items| items.last().map(|i| i.seq))
                .unwrap_or_else(|| chunk::key_seq(&k))
        }
        None => 0,
    })
}

/// The state record, or one rebuilt by a scan when there is none.
fn load_state(results: &sled::Tree) -> Result<State, sled::Error> {
    if let Some(s) = results.get(STATE_KEY)?.and_then(|v| State::decode(&v)) {
        return Ok(s);
    }
    let (entries, bytes, last) = scan(results, 0)?;
    Ok(State {
        entries,
        bytes,
        next_seq: last.saturating_add(1),
        ..State::default()
    })
}

impl Buffer {
    /// Opens (or creates) the buffer at `path`. An unusable existing
    /// buffer is moved aside and replaced by a fresh one; a locked one or
    /// a full disk is an error (never moved aside).
    pub fn open(path: &Path, limits: Limits) -> Result<(Buffer, OpenReport), BufferError> {
        Self::open_sealed(path, limits, crate::seal::Sealer::none())
    }

    /// As [`Buffer::open`], sealing payloads with `sealer` (encryption at rest).
    pub fn open_sealed(
        path: &Path,
        limits: Limits,
        sealer: crate::seal::Sealer,
    ) -> Result<(Buffer, OpenReport), BufferError> {
        let sealer = Arc::new(sealer);
        let try_open = |path: &Path, limits: Limits| {
            Self::try_open(path, limits).map(|b| b.with_sealer(sealer.clone()))
        };
        match try_open(path, limits) {
            Ok(b) => Ok((b, OpenReport::default())),
            Err(e) if open::classify(&e) == Disposition::Unusable => {
                let reason = e.to_string();
                let aside = open::move_aside(path, &reason)?;
                let b = try_open(path, limits).map_err(|e| open::open_error(path, e))?;
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
        let mut origin = chunk::key_seq(&h.meta.get(KEY_ORIGIN)?.unwrap_or_default());
        if origin == 0 {
            origin = now_unix_micros();
            h.meta.insert(KEY_ORIGIN, &origin.to_be_bytes())?;
            h.db.flush()?;
        }
        let state = load_state(&h.results)?;
        let last = last_seq(&h.results)?;
        let next = state
            .next_seq
            .max(last.saturating_add(1))
            .max(state.removed_through.saturating_add(1))
            .max(state.dropped_through.saturating_add(1))
            .max(origin);
        Ok(Buffer {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                limits,
                origin,
                handles: RwLock::new(Some(h)),
                writer: tokio::sync::Mutex::new(()),
                announced_through: AtomicU64::new(state.dropped_through),
                state: Mutex::new(state),
                needs_recovery: AtomicBool::new(false),
                discard_from: AtomicU64::new(0),
                pending_write_errors: AtomicU64::new(0),
                pending_dropped_through: AtomicU64::new(0),
                next_seq: AtomicU64::new(next),
                appended_through: AtomicU64::new(last),
                durable_through: AtomicU64::new(last),
                written_since_open: AtomicU64::new(0),
                sealer: Arc::new(crate::seal::Sealer::none()),
                #[cfg(test)]
                fail_next_flush: AtomicBool::new(false),
            }),
        })
    }

    fn with_sealer(self, sealer: Arc<crate::seal::Sealer>) -> Buffer {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.sealer = sealer;
                Buffer {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => Buffer { inner },
        }
    }

    /// The sealer payloads are sealed with (opened by the transport).
    pub fn sealer(&self) -> &crate::seal::Sealer {
        &self.inner.sealer
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

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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

    /// The drop mark batches announce: every sequence removed without an
    /// acknowledgement, durably, is at or below it.
    pub fn dropped_through(&self) -> u64 {
        self.inner.announced_through.load(Ordering::SeqCst)
    }

    /// True after a failure until the buffer recovered.
    pub fn needs_recovery(&self) -> bool {
        self.inner.needs_recovery.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests;
