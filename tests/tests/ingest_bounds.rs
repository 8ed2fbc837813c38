//! The collector refuses malformed and oversized messages with a gRPC
//! error, counts them, and keeps serving other agents.

use std::time::Duration;

use anyhow::{anyhow, Result};
use outpost_proto::v1 as pb;
use outpost_tests::harness::{eventually, metric_value, sample, TestAgent, TestCollector};
use tokio_stream::wrappers::ReceiverStream;

async fn client(
    endpoint: &str,
) -> Result<pb::ingest_client::IngestClient<tonic::transport::Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(pb::ingest_client::IngestClient::new(channel).max_encoding_message_size(64 << 20))
}

fn msg(m: pb::agent_message::Msg) -> pb::AgentMessage {
    pb::AgentMessage { msg: Some(m) }
}

fn hello(id: &str) -> pb::AgentMessage {
    msg(pb::agent_message::Msg::Hello(pb::Hello {
        agent_id: id.into(),
        version: "test".into(),
        buffer_origin_seq: 1,
        ..Default::default()
    }))
}

fn result(seq: u64, error: String) -> pb::CheckResult {
    pb::CheckResult {
        seq,
        check: "raw".into(),
        kind: "page".into(),
        outcome: pb::Outcome::Ok as i32,
        error,
        ..Default::default()
    }
}

/// Sends `messages` on one stream; returns the first error status the
/// collector answers with (after any acks).
async fn first_error(endpoint: &str, messages: Vec<pb::AgentMessage>) -> Result<tonic::Status> {
    let mut c = client(endpoint).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    for m in messages {
        tx.send(m).await?;
    }
    let response = c.stream(ReceiverStream::new(rx)).await;
    let mut inbound = match response {
        Err(status) => return Ok(status),
        Ok(r) => r.into_inner(),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, inbound.message()).await {
            Err(_) => return Err(anyhow!("no error status within 10s")),
            Ok(Err(status)) => return Ok(status),
            Ok(Ok(None)) => return Err(anyhow!("stream ended without an error")),
            Ok(Ok(Some(_ack))) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_refused_and_other_agents_keep_flowing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let cfg = format!(
        "[agent]\nid = \"good-agent\"\n[buffer]\npath = \"{}\"\n[collector]\nendpoints = [\"{}\"]\nbackoff_initial = \"100ms\"\n\
         [[check]]\nname = \"health\"\ninterval = \"1s\"\njitter = 0.0\n[check.page]\nurl = \"{}\"\n",
        dir.path().join("buffer").display(),
        collector.endpoint(),
        collector.http_url("/healthz")
    );
    let agent = TestAgent::start(dir.path(), &cfg).await?;
    let stored_now = || async {
        collector
            .stored_seqs("good-agent")
            .await
            .map(|s| s.len())
            .unwrap_or(0)
    };
    eventually(
        Duration::from_secs(20),
        "the good agent's first result",
        || async { (stored_now().await >= 1).then_some(()) },
    )
    .await?;

    let ep = collector.endpoint();
    // 1. The first message is not a hello.
    let s = first_error(
        &ep,
        vec![msg(pb::agent_message::Msg::Batch(pb::ResultBatch {
            results: vec![result(1, String::new())],
            dropped_through_seq: None,
        }))],
    )
    .await?;
    assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
    // 2. A hello claiming an invalid id.
    let s = first_error(&ep, vec![hello("../etc/passwd")]).await?;
    assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
    // 3. Sequences out of order.
    let bad_order = msg(pb::agent_message::Msg::Batch(pb::ResultBatch {
        results: vec![result(5, String::new()), result(4, String::new())],
        dropped_through_seq: None,
    }));
    let s = first_error(&ep, vec![hello("raw-1"), bad_order]).await?;
    assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("ascending"), "{s:?}");
    // 4. An unknown outcome value.
    let mut unknown = result(1, String::new());
    unknown.outcome = 42;
    let s = first_error(
        &ep,
        vec![
            hello("raw-2"),
            msg(pb::agent_message::Msg::Batch(pb::ResultBatch {
                results: vec![unknown],
                dropped_through_seq: None,
            })),
        ],
    )
    .await?;
    assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
    // 5. A message over the 4 MiB limit.
    let huge = msg(pb::agent_message::Msg::Batch(pb::ResultBatch {
        results: vec![result(1, "x".repeat(5 << 20))],
        dropped_through_seq: None,
    }));
    let s = first_error(&ep, vec![hello("raw-3"), huge]).await?;
    assert_ne!(s.code(), tonic::Code::Ok, "{s:?}");

    // Nothing of the refused messages was stored.
    for id in ["raw-1", "raw-2", "raw-3"] {
        assert!(
            collector.stored_seqs(id).await?.is_empty(),
            "{id} stored something"
        );
    }
    // The refusals are counted.
    let metrics = collector.metrics().await?;
    assert_eq!(
        sample(
            &metrics,
            "outpost_ingest_rejected_total",
            &[("reason", "bad_sequence")]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "outpost_ingest_rejected_total",
            &[("reason", "bad_outcome")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "outpost_ingest_rejected_total",
            &[("reason", "bad_agent_id")]
        ),
        Some(1.0)
    );
    assert!(metric_value(&metrics, "outpost_ingest_rejected_total").is_some());

    // The good agent kept delivering throughout and after.
    let before = stored_now().await;
    eventually(
        Duration::from_secs(20),
        "the good agent's results to keep arriving",
        || async { (stored_now().await >= before + 2).then_some(()) },
    )
    .await?;
    agent.stop().await?;
    collector.stop().await?;
    Ok(())
}
