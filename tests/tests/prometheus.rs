//! The collector's /metrics checked by the real Prometheus tools:
//! `promtool check metrics` finds nothing to complain about, and a real
//! Prometheus scrapes it and answers PromQL with the probe series.

use std::time::Duration;

use anyhow::Result;
use outpost_tests::harness::{eventually, TestAgent, TestCollector};
use outpost_tests::portal::Portal;
use outpost_tests::prom::{promtool_check_metrics, Prometheus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_is_clean_and_prometheus_scrapes_probe_series() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let cfg = format!(
        "[agent]\nid = \"prom-1\"\nlabels = {{ site = \"lab\" }}\n[buffer]\npath = \"{}\"\n[collector]\nendpoints = [\"{}\"]\nheartbeat = \"1s\"\n\
         [[check]]\nname = \"home\"\ninterval = \"1s\"\njitter = 0.0\nmodule = \"home\"\nobjective = \"portal_availability\"\n[check.page]\nurl = \"{}\"\n\
         [[check]]\nname = \"broken\"\ninterval = \"1s\"\njitter = 0.0\nmodule = \"alerts\"\n[check.page]\nurl = \"{}\"\n",
        dir.path().join("buffer").display(),
        collector.endpoint(),
        portal.url("/portal/home"),
        portal.url("/portal/broken"),
    );
    let agent = TestAgent::start(dir.path(), &cfg).await?;
    eventually(
        Duration::from_secs(30),
        "results from both checks",
        || async {
            let s = collector.stored("prom-1").await.ok()?;
            (s.iter().any(|r| r["check"] == "home") && s.iter().any(|r| r["check"] == "broken"))
                .then_some(())
        },
    )
    .await?;

    let text = collector.metrics().await?;
    assert!(
        text.contains("outpost_probe_success{"),
        "no probe series to check"
    );
    let (code, out) = promtool_check_metrics(&text).await?;
    assert_eq!(code, Some(0), "promtool check metrics failed:\n{out}");
    assert!(
        out.trim().is_empty(),
        "promtool check metrics complained:\n{out}"
    );

    let prom = Prometheus::start(std::slice::from_ref(&collector.http), &[], "").await?;
    let home = eventually(
        Duration::from_secs(60),
        "outpost_probe_success for home in Prometheus",
        || async {
            let r = prom
                .query("outpost_probe_success{check=\"home\",agent=\"prom-1\"}")
                .await
                .ok()?;
            r.first()
                .and_then(|s| s["value"][1].as_str().map(str::to_string))
        },
    )
    .await?;
    assert_eq!(home, "1");
    let broken = prom
        .query("outpost_probe_success{check=\"broken\"}")
        .await?;
    assert_eq!(
        broken.first().and_then(|s| s["value"][1].as_str()),
        Some("0"),
        "{broken:?}"
    );
    let failed = prom
        .query("outpost_probe_results_total{check=\"broken\",outcome=\"failed\"} > 0")
        .await?;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["metric"]["module"], "alerts");
    let up = prom.query("outpost_agent_up{agent=\"prom-1\"}").await?;
    assert_eq!(
        up.first().and_then(|s| s["value"][1].as_str()),
        Some("1"),
        "{up:?}"
    );

    prom.stop().await?;
    agent.stop().await?;
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}
