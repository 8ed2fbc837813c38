//! "Data inconsistent persistently": consistency-kind results (sent here
//! with the generated client, as an agent's stream would carry them)
//! failing three on-time runs in a row open one major `data_inconsistent`
//! incident naming the check and the difference — and no second,
//! `persistent_failure` incident for the same module.

use std::time::Duration;

use anyhow::{anyhow, Result};
use outpost_proto::v1 as pb;
use outpost_tests::harness::{eventually, http_get, TestCollector};
use tokio_stream::wrappers::ReceiverStream;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn msg(m: pb::agent_message::Msg) -> pb::AgentMessage {
    pb::AgentMessage { msg: Some(m) }
}

fn consistency(seq: u64, at: i64, diff: f64) -> pb::CheckResult {
    pb::CheckResult {
        seq,
        check: "devices-vs-telemetry".into(),
        kind: "consistency".into(),
        labels: [("module".to_string(), "telemetry".to_string())].into(),
        started_unix_ms: at,
        duration_us: 50_000,
        outcome: pb::Outcome::Failed as i32,
        error: format!(
            "registry 1200 devices, telemetry {}: differ by {diff}",
            1200.0 - diff
        ),
        value: Some(diff),
        ..Default::default()
    }
}

async fn next_ack(inbound: &mut tonic::Streaming<pb::CollectorMessage>) -> Result<()> {
    match tokio::time::timeout(Duration::from_secs(10), inbound.message()).await {
        Ok(Ok(Some(_))) => Ok(()),
        other => Err(anyhow!("no ack: {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_inconsistency_opens_one_major_incident() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, "[slo]\nevaluate_every = \"200ms\"\n")?;
    let c = TestCollector::start_with(
        &dir.path().join("store"),
        &["-c", config.to_str().unwrap_or_default()],
    )
    .await?;
    let channel = tonic::transport::Endpoint::from_shared(c.endpoint())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let mut client = pb::ingest_client::IngestClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tx.send(msg(pb::agent_message::Msg::Hello(pb::Hello {
        agent_id: "site-a".into(),
        version: "test".into(),
        buffer_origin_seq: 1,
        ..Default::default()
    })))
    .await?;
    let mut inbound = client.stream(ReceiverStream::new(rx)).await?.into_inner();
    next_ack(&mut inbound).await?;
    // Four runs a second apart, the last just now: on time, failing.
    let t = now_ms() - 3_000;
    for seq in 1..=4u64 {
        let at = t + (seq as i64 - 1) * 1_000;
        tx.send(msg(pb::agent_message::Msg::Batch(pb::ResultBatch {
            results: vec![consistency(seq, at, 57.0)],
            dropped_through_seq: Some(0),
        })))
        .await?;
        next_ack(&mut inbound).await?;
    }
    let incidents = eventually(
        Duration::from_secs(15),
        "data_inconsistent incident",
        || async {
            let (_, body) = http_get(&c.http_url("/api/v1/incidents?state=all"))
                .await
                .ok()?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let list = v["incidents"].as_array()?.clone();
            list.iter()
                .any(|i| i["rule"] == "data_inconsistent")
                .then_some(list)
        },
    )
    .await?;
    let i = incidents
        .iter()
        .find(|i| i["rule"] == "data_inconsistent")
        .ok_or_else(|| anyhow!("gone"))?;
    assert_eq!(i["severity"], "major");
    assert_eq!(i["scope"], "devices-vs-telemetry");
    assert_eq!(i["scenario"], "single_service");
    let summary = i["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("devices-vs-telemetry") && summary.contains("57"),
        "{summary}"
    );
    assert!(
        !incidents.iter().any(|i| i["rule"] == "persistent_failure"),
        "one problem raised two incidents: {incidents:?}"
    );
    drop(tx);
    c.stop().await?;
    Ok(())
}
