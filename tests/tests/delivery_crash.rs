//! Crashes: kill -9 of the agent at random points (in the middle of group
//! commits, sends and acks), and kill -9 of the collector while it drains
//! a backlog (in the middle of batches), restarting it on the same port.
//! Afterwards the collector holds exactly what the agent produced.

mod delivery_support;

use std::time::Duration;

use anyhow::{bail, Result};
use delivery_support::*;
use outpost_tests::harness::{bin, sample, TestCollector};
use outpost_tests::portal::Portal;
use rand::{Rng, SeedableRng};

fn rng() -> rand::rngs::StdRng {
    let seed = std::env::var("OUTPOST_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash seed {seed} (set OUTPOST_CHAOS_SEED to replay)");
    rand::rngs::StdRng::seed_from_u64(seed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_kill9_at_random_points_loses_nothing() -> Result<()> {
    let mut rng = rng();
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let id = "kill-agent";
    let buffer = dir.path().join("buffer");
    let cfg = agent_config(
        id,
        &buffer,
        &[collector.endpoint()],
        "",
        "batch_max = 4",
        &checks(10, &portal.url("/portal/home")),
    );
    std::fs::write(dir.path().join("agent.toml"), &cfg)?;
    let kills = 10;
    for i in 0..kills {
        let agent = AgentProc::start_with_config(&dir.path().join("agent.toml"))?;
        // Alive and delivering, then a random moment later: kill -9.
        let before = stored_count(&collector, id).await;
        wait_stored_above(&collector, id, before, Duration::from_secs(30)).await?;
        let delay = Duration::from_millis(rng.random_range(0..900));
        tokio::time::sleep(delay).await;
        eprintln!(
            "kill {i}: after {delay:?} (stored {})",
            stored_count(&collector, id).await
        );
        agent.kill9().await?;
    }
    let acc = drain_and_account(
        &collector,
        id,
        &dir.path().join("agent.toml"),
        &buffer,
        dir.path(),
    )
    .await?;
    assert_eq!(acc.report.dropped(), 0);
    assert_exact(&collector, id, &acc).await?;
    eprintln!("produced {} across {kills} kill -9s", acc.report.produced());
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_kill9_mid_batch_loses_nothing() -> Result<()> {
    let mut rng = rng();
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("store");
    let portal = Portal::start().await?;
    let id = "kill-collector";
    let buffer = dir.path().join("buffer");

    // A backlog built while the collector was away (the agent's own
    // library writes it: `outpost-bench fill`), so that the collector is
    // killed while batches stream in.
    let backlog = 60_000u64;
    let out = tokio::process::Command::new(bin("outpost-bench")?)
        .args(["fill", "--results", &backlog.to_string(), "--buffer"])
        .arg(&buffer)
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "outpost-bench fill: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let collector = TestCollector::start(&store).await?;
    let grpc = collector.grpc.clone();
    let cfg = agent_config(
        id,
        &buffer,
        &[collector.endpoint()],
        "",
        "batch_max = 500",
        &checks(4, &portal.url("/portal/home")),
    );
    let agent = AgentProc::start(dir.path(), &cfg).await?;
    let mut collector = Some(collector);
    let kills = 5;
    for i in 0..kills {
        let c = match collector.take() {
            Some(c) => c,
            None => TestCollector::start_on(&store, &grpc, &[]).await?,
        };
        // Batches are flowing: kill it a random moment later.
        let before = stored_count(&c, id).await;
        wait_stored_above(&c, id, before, Duration::from_secs(30)).await?;
        let delay = Duration::from_millis(rng.random_range(0..250));
        tokio::time::sleep(delay).await;
        let at = stored_count(&c, id).await;
        eprintln!("collector kill {i}: after {delay:?}, {at} of at least {backlog} stored");
        if at >= backlog {
            eprintln!("note: the backlog was drained before kill {i}");
        }
        c.kill9().await?;
    }
    let collector = TestCollector::start_on(&store, &grpc, &[]).await?;
    wait_stored_above(&collector, id, backlog, Duration::from_secs(120)).await?;
    agent.stop().await?;
    let acc = drain_and_account(
        &collector,
        id,
        &dir.path().join("agent.toml"),
        &buffer,
        dir.path(),
    )
    .await?;
    assert_eq!(acc.report.dropped(), 0);
    assert_exact(&collector, id, &acc).await?;
    let metrics = collector.metrics().await?;
    eprintln!(
        "produced {}; duplicates dropped after the restarts: {:?}",
        acc.report.produced(),
        sample(&metrics, "outpost_agent_duplicates_total", &[("agent", id)])
    );
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}
