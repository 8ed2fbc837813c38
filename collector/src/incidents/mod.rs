//! Incidents: what an escalation becomes, and its lifecycle
//! `open → acknowledged → resolved → closed` with a timeline.
//!
//! * **Grouping.** One incident per (rule, scope) while it is active
//!   (open or acknowledged); further signals of the same rule and scope
//!   join it (series, severity raised) instead of paging again.
//! * **Hysteresis.** An active incident resolves only when its signal is
//!   gone *and* every series involved has `resolve_after` consecutive good
//!   on-time runs (or, for incidents without series such as SLO burn, the
//!   signal stayed away for `resolve_after` evaluations). No flapping.
//! * **Acknowledgement** belongs to one incident: a later incident of the
//!   same rule and scope is a new incident and needs a new one.
//! * **Ack overdue.** An unacknowledged critical incident is re-notified one
//!   escalation level higher each time `ack_within` passes (up to
//!   [`MAX_LEVEL`]).
//! * **RTO.** Outage = resolved (or now) − the first failing run; met when
//!   within the scenario's RTO.
//! * **History.** Late failures never open a live incident: they are added
//!   to the timeline of the active incident about that agent, or recorded
//!   as a `historical` incident that is resolved from the start and never
//!   notified.
//!
//! Bounds: timeline [`MAX_TIMELINE`] events (older ones dropped and
//! counted, the first kept); [`MAX_INCIDENTS`] kept in memory (the oldest
//! ended ones are forgotten first). Pure, no I/O: `manager` mutates,
//! the evaluator task persists what [`Incidents::take_dirty`] returns.

pub mod manager;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::escalation::Severity;

pub use manager::{Change, IncidentError, Incidents};

/// Most timeline events per incident.
pub const MAX_TIMELINE: usize = 256;
/// Most incidents held.
pub const MAX_INCIDENTS: usize = 10_000;
/// Highest re-notification level.
pub const MAX_LEVEL: u32 = 3;
/// Longest root cause or acknowledger name accepted, in bytes.
pub const MAX_TEXT: usize = 2_048;

/// Lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    Open,
    Acknowledged,
    Resolved,
    Closed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Acknowledged => "acknowledged",
            State::Resolved => "resolved",
            State::Closed => "closed",
        }
    }

    /// Open or acknowledged: the condition may still hold.
    pub fn is_active(self) -> bool {
        matches!(self, State::Open | State::Acknowledged)
    }
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub at_ms: i64,
    /// opened, severity, escalated, acknowledged, resolved, closed,
    /// historical, maintenance.
    pub kind: String,
    pub text: String,
}

/// One incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u64,
    pub rule: String,
    pub scope: String,
    pub severity: Severity,
    pub state: State,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    pub scenario: String,
    pub rto_ms: i64,
    /// The first failing run of the condition.
    pub started_ms: i64,
    pub opened_ms: i64,
    pub acked_ms: Option<i64>,
    pub acked_by: Option<String>,
    pub resolved_ms: Option<i64>,
    pub closed_ms: Option<i64>,
    pub root_cause: Option<String>,
    /// 0 at first notification; +1 per overdue re-notification.
    pub escalation_level: u32,
    /// Recorded from late results: never notified.
    pub historical: bool,
    pub series: Vec<(String, String)>,
    /// Consecutive evaluations without the signal.
    pub clear_evaluations: u32,
    pub timeline: Vec<TimelineEvent>,
    pub timeline_dropped: u32,
}

impl Incident {
    /// Appends to the timeline, dropping the oldest (never the first)
    /// entry when full.
    pub fn note(&mut self, at_ms: i64, kind: &str, text: impl Into<String>) {
        if self.timeline.len() >= MAX_TIMELINE {
            self.timeline.remove(1);
            self.timeline_dropped += 1;
        }
        self.timeline.push(TimelineEvent {
            at_ms,
            kind: kind.to_string(),
            text: text.into(),
        });
    }

    /// Outage duration so far (or in total once resolved).
    pub fn outage_ms(&self, now_ms: i64) -> i64 {
        self.resolved_ms.unwrap_or(now_ms) - self.started_ms
    }

    /// `Some(true)` when resolved within the RTO, `Some(false)` once the
    /// outage exceeds it, `None` while still within it.
    pub fn rto_met(&self, now_ms: i64) -> Option<bool> {
        let within = self.outage_ms(now_ms) <= self.rto_ms;
        match (self.resolved_ms, within) {
            (Some(_), w) => Some(w),
            (None, false) => Some(false),
            (None, true) => None,
        }
    }

    /// Time to acknowledge, when acknowledged.
    pub fn time_to_ack_ms(&self) -> Option<i64> {
        self.acked_ms.map(|a| a - self.opened_ms)
    }
}

/// Time-to-acknowledge histogram bucket bounds, seconds.
pub const TTA_BUCKETS: [f64; 7] = [60.0, 300.0, 600.0, 900.0, 1_800.0, 3_600.0, 14_400.0];

/// Time-to-acknowledge observations of one severity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TtaHistogram {
    /// Cumulative counts per [`TTA_BUCKETS`] bound.
    pub buckets: [u64; 7],
    pub count: u64,
    pub sum_seconds: f64,
}

impl TtaHistogram {
    pub fn observe(&mut self, seconds: f64) {
        for (b, bound) in self.buckets.iter_mut().zip(TTA_BUCKETS) {
            if seconds <= bound {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }
}
