//! Restore rehearsals: what `outpost-agent smoke` reports, round by round,
//! over `Ingest/Rehearse`, recorded as one [`Record`] per (agent,
//! rehearsal id) and judged against the scenario's recovery time
//! objective (RTO).
//!
//! Invariants:
//! * **Rehearsal results never reach the result store, the SLO buckets,
//!   the series streaks, the escalation rules or any receiver.** They
//!   enter through their own RPC, are converted by `ingest::rehearsal`
//!   into a [`Report`] (not a `ResultRecord`) and only the rehearsal task
//!   ([`task`]) sees them; nothing here talks to the store task or the
//!   evaluator.
//! * **Idempotent per (agent, rehearsal id, round).** A retried report of
//!   the latest round replaces the earlier copy (its failures are undone
//!   first); a report of an older round than the latest is a duplicate
//!   and changes nothing.
//! * **Bounded.** At most [`MAX_RESULTS_PER_REPORT`] results per report,
//!   [`MAX_CHECKS`] distinct checks per rehearsal (more are counted in
//!   `checks_dropped`), `keep` records (the oldest are evicted and
//!   counted).
//! * The status is derived at read time from the record and "now"
//!   ([`Record::status`]): a running rehearsal past its RTO is already
//!   `missed`; one without a report for `abandon_after` is `abandoned`.
//!
//! Elapsed time is `green − started`, both on the agent's clock (the
//! moment every selected check was first ok in one round, minus the start
//! of the run); "now − started" for running rehearsals mixes in the
//! collector's clock (a small skew, stated).

pub mod http;
pub mod task;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Outcome;
use crate::notify::rfc3339;

/// Most results in one report.
pub const MAX_RESULTS_PER_REPORT: usize = 1_000;
/// Most distinct checks tracked per rehearsal.
pub const MAX_CHECKS: usize = 1_000;
/// Longest rehearsal name, bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Highest round number accepted.
pub const MAX_ROUND: u32 = 100_000;
/// Records kept by default.
pub const DEFAULT_KEEP: usize = 1_000;
/// A running rehearsal without a report for this long is abandoned.
pub const DEFAULT_ABANDON_AFTER_MS: i64 = 3_600_000;

/// `[rehearsal]` settings, with the scenarios' RTOs (`[scenario.NAME]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RehearsalConfig {
    /// Scenario of reports that name none (or an unknown one).
    pub default_scenario: String,
    /// RTO per scenario, ms (the escalation scenarios' `rto`).
    pub rto_ms: BTreeMap<String, i64>,
    /// Records kept (the oldest beyond are evicted and counted).
    pub keep: usize,
    pub abandon_after_ms: i64,
}

impl Default for RehearsalConfig {
    fn default() -> Self {
        RehearsalConfig {
            default_scenario: "full_platform".into(),
            rto_ms: crate::escalation::RulesConfig::default()
                .scenarios
                .into_iter()
                .map(|(k, s)| (k, s.rto_ms))
                .collect(),
            keep: DEFAULT_KEEP,
            abandon_after_ms: DEFAULT_ABANDON_AFTER_MS,
        }
    }
}

impl RehearsalConfig {
    /// The scenario applied to `requested`, its RTO, and whether the
    /// request was unknown (and so replaced by the default).
    pub fn resolve(&self, requested: &str) -> (String, i64, bool) {
        let known = self.rto_ms.get(requested).map(|r| (requested, *r));
        match known {
            Some((s, rto)) => (s.to_string(), rto, false),
            None => {
                let rto = self
                    .rto_ms
                    .get(&self.default_scenario)
                    .copied()
                    .unwrap_or(4 * 3_600_000);
                (self.default_scenario.clone(), rto, !requested.is_empty())
            }
        }
    }
}

/// One check's result in a round, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundResult {
    pub check: String,
    pub kind: String,
    pub outcome: Outcome,
    pub error: String,
    /// Agent clock when the run ended.
    pub ended_ms: i64,
    pub value: Option<f64>,
}

/// One validated report (one round).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub agent: String,
    pub rehearsal_id: String,
    pub name: String,
    /// As sent; empty: the default scenario.
    pub scenario: String,
    pub selector: BTreeMap<String, String>,
    pub started_ms: i64,
    pub round: u32,
    pub results: Vec<RoundResult>,
    pub green_ms: Option<i64>,
    pub finished: bool,
}

/// A rehearsal's status at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Running,
    Met,
    Missed,
    /// Finished without a green round.
    NotGreen,
    /// No report for `abandon_after`, never green.
    Abandoned,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Running,
        Status::Met,
        Status::Missed,
        Status::NotGreen,
        Status::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Met => "met",
            Status::Missed => "missed",
            Status::NotGreen => "not_green",
            Status::Abandoned => "abandoned",
        }
    }
}

/// What a rehearsal learned about one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckTrail {
    pub check: String,
    pub kind: String,
    /// Rounds in which it was not ok.
    pub times_failed: u32,
    /// The first failing round (0: never failed) and what it said.
    pub first_failed_round: u32,
    pub first_outcome: Option<Outcome>,
    pub first_error: String,
    /// Its outcome in the latest round that ran it.
    pub last_outcome: Outcome,
    pub last_error: String,
    pub last_round: u32,
    pub last_value: Option<f64>,
}

/// One rehearsal as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub agent: String,
    pub id: String,
    pub name: String,
    pub selector: BTreeMap<String, String>,
    /// The scenario applied.
    pub scenario: String,
    /// The scenario the agent asked for (empty: none).
    pub requested_scenario: String,
    pub rto_ms: i64,
    pub started_ms: i64,
    pub green_ms: Option<i64>,
    pub finished: bool,
    /// Distinct rounds received.
    pub rounds: u32,
    pub last_round: u32,
    /// Checks not ok in `last_round` (to undo a retried copy of it).
    pub last_round_failed: Vec<String>,
    /// Collector clock of the first and latest report.
    pub first_report_ms: i64,
    pub last_report_ms: i64,
    pub checks: Vec<CheckTrail>,
    /// Checks beyond [`MAX_CHECKS`], not tracked.
    pub checks_dropped: u32,
}

/// What applying a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A new rehearsal or a new round.
    Recorded,
    /// A retried copy of the latest round replaced the earlier one.
    Replaced,
    /// A copy of an older round: nothing changed.
    Duplicate,
}

impl Record {
    fn new(r: &Report, cfg: &RehearsalConfig, now_ms: i64) -> Record {
        let (scenario, rto_ms, _) = cfg.resolve(&r.scenario);
        Record {
            agent: r.agent.clone(),
            id: r.rehearsal_id.clone(),
            name: r.name.clone(),
            selector: r.selector.clone(),
            scenario,
            requested_scenario: r.scenario.clone(),
            rto_ms,
            started_ms: r.started_ms,
            green_ms: None,
            finished: false,
            rounds: 0,
            last_round: 0,
            last_round_failed: Vec::new(),
            first_report_ms: now_ms,
            last_report_ms: now_ms,
            checks: Vec::new(),
            checks_dropped: 0,
        }
    }

    /// The agent asked for a scenario the collector does not know.
    pub fn scenario_unknown(&self) -> bool {
        !self.requested_scenario.is_empty() && self.requested_scenario != self.scenario
    }

    /// Green − started, once green.
    pub fn elapsed_ms(&self) -> Option<i64> {
        self.green_ms.map(|g| (g - self.started_ms).max(0))
    }

    /// Elapsed so far: green − started, or now − started while not green.
    pub fn elapsed_or_running_ms(&self, now_ms: i64) -> i64 {
        self.elapsed_ms()
            .unwrap_or_else(|| (now_ms - self.started_ms).max(0))
    }

    /// The status at `now_ms`.
    pub fn status(&self, now_ms: i64, abandon_after_ms: i64) -> Status {
        match self.elapsed_ms() {
            Some(e) if e <= self.rto_ms => Status::Met,
            Some(_) => Status::Missed,
            None if self.finished => Status::NotGreen,
            None if now_ms - self.last_report_ms > abandon_after_ms => Status::Abandoned,
            None if now_ms - self.started_ms > self.rto_ms => Status::Missed,
            None => Status::Running,
        }
    }

    /// Checks that were not ok in some round.
    pub fn failed_on_the_way(&self) -> impl Iterator<Item = &CheckTrail> {
        self.checks.iter().filter(|c| c.times_failed > 0)
    }

    fn undo_last_round(&mut self) {
        let round = self.last_round;
        for name in std::mem::take(&mut self.last_round_failed) {
            if let Some(c) = self.checks.iter_mut().find(|c| c.check == name) {
                c.times_failed = c.times_failed.saturating_sub(1);
                if c.first_failed_round == round {
                    c.first_failed_round = 0;
                    c.first_outcome = None;
                    c.first_error.clear();
                }
            }
        }
    }

    /// Folds one report in (see the module doc for idempotence).
    pub fn apply(&mut self, r: &Report, now_ms: i64) -> Applied {
        if r.round < self.last_round {
            return Applied::Duplicate;
        }
        let applied = if r.round == self.last_round {
            self.undo_last_round();
            Applied::Replaced
        } else {
            self.rounds += 1;
            self.last_round = r.round;
            Applied::Recorded
        };
        for x in &r.results {
            let idx = match self.checks.iter().position(|c| c.check == x.check) {
                Some(i) => i,
                None if self.checks.len() >= MAX_CHECKS => {
                    self.checks_dropped = self.checks_dropped.saturating_add(1);
                    continue;
                }
                None => {
                    self.checks.push(CheckTrail {
                        check: x.check.clone(),
                        kind: x.kind.clone(),
                        times_failed: 0,
                        first_failed_round: 0,
                        first_outcome: None,
                        first_error: String::new(),
                        last_outcome: x.outcome,
                        last_error: String::new(),
                        last_round: r.round,
                        last_value: None,
                    });
                    self.checks.len() - 1
                }
            };
            let c = &mut self.checks[idx];
            c.kind.clone_from(&x.kind);
            c.last_outcome = x.outcome;
            c.last_error.clone_from(&x.error);
            c.last_round = r.round;
            c.last_value = x.value;
            if x.outcome != Outcome::Ok {
                c.times_failed = c.times_failed.saturating_add(1);
                if c.first_failed_round == 0 || r.round < c.first_failed_round {
                    c.first_failed_round = r.round;
                    c.first_outcome = Some(x.outcome);
                    c.first_error.clone_from(&x.error);
                }
                if !self.last_round_failed.contains(&x.check) {
                    self.last_round_failed.push(x.check.clone());
                }
            }
        }
        self.checks.sort_by(|a, b| a.check.cmp(&b.check));
        // Green: the agent's word; else a round in which every result is ok.
        let derived = (!r.results.is_empty() && r.results.iter().all(|x| x.outcome == Outcome::Ok))
            .then(|| r.results.iter().map(|x| x.ended_ms).max())
            .flatten();
        if let Some(g) = r.green_ms.or(derived) {
            let g = g.max(self.started_ms);
            self.green_ms = Some(self.green_ms.map_or(g, |old| old.min(g)));
        }
        self.finished |= r.finished;
        self.last_report_ms = now_ms;
        applied
    }

    /// The record as JSON (API, status page, report).
    pub fn json(&self, now_ms: i64, abandon_after_ms: i64) -> serde_json::Value {
        let status = self.status(now_ms, abandon_after_ms);
        serde_json::json!({
            "agent": self.agent,
            "id": self.id,
            "name": self.name,
            "selector": self.selector,
            "scenario": self.scenario,
            "requested_scenario": self.requested_scenario,
            "scenario_note": self.scenario_unknown().then(|| format!(
                "unknown scenario {:?}: the default {:?} was applied", self.requested_scenario, self.scenario)),
            "rto_seconds": self.rto_ms / 1000,
            "started": rfc3339(self.started_ms),
            "green": self.green_ms.map(rfc3339),
            "elapsed_seconds": self.elapsed_or_running_ms(now_ms) as f64 / 1000.0,
            "status": status.as_str(),
            "rto_met": match status {
                Status::Met => Some(true),
                Status::Missed => Some(false),
                _ => None,
            },
            "finished": self.finished,
            "rounds": self.rounds,
            "last_round": self.last_round,
            "first_report": rfc3339(self.first_report_ms),
            "last_report": rfc3339(self.last_report_ms),
            "failed_on_the_way": self.failed_on_the_way().map(|c| serde_json::json!({
                "check": c.check,
                "kind": c.kind,
                "times_failed": c.times_failed,
                "first_failed_round": c.first_failed_round,
                "first_outcome": c.first_outcome.map(Outcome::as_str),
                "first_error": c.first_error,
                "last_outcome": c.last_outcome.as_str(),
            })).collect::<Vec<_>>(),
            "last_round_outcomes": self.checks.iter().filter(|c| c.last_round == self.last_round).map(|c| serde_json::json!({
                "check": c.check,
                "kind": c.kind,
                "outcome": c.last_outcome.as_str(),
                "error": c.last_error,
                "value": c.last_value,
            })).collect::<Vec<_>>(),
            "checks_dropped": self.checks_dropped,
        })
    }
}

/// Key of a record: (agent, rehearsal id).
pub type Key = (String, String);

/// Every record held, bounded by `keep`.
#[derive(Debug, Default)]
pub struct Book {
    records: BTreeMap<Key, Record>,
    /// Records evicted to stay within `keep`.
    pub evicted: u64,
    /// Reports of older rounds (changed nothing).
    pub duplicates: u64,
}

impl Book {
    /// A book holding `records` (from the store), trimmed to `keep`.
    pub fn restore(records: Vec<Record>, keep: usize) -> (Book, Vec<Key>) {
        let mut b = Book::default();
        for r in records {
            b.records.insert((r.agent.clone(), r.id.clone()), r);
        }
        let mut out = Vec::new();
        while b.records.len() > keep.max(1) {
            match b.evict_oldest() {
                Some(k) => out.push(k),
                None => break,
            }
        }
        (b, out)
    }

    fn evict_oldest(&mut self) -> Option<Key> {
        let key = self
            .records
            .iter()
            .min_by_key(|(_, r)| (r.first_report_ms, r.started_ms))
            .map(|(k, _)| k.clone())?;
        self.records.remove(&key);
        self.evicted += 1;
        Some(key)
    }

    /// Applies a report; returns what happened, the record as it is now,
    /// and the records evicted to make room.
    pub fn apply(
        &mut self,
        r: &Report,
        cfg: &RehearsalConfig,
        now_ms: i64,
    ) -> (Applied, Record, Vec<Key>) {
        let key = (r.agent.clone(), r.rehearsal_id.clone());
        let mut evicted = Vec::new();
        if !self.records.contains_key(&key) {
            while self.records.len() >= cfg.keep.max(1) {
                match self.evict_oldest() {
                    Some(k) => evicted.push(k),
                    None => break,
                }
            }
        }
        let rec = self
            .records
            .entry(key)
            .or_insert_with(|| Record::new(r, cfg, now_ms));
        let applied = rec.apply(r, now_ms);
        if applied == Applied::Duplicate {
            self.duplicates += 1;
        }
        (applied, rec.clone(), evicted)
    }

    pub fn get(&self, agent: &str, id: &str) -> Option<&Record> {
        self.records.get(&(agent.to_string(), id.to_string()))
    }

    /// Every record, newest start first.
    pub fn newest_first(&self) -> Vec<Record> {
        let mut v: Vec<Record> = self.records.values().cloned().collect();
        v.sort_by(|a, b| b.started_ms.cmp(&a.started_ms).then(a.id.cmp(&b.id)));
        v
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests;
