//! The demo: a simulated portal, a collector and an agent on 127.0.0.1,
//! on embedded defaults, until Ctrl-C. Run it with `scripts/demo`.
//!
//! The collector's HTTP side is on 127.0.0.1:9464 (status page and
//! `/metrics`) and gRPC on 127.0.0.1:7400 when those ports are free, else on
//! free ports; everything it prints says where. State goes to
//! `./outpost-demo-data` (delete it to start over).

use std::time::Duration;

use anyhow::{Context, Result};
use outpost_tests::harness::{eventually, metric_value, TestAgent, TestCollector};
use outpost_tests::portal::Portal;

fn free(addr: &str) -> bool {
    std::net::TcpListener::bind(addr).is_ok()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let data = std::env::current_dir()?.join("outpost-demo-data");
    std::fs::create_dir_all(&data).with_context(|| format!("create {}", data.display()))?;

    let portal = Portal::start().await?;
    let grpc = if free("127.0.0.1:7400") {
        "127.0.0.1:7400"
    } else {
        "127.0.0.1:0"
    };
    let http = if free("127.0.0.1:9464") {
        "127.0.0.1:9464"
    } else {
        "127.0.0.1:0"
    };
    let collector = TestCollector::spawn(&data.join("collector-store"), grpc, http, &[]).await?;

    let mut checks = String::new();
    for (name, path, module, extra) in [
        (
            "portal-home",
            "/portal/home",
            "home",
            "body_contains = [\"Home\"]",
        ),
        (
            "portal-devices",
            "/portal/devices",
            "devices",
            "body_contains = [\"Devices\"]",
        ),
        (
            "portal-alerts",
            "/portal/alerts",
            "alerts",
            "body_contains = [\"Alerts\"]",
        ),
        ("portal-broken", "/portal/broken", "reports", ""),
        (
            "portal-slow",
            "/portal/slow",
            "analytics",
            "latency_bound = \"1s\"",
        ),
    ] {
        checks.push_str(&format!(
            "\n[[check]]\nname = \"{name}\"\ninterval = \"5s\"\ntimeout = \"4s\"\njitter = 0.2\nmodule = \"{module}\"\nobjective = \"portal_availability\"\n[check.page]\nurl = \"{}\"\n{extra}\n",
            portal.url(path)
        ));
    }
    let config = format!(
        "[agent]\nid = \"demo-agent\"\nlabels = {{ site = \"demo-site\" }}\n\n[buffer]\npath = \"{}\"\n\n[collector]\nendpoints = [\"{}\"]\n{checks}",
        data.join("agent-buffer").display(),
        collector.endpoint()
    );
    let agent = TestAgent::start(&data, &config).await?;

    println!();
    println!("Outpost demo is running (Ctrl-C to stop)");
    println!("  status page : {}", collector.http_url("/"));
    println!("  metrics     : {}", collector.http_url("/metrics"));
    println!(
        "  results API : {}",
        collector.http_url("/api/v1/results?agent=demo-agent")
    );
    println!(
        "  portal      : {}  (faults: GET/POST {})",
        portal.url("/"),
        portal.url("/_faults")
    );
    println!("  agent config: {}", data.join("agent.toml").display());
    println!();

    let first = eventually(
        Duration::from_secs(30),
        "first results in /metrics",
        || async {
            let m = collector.metrics().await.ok()?;
            metric_value(&m, "outpost_ingest_results_total").filter(|v| *v > 0.0)
        },
    )
    .await;
    match first {
        Ok(n) => println!("first {n} results are in /metrics"),
        Err(e) => eprintln!("warning: {e}"),
    }

    tokio::signal::ctrl_c().await?;
    println!("stopping...");
    agent.stop().await?;
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}
