//! What the evaluation remembers about each (agent, check) series: where
//! it runs (site), what it is (kind, labels), how often it runs (the
//! interval, estimated from the gaps between runs, for data completeness
//! and silence), and its recent on-time streak (for the escalation rules
//! and for hysteresis).
//!
//! Invariants: streaks only move on results that arrived on time and
//! outside maintenance — a late result or a maintenance run resets them,
//! so rules never act on the past; the interval is the median of the last
//! [`GAPS`] positive gaps under a day. Pure, no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Outcome, ResultRecord};

/// Gaps kept for the interval estimate.
pub const GAPS: usize = 5;
/// Largest gap taken as an interval.
const MAX_GAP_MS: i64 = 86_400_000;

/// One on-time run as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LiveRun {
    pub started_ms: i64,
    pub outcome: Outcome,
    pub value: Option<f64>,
}

/// One (agent, check) series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesState {
    pub agent: String,
    pub check: String,
    pub site: String,
    pub kind: String,
    pub labels: BTreeMap<String, String>,
    pub first_started_ms: i64,
    pub last_started_ms: i64,
    /// Collector time the latest result arrived.
    pub last_received_ms: i64,
    gaps: Vec<i64>,
    /// Median of recent gaps; `None` until two runs were seen.
    pub interval_ms: Option<i64>,
    /// The latest on-time run (reset by late and maintenance runs).
    pub last_live: Option<LiveRun>,
    pub consecutive_bad: u32,
    pub consecutive_good: u32,
    /// Start of the current on-time failing streak.
    pub failing_since_ms: Option<i64>,
}

/// How a result is seen by the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    OnTime,
    Late,
    Maintenance,
}

impl SeriesState {
    pub fn new(agent: &str, site: &str, r: &ResultRecord) -> SeriesState {
        SeriesState {
            agent: agent.to_string(),
            check: r.check.clone(),
            site: site.to_string(),
            kind: r.kind.clone(),
            labels: r.labels.clone(),
            first_started_ms: r.started_unix_ms,
            last_started_ms: r.started_unix_ms,
            last_received_ms: r.received_unix_ms,
            gaps: Vec::new(),
            interval_ms: None,
            last_live: None,
            consecutive_bad: 0,
            consecutive_good: 0,
            failing_since_ms: None,
        }
    }

    /// Module label (or empty).
    pub fn module(&self) -> &str {
        self.labels.get("module").map_or("", String::as_str)
    }

    /// Folds one result in; `failing` says which outcomes the rules treat
    /// as failing (by [`Outcome::index`]).
    pub fn observe(&mut self, r: &ResultRecord, arrival: Arrival, failing: &[bool; 8]) {
        self.kind.clone_from(&r.kind);
        if r.labels != self.labels {
            self.labels.clone_from(&r.labels);
        }
        self.last_received_ms = self.last_received_ms.max(r.received_unix_ms);
        self.first_started_ms = self.first_started_ms.min(r.started_unix_ms);
        if !r.confirmation {
            let gap = r.started_unix_ms - self.last_started_ms;
            if gap > 0 && gap < MAX_GAP_MS {
                if self.gaps.len() == GAPS {
                    self.gaps.remove(0);
                }
                self.gaps.push(gap);
                let mut sorted = self.gaps.clone();
                sorted.sort_unstable();
                self.interval_ms = Some(sorted[sorted.len() / 2]);
            }
        }
        self.last_started_ms = self.last_started_ms.max(r.started_unix_ms);
        match arrival {
            Arrival::Late | Arrival::Maintenance => {
                self.last_live = None;
                self.consecutive_bad = 0;
                self.consecutive_good = 0;
                self.failing_since_ms = None;
            }
            Arrival::OnTime => {
                if r.outcome == Outcome::Pending {
                    return; // not final
                }
                let newer = self
                    .last_live
                    .is_none_or(|l| r.started_unix_ms >= l.started_ms);
                if !newer {
                    return;
                }
                self.last_live = Some(LiveRun {
                    started_ms: r.started_unix_ms,
                    outcome: r.outcome,
                    value: r.value,
                });
                if failing[r.outcome.index()] {
                    self.consecutive_bad += 1;
                    self.consecutive_good = 0;
                    self.failing_since_ms.get_or_insert(r.started_unix_ms);
                } else {
                    self.consecutive_good += 1;
                    self.consecutive_bad = 0;
                    self.failing_since_ms = None;
                }
            }
        }
    }

    /// Until when the series is expected to run: now while it reported
    /// within `expiry`, else one interval after its last run.
    pub fn active_until(&self, now_ms: i64, expiry_ms: i64) -> i64 {
        if now_ms - self.last_started_ms <= expiry_ms {
            now_ms
        } else {
            self.last_started_ms + self.interval_ms.unwrap_or(0)
        }
    }

    /// Runs expected in `[from_ms, to_ms)`; 0 while the interval is
    /// unknown.
    pub fn expected_runs(&self, from_ms: i64, to_ms: i64, now_ms: i64, expiry_ms: i64) -> f64 {
        let Some(interval) = self.interval_ms.filter(|i| *i > 0) else {
            return 0.0;
        };
        let start = from_ms.max(self.first_started_ms);
        let end = to_ms.min(self.active_until(now_ms, expiry_ms));
        if end <= start {
            return 0.0;
        }
        (end - start) as f64 / interval as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Phases;

    pub(crate) fn rec(check: &str, started: i64, outcome: Outcome) -> ResultRecord {
        ResultRecord {
            seq: 0,
            check: check.into(),
            kind: "page".into(),
            labels: BTreeMap::new(),
            started_unix_ms: started,
            duration_us: 1_000,
            phases: Phases::default(),
            outcome,
            http_status: None,
            error: String::new(),
            value: None,
            confirmation: false,
            tls_cert_days_left: None,
            received_unix_ms: started + 100,
        }
    }

    const FAILING: [bool; 8] = [false, false, false, false, true, true, true, true];

    #[test]
    fn interval_is_the_median_gap_and_expected_runs_follow_it() {
        let first = rec("c", 0, Outcome::Ok);
        let mut s = SeriesState::new("a", "s", &first);
        for t in [60_000, 120_500, 179_000, 240_000, 600_000].iter() {
            s.observe(&rec("c", *t, Outcome::Ok), Arrival::OnTime, &FAILING);
        }
        assert_eq!(s.interval_ms, Some(60_500));
        let s = {
            let mut s = SeriesState::new("a", "s", &first);
            for k in 1..=10 {
                s.observe(
                    &rec("c", k * 60_000, Outcome::Ok),
                    Arrival::OnTime,
                    &FAILING,
                );
            }
            s
        };
        assert_eq!(s.expected_runs(0, 600_000, 600_000, 3_600_000), 10.0);
        // Silent past the expiry: expected only until one interval after
        // the last run.
        assert_eq!(s.expected_runs(0, 10_000_000, 10_000_000, 3_600_000), 11.0);
    }

    #[test]
    fn streaks_move_only_on_time() {
        let mut s = SeriesState::new("a", "s", &rec("c", 0, Outcome::Ok));
        s.observe(&rec("c", 1, Outcome::Failed), Arrival::OnTime, &FAILING);
        s.observe(&rec("c", 2, Outcome::Timeout), Arrival::OnTime, &FAILING);
        assert_eq!((s.consecutive_bad, s.failing_since_ms), (2, Some(1)));
        s.observe(&rec("c", 3, Outcome::Pending), Arrival::OnTime, &FAILING);
        assert_eq!(s.consecutive_bad, 2);
        s.observe(&rec("c", 4, Outcome::Failed), Arrival::Late, &FAILING);
        assert_eq!((s.consecutive_bad, s.last_live), (0, None));
        s.observe(&rec("c", 5, Outcome::Ok), Arrival::OnTime, &FAILING);
        s.observe(
            &rec("c", 6, Outcome::AccessDenied),
            Arrival::OnTime,
            &FAILING,
        );
        assert_eq!(s.consecutive_good, 2);
        assert_eq!(s.last_live.unwrap().outcome, Outcome::AccessDenied);
    }
}
