//! Remote write to a real Prometheus (`--web.enable-remote-write-receiver`):
//! durable results land there with their original timestamps; a late
//! result is refused as out of order by a default Prometheus (counted,
//! never retried) and accepted by one with `out_of_order_time_window`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use outpost_proto::v1 as pb;
use outpost_tests::harness::{eventually, sample, TestCollector};
use outpost_tests::prom::Prometheus;
use tokio_stream::wrappers::ReceiverStream;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn result(seq: u64, started_unix_ms: i64, ok: bool) -> pb::CheckResult {
    pb::CheckResult {
        seq,
        check: "home".into(),
        kind: "page".into(),
        labels: [("module".to_string(), "home".to_string())]
            .into_iter()
            .collect(),
        started_unix_ms,
        duration_us: 120_000,
        outcome: if ok {
            pb::Outcome::Ok
        } else {
            pb::Outcome::Failed
        } as i32,
        ..Default::default()
    }
}

/// Streams `batches` as agent `id` and waits for each acknowledgement.
async fn send(endpoint: &str, id: &str, batches: Vec<Vec<pb::CheckResult>>) -> Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())?
        .connect()
        .await?;
    let mut client = pb::ingest_client::IngestClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let hello = pb::Hello {
        agent_id: id.into(),
        version: "test".into(),
        buffer_origin_seq: 1,
        ..Default::default()
    };
    tx.send(pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Hello(hello)),
    })
    .await?;
    let mut inbound = client.stream(ReceiverStream::new(rx)).await?.into_inner();
    inbound.message().await?;
    for results in batches {
        let last = results.last().map_or(0, |r| r.seq);
        tx.send(pb::AgentMessage {
            msg: Some(pb::agent_message::Msg::Batch(pb::ResultBatch {
                results,
                dropped_through_seq: None,
            })),
        })
        .await?;
        loop {
            let Some(m) =
                tokio::time::timeout(Duration::from_secs(10), inbound.message()).await??
            else {
                anyhow::bail!("stream closed");
            };
            if let Some(pb::collector_message::Msg::Ack(a)) = m.msg {
                if a.acked_through_seq >= last {
                    break;
                }
            }
        }
    }
    Ok(())
}

async fn scenario(out_of_order_window: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let extra = if out_of_order_window {
        "storage:\n  tsdb:\n    out_of_order_time_window: 1h\n"
    } else {
        ""
    };
    let prom = Prometheus::start(&[], &["--web.enable-remote-write-receiver"], extra).await?;
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[remote_write]]\nname = \"prom\"\nurl = \"{}/api/v1/write\"\nexternal_labels = {{ collector = \"c1\" }}\nmax_retries = 3\n",
            prom.url
        ),
    )?;
    let collector =
        TestCollector::start_with(&dir.path().join("store"), &["-c", &cfg.to_string_lossy()])
            .await?;
    let ep = collector.endpoint();

    // Three fresh results, then one produced ten minutes earlier (a site
    // that was offline), for the same series.
    let t = now_ms();
    send(
        &ep,
        "rw-1",
        vec![vec![
            result(1, t - 3_000, true),
            result(2, t - 2_000, true),
            result(3, t - 1_000, false),
        ]],
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "fresh samples in Prometheus",
        || async {
            let r = prom
                .query(
                    "count_over_time(outpost_probe_success{agent=\"rw-1\",collector=\"c1\"}[5m])",
                )
                .await
                .ok()?;
            (r.first()?["value"][1].as_str()? == "3").then_some(())
        },
    )
    .await?;
    let latest = prom
        .query("outpost_probe_success{agent=\"rw-1\",check=\"home\",module=\"home\"}")
        .await?;
    assert_eq!(
        latest.first().and_then(|s| s["value"][1].as_str()),
        Some("0"),
        "{latest:?}"
    );

    send(&ep, "rw-1", vec![vec![result(4, t - 600_000, true)]]).await?;
    let late_query = "outpost_probe_success{agent=\"rw-1\"}[15m]";
    if out_of_order_window {
        eventually(
            Duration::from_secs(30),
            "the late sample accepted at its original time",
            || async {
                let r = prom.query(late_query).await.ok()?;
                let values = r.first()?["values"].as_array()?.clone();
                values
                    .iter()
                    .any(|v| {
                        v[0].as_f64()
                            .is_some_and(|ts| (ts * 1000.0) as i64 == t - 600_000)
                    })
                    .then_some(())
            },
        )
        .await?;
    } else {
        eventually(
            Duration::from_secs(30),
            "the late sample refused and counted",
            || async {
                let m = collector.metrics().await.ok()?;
                (sample(
                    &m,
                    "outpost_remote_write_samples_dropped_total",
                    &[("receiver", "prom"), ("reason", "rejected")],
                )? >= 2.0)
                    .then_some(())
            },
        )
        .await?;
        let m = collector.metrics().await?;
        assert_eq!(
            sample(
                &m,
                "outpost_remote_write_retries_total",
                &[("receiver", "prom")]
            ),
            Some(0.0),
            "a 400 must not be retried"
        );
        assert_eq!(
            sample(
                &m,
                "outpost_remote_write_requests_total",
                &[("receiver", "prom"), ("code", "400")]
            ),
            Some(1.0)
        );
    }
    let m = collector.metrics().await?;
    assert!(
        sample(
            &m,
            "outpost_remote_write_samples_sent_total",
            &[("receiver", "prom")]
        )
        .unwrap_or(0.0)
            >= 6.0
    );
    collector.stop().await?;
    prom.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_results_are_refused_by_default_prometheus_and_counted() -> Result<()> {
    scenario(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_results_land_with_an_out_of_order_window() -> Result<()> {
    scenario(true).await
}
