//! The rehearsal task: the single owner of the [`Book`] and its sled tree.
//!
//! ```text
//! ingest (Rehearse RPC) ──Report (mpsc 64)──► rehearsal task ──save, flush──► reply (receipt)
//!                                                 └─► watch View ──► /api/v1/rehearsals, /, /metrics
//! ```
//!
//! A report is applied, written and flushed before the agent gets its
//! receipt (so a receipt means recorded). A store failure is the reply
//! (the agent retries; the retry is idempotent). Shutdown: the task ends
//! when the token is cancelled or every handle is dropped.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::{Applied, Book, Record, RehearsalConfig, Report};
use crate::clock::SharedClock;
use crate::store::StoreError;
use crate::store_rehearsal::RehearsalStore;

/// Reports queued before callers wait.
pub const CAPACITY: usize = 64;

/// What readers see, replaced after every change.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Newest start first.
    pub records: Vec<Record>,
    pub evicted: u64,
    pub duplicates: u64,
    /// Reports applied (new rounds and replaced copies).
    pub recorded: u64,
    pub store_errors: u64,
}

/// What the agent is told.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub scenario: String,
    pub rto_ms: i64,
    pub applied: Applied,
    /// The requested scenario was unknown; the default was applied.
    pub scenario_unknown: bool,
}

/// A report that was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum RehearsalError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("the rehearsal task has stopped")]
    Stopped,
}

struct Cmd {
    report: Report,
    reply: oneshot::Sender<Result<Receipt, RehearsalError>>,
}

/// A handle for ingest (reports) and readers (the view). Cheap to clone.
#[derive(Clone)]
pub struct RehearsalHandle {
    tx: mpsc::Sender<Cmd>,
    pub view: watch::Receiver<Arc<View>>,
    pub clock: SharedClock,
    pub config: Arc<RehearsalConfig>,
}

impl RehearsalHandle {
    /// Records one report durably; returns the receipt.
    pub async fn report(&self, report: Report) -> Result<Receipt, RehearsalError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd { report, reply })
            .await
            .map_err(|_| RehearsalError::Stopped)?;
        rx.await.map_err(|_| RehearsalError::Stopped)?
    }
}

/// Loads the records and spawns the task.
pub fn spawn(
    store: RehearsalStore,
    config: RehearsalConfig,
    clock: SharedClock,
    shutdown: CancellationToken,
) -> Result<(RehearsalHandle, tokio::task::JoinHandle<()>), StoreError> {
    let (records, corrupt) = store.load()?;
    if corrupt > 0 {
        tracing::error!(
            corrupt,
            "rehearsal records that could not be decoded were skipped"
        );
    }
    let (book, trimmed) = Book::restore(records, config.keep);
    if !trimmed.is_empty() {
        store.remove(&trimmed)?;
    }
    let (tx, rx) = mpsc::channel(CAPACITY);
    let (view_tx, view_rx) = watch::channel(Arc::new(View::default()));
    let config = Arc::new(config);
    let mut task = Task {
        book,
        store,
        config: config.clone(),
        clock: clock.clone(),
        view: view_tx,
        recorded: 0,
        store_errors: 0,
    };
    task.publish();
    let join = tokio::spawn(task.run(rx, shutdown));
    Ok((
        RehearsalHandle {
            tx,
            view: view_rx,
            clock,
            config,
        },
        join,
    ))
}

struct Task {
    book: Book,
    store: RehearsalStore,
    config: Arc<RehearsalConfig>,
    clock: SharedClock,
    view: watch::Sender<Arc<View>>,
    recorded: u64,
    store_errors: u64,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>, shutdown: CancellationToken) {
        loop {
            let cmd = tokio::select! {
                _ = shutdown.cancelled() => break,
                c = rx.recv() => match c { Some(c) => c, None => break },
            };
            let r = self.apply(cmd.report).await;
            let _ = cmd.reply.send(r);
            self.publish();
        }
    }

    async fn apply(&mut self, report: Report) -> Result<Receipt, RehearsalError> {
        let now = self.clock.now_ms();
        let (applied, record, evicted) = self.book.apply(&report, &self.config, now);
        let receipt = Receipt {
            scenario: record.scenario.clone(),
            rto_ms: record.rto_ms,
            applied,
            scenario_unknown: record.scenario_unknown(),
        };
        if applied == Applied::Duplicate {
            return Ok(receipt);
        }
        self.recorded += 1;
        let saved = match self.store.save(&record, &evicted) {
            Ok(()) => self.store.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = saved {
            self.store_errors += 1;
            tracing::error!(error = %e, "rehearsal record not written");
            return Err(e.into());
        }
        Ok(receipt)
    }

    fn publish(&mut self) {
        self.view.send_replace(Arc::new(View {
            records: self.book.newest_first(),
            evicted: self.book.evicted,
            duplicates: self.book.duplicates,
            recorded: self.recorded,
            store_errors: self.store_errors,
        }));
    }
}
