//! Link chaos: the real agent reaches the real collector through a fault
//! point the test controls (`outpost_tests::chaos`): cuts mid-batch,
//! stalls, throttling, black holes, refusals, and (as root) nftables drop
//! and reject rules in a network namespace. Over many faults the collector
//! must hold exactly the results the agent produced.

mod delivery_support;

use std::time::Duration;

use anyhow::Result;
use delivery_support::*;
use outpost_tests::chaos::netns::NetnsPair;
use outpost_tests::chaos::{ChaosProxy, Mode};
use outpost_tests::harness::{eventually, sample, TestCollector};
use outpost_tests::portal::Portal;
use rand::{Rng, SeedableRng};

fn seed() -> u64 {
    std::env::var("OUTPOST_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    CutNow,
    CutMidStream(u64),
    CutMidAck(u64),
    Stall(Duration),
    Throttle(u64, Duration),
    BlackHole(Duration),
    Refuse(Duration),
}

fn pick(rng: &mut impl Rng) -> Fault {
    let kind = rng.random_range(0..7);
    let n = rng.random_range(1..3000u64);
    let ms = Duration::from_millis(rng.random_range(300..2500));
    match kind {
        0 => Fault::CutNow,
        1 => Fault::CutMidStream(n),
        2 => Fault::Stall(ms),
        3 => Fault::Throttle(500 + n, ms),
        4 => Fault::BlackHole(ms),
        5 => Fault::CutMidAck(n % 40),
        _ => Fault::Refuse(ms),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_cuts_stalls_throttles_and_black_holes_lose_nothing() -> Result<()> {
    let seed = seed();
    eprintln!("chaos seed {seed} (set OUTPOST_CHAOS_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let proxy = ChaosProxy::start(collector.grpc.parse()?).await?;
    let buffer = dir.path().join("buffer");
    let id = "chaos-proxy";
    // Small batches: many messages in flight, so cuts land mid-batch.
    let cfg = agent_config(
        id,
        &buffer,
        &[proxy.url()],
        "",
        "batch_max = 3",
        &checks(8, &portal.url("/portal/home")),
    );
    let agent = AgentProc::start(dir.path(), &cfg).await?;
    wait_stored_above(&collector, id, 0, Duration::from_secs(30)).await?;

    let faults = 14;
    for i in 0..faults {
        let fault = pick(&mut rng);
        let before = stored_count(&collector, id).await;
        eprintln!("fault {i}: {fault:?} (stored so far {before})");
        match fault {
            Fault::CutNow => {
                proxy.cut_all();
            }
            Fault::CutMidStream(n) => proxy.cut_after_bytes(n),
            Fault::CutMidAck(n) => proxy.cut_after_bytes_down(n),
            Fault::Stall(d) => {
                proxy.set_mode(Mode::Stall);
                tokio::time::sleep(d).await;
            }
            Fault::Throttle(bps, d) => {
                proxy.set_mode(Mode::Throttle { bytes_per_sec: bps });
                tokio::time::sleep(d).await;
            }
            Fault::BlackHole(d) => {
                proxy.set_mode(Mode::BlackHole);
                tokio::time::sleep(d).await;
            }
            Fault::Refuse(d) => {
                proxy.set_mode(Mode::Refuse);
                proxy.cut_all();
                tokio::time::sleep(d).await;
            }
        }
        proxy.set_mode(Mode::Pass);
        // The link is back: delivery must resume by itself.
        wait_stored_above(&collector, id, before, Duration::from_secs(30)).await?;
    }
    let stats = proxy.stats();
    eprintln!("proxy: {stats:?}");
    assert!(
        stats.accepted >= 4,
        "the faults must have forced reconnections: {stats:?}"
    );

    agent.stop().await?;
    let acc = drain_and_account(
        &collector,
        id,
        &dir.path().join("agent.toml"),
        &buffer,
        dir.path(),
    )
    .await?;
    assert_eq!(acc.report.dropped(), 0, "a large buffer drops nothing");
    assert_exact(&collector, id, &acc).await?;
    let metrics = collector.metrics().await?;
    eprintln!(
        "produced {}, duplicates dropped at the collector {:?}",
        acc.report.produced(),
        sample(&metrics, "outpost_agent_duplicates_total", &[("agent", id)])
    );
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_link_is_noticed_within_the_keepalive_bound() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let proxy = ChaosProxy::start(collector.grpc.parse()?).await?;
    let id = "black-hole";
    let cfg = agent_config(
        id,
        &dir.path().join("buffer"),
        &[proxy.url()],
        "",
        "",
        &checks(2, &portal.url("/portal/home")),
    );
    let agent = AgentProc::start(dir.path(), &cfg).await?;
    wait_stored_above(&collector, id, 0, Duration::from_secs(30)).await?;
    let accepted = proxy.stats().accepted;

    // The site goes offline: no FIN, no RST, nothing answers.
    proxy.set_mode(Mode::BlackHole);
    let t0 = tokio::time::Instant::now();
    eventually(
        Duration::from_secs(15),
        "the agent gives up the dead connection and dials again",
        || async { (proxy.stats().accepted > accepted).then_some(()) },
    )
    .await?;
    let noticed = t0.elapsed();
    eprintln!("dead link noticed after {noticed:?} (keepalive 1s)");
    // keepalive 1 s: a ping unanswered for 1 s ends the connection, so
    // about 2 s plus the backoff (<= 0.5 s); 8 s leaves room for a busy
    // machine while still failing a missing keepalive (the ack deadline
    // alone would take 30 s).
    assert!(
        noticed < Duration::from_secs(8),
        "noticed after {noticed:?}"
    );

    let before = stored_count(&collector, id).await;
    proxy.set_mode(Mode::Pass);
    wait_stored_above(&collector, id, before, Duration::from_secs(30)).await?;
    agent.stop().await?;
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_the_next_endpoint_when_one_is_dead() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let upstream = collector.grpc.parse()?;
    // Three ways to the same collector: a black hole, a refusal, a link.
    let (a, b, c) = (
        ChaosProxy::start(upstream).await?,
        ChaosProxy::start(upstream).await?,
        ChaosProxy::start(upstream).await?,
    );
    a.set_mode(Mode::BlackHole);
    b.set_mode(Mode::Refuse);
    let id = "failover";
    let buffer = dir.path().join("buffer");
    let cfg = agent_config(
        id,
        &buffer,
        &[a.url(), b.url(), c.url()],
        "",
        "",
        &checks(3, &portal.url("/portal/home")),
    );
    let agent = AgentProc::start(dir.path(), &cfg).await?;
    wait_stored_above(&collector, id, 3, Duration::from_secs(40)).await?;
    assert!(a.stats().accepted >= 1, "the first endpoint was tried");
    assert!(b.stats().accepted >= 1, "the second endpoint was tried");

    // The working link goes dark; the first endpoint comes back.
    a.set_mode(Mode::Pass);
    c.set_mode(Mode::BlackHole);
    let before = stored_count(&collector, id).await;
    let via_a = a.stats().bytes_up;
    wait_stored_above(&collector, id, before + 3, Duration::from_secs(40)).await?;
    assert!(
        a.stats().bytes_up > via_a,
        "delivery moved to the first endpoint"
    );
    agent.stop().await?;
    let acc = drain_and_account(
        &collector,
        id,
        &dir.path().join("agent.toml"),
        &buffer,
        dir.path(),
    )
    .await?;
    assert_exact(&collector, id, &acc).await?;
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_nftables_drop_and_reject_lose_nothing() -> Result<()> {
    if let Some(why) = NetnsPair::unavailable() {
        eprintln!("SKIPPED netns_nftables_drop_and_reject_lose_nothing: {why}");
        return Ok(());
    }
    let ns = match NetnsPair::create() {
        Ok(ns) => ns,
        Err(e) => {
            // Root with the tools, but no namespaces (a container without
            // CAP_SYS_ADMIN): say why and skip.
            eprintln!("SKIPPED netns_nftables_drop_and_reject_lose_nothing: {e:#}");
            return Ok(());
        }
    };
    let dir = tempfile::tempdir()?;
    // The portal and the collector listen on the host side of the veth;
    // the agent runs inside the namespace, where the rules apply.
    let portal = Portal::bind(format!("{}:0", ns.host_ip).parse()?, None).await?;
    let collector =
        TestCollector::start_on(&dir.path().join("store"), &format!("{}:0", ns.host_ip), &[])
            .await?;
    let port: u16 = collector
        .grpc
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no port in {}", collector.grpc))?;
    let id = "netns";
    let buffer = dir.path().join("buffer");
    let cfg = agent_config(
        id,
        &buffer,
        &[collector.endpoint()],
        "",
        "allow_insecure = true\nbatch_max = 5",
        &checks(6, &portal.url("/portal/home")),
    );
    let agent = AgentProc::start_in(&ns, dir.path(), &cfg).await?;
    wait_stored_above(&collector, id, 0, Duration::from_secs(30)).await?;
    for round in 0..2 {
        for drop in [true, false] {
            let before = stored_count(&collector, id).await;
            if drop {
                ns.drop_to(port)?;
            } else {
                ns.reject_to(port)?;
            }
            eprintln!(
                "round {round}: {} traffic to the collector",
                if drop { "dropping" } else { "rejecting" }
            );
            tokio::time::sleep(Duration::from_millis(2500)).await;
            ns.clear()?;
            wait_stored_above(&collector, id, before, Duration::from_secs(30)).await?;
        }
    }
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
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}
