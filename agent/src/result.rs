//! The domain record every check run produces: [`CheckResult`] and its
//! [`Outcome`].
//!
//! These types never derive prost or serde-for-the-wire: the agent's
//! `transport::convert` is the one seam that turns them into `outpost.v1`
//! messages. A result is complete when it leaves a check; the buffer assigns
//! its sequence number.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// What a check run concluded. The table in the brief defines each value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Passed every assertion within its latency bound.
    Ok,
    /// Passed, but slower than the latency bound.
    Degraded,
    /// Asynchronous work still inside its wait window; not final.
    Pending,
    /// 401/403 for a valid login: a role/access issue, not an outage.
    AccessDenied,
    /// An assertion failed, a 5xx, a wrong body, redirected to login.
    Failed,
    /// No answer within the timeout.
    Timeout,
    /// DNS, connect or TLS failure.
    Unreachable,
    /// A freshness value is over its maximum age.
    Stale,
}

impl Outcome {
    /// Every outcome, in table order.
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

    /// The lower-case name used in logs, metrics and the CLI.
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

    /// Whether this outcome is a pass (`ok`).
    pub fn is_ok(self) -> bool {
        self == Outcome::Ok
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-phase timings of one HTTP exchange; `None` when a phase did not
/// happen (no TLS on plain HTTP, no first byte after a connect failure).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    pub dns: Option<Duration>,
    pub connect: Option<Duration>,
    pub tls: Option<Duration>,
    pub first_byte: Option<Duration>,
    pub total: Option<Duration>,
}

/// One run of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub check: String,
    pub kind: &'static str,
    /// `module`, `objective` and the check's free labels.
    pub labels: BTreeMap<String, String>,
    pub started: SystemTime,
    pub duration: Duration,
    pub phases: Phases,
    pub outcome: Outcome,
    /// HTTP status of the last response, if any.
    pub http_status: Option<u16>,
    /// Short, redacted error; empty when the run passed.
    pub error: String,
    pub value: Option<f64>,
    pub confirmation: bool,
    pub tls_cert_days_left: Option<f64>,
}

/// Longest error text a result carries; longer text is cut on a char
/// boundary with an ellipsis.
pub const MAX_ERROR_LEN: usize = 256;

/// Cuts `text` to [`MAX_ERROR_LEN`] bytes on a char boundary.
pub fn short_error(text: &str) -> String {
    if text.len() <= MAX_ERROR_LEN {
        return text.to_string();
    }
    let mut end = MAX_ERROR_LEN - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_error_cuts_on_char_boundary() {
        let long = "é".repeat(300);
        let cut = short_error(&long);
        assert!(cut.len() <= MAX_ERROR_LEN);
        assert!(cut.ends_with("..."));
        assert_eq!(short_error("boom"), "boom");
    }

    #[test]
    fn outcome_names_are_unique() {
        let mut names: Vec<_> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Outcome::ALL.len());
    }
}
