//! End to end: the real agent probes the simulated portal, buffers in
//! sled, streams over gRPC to the real collector, which stores exactly
//! what was produced and shows it in /metrics.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use outpost_tests::harness::{
    buffer_report, eventually, metric_value, sample, TestAgent, TestCollector,
};
use outpost_tests::portal::Portal;

fn agent_config(id: &str, buffer: &std::path::Path, endpoint: &str, checks: &str) -> String {
    format!(
        r#"
[agent]
id = "{id}"
labels = {{ site = "test-site" }}

[buffer]
path = "{}"

[collector]
endpoints = ["{endpoint}"]
heartbeat = "1s"
backoff_initial = "100ms"
backoff_max = "1s"
{checks}
"#,
        buffer.display()
    )
}

fn portal_checks(portal: &Portal) -> String {
    format!(
        r#"
[[check]]
name = "home"
interval = "1s"
jitter = 0.0
module = "home"
objective = "portal_availability"
[check.page]
url = "{home}"
body_contains = ["Home"]

[[check]]
name = "broken"
interval = "1s"
jitter = 0.0
module = "alerts"
[check.page]
url = "{broken}"

[[check]]
name = "slow"
interval = "3s"
timeout = "3s"
jitter = 0.0
module = "devices"
[check.page]
url = "{slow}"
latency_bound = "500ms"
"#,
        home = portal.url("/portal/home"),
        broken = portal.url("/portal/broken"),
        slow = portal.url("/portal/slow"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_holds_exactly_the_results_the_agent_produced() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let buffer = dir.path().join("buffer");
    let cfg = agent_config(
        "e2e-1",
        &buffer,
        &collector.endpoint(),
        &portal_checks(&portal),
    );
    let agent = TestAgent::start(dir.path(), &cfg).await?;

    // Let it run until the collector holds at least 12 results and the
    // slow check has reported at least twice.
    eventually(
        Duration::from_secs(60),
        "12 results incl. 2 slow ones at the collector",
        || async {
            let stored = collector.stored("e2e-1").await.ok()?;
            let slow = stored.iter().filter(|r| r["check"] == "slow").count();
            (stored.len() >= 12 && slow >= 2).then_some(())
        },
    )
    .await?;
    let status = agent.stop().await?;
    assert!(status.success(), "agent exit status {status}");

    // Whatever was produced but not yet acknowledged is still buffered;
    // an agent with no checks on the same buffer drains it.
    let config_path = dir.path().join("agent.toml");
    let report = buffer_report(&config_path).await?;
    let produced = report.next_seq - report.origin_seq;
    let drain_cfg = agent_config("e2e-1", &buffer, &collector.endpoint(), "");
    let drain_dir = dir.path().join("drain");
    std::fs::create_dir_all(&drain_dir)?;
    let drainer = TestAgent::start(&drain_dir, &drain_cfg).await?;
    let seqs = eventually(
        Duration::from_secs(30),
        "every produced result at the collector",
        || async {
            let seqs = collector.stored_seqs("e2e-1").await.ok()?;
            (seqs.len() as u64 >= produced).then_some(seqs)
        },
    )
    .await?;
    drainer.stop().await?;

    let expected: Vec<u64> = (report.origin_seq..report.next_seq).collect();
    assert_eq!(
        seqs, expected,
        "the collector must hold exactly the produced sequences, no gaps, no duplicates"
    );
    assert_eq!(
        buffer_report(&drain_dir.join("agent.toml")).await?.entries,
        0,
        "the drained buffer is empty"
    );

    // Outcomes are right for every result.
    let stored = collector.stored("e2e-1").await?;
    let mut by_check: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in &stored {
        let check = r["check"].as_str().unwrap_or("").to_string();
        let outcome = r["outcome"].as_str().unwrap_or("").to_string();
        *by_check
            .entry(check)
            .or_default()
            .entry(outcome)
            .or_default() += 1;
        assert!(r["started_unix_ms"].as_i64().unwrap_or(0) > 0);
        assert!(
            r["phases_us"]["connect"].as_u64().is_some(),
            "phase timings present: {r}"
        );
    }
    let only = |check: &str, outcome: &str| {
        let m = &by_check[check];
        assert_eq!(m.len(), 1, "{check}: {m:?}");
        m[outcome]
    };
    let ok = only("home", "ok");
    let failed = only("broken", "failed");
    let degraded = only("slow", "degraded");
    assert_eq!(ok + failed + degraded, produced);

    // /metrics agrees with the store.
    let metrics = collector.metrics().await?;
    let count = |check: &str, outcome: &str| {
        sample(
            &metrics,
            "outpost_probe_results_total",
            &[("agent", "e2e-1"), ("check", check), ("outcome", outcome)],
        )
    };
    assert_eq!(count("home", "ok"), Some(ok as f64));
    assert_eq!(count("broken", "failed"), Some(failed as f64));
    assert_eq!(count("slow", "degraded"), Some(degraded as f64));
    assert_eq!(
        metric_value(
            &metrics,
            "outpost_probe_success{agent=\"e2e-1\",check=\"home\""
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "outpost_probe_success{agent=\"e2e-1\",check=\"broken\""
        ),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&metrics, "outpost_ingest_results_total"),
        Some(produced as f64)
    );
    assert_eq!(
        metric_value(&metrics, "outpost_agent_gap_results_total{agent=\"e2e-1\"}"),
        Some(0.0)
    );

    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}
