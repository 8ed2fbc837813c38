//! The tonic floor: an `Ingest` server (the generated trait, prost
//! decoding, the collector's message bounds and keepalive) that answers
//! the hello with `origin - 1` and acknowledges each batch at once with
//! its last sequence, storing nothing. Run as its own process
//! (`outpost-bench ingest --echo-server`) so its CPU and memory are
//! measured like the collector's.

use std::time::Duration;

use anyhow::Result;
use outpost_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

/// The collector's gRPC message bound.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone, Default)]
struct Echo;

fn ack(seq: u64) -> pb::CollectorMessage {
    pb::CollectorMessage {
        msg: Some(pb::collector_message::Msg::Ack(pb::Ack {
            acked_through_seq: seq,
        })),
    }
}

#[tonic::async_trait]
impl pb::ingest_server::Ingest for Echo {
    type StreamStream = ReceiverStream<Result<pb::CollectorMessage, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut inbound = request.into_inner();
        let Some(pb::AgentMessage {
            msg: Some(pb::agent_message::Msg::Hello(hello)),
        }) = inbound.message().await?
        else {
            return Err(Status::invalid_argument(
                "the first message must be a hello",
            ));
        };
        let (tx, rx) = mpsc::channel(4);
        let mut hwm = hello.buffer_origin_seq.saturating_sub(1);
        tx.send(Ok(ack(hwm)))
            .await
            .map_err(|_| Status::cancelled("closed"))?;
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                if let Some(pb::agent_message::Msg::Batch(b)) = m.msg {
                    if let Some(last) = b.results.last() {
                        hwm = hwm.max(last.seq);
                    }
                    if tx.send(Ok(ack(hwm))).await.is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn rehearse(
        &self,
        _request: Request<pb::RehearsalReport>,
    ) -> Result<Response<pb::RehearsalReceipt>, Status> {
        Err(Status::unimplemented("echo floor"))
    }
}

/// Serves on 127.0.0.1 (any port), prints `grpc=ADDR` on stdout, runs
/// until SIGTERM or SIGINT.
pub async fn serve() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("grpc={}", listener.local_addr()?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let server = pb::ingest_server::IngestServer::new(Echo)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(server)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop)
        .await?;
    Ok(())
}
