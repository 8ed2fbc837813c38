//! The evaluator task: the single owner of the [`Engine`] and its store.
//!
//! ```text
//! store task ──StoredResults (bounded)──► evaluator ──watch AlertSet──► alertmanager tasks
//! http/CLI ───Command (bounded)─────────►  │  every `evaluate_every`: ──► webhook queues (bounded, drops counted)
//!                                          └─► watch Snapshot ──► /metrics, /api/v1/slo
//! ```
//!
//! * It folds each durable group of results as it arrives and writes the
//!   changed buckets, series and folded marks in one atomic batch (no
//!   flush: the marks let startup replay whatever a crash lost).
//! * On each tick it evaluates everything, persists incidents, flushes,
//!   publishes the snapshot and the alert set, and queues webhook events.
//! * Operator commands (ack, close, maintenance) are applied at once,
//!   persisted and flushed before the reply.
//! * Shutdown: ticking stops on the token; the task drains results until
//!   the store task closes its channel, then makes a final flush.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::engine::{Engine, EngineCounters, Warning};
use crate::escalation::{Severity, Signal};
use crate::incidents::{Change, Incident, IncidentError, TtaHistogram};
use crate::notify::webhook::Webhook;
use crate::notify::AlertSet;
use crate::slo::eval::ObjectiveReport;
use crate::slo::objective::Objective;
use crate::store::{Store, StoreError, StoredResults};
use crate::store_slo::SloStore;

/// Commands queued before callers wait.
pub const COMMAND_CAPACITY: usize = 64;
/// Stored groups queued before the store task waits.
pub const RESULTS_CAPACITY: usize = 256;
/// Results replayed per store read at startup.
const REPLAY_PAGE: usize = 10_000;

/// What the outputs read, replaced after every evaluation.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub at_ms: i64,
    pub objectives: Vec<Objective>,
    pub reports: Vec<ObjectiveReport>,
    pub warnings: Vec<Warning>,
    /// Open and acknowledged incidents.
    pub active: Vec<Incident>,
    /// Incidents held, by (state, severity).
    pub by_state: BTreeMap<(&'static str, &'static str), u64>,
    /// Ended incidents by (scenario, "met"/"missed").
    pub rto: BTreeMap<(String, &'static str), u64>,
    pub tta: BTreeMap<Severity, TtaHistogram>,
    pub counters: EngineCounters,
    pub series: usize,
    pub bucket_bytes: usize,
    pub saturated: u64,
    pub last_evaluation_seconds: f64,
    pub store_errors: u64,
    pub maintenance_active: Vec<String>,
    /// Named contact points (config) and, per incident held, the names of
    /// those it concerns (empty without `[[contact]]`).
    pub contacts: Vec<crate::contacts::Contact>,
    pub incident_contacts: BTreeMap<u64, Vec<String>>,
}

mod handle;
pub use handle::{Command, CommandError, EvaluatorHandle};

/// Folds one stored group, loading old hours' minute detail first.
fn fold(engine: &mut Engine, slo: &SloStore, g: &StoredResults, now_ms: i64) -> u64 {
    let site = engine.site_of(&g.agent, &g.agent_labels);
    let mut errors = 0;
    for key in engine.missing_detail(&site, &g.results) {
        match slo.load_block(&key) {
            Ok(Some(b)) => engine.hydrate(&key, b),
            Ok(None) => {}
            Err(e) => {
                errors += 1;
                tracing::error!(error = %e, "cannot load an old bucket; its late results are not bucketed");
            }
        }
    }
    engine.fold(&g.agent, &g.agent_labels, &g.results, now_ms);
    errors
}

/// Loads the engine's state and replays stored results it has not folded
/// (after a crash or on first start). Runs before the store task starts.
pub fn restore(
    engine: &mut Engine,
    store: &Store,
    slo: &SloStore,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let loaded = slo.load(engine, now_ms)?;
    tracing::info!(
        blocks = loaded.blocks,
        series = loaded.series,
        incidents = loaded.incidents,
        windows = loaded.windows,
        "evaluation state loaded"
    );
    let mut replayed = 0u64;
    let agents: Vec<(String, BTreeMap<String, String>)> = store
        .agents()
        .iter()
        .map(|(id, s)| (id.clone(), s.labels.clone()))
        .collect();
    for (agent, labels) in agents {
        let mut after = engine.folded(&agent);
        loop {
            let results = store.results_after(&agent, after, REPLAY_PAGE)?;
            let Some(last) = results.last().map(|r| r.seq) else {
                break;
            };
            after = last;
            replayed += results.len() as u64;
            let g = StoredResults {
                agent: agent.clone(),
                agent_labels: labels.clone(),
                results,
            };
            fold(engine, slo, &g, now_ms);
            slo.save(engine.take_persist())?;
        }
    }
    if replayed > 0 {
        tracing::info!(replayed, "stored results folded into the evaluation");
    }
    Ok(replayed)
}

/// What the task needs besides the engine.
pub struct Parts {
    pub slo: SloStore,
    pub results: mpsc::Receiver<StoredResults>,
    pub clock: SharedClock,
    pub evaluate_every: Duration,
    pub alerts: watch::Sender<Arc<AlertSet>>,
    pub webhooks: Vec<Webhook>,
    pub shutdown: CancellationToken,
}

/// Spawns the evaluator task.
pub fn spawn(engine: Engine, parts: Parts) -> (EvaluatorHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::default()));
    let handle = EvaluatorHandle {
        tx,
        snapshot: snap_rx,
        clock: parts.clock.clone(),
    };
    let task = tokio::spawn(
        Task {
            engine,
            parts,
            snapshot: snap_tx,
            store_errors: 0,
            last_eval: 0.0,
            reports: Vec::new(),
        }
        .run(rx),
    );
    (handle, task)
}

struct Task {
    engine: Engine,
    parts: Parts,
    snapshot: watch::Sender<Arc<Snapshot>>,
    store_errors: u64,
    last_eval: f64,
    /// The latest evaluation's reports (republished after commands).
    reports: Vec<ObjectiveReport>,
}

impl Task {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(self.parts.evaluate_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut stopping = false;
        let mut commands_open = true;
        let mut last_trim: Option<i64> = None;
        let mut last_prune: Option<i64> = None;
        loop {
            tokio::select! {
                biased;
                g = self.parts.results.recv() => match g {
                    Some(g) => self.fold_available(g),
                    None => break,
                },
                c = commands.recv(), if commands_open => match c {
                    Some(c) => self.command(c).await,
                    None => commands_open = false,
                },
                _ = tick.tick(), if !stopping => {
                    let now = self.parts.clock.now_ms();
                    self.evaluate(now).await;
                    if last_trim.is_none_or(|t| now - t >= 60_000) {
                        self.engine.trim(now);
                        last_trim = Some(now);
                    }
                    if last_prune.is_none_or(|t| now - t >= 3_600_000) {
                        let hour = (now - self.engine.config().retention_ms).div_euclid(3_600_000);
                        if let Err(e) = self.parts.slo.prune_blocks(hour) {
                            self.store_error(&e);
                        }
                        last_prune = Some(now);
                    }
                }
                _ = self.parts.shutdown.cancelled(), if !stopping => stopping = true,
            }
        }
        self.persist();
        if let Err(e) = self.parts.slo.flush().await {
            tracing::error!(error = %e, "final evaluation flush failed");
        }
    }

    fn store_error(&mut self, e: &StoreError) {
        self.store_errors += 1;
        tracing::error!(error = %e, "evaluation state not written");
    }

    fn persist(&mut self) {
        let p = self.engine.take_persist();
        if let Err(e) = self.parts.slo.save(p) {
            self.store_error(&e);
        }
    }

    fn persist_buckets(&mut self) {
        let p = self.engine.take_persist_buckets();
        if let Err(e) = self.parts.slo.save(p) {
            self.store_error(&e);
        }
    }

    fn fold_available(&mut self, first: StoredResults) {
        let now = self.parts.clock.now_ms();
        self.store_errors += fold(&mut self.engine, &self.parts.slo, &first, now);
        for _ in 0..RESULTS_CAPACITY {
            match self.parts.results.try_recv() {
                Ok(g) => self.store_errors += fold(&mut self.engine, &self.parts.slo, &g, now),
                Err(_) => break,
            }
        }
        self.persist_buckets();
    }

    async fn evaluate(&mut self, now: i64) {
        let t = Instant::now();
        let ev = self.engine.evaluate(now);
        self.last_eval = t.elapsed().as_secs_f64();
        self.persist();
        if let Err(e) = self.parts.slo.flush().await {
            self.store_error(&e);
        }
        self.notify(&ev.changes, &ev.warnings_raised, &ev.warnings_cleared, now);
        self.reports = ev.reports;
        self.publish(now);
    }

    /// Sends the alert set and queues webhook events.
    fn notify(&self, changes: &[Change], raised: &[Signal], cleared: &[Signal], now: i64) {
        self.parts.alerts.send_replace(Arc::new(AlertSet {
            at_ms: now,
            alerts: self.engine.alerts(),
        }));
        if self.parts.webhooks.is_empty() {
            return;
        }
        let mut events = Vec::new();
        for c in changes {
            if let Some(i) = self.engine.incidents.get(c.id()) {
                if i.historical && !matches!(c, Change::Historical(_)) {
                    continue;
                }
                let mut incident = crate::api::incident_json(i, now, false);
                incident["contacts"] = self
                    .engine
                    .contacts_of(i)
                    .iter()
                    .map(|c| c.json())
                    .collect::<Vec<_>>()
                    .into();
                events.push(serde_json::json!({
                    "event": format!("incident_{}", c.as_str()),
                    "at": crate::notify::rfc3339(now),
                    "incident": incident,
                }));
            }
        }
        for (what, list) in [("warning_raised", raised), ("warning_cleared", cleared)] {
            for s in list {
                events.push(serde_json::json!({
                    "event": what,
                    "at": crate::notify::rfc3339(now),
                    "warning": crate::api::signal_json(s),
                }));
            }
        }
        for e in events {
            for w in &self.parts.webhooks {
                w.offer(e.clone());
            }
        }
    }

    fn publish(&self, now: i64) {
        let mut by_state = BTreeMap::new();
        let mut rto = BTreeMap::new();
        for i in self.engine.incidents.all() {
            *by_state
                .entry((i.state.as_str(), i.severity.as_str()))
                .or_insert(0) += 1;
            if !i.historical && !i.state.is_active() {
                if let Some(met) = i.rto_met(now) {
                    *rto.entry((i.scenario.clone(), if met { "met" } else { "missed" }))
                        .or_insert(0) += 1;
                }
            }
        }
        let contacts = self.engine.config().contacts.clone();
        let incident_contacts = if contacts.is_empty() {
            BTreeMap::new()
        } else {
            self.engine
                .incidents
                .all()
                .map(|i| {
                    let names = self
                        .engine
                        .contacts_of(i)
                        .iter()
                        .map(|c| c.name.clone())
                        .collect();
                    (i.id, names)
                })
                .collect()
        };
        let snap = Snapshot {
            contacts,
            incident_contacts,
            at_ms: now,
            objectives: self.engine.objectives().to_vec(),
            reports: self.reports.clone(),
            warnings: self.engine.warnings().cloned().collect(),
            active: self.engine.incidents.active().cloned().collect(),
            by_state,
            rto,
            tta: self.engine.incidents.tta.clone(),
            counters: self.engine.counters,
            series: self.engine.series_count(),
            bucket_bytes: self.engine.bucket_bytes(),
            saturated: self.engine.saturated(),
            last_evaluation_seconds: self.last_eval,
            store_errors: self.store_errors,
            maintenance_active: self
                .engine
                .maintenance
                .windows()
                .iter()
                .filter(|w| w.active_at(now))
                .map(|w| w.name.clone())
                .collect(),
        };
        self.snapshot.send_replace(Arc::new(snap));
    }

    /// Persists and flushes after an operator change; errors become the reply.
    async fn commit(&mut self) -> Result<(), CommandError> {
        let p = self.engine.take_persist();
        self.parts.slo.save(p)?;
        self.parts.slo.flush().await?;
        Ok(())
    }

    async fn command(&mut self, c: Command) {
        let now = self.parts.clock.now_ms();
        match c {
            Command::Ack { id, by, reply } => {
                let r = self.engine.ack(id, &by, now);
                let _ = reply.send(self.after_change(r, now).await);
            }
            Command::Close {
                id,
                root_cause,
                reply,
            } => {
                let r = self.engine.close(id, &root_cause, now);
                let _ = reply.send(self.after_change(r, now).await);
            }
            Command::Incidents {
                state,
                limit,
                reply,
            } => {
                let list = self
                    .engine
                    .incidents
                    .all()
                    .rev()
                    .filter(|i| state.is_none_or(|s| i.state == s))
                    .take(limit)
                    .cloned()
                    .collect();
                let _ = reply.send(Ok(list));
            }
            Command::Incident { id, reply } => {
                let _ = reply.send(Ok(self.engine.incidents.get(id).cloned()));
            }
            Command::Windows { reply } => {
                let _ = reply.send(Ok(self.engine.maintenance.windows().to_vec()));
            }
            Command::AddWindow { window, reply } => {
                let r = match self.engine.maintenance.add(window.clone()) {
                    Ok(()) => self
                        .parts
                        .slo
                        .put_window(&window)
                        .map_err(CommandError::from),
                    Err(e) => Err(e.into()),
                };
                let r = match r {
                    Ok(()) => self.parts.slo.flush().await.map_err(CommandError::from),
                    e => e,
                };
                let _ = reply.send(r);
            }
            Command::RemoveWindow { name, reply } => {
                let r = match self.engine.maintenance.remove(&name) {
                    Ok(w) => match self.parts.slo.remove_window(&name) {
                        Ok(()) => self
                            .parts
                            .slo
                            .flush()
                            .await
                            .map(|_| w)
                            .map_err(CommandError::from),
                        Err(e) => Err(e.into()),
                    },
                    Err(e) => Err(e.into()),
                };
                let _ = reply.send(r);
            }
        }
    }

    async fn after_change(
        &mut self,
        r: Result<Change, IncidentError>,
        now: i64,
    ) -> Result<Incident, CommandError> {
        let change = r?;
        self.commit().await?;
        self.notify(&[change], &[], &[], now);
        self.publish(now);
        self.engine
            .incidents
            .get(change.id())
            .cloned()
            .ok_or(CommandError::Incident(IncidentError::NotFound(change.id())))
    }
}
