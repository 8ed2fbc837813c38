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
        self.ingest.results_stored_total += results.len() as u64;
        // One pass groups the batch by check (in order of first
        // appearance), so each series is looked up and its latest result
        // cloned once per batch, not once per result. Same outcome as
        // folding one result at a time: counts add up, the latest start
        // (the later one on a tie) becomes `last`, and new checks over
        // the per-agent bound count one overflow per result.
        struct Group {
            counts: [u64; 8],
            newest: usize,
            n: u64,
        }
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut groups: Vec<(&str, Group)> = Vec::new();
        for (i, r) in results.iter().enumerate() {
            let g = match index.get(r.check.as_str()) {
                Some(&g) => &mut groups[g].1,
                None => {
                    index.insert(r.check.as_str(), groups.len());
                    groups.push((
                        r.check.as_str(),
                        Group {
                            counts: [0; 8],
                            newest: i,
                            n: 0,
                        },
                    ));
                    let last = groups.len() - 1;
                    &mut groups[last].1
                }
            };
            g.counts[r.outcome.index()] += 1;
            g.n += 1;
            if r.started_unix_ms >= results[g.newest].started_unix_ms {
                g.newest = i;
            }
        }
        for (check, g) in groups {
            let r = &results[g.newest];
            let key = (agent.to_string(), check.to_string());
            match self.series.get_mut(&key) {
                Some(s) => {
                    for (c, add) in s.counts.iter_mut().zip(g.counts) {
                        *c += add;
                    }
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
                        self.series_overflow_total += g.n;
                        continue;
                    }
                    *n += 1;
                    self.series.insert(
                        key,
                        Series {
                            kind: r.kind.clone(),
                            module: r.labels.get("module").cloned().unwrap_or_default(),
                            objective: r.labels.get("objective").cloned().unwrap_or_default(),
                            last: r.clone(),
                            counts: g.counts,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Phases;

    fn rec(seq: u64, check: &str, started: i64, outcome: Outcome) -> ResultRecord {
        ResultRecord {
            seq,
            check: check.into(),
            kind: "page".into(),
            labels: BTreeMap::from([("module".to_string(), format!("m{seq}"))]),
            started_unix_ms: started,
            duration_us: 1,
            phases: Phases::default(),
            outcome,
            http_status: None,
            error: String::new(),
            value: None,
            confirmation: false,
            tls_cert_days_left: None,
            received_unix_ms: 0,
        }
    }

    /// The per-result fold that `record_results` must agree with.
    fn one_by_one(live: &mut Live, agent: &str, results: &[ResultRecord]) {
        live.ingest.batches_total += 1;
        for r in results {
            live.ingest.results_stored_total += 1;
            let key = (agent.to_string(), r.check.clone());
            if let Some(s) = live.series.get_mut(&key) {
                s.counts[r.outcome.index()] += 1;
                if r.started_unix_ms >= s.last.started_unix_ms {
                    s.module = r.labels.get("module").cloned().unwrap_or_default();
                    s.last = r.clone();
                }
                continue;
            }
            let n = live.series_per_agent.entry(agent.to_string()).or_insert(0);
            if *n >= live.max_series_per_agent {
                live.series_overflow_total += 1;
                continue;
            }
            *n += 1;
            let mut counts = [0; 8];
            counts[r.outcome.index()] += 1;
            live.series.insert(
                key,
                Series {
                    kind: r.kind.clone(),
                    module: r.labels.get("module").cloned().unwrap_or_default(),
                    objective: String::new(),
                    last: r.clone(),
                    counts,
                },
            );
        }
    }

    #[test]
    fn grouped_recording_equals_recording_one_result_at_a_time() {
        let batches = [
            vec![
                rec(1, "a", 10, Outcome::Ok),
                rec(2, "b", 10, Outcome::Failed),
                rec(3, "a", 12, Outcome::Failed),
                rec(4, "a", 12, Outcome::Ok),
                rec(5, "c", 9, Outcome::Ok),
                rec(6, "a", 11, Outcome::Timeout),
            ],
            // Older than what is stored for "a": counted, `last` kept.
            vec![rec(7, "a", 5, Outcome::Ok), rec(8, "d", 20, Outcome::Ok)],
            vec![rec(9, "b", 10, Outcome::Ok), rec(10, "e", 1, Outcome::Ok)],
        ];
        let (mut grouped, mut reference) = (Live::new(3), Live::new(3));
        for b in &batches {
            grouped.record_results("x", b);
            one_by_one(&mut reference, "x", b);
        }
        let view = |l: &Live| {
            l.series
                .iter()
                .map(|(k, s)| (k.clone(), s.counts, s.last.seq, s.module.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(view(&grouped), view(&reference));
        assert_eq!(grouped.series_overflow_total, 2);
        assert_eq!(reference.series_overflow_total, 2);
        assert_eq!(grouped.ingest.results_stored_total, 10);
        assert_eq!(
            grouped.series[&("x".to_string(), "a".to_string())].last.seq,
            4
        );
    }
}
