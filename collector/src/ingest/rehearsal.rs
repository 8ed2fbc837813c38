//! `Ingest/Rehearse`: one round of a restore rehearsal, outside the result
//! stream. Authenticated exactly like the stream's hello (`proof_of` +
//! `AuthState::check`: the report's `agent_id` must be the proven
//! identity), converted here with every bound (the wire → domain seam for
//! rehearsals, reusing `convert`'s label, outcome and text checks) and
//! handed to the rehearsal task, which records it durably before the
//! receipt is sent. The results become a `rehearsal::Report`, never a
//! `ResultRecord`: they cannot reach the store, the SLOs or the rules.

use outpost_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::{self, cut, invalid, valid_id, Invalid, MAX_ERROR_LEN};
use super::{proof_of, IngestService};
use crate::rehearsal::{Report, RoundResult, MAX_NAME_LEN, MAX_RESULTS_PER_REPORT, MAX_ROUND};

/// Validates and converts a report.
pub fn report(r: pb::RehearsalReport) -> Result<Report, Invalid> {
    if !valid_id(&r.agent_id) {
        return Err(invalid(
            "bad_agent_id",
            "agent ids are 1-64 characters of A-Z a-z 0-9 . _ -",
        ));
    }
    if !valid_id(&r.rehearsal_id) {
        return Err(invalid(
            "bad_rehearsal_id",
            "rehearsal ids are 1-64 characters of A-Z a-z 0-9 . _ -",
        ));
    }
    if r.name.len() > MAX_NAME_LEN || r.name.chars().any(char::is_control) {
        return Err(invalid(
            "bad_rehearsal_name",
            format!("rehearsal names are at most {MAX_NAME_LEN} bytes without control characters"),
        ));
    }
    if !r.scenario.is_empty() && !valid_id(&r.scenario) {
        return Err(invalid(
            "bad_scenario",
            "scenario names are 1-64 characters of A-Z a-z 0-9 . _ -",
        ));
    }
    if r.started_unix_ms <= 0 {
        return Err(invalid("bad_started", "started_unix_ms must be positive"));
    }
    if !(1..=MAX_ROUND).contains(&r.round) {
        return Err(invalid(
            "bad_round",
            format!("round must be 1..={MAX_ROUND}"),
        ));
    }
    if let Some(g) = r.green_unix_ms {
        if g < r.started_unix_ms {
            return Err(invalid(
                "bad_green",
                "green_unix_ms is before started_unix_ms",
            ));
        }
    }
    if r.results.len() > MAX_RESULTS_PER_REPORT {
        return Err(invalid(
            "rehearsal_too_large",
            format!(
                "{} results, limit {MAX_RESULTS_PER_REPORT}",
                r.results.len()
            ),
        ));
    }
    let mut results = Vec::with_capacity(r.results.len());
    for x in r.results {
        convert::check_and_kind(&x.check, &x.kind)?;
        convert::labels(x.labels)?;
        results.push(RoundResult {
            ended_ms: x
                .started_unix_ms
                .saturating_add((x.duration_us / 1000).min(i64::MAX as u64) as i64),
            outcome: convert::outcome(x.outcome)?,
            check: x.check,
            kind: x.kind,
            error: cut(x.error, MAX_ERROR_LEN),
            value: x.value.filter(|v| v.is_finite()),
        });
    }
    Ok(Report {
        agent: r.agent_id,
        rehearsal_id: r.rehearsal_id,
        name: r.name,
        scenario: r.scenario,
        selector: convert::labels(r.selector)?,
        started_ms: r.started_unix_ms,
        round: r.round,
        results,
        green_ms: r.green_unix_ms,
        finished: r.finished,
    })
}

impl IngestService {
    /// The `Rehearse` handler.
    pub(super) async fn rehearse_report(
        &self,
        request: Request<pb::RehearsalReport>,
    ) -> Result<Response<pb::RehearsalReceipt>, Status> {
        let proof = proof_of(&request);
        let Some(book) = self.rehearsals.clone() else {
            return Err(Status::unimplemented(
                "this collector does not record restore rehearsals",
            ));
        };
        let report = report(request.into_inner()).map_err(|e| {
            self.reject(e.reason);
            Status::invalid_argument(e.to_string())
        })?;
        let agent = report.agent.clone();
        self.authorize(&agent, &proof, "rehearsal report refused")?;
        let (id, round) = (report.rehearsal_id.clone(), report.round);
        let requested = report.scenario.clone();
        let receipt = book.report(report).await.map_err(|e| {
            tracing::error!(error = %e, "rehearsal report not recorded");
            Status::unavailable("collector cannot record the rehearsal now; retry")
        })?;
        if receipt.scenario_unknown {
            tracing::warn!(agent = %agent, rehearsal = %id, requested = %requested, applied = %receipt.scenario,
                "rehearsal names an unknown scenario; the default scenario applies");
        }
        tracing::info!(agent = %agent, rehearsal = %id, round, applied = ?receipt.applied, "rehearsal round recorded");
        Ok(Response::new(pb::RehearsalReceipt {
            rto_seconds: (receipt.rto_ms / 1000).max(0) as u64,
            scenario: receipt.scenario,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire() -> pb::RehearsalReport {
        pb::RehearsalReport {
            agent_id: "site-a".into(),
            rehearsal_id: "abc123".into(),
            name: "nightly".into(),
            started_unix_ms: 1_000,
            round: 1,
            results: vec![pb::CheckResult {
                check: "home".into(),
                kind: "page".into(),
                outcome: pb::Outcome::Failed as i32,
                started_unix_ms: 2_000,
                duration_us: 500_000,
                error: "HTTP 503".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn reports_are_converted_with_every_bound() {
        let r = report(wire()).unwrap();
        assert_eq!(r.results[0].ended_ms, 2_500);
        assert_eq!(r.results[0].outcome, crate::model::Outcome::Failed);
        let reason = |f: &dyn Fn(&mut pb::RehearsalReport)| {
            let mut w = wire();
            f(&mut w);
            report(w).unwrap_err().reason
        };
        assert_eq!(reason(&|w| w.agent_id = "a b".into()), "bad_agent_id");
        assert_eq!(reason(&|w| w.rehearsal_id.clear()), "bad_rehearsal_id");
        assert_eq!(reason(&|w| w.name = "x".repeat(200)), "bad_rehearsal_name");
        assert_eq!(reason(&|w| w.name = "a\nb".into()), "bad_rehearsal_name");
        assert_eq!(reason(&|w| w.scenario = "no/such".into()), "bad_scenario");
        assert_eq!(reason(&|w| w.round = 0), "bad_round");
        assert_eq!(reason(&|w| w.started_unix_ms = 0), "bad_started");
        assert_eq!(reason(&|w| w.green_unix_ms = Some(5)), "bad_green");
        assert_eq!(reason(&|w| w.results[0].outcome = 99), "bad_outcome");
        assert_eq!(
            reason(&|w| w.results[0].check = "".into()),
            "bad_check_name"
        );
        assert_eq!(
            reason(&|w| w.results = vec![w.results[0].clone(); MAX_RESULTS_PER_REPORT + 1]),
            "rehearsal_too_large"
        );
        assert_eq!(
            reason(&|w| { w.selector = (0..40).map(|i| (format!("k{i}"), "v".into())).collect() }),
            "too_many_labels"
        );
        let mut long = wire();
        long.results[0].error = "e".repeat(5_000);
        assert_eq!(report(long).unwrap().results[0].error.len(), MAX_ERROR_LEN);
    }
}
