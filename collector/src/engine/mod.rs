//! The evaluation engine: everything the collector concludes from stored
//! results, in one pure, single-owner value.
//!
//! ```text
//! stored results ─► fold ─► minute buckets (per objective, site)
//!                      └──► series streaks
//! tick(now) ─► SLO reports ─► burn alerts ─┐
//!              series streaks ─► rules ────┴► signals ─► incidents / warnings ─► alert set
//! ```
//!
//! Invariants:
//! * A result is folded once: per agent, results at or below the folded
//!   high-water mark are skipped (startup replays the store's tail above
//!   it, so a crash between storing and folding loses nothing).
//! * A result lands in the minute it was produced; it is *late* when it
//!   arrived more than `late_after` after it finished — late results count
//!   for the SLI but never for alerting, and late failures go to incident
//!   history.
//! * Runs inside a maintenance window count only as `maintenance` (arrived,
//!   not in the SLI) and reset their series' streaks.
//! * Memory is bounded: at most `max_series` series (overflow counted),
//!   hour blocks within retention, minute detail within the horizon.
//!
//! No I/O and no clock: callers pass `now`. The evaluator task owns it.

pub mod alerts;
mod contacts;
mod evaluate;
pub mod series;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::escalation::{RulesConfig, Signal};
use crate::incidents::{Change, Incident, IncidentError, Incidents};
use crate::maintenance::{self, Maintenance};
use crate::model::ResultRecord;
use crate::slo::buckets::{hour_of, minute_of, BlockRecord, Buckets, Counts, MINUTE_HORIZON_HOURS};
use crate::slo::eval::ObjectiveReport;
use crate::slo::objective::{Class, Objective, Source};
use series::{Arrival, SeriesState};

/// Default bound on series tracked.
pub const DEFAULT_MAX_SERIES: usize = 100_000;

/// The engine's settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub objectives: Vec<Objective>,
    pub rules: RulesConfig,
    /// A result arriving later than this after it finished is late.
    pub late_after_ms: i64,
    /// A series silent for longer stops being expected (completeness).
    pub series_expiry_ms: i64,
    /// Buckets and ended incidents older than this are forgotten.
    pub retention_ms: i64,
    pub max_series: usize,
    /// Agent label naming the site (agent id when missing).
    pub site_label: String,
    /// Windows from the config file.
    pub maintenance: Vec<maintenance::Window>,
    /// Named contact points (`[[contact]]`), carried in alerts and events.
    pub contacts: Vec<crate::contacts::Contact>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            objectives: Objective::defaults(),
            rules: RulesConfig::default(),
            late_after_ms: 2 * 60_000,
            series_expiry_ms: 7 * 86_400_000,
            retention_ms: 35 * 86_400_000,
            max_series: DEFAULT_MAX_SERIES,
            site_label: "site".into(),
            maintenance: Vec::new(),
            contacts: Vec::new(),
        }
    }
}

/// Where a block lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockKey {
    pub objective: String,
    pub site: String,
    pub hour: i64,
}

/// Counters for the self-metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineCounters {
    pub results_folded: u64,
    pub results_replayed_skipped: u64,
    pub results_late: u64,
    pub results_maintenance: u64,
    pub results_too_old: u64,
    pub series_overflow: u64,
    pub evaluations: u64,
}

/// An active warning.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub signal: Signal,
    pub since_ms: i64,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub at_ms: i64,
    pub reports: Vec<ObjectiveReport>,
    pub signals: Vec<Signal>,
    pub changes: Vec<Change>,
    pub warnings_raised: Vec<Signal>,
    pub warnings_cleared: Vec<Signal>,
}

/// What must be persisted since the last call.
#[derive(Debug, Default)]
pub struct Persist {
    pub blocks: Vec<(BlockKey, BlockRecord)>,
    pub series: Vec<SeriesState>,
    pub folded: Vec<(String, u64)>,
    pub incidents: Vec<Incident>,
    pub removed_incidents: Vec<u64>,
}

/// Late failures of one agent in one fold.
#[derive(Debug, Clone, Copy)]
struct LateFailures {
    count: u64,
    from_ms: i64,
    to_ms: i64,
}

/// The engine.
pub struct Engine {
    cfg: EngineConfig,
    /// Per objective (by index): site → buckets.
    buckets: Vec<HashMap<String, Buckets>>,
    series: HashMap<(String, String), SeriesState>,
    pub incidents: Incidents,
    pub maintenance: Maintenance,
    warnings: BTreeMap<(String, String), Warning>,
    slo_since: HashMap<String, i64>,
    folded: HashMap<String, u64>,
    dirty_blocks: BTreeSet<(usize, String, i64)>,
    dirty_series: BTreeSet<(String, String)>,
    dirty_folded: BTreeSet<String>,
    late: BTreeMap<String, LateFailures>,
    last_eval_ms: Option<i64>,
    pub counters: EngineCounters,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        let ack_within = cfg
            .objectives
            .iter()
            .find_map(|o| match &o.source {
                Source::Acknowledgement { within_ms, .. } => Some(*within_ms),
                Source::Results { .. } => None,
            })
            .unwrap_or(15 * 60_000);
        Engine {
            buckets: cfg.objectives.iter().map(|_| HashMap::new()).collect(),
            series: HashMap::new(),
            incidents: Incidents::new(ack_within, cfg.rules.resolve_after),
            maintenance: Maintenance::new(cfg.maintenance.clone()),
            warnings: BTreeMap::new(),
            slo_since: HashMap::new(),
            folded: HashMap::new(),
            dirty_blocks: BTreeSet::new(),
            dirty_series: BTreeSet::new(),
            dirty_folded: BTreeSet::new(),
            late: BTreeMap::new(),
            last_eval_ms: None,
            counters: EngineCounters::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn objectives(&self) -> &[Objective] {
        &self.cfg.objectives
    }

    fn objective_index(&self, name: &str) -> Option<usize> {
        self.cfg.objectives.iter().position(|o| o.name == name)
    }

    // ---- restore (startup) ---------------------------------------------

    /// Restores a stored block; blocks of objectives no longer configured
    /// are ignored. Minute detail is kept only within the horizon of `now`.
    pub fn restore_block(&mut self, key: &BlockKey, record: BlockRecord, now_ms: i64) {
        let Some(i) = self.objective_index(&key.objective) else {
            return;
        };
        let mut block = record.into_block();
        if key.hour < hour_of(minute_of(now_ms)) - MINUTE_HORIZON_HOURS {
            block.minutes = None;
        }
        self.buckets[i]
            .entry(key.site.clone())
            .or_default()
            .hydrate(key.hour, block);
    }

    pub fn restore_series(&mut self, s: SeriesState) {
        if self.series.len() < self.cfg.max_series {
            self.series.insert((s.agent.clone(), s.check.clone()), s);
        }
    }

    pub fn restore_folded(&mut self, agent: &str, seq: u64) {
        self.folded.insert(agent.to_string(), seq);
    }

    pub fn restore_incidents(&mut self, incidents: Vec<Incident>) {
        self.incidents.restore(incidents);
    }

    pub fn restore_windows(&mut self, windows: Vec<maintenance::Window>) {
        for w in windows {
            if let Err(e) = self.maintenance.add(w) {
                tracing::warn!(error = %e, "stored maintenance window ignored");
            }
        }
    }

    /// Highest sequence of `agent` folded into the buckets.
    pub fn folded(&self, agent: &str) -> u64 {
        self.folded.get(agent).copied().unwrap_or(0)
    }

    // ---- fold ------------------------------------------------------------

    /// The site of an agent from its labels.
    pub fn site_of(&self, agent: &str, agent_labels: &BTreeMap<String, String>) -> String {
        agent_labels
            .get(&self.cfg.site_label)
            .cloned()
            .unwrap_or_else(|| agent.to_string())
    }

    /// Blocks the fold of these results will touch that are in memory
    /// without minute detail: load them from the store and [`Engine::hydrate`]
    /// them first.
    pub fn missing_detail(&self, site: &str, results: &[ResultRecord]) -> Vec<BlockKey> {
        let mut out = BTreeSet::new();
        for r in results {
            let hour = hour_of(minute_of(r.started_unix_ms));
            for (i, o) in self.cfg.objectives.iter().enumerate() {
                if o.selects(&r.kind, &r.labels)
                    && self.buckets[i]
                        .get(site)
                        .is_some_and(|b| b.needs_detail(hour))
                {
                    out.insert(BlockKey {
                        objective: o.name.clone(),
                        site: site.to_string(),
                        hour,
                    });
                }
            }
        }
        out.into_iter().collect()
    }

    /// Puts a block loaded from the store back with its minutes.
    pub fn hydrate(&mut self, key: &BlockKey, record: BlockRecord) {
        if let Some(i) = self.objective_index(&key.objective) {
            self.buckets[i]
                .entry(key.site.clone())
                .or_default()
                .hydrate(key.hour, record.into_block());
        }
    }

    /// Folds newly stored results of one agent (ascending sequences).
    pub fn fold(
        &mut self,
        agent: &str,
        agent_labels: &BTreeMap<String, String>,
        results: &[ResultRecord],
        now_ms: i64,
    ) {
        let site = self.site_of(agent, agent_labels);
        let oldest_hour = hour_of(minute_of(now_ms - self.cfg.retention_ms));
        let mut hwm = self.folded(agent);
        for r in results {
            if r.seq != 0 && r.seq <= hwm {
                self.counters.results_replayed_skipped += 1;
                continue;
            }
            hwm = hwm.max(r.seq);
            self.fold_one(agent, &site, r, oldest_hour);
        }
        if hwm > self.folded(agent) {
            self.folded.insert(agent.to_string(), hwm);
            self.dirty_folded.insert(agent.to_string());
        }
    }

    fn fold_one(&mut self, agent: &str, site: &str, r: &ResultRecord, oldest_hour: i64) {
        self.counters.results_folded += 1;
        let finished = r.started_unix_ms + (r.duration_us / 1000) as i64;
        let arrival = if self.maintenance.covering(agent, site, r).is_some() {
            self.counters.results_maintenance += 1;
            Arrival::Maintenance
        } else if r.received_unix_ms - finished > self.cfg.late_after_ms {
            self.counters.results_late += 1;
            Arrival::Late
        } else {
            Arrival::OnTime
        };
        // Series streaks and interval.
        let key = (agent.to_string(), r.check.clone());
        let room = self.series.len() < self.cfg.max_series;
        match self.series.get_mut(&key) {
            Some(s) => s.observe(r, arrival, &self.cfg.rules.failing),
            None if room => {
                let mut s = SeriesState::new(agent, site, r);
                s.observe(r, arrival, &self.cfg.rules.failing);
                self.series.insert(key.clone(), s);
            }
            None => self.counters.series_overflow += 1,
        }
        self.dirty_series.insert(key);
        if arrival == Arrival::Late && self.cfg.rules.failing[r.outcome.index()] {
            let e = self.late.entry(agent.to_string()).or_insert(LateFailures {
                count: 0,
                from_ms: r.started_unix_ms,
                to_ms: r.started_unix_ms,
            });
            e.count += 1;
            e.from_ms = e.from_ms.min(r.started_unix_ms);
            e.to_ms = e.to_ms.max(r.started_unix_ms);
        }
        // Buckets.
        let minute = minute_of(r.started_unix_ms);
        let hour = hour_of(minute);
        if hour < oldest_hour {
            self.counters.results_too_old += 1;
            return;
        }
        for (i, o) in self.cfg.objectives.iter().enumerate() {
            if !o.selects(&r.kind, &r.labels) {
                continue;
            }
            let Some(class) = o.class(r.outcome) else {
                continue;
            };
            let mut c = Counts::default();
            match (arrival, class) {
                (Arrival::Maintenance, _) => c.maintenance = 1,
                (_, Class::Good) => c.good = 1,
                (_, Class::Excluded) => c.excluded = 1,
                (a, Class::Bad) => {
                    c.bad = 1;
                    c.bad_live = u32::from(a == Arrival::OnTime);
                }
            }
            let b = self.buckets[i].entry(site.to_string()).or_default();
            b.add(minute, &c);
            self.dirty_blocks.insert((i, site.to_string(), hour));
        }
    }

    // ---- operator commands ---------------------------------------------------

    pub fn ack(&mut self, id: u64, by: &str, now_ms: i64) -> Result<Change, IncidentError> {
        self.incidents.ack(id, by, now_ms)
    }

    pub fn close(
        &mut self,
        id: u64,
        root_cause: &str,
        now_ms: i64,
    ) -> Result<Change, IncidentError> {
        self.incidents.close(id, root_cause, now_ms)
    }

    // ---- persistence and housekeeping ------------------------------------------

    /// Everything changed since the last call.
    pub fn take_persist(&mut self) -> Persist {
        let mut p = self.take_persist_buckets();
        for k in std::mem::take(&mut self.dirty_series) {
            if let Some(s) = self.series.get(&k) {
                p.series.push(s.clone());
            }
        }
        let (incidents, removed) = self.incidents.take_dirty();
        p.incidents = incidents;
        p.removed_incidents = removed;
        p
    }

    /// Only the changed buckets and folded marks (what must be atomic with
    /// each fold). Series states are soft state, written with
    /// [`Engine::take_persist`] on each evaluation: after a crash, replayed
    /// results may miss them, which only shortens a streak.
    pub fn take_persist_buckets(&mut self) -> Persist {
        let mut p = Persist::default();
        for (i, site, hour) in std::mem::take(&mut self.dirty_blocks) {
            let Some(rec) = self.buckets[i]
                .get(&site)
                .and_then(|b| b.block(hour))
                .and_then(|b| b.record())
            else {
                continue;
            };
            p.blocks.push((
                BlockKey {
                    objective: self.cfg.objectives[i].name.clone(),
                    site,
                    hour,
                },
                rec,
            ));
        }
        for a in std::mem::take(&mut self.dirty_folded) {
            let seq = self.folded(&a);
            p.folded.push((a, seq));
        }
        p
    }

    /// Drops minute detail past the horizon and everything past retention.
    pub fn trim(&mut self, now_ms: i64) {
        let hour = hour_of(minute_of(now_ms));
        let retain = hour_of(minute_of(now_ms - self.cfg.retention_ms));
        let dirty = &self.dirty_blocks;
        for (i, sites) in self.buckets.iter_mut().enumerate() {
            for (site, b) in sites.iter_mut() {
                b.trim(hour - MINUTE_HORIZON_HOURS, retain, |h| {
                    dirty.contains(&(i, site.clone(), h))
                });
            }
            sites.retain(|_, b| !b.is_empty());
        }
        self.incidents.prune(now_ms - self.cfg.retention_ms);
    }

    /// Approximate heap bytes of the buckets.
    pub fn bucket_bytes(&self) -> usize {
        self.buckets
            .iter()
            .flat_map(|m| m.values())
            .map(Buckets::heap_bytes)
            .sum()
    }

    /// Minute buckets that saturated (counted, never wrapped).
    pub fn saturated(&self) -> u64 {
        self.buckets
            .iter()
            .flat_map(|m| m.values())
            .map(|b| b.saturated)
            .sum()
    }
}

#[cfg(test)]
mod tests;
