//! The collector's domain types: what an agent said about itself and what
//! a check run found. They never derive prost; `ingest::convert` is the one
//! seam from the wire. They derive serde only so `codec` can store them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A check run's outcome (the brief's outcome table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Outcome {
    Ok,
    Degraded,
    Pending,
    AccessDenied,
    Failed,
    Timeout,
    Unreachable,
    Stale,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::Degraded,
        Outcome::Pending,
        Outcome::AccessDenied,
        Outcome::Failed,
        Outcome::Timeout,
        Outcome::Unreachable,
        Outcome::Stale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Degraded => "degraded",
            Outcome::Pending => "pending",
            Outcome::AccessDenied => "access_denied",
            Outcome::Failed => "failed",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "unreachable",
            Outcome::Stale => "stale",
        }
    }

    /// Position in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        Outcome::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// Per-phase timings in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    pub dns_us: Option<u64>,
    pub connect_us: Option<u64>,
    pub tls_us: Option<u64>,
    pub first_byte_us: Option<u64>,
    pub total_us: Option<u64>,
}

/// One check run as stored: the agent's result plus when it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub seq: u64,
    pub check: String,
    pub kind: String,
    pub labels: BTreeMap<String, String>,
    pub started_unix_ms: i64,
    pub duration_us: u64,
    pub phases: Phases,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub error: String,
    pub value: Option<f64>,
    pub confirmation: bool,
    pub tls_cert_days_left: Option<f64>,
    /// Collector wall clock when the batch holding it was stored.
    pub received_unix_ms: i64,
}

/// The agent's own health, from hello and heartbeats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Footprint {
    pub rss_bytes: u64,
    pub cpu_seconds_total: f64,
    pub buffer_entries: u64,
    pub buffer_bytes: u64,
    pub oldest_unsent_age_seconds: f64,
    pub dropped_total: u64,
    pub sent_at_unix_ms: i64,
    /// `dropped_total` by reason (zero from agents that predate them).
    pub dropped_buffer_full: u64,
    pub dropped_write_error: u64,
    pub dropped_corrupt: u64,
}

/// The first message of a stream, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    pub agent_id: String,
    pub version: String,
    pub labels: BTreeMap<String, String>,
    pub buffer_origin_seq: u64,
    pub footprint: Footprint,
}
