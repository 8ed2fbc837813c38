//! The agent's one seam between domain types and `outpost.v1` messages.

use std::time::{Duration, UNIX_EPOCH};

use outpost_proto::v1 as pb;
use prost::Message;

use crate::result::{CheckResult, Outcome, Phases};

/// Encodes `result` with its sequence as the wire `CheckResult`: these are
/// the bytes the buffer stores and the transport sends.
pub fn encode_result(result: &CheckResult, seq: u64) -> Vec<u8> {
    to_wire(result, seq).encode_to_vec()
}

/// Unix milliseconds of the result's start.
pub fn started_unix_ms(result: &CheckResult) -> i64 {
    result
        .started
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn to_wire(r: &CheckResult, seq: u64) -> pb::CheckResult {
    pb::CheckResult {
        seq,
        check: r.check.clone(),
        kind: r.kind.to_string(),
        labels: r.labels.clone().into_iter().collect(),
        started_unix_ms: started_unix_ms(r),
        duration_us: micros(r.duration),
        phases: Some(phases(&r.phases)),
        outcome: outcome(r.outcome) as i32,
        http_status: r.http_status.map_or(0, u32::from),
        error: r.error.clone(),
        value: r.value,
        confirmation: r.confirmation,
        tls_cert_days_left: r.tls_cert_days_left,
    }
}

/// The wire report of one rehearsal round; its results carry seq 0.
pub fn rehearsal_report(agent_id: &str, r: &super::rehearse::RoundReport) -> pb::RehearsalReport {
    pb::RehearsalReport {
        agent_id: agent_id.to_string(),
        rehearsal_id: r.rehearsal_id.clone(),
        name: r.name.clone(),
        scenario: r.scenario.clone(),
        selector: r.selector.clone().into_iter().collect(),
        started_unix_ms: r.started_unix_ms,
        round: r.round,
        results: r.results.iter().map(|c| to_wire(c, 0)).collect(),
        green_unix_ms: r.green_unix_ms,
        finished: r.finished,
    }
}

/// The collector's receipt as a domain value.
pub fn receipt(r: pb::RehearsalReceipt) -> super::rehearse::Receipt {
    super::rehearse::Receipt {
        rto: Duration::from_secs(r.rto_seconds),
        scenario: r.scenario,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn phases(p: &Phases) -> pb::Phases {
    pb::Phases {
        dns_us: p.dns.map(micros),
        connect_us: p.connect.map(micros),
        tls_us: p.tls.map(micros),
        first_byte_us: p.first_byte.map(micros),
        total_us: p.total.map(micros),
    }
}

/// Maps a domain outcome to its wire value.
pub fn outcome(o: Outcome) -> pb::Outcome {
    match o {
        Outcome::Ok => pb::Outcome::Ok,
        Outcome::Degraded => pb::Outcome::Degraded,
        Outcome::Pending => pb::Outcome::Pending,
        Outcome::AccessDenied => pb::Outcome::AccessDenied,
        Outcome::Failed => pb::Outcome::Failed,
        Outcome::Timeout => pb::Outcome::Timeout,
        Outcome::Unreachable => pb::Outcome::Unreachable,
        Outcome::Stale => pb::Outcome::Stale,
    }
}

/// Decodes buffered bytes back into the wire message for a batch.
pub fn decode_buffered(payload: &[u8]) -> Result<pb::CheckResult, prost::DecodeError> {
    pb::CheckResult::decode(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    #[test]
    fn buffered_bytes_round_trip_to_the_wire_message() {
        let r = CheckResult {
            check: "home".into(),
            kind: "page",
            labels: BTreeMap::from([("module".to_string(), "portal".to_string())]),
            started: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            duration: Duration::from_millis(42),
            phases: Phases {
                dns: Some(Duration::from_micros(5)),
                total: Some(Duration::from_millis(42)),
                ..Phases::default()
            },
            outcome: Outcome::Degraded,
            http_status: Some(200),
            error: "slow".into(),
            value: Some(1.5),
            confirmation: false,
            tls_cert_days_left: None,
        };
        let wire = decode_buffered(&encode_result(&r, 77)).unwrap();
        assert_eq!(wire.seq, 77);
        assert_eq!(wire.started_unix_ms, 1_700_000_000_123);
        assert_eq!(wire.outcome, pb::Outcome::Degraded as i32);
        assert_eq!(wire.phases.unwrap().dns_us, Some(5));
        assert_eq!(
            wire.labels.get("module").map(String::as_str),
            Some("portal")
        );
        assert_eq!(wire.value, Some(1.5));
        for o in Outcome::ALL {
            assert_ne!(outcome(o), pb::Outcome::Unspecified);
        }
    }
}
