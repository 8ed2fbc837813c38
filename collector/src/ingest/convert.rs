//! The collector's one seam from `outpost.v1` to domain types, with every
//! bound checked: ids, label counts and sizes, batch size, sequence order,
//! known outcomes. A message that breaks a bound is rejected whole with a
//! reason (for the gRPC status and the `rejected` counter).

use std::collections::BTreeMap;

use outpost_proto::v1 as pb;

use crate::model::{Footprint, Hello, Outcome, Phases, ResultRecord};

/// Most results in one batch.
pub const MAX_BATCH_RESULTS: usize = 10_000;
/// Most labels on a hello or a result.
pub const MAX_LABELS: usize = 32;
/// Longest label name or value, and check kind.
pub const MAX_LABEL_LEN: usize = 128;
/// Longest error text kept (longer is cut).
pub const MAX_ERROR_LEN: usize = 1024;

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Invalid {
    /// Short, bounded label for the rejected counter.
    pub reason: &'static str,
    pub detail: String,
}

pub(crate) fn invalid(reason: &'static str, detail: impl Into<String>) -> Invalid {
    Invalid {
        reason,
        detail: detail.into(),
    }
}

/// Agent ids and check names: 1..=64 of `[A-Za-z0-9._-]`.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        // Bytes, not chars: every allowed character is ASCII, and a byte of
        // a multi-byte character is never ASCII (no UTF-8 decoding per id).
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

pub(crate) fn labels(
    map: std::collections::HashMap<String, String>,
) -> Result<BTreeMap<String, String>, Invalid> {
    if map.len() > MAX_LABELS {
        return Err(invalid(
            "too_many_labels",
            format!("{} labels, limit {MAX_LABELS}", map.len()),
        ));
    }
    for (k, v) in &map {
        if k.is_empty()
            || k.len() > MAX_LABEL_LEN
            || v.len() > MAX_LABEL_LEN
            || !k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            return Err(invalid(
                "bad_label",
                format!(
                    "label names are [A-Za-z0-9_]+, names and values at most {MAX_LABEL_LEN} bytes"
                ),
            ));
        }
    }
    Ok(map.into_iter().collect())
}

pub fn footprint(f: Option<pb::Footprint>) -> Footprint {
    let f = f.unwrap_or_default();
    let finite = |x: f64| if x.is_finite() && x >= 0.0 { x } else { 0.0 };
    Footprint {
        rss_bytes: f.rss_bytes,
        cpu_seconds_total: finite(f.cpu_seconds_total),
        buffer_entries: f.buffer_entries,
        buffer_bytes: f.buffer_bytes,
        oldest_unsent_age_seconds: finite(f.oldest_unsent_age_seconds),
        dropped_total: f.dropped_total,
        sent_at_unix_ms: f.sent_at_unix_ms,
        dropped_buffer_full: f.dropped_buffer_full,
        dropped_write_error: f.dropped_write_error,
        dropped_corrupt: f.dropped_corrupt,
    }
}

/// Validates a hello.
pub fn hello(h: pb::Hello) -> Result<Hello, Invalid> {
    if !valid_id(&h.agent_id) {
        return Err(invalid(
            "bad_agent_id",
            "agent ids are 1-64 characters of A-Z a-z 0-9 . _ -",
        ));
    }
    if h.version.len() > MAX_LABEL_LEN {
        return Err(invalid("bad_version", "version string too long"));
    }
    if h.buffer_origin_seq == 0 {
        return Err(invalid(
            "bad_origin",
            "buffer_origin_seq must be at least 1",
        ));
    }
    Ok(Hello {
        agent_id: h.agent_id,
        version: h.version,
        labels: labels(h.labels)?,
        buffer_origin_seq: h.buffer_origin_seq,
        footprint: footprint(h.footprint),
    })
}

pub(crate) fn outcome(v: i32) -> Result<Outcome, Invalid> {
    match pb::Outcome::try_from(v) {
        Ok(pb::Outcome::Ok) => Ok(Outcome::Ok),
        Ok(pb::Outcome::Degraded) => Ok(Outcome::Degraded),
        Ok(pb::Outcome::Pending) => Ok(Outcome::Pending),
        Ok(pb::Outcome::AccessDenied) => Ok(Outcome::AccessDenied),
        Ok(pb::Outcome::Failed) => Ok(Outcome::Failed),
        Ok(pb::Outcome::Timeout) => Ok(Outcome::Timeout),
        Ok(pb::Outcome::Unreachable) => Ok(Outcome::Unreachable),
        Ok(pb::Outcome::Stale) => Ok(Outcome::Stale),
        Ok(pb::Outcome::Unspecified) | Err(_) => {
            Err(invalid("bad_outcome", format!("unknown outcome value {v}")))
        }
    }
}

pub(crate) fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A validated batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub results: Vec<ResultRecord>,
    /// The agent's announcement: every sequence it removed without an ack
    /// is at or below this. `None` from agents that predate it.
    pub dropped_through: Option<u64>,
}

/// A result's check name and kind, as every result carries them.
pub(crate) fn check_and_kind(check: &str, kind: &str) -> Result<(), Invalid> {
    if !valid_id(check) {
        return Err(invalid(
            "bad_check_name",
            "check names are 1-64 characters of A-Z a-z 0-9 . _ -",
        ));
    }
    if kind.is_empty() || kind.len() > 32 {
        return Err(invalid("bad_kind", "check kind must be 1-32 bytes"));
    }
    Ok(())
}

/// Validates a batch: bounded, strictly ascending sequences, known
/// outcomes, valid names.
pub fn batch(b: pb::ResultBatch) -> Result<Batch, Invalid> {
    let dropped_through = b.dropped_through_seq;
    if b.results.len() > MAX_BATCH_RESULTS {
        return Err(invalid(
            "batch_too_large",
            format!("{} results, limit {MAX_BATCH_RESULTS}", b.results.len()),
        ));
    }
    let mut out = Vec::with_capacity(b.results.len());
    let mut prev = 0u64;
    for r in b.results {
        if r.seq <= prev {
            return Err(invalid(
                "bad_sequence",
                format!(
                    "sequence {} after {prev}: batches must be strictly ascending",
                    r.seq
                ),
            ));
        }
        prev = r.seq;
        check_and_kind(&r.check, &r.kind)?;
        let p = r.phases.unwrap_or_default();
        out.push(ResultRecord {
            seq: r.seq,
            check: r.check,
            kind: r.kind,
            labels: labels(r.labels)?,
            started_unix_ms: r.started_unix_ms,
            duration_us: r.duration_us,
            phases: Phases {
                dns_us: p.dns_us,
                connect_us: p.connect_us,
                tls_us: p.tls_us,
                first_byte_us: p.first_byte_us,
                total_us: p.total_us,
            },
            outcome: outcome(r.outcome)?,
            http_status: u16::try_from(r.http_status).ok().filter(|s| *s > 0),
            error: cut(r.error, MAX_ERROR_LEN),
            value: r.value.filter(|v| v.is_finite()),
            confirmation: r.confirmation,
            tls_cert_days_left: r.tls_cert_days_left.filter(|v| v.is_finite()),
            received_unix_ms: 0,
        });
    }
    Ok(Batch {
        results: out,
        dropped_through,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(seq: u64) -> pb::CheckResult {
        pb::CheckResult {
            seq,
            check: "home".into(),
            kind: "page".into(),
            outcome: pb::Outcome::Ok as i32,
            ..Default::default()
        }
    }

    #[test]
    fn batches_must_ascend_and_carry_known_outcomes() {
        let ok = batch(pb::ResultBatch {
            results: vec![wire(1), wire(2)],
            dropped_through_seq: Some(0),
        })
        .unwrap();
        assert_eq!(ok.results.len(), 2);
        assert_eq!(ok.dropped_through, Some(0));
        assert_eq!(
            batch(pb::ResultBatch {
                results: vec![wire(2), wire(2)],
                dropped_through_seq: None,
            })
            .unwrap_err()
            .reason,
            "bad_sequence"
        );
        let mut bad = wire(1);
        bad.outcome = 99;
        assert_eq!(
            batch(pb::ResultBatch {
                results: vec![bad],
                dropped_through_seq: None,
            })
            .unwrap_err()
            .reason,
            "bad_outcome"
        );
        let mut unnamed = wire(1);
        unnamed.check = "a b".into();
        assert_eq!(
            batch(pb::ResultBatch {
                results: vec![unnamed],
                dropped_through_seq: None,
            })
            .unwrap_err()
            .reason,
            "bad_check_name"
        );
        let big = pb::ResultBatch {
            results: (1..=MAX_BATCH_RESULTS as u64 + 1).map(wire).collect(),
            dropped_through_seq: None,
        };
        assert_eq!(batch(big).unwrap_err().reason, "batch_too_large");
    }

    #[test]
    fn hello_validates_identity_and_labels() {
        let good = pb::Hello {
            agent_id: "site-a".into(),
            buffer_origin_seq: 1,
            ..Default::default()
        };
        assert!(hello(good.clone()).is_ok());
        assert_eq!(
            hello(pb::Hello {
                agent_id: "x/y".into(),
                ..good.clone()
            })
            .unwrap_err()
            .reason,
            "bad_agent_id"
        );
        let many = (0..40)
            .map(|i| (format!("l{i}"), "v".to_string()))
            .collect();
        assert_eq!(
            hello(pb::Hello {
                labels: many,
                ..good
            })
            .unwrap_err()
            .reason,
            "too_many_labels"
        );
    }
}
