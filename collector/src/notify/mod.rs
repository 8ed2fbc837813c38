//! Delivery of escalations to receivers: Alertmanager (API v2) and signed
//! JSON webhooks. Each receiver is its own task fed without blocking:
//!
//! * Alertmanagers watch the latest alert *set* (a `watch` channel: a new
//!   set replaces an unsent one, nothing queues up), post it on change and
//!   every `resend`, and keep posting ended alerts with `endsAt` a few
//!   times, so Alertmanager resolves them.
//! * Webhooks get discrete events over a bounded queue; when it is full the
//!   event is dropped and counted, and a delivery that fails after
//!   `max_attempts` (exponential backoff) is dropped and counted.
//!
//! A receiver that is down therefore never blocks ingest or evaluation;
//! every loss is visible in `outpost_notify_*` metrics.

pub mod alertmanager;
pub mod client;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::engine::alerts::Alert;

/// The alerts that should be firing, as of `at_ms`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertSet {
    pub at_ms: i64,
    pub alerts: Vec<Alert>,
}

/// One receiver's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverStats {
    pub kind: &'static str,
    /// Successful posts.
    pub sent: u64,
    /// Failed attempts (each retry counts).
    pub failed_attempts: u64,
    /// Events or alerts given up (queue full, attempts exhausted, bound).
    pub dropped: u64,
    pub last_success_ms: i64,
    /// Alerts in the last successful post (Alertmanager).
    pub alerts_in_last_post: u64,
}

/// Counters of every receiver, by name.
pub type NotifyStats = Arc<Mutex<BTreeMap<String, ReceiverStats>>>;

/// Updates one receiver's counters.
pub fn with_stats(
    stats: &NotifyStats,
    name: &str,
    kind: &'static str,
    f: impl FnOnce(&mut ReceiverStats),
) {
    let mut m = stats.lock().unwrap_or_else(|p| p.into_inner());
    let s = m.entry(name.to_string()).or_insert_with(|| ReceiverStats {
        kind,
        ..ReceiverStats::default()
    });
    f(s);
}

/// Unix ms as RFC 3339 (UTC, milliseconds).
pub fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}
