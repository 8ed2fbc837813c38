//! Restore rehearsals at the collector: the real binary records
//! `Ingest/Rehearse` reports sent with the generated client, judges them
//! against the scenario's RTO (met, missed, running), keeps them across a
//! restart, and shows them in the API, on the status page and in the
//! evidence report — while a failing rehearsal never reaches the SLOs,
//! the rules, incidents or the check series in /metrics. Also: named
//! contact points are listed by the API and the report.

use std::time::Duration;

use anyhow::Result;
use outpost_proto::v1 as pb;
use outpost_tests::harness::{eventually, http_get, run_bin, sample, TestCollector};

const TOKEN_A: &str = "site-a-token-0123456789";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn result(check: &str, outcome: pb::Outcome, at: i64, error: &str) -> pb::CheckResult {
    pb::CheckResult {
        seq: 0,
        check: check.into(),
        kind: "login".into(),
        labels: [("objective".to_string(), "authentication".to_string())].into(),
        started_unix_ms: at,
        duration_us: 200_000,
        outcome: outcome as i32,
        error: error.into(),
        ..Default::default()
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    agent: &str,
    id: &str,
    scenario: &str,
    started: i64,
    round: u32,
    results: Vec<pb::CheckResult>,
    green: Option<i64>,
    finished: bool,
) -> pb::RehearsalReport {
    pb::RehearsalReport {
        agent_id: agent.into(),
        rehearsal_id: id.into(),
        name: format!("{id}-name"),
        scenario: scenario.into(),
        selector: [("rehearsal".to_string(), id.to_string())].into(),
        started_unix_ms: started,
        round,
        results,
        green_unix_ms: green,
        finished,
    }
}

async fn send(
    endpoint: &str,
    token: Option<&str>,
    r: pb::RehearsalReport,
) -> Result<Result<pb::RehearsalReceipt, tonic::Status>> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await?;
    let mut client = pb::ingest_client::IngestClient::new(channel);
    let mut req = tonic::Request::new(r);
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse()?);
    }
    Ok(client.rehearse(req).await.map(tonic::Response::into_inner))
}

async fn json(url: &str) -> Result<serde_json::Value> {
    let (status, body) = http_get(url).await?;
    anyhow::ensure!(status == 200, "GET {url}: {status} {body}");
    Ok(serde_json::from_str(&body)?)
}

/// Events (good + bad) over every objective and window of /api/v1/slo.
fn slo_events(slo: &serde_json::Value) -> u64 {
    slo["objectives"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|o| o["windows"].as_array().into_iter().flatten())
        .map(|w| w["bad"].as_u64().unwrap_or(0) + w["good"].as_u64().unwrap_or(0))
        .sum()
}

async fn start(dir: &std::path::Path) -> Result<TestCollector> {
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[slo]\nevaluate_every = \"200ms\"\n\n\
             [escalation.auth]\nconsecutive = 1\n\n\
             [[auth.tokens]]\nagent = \"site-a\"\nsha256 = \"{}\"\n\n\
             [rehearsal]\ndefault_scenario = \"full_platform\"\n\n\
             [[contact]]\nname = \"Platform operations desk\"\nrole = \"operations\"\nemail = \"ops@example.org\"\nobjectives = [\"authentication\"]\n\n\
             [[contact]]\nname = \"Service owner\"\nrole = \"escalation\"\nphone = \"+49 30 1234567\"\n",
            sha256_hex(TOKEN_A)
        ),
    )?;
    TestCollector::start_with(
        &dir.join("store"),
        &["-c", config.to_str().unwrap_or_default()],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehearsals_are_recorded_judged_and_shown_but_never_page() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let c = start(dir.path()).await?;
    let ep = c.endpoint();
    let now = now_ms();
    let (month, month_start) = outpost_tests::harness::utc_month(now);
    // Every crafted start lies in the current month.
    let base = now.max(month_start + 6 * 3_600_000);

    // Wrong identity: site-a's token claiming site-b, and no token at all.
    let r = report("site-b", "sneaky", "", base, 1, vec![], None, false);
    let refused = send(&ep, Some(TOKEN_A), r.clone()).await?.unwrap_err();
    assert!(
        matches!(
            refused.code(),
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
        ),
        "{refused:?}"
    );
    let refused = send(&ep, None, r).await?.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    // A malformed report is refused with INVALID_ARGUMENT.
    let bad = report("site-a", "bad", "", base, 0, vec![], None, false);
    let refused = send(&ep, Some(TOKEN_A), bad).await?.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    let slo_before = json(&c.http_url("/api/v1/slo")).await?;

    // Met: a failing round, then an all-green round 25 minutes in.
    let started = base - 30 * 60_000;
    let r1 = report(
        "site-a",
        "met-1",
        "single_service",
        started,
        1,
        vec![
            result("login", pb::Outcome::Ok, started + 1_000, ""),
            result(
                "reports",
                pb::Outcome::Failed,
                started + 2_000,
                "HTTP 503 from /reports",
            ),
        ],
        None,
        false,
    );
    let receipt = send(&ep, Some(TOKEN_A), r1.clone()).await??;
    assert_eq!(
        (receipt.scenario.as_str(), receipt.rto_seconds),
        ("single_service", 3_600)
    );
    // A retried copy of the same round changes nothing.
    send(&ep, Some(TOKEN_A), r1).await??;
    let green = started + 25 * 60_000;
    let r2 = report(
        "site-a",
        "met-1",
        "single_service",
        started,
        2,
        vec![
            result("login", pb::Outcome::Ok, green - 2_000, ""),
            result("reports", pb::Outcome::Ok, green - 1_000, ""),
        ],
        Some(green),
        true,
    );
    send(&ep, Some(TOKEN_A), r2).await??;
    let met = json(&c.http_url("/api/v1/rehearsals/site-a/met-1")).await?;
    assert_eq!(met["status"], "met", "{met}");
    assert_eq!(met["elapsed_seconds"], 1_500.0);
    assert_eq!(met["rto_seconds"], 3_600);
    assert_eq!(met["rounds"], 2);
    let failed = met["failed_on_the_way"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(failed.len(), 1, "{met}");
    assert_eq!(failed[0]["check"], "reports");
    assert_eq!(
        failed[0]["times_failed"], 1,
        "the retried round counted once"
    );
    assert_eq!(failed[0]["first_error"], "HTTP 503 from /reports");
    assert_eq!(failed[0]["last_outcome"], "ok");

    // Missed: green two hours after the start of a 1-hour scenario.
    let s2 = base - 5 * 3_600_000;
    let missed = report(
        "site-a",
        "missed-1",
        "single_service",
        s2,
        1,
        vec![result("login", pb::Outcome::Ok, s2 + 2 * 3_600_000, "")],
        Some(s2 + 2 * 3_600_000),
        true,
    );
    send(&ep, Some(TOKEN_A), missed).await??;
    let m = json(&c.http_url("/api/v1/rehearsals/site-a/missed-1")).await?;
    assert_eq!(m["status"], "missed", "{m}");
    assert_eq!(m["elapsed_seconds"], 7_200.0);

    // An unknown scenario falls back to the default and says so.
    let odd = report("site-a", "odd-1", "moon_base", base, 1, vec![], None, false);
    let receipt = send(&ep, Some(TOKEN_A), odd).await??;
    assert_eq!(
        (receipt.scenario.as_str(), receipt.rto_seconds),
        ("full_platform", 14_400)
    );

    // Still failing: many failing rounds of a check named like a real
    // login check, labelled for the authentication objective.
    let s3 = base - 60_000;
    for round in 1..=6u32 {
        let at = s3 + i64::from(round) * 5_000;
        let r = report(
            "site-a",
            "failing-1",
            "full_platform",
            s3,
            round,
            vec![result(
                "login",
                pb::Outcome::Failed,
                at,
                "login form missing",
            )],
            None,
            false,
        );
        send(&ep, Some(TOKEN_A), r).await??;
    }
    let f = json(&c.http_url("/api/v1/rehearsals/site-a/failing-1")).await?;
    assert_eq!(f["status"], "running", "{f}");
    assert_eq!(f["failed_on_the_way"][0]["times_failed"], 6);
    // Several evaluations later: no incident, no SLO event, no series.
    let first_eval = json(&c.http_url("/api/v1/slo")).await?["evaluated_at"].clone();
    let slo_after = eventually(Duration::from_secs(20), "two more evaluations", || async {
        let v = json(&c.http_url("/api/v1/slo")).await.ok()?;
        (v["evaluated_at"] != first_eval && v["evaluated_at"] != slo_before["evaluated_at"])
            .then_some(v)
    })
    .await?;
    assert_eq!(slo_events(&slo_before), 0);
    assert_eq!(
        slo_events(&slo_after),
        0,
        "rehearsal results reached the SLOs: {slo_after}"
    );
    let incidents = json(&c.http_url("/api/v1/incidents?state=all")).await?;
    assert_eq!(
        incidents["incidents"].as_array().map(Vec::len),
        Some(0),
        "{incidents}"
    );
    let warnings = json(&c.http_url("/api/v1/warnings")).await?;
    assert_eq!(
        warnings["warnings"].as_array().map(Vec::len),
        Some(0),
        "{warnings}"
    );
    let metrics = c.metrics().await?;
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("outpost_check") && l.contains("site-a")),
        "rehearsal results became check series"
    );
    let agents = json(&c.http_url("/api/v1/agents")).await?;
    assert_eq!(
        agents["agents"].as_array().map(Vec::len),
        Some(0),
        "{agents}"
    );
    // The rehearsal metrics, with bounded labels.
    assert_eq!(
        sample(
            &metrics,
            "outpost_rehearsals",
            &[("scenario", "single_service"), ("status", "met")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "outpost_rehearsals",
            &[("scenario", "single_service"), ("status", "missed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "outpost_rehearsal_rto_seconds",
            &[("scenario", "report_subsystem")]
        ),
        Some(7_200.0)
    );
    assert!(
        !metrics.contains("moon_base"),
        "an unknown scenario became a label"
    );

    // The listing, newest first, filterable by status.
    let list = json(&c.http_url("/api/v1/rehearsals?status=missed")).await?;
    let ids: Vec<&str> = list["rehearsals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, ["missed-1"]);

    // The status page shows them (and stays script-free).
    let (status, page) = http_get(&c.http_url("/")).await?;
    assert_eq!(status, 200);
    for s in [
        "Restore rehearsals (4)",
        "met-1-name",
        "missed-1-name",
        "single_service",
        "reports ×1",
    ] {
        assert!(page.contains(s), "status page lacks {s:?}");
    }
    assert!(!page.contains("<script"));

    // The evidence report lists the month's rehearsals and the contacts.
    let out_md = dir.path().join("report.md");
    let out = run_bin(
        "outpost-collector",
        &[
            "report",
            "--url",
            &c.http_url(""),
            "--month",
            &month,
            "--out",
            out_md.to_str().unwrap_or_default(),
            "--format",
            "md",
        ],
    )
    .await?;
    assert_eq!(out.code, Some(0), "report failed: {}", out.stderr);
    let md = std::fs::read_to_string(&out_md)?;
    assert!(
        md.contains("## Restore rehearsal confirmation (4 rehearsals)"),
        "{md}"
    );
    let row = |id: &str| {
        md.lines()
            .find(|l| l.starts_with(&format!("| {id}-name |")))
            .unwrap_or("")
    };
    assert!(
        row("met-1").contains("| RTO met |") && row("met-1").contains("25 min"),
        "{md}"
    );
    assert!(row("met-1").contains("reports failed 1×"), "{md}");
    assert!(
        row("missed-1").contains("| RTO missed |") && row("missed-1").contains("2 h 0 min"),
        "{md}"
    );
    assert!(md.contains("## Named contact points (2)"), "{md}");
    assert!(md.contains("| Platform operations desk | operations | ops@example.org | objectives: authentication |"), "{md}");
    assert!(
        md.contains("| Service owner | escalation | +49 30 1234567 | everything |"),
        "{md}"
    );

    // Records survive a restart.
    c.stop().await?;
    let c = start(dir.path()).await?;
    let met = json(&c.http_url("/api/v1/rehearsals/site-a/met-1")).await?;
    assert_eq!(
        (met["status"].as_str(), met["rounds"].as_u64()),
        (Some("met"), Some(2))
    );
    let contacts = json(&c.http_url("/api/v1/contacts")).await?;
    assert_eq!(contacts["contacts"].as_array().map(Vec::len), Some(2));
    c.stop().await?;
    Ok(())
}
