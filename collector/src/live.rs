//! The in-memory view the outputs read: the latest result and per-outcome
//! counts of every (agent, check) series, each agent's state, and ingest
//! counters. Written by the store task after a group is durable (and by
//! ingest sessions for connection counts and rejections); read by `/metrics`
//! and the JSON API. It holds no history — history is in the store.
//!
//! Bounded: at most `max_series_per_agent` checks per agent are tracked;
//! results of further checks are stored but not exported, and counted in
//! `series_overflow`.

use std::collections::BTreeMap;

use crate::model::{Outcome, ResultRecord};
use crate::store::AgentState;

/// Default bound on distinct check names per agent.
pub const DEFAULT_MAX_SERIES_PER_AGENT: usize = 500;

/// One (agent, check) series.
#[derive(Debug, Clone)]
pub struct Series {
    pub kind: String,
    pub module: String,
    pub objective: String,
    pub last: ResultRecord,
    pub counts: [u64; 8],
}

/// One agent as the outputs see it.
#[derive(Debug, Clone, Default)]
pub struct AgentView {
    pub state: AgentState,
    pub connected_streams: u32,
}

/// Counters of the ingest path.
#[derive(Debug, Clone, Default)]
pub struct IngestCounters {
    pub streams_total: u64,
    pub batches_total: u64,
    pub results_stored_total: u64,
    pub duplicates_total: u64,
    pub rejected_total: BTreeMap<&'static str, u64>,
    /// Time streams were held back by the per-agent rate bound.
    pub throttled_seconds_total: f64,
}

/// The live view.
#[derive(Debug, Clone)]
pub struct Live {
    pub series: BTreeMap<(String, String), Series>,
    pub agents: BTreeMap<String, AgentView>,
    pub ingest: IngestCounters,
    pub series_overflow_total: u64,
    pub max_series_per_agent: usize,
    /// Per remote-write receiver counters (written by its task).
    pub remote_write: BTreeMap<String, crate::remote_write::Stats>,
    series_per_agent: BTreeMap<String, usize>,
}

impl Default for Live {
    fn default() -> Self {
        Live::new(DEFAULT_MAX_SERIES_PER_AGENT)
    }
}

impl Live {
    pub fn new(max_series_per_agent: usize) -> Self {
        Live {
            series: BTreeMap::new(),
            agents: BTreeMap::new(),
            ingest: IngestCounters::default(),
            series_overflow_total: 0,
            max_series_per_agent,
            remote_write: BTreeMap::new(),
            series_per_agent: BTreeMap::new(),
        }
    }

    /// Folds newly stored results in.
    pub fn record_results(&mut self, agent: &str, results: &[ResultRecord]) {
        self.ingest.batches_total += 1;
        for r in results {
            self.ingest.results_stored_total += 1;
            let key = (agent.to_string(), r.check.clone());
            match self.series.get_mut(&key) {
                Some(s) => {
                    s.counts[r.outcome.index()] += 1;
                    if r.started_unix_ms >= s.last.started_unix_ms {
                        s.kind.clone_from(&r.kind);
                        s.module = r.labels.get("module").cloned().unwrap_or_default();
                        s.objective = r.labels.get("objective").cloned().unwrap_or_default();
                        s.last = r.clone();
                    }
                }
                None => {
                    let n = self.series_per_agent.entry(agent.to_string()).or_insert(0);
                    if *n >= self.max_series_per_agent {
                        self.series_overflow_total += 1;
                        continue;
                    }
                    *n += 1;
                    let mut counts = [0; 8];
                    counts[r.outcome.index()] += 1;
                    self.series.insert(
                        key,
                        Series {
                            kind: r.kind.clone(),
                            module: r.labels.get("module").cloned().unwrap_or_default(),
                            objective: r.labels.get("objective").cloned().unwrap_or_default(),
                            last: r.clone(),
                            counts,
                        },
                    );
                }
            }
        }
    }

    /// Replaces an agent's persisted state.
    pub fn update_agent(&mut self, id: &str, state: &AgentState) {
        let view = self.agents.entry(id.to_string()).or_default();
        view.state = state.clone();
    }

    /// A stream of `id` opened (+1) or closed (-1).
    pub fn stream_delta(&mut self, id: &str, opened: bool) {
        let view = self.agents.entry(id.to_string()).or_default();
        if opened {
            view.connected_streams += 1;
            self.ingest.streams_total += 1;
        } else {
            view.connected_streams = view.connected_streams.saturating_sub(1);
        }
    }

    /// Counts a rejected stream or message.
    pub fn reject(&mut self, reason: &'static str) {
        *self.ingest.rejected_total.entry(reason).or_insert(0) += 1;
    }

    /// Counts duplicates reported by the store.
    pub fn duplicates(&mut self, n: u64) {
        self.ingest.duplicates_total += n;
    }

    /// Outcome counts of one series.
    pub fn outcome_count(&self, agent: &str, check: &str, outcome: Outcome) -> u64 {
        self.series
            .get(&(agent.to_string(), check.to_string()))
            .map_or(0, |s| s.counts[outcome.index()])
    }
}
