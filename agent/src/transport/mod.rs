//! The gRPC stream to the collector: sends the buffer oldest-first in
//! batches, deletes only what the collector acknowledged, reconnects with
//! capped exponential backoff and jitter, and fails over across endpoints.
//!
//! Protocol per connection: Hello → (collector) Ack(high-water mark) →
//! batches and heartbeats, each batch answered by an Ack. At most
//! [`WINDOW`] batches are unacknowledged at once: that is the flow control
//! that keeps a slow collector from growing the agent's memory (the
//! backlog stays in sled, not in RAM). HTTP/2 keepalive and an ack
//! deadline notice a silently dead link within `ACK_DEADLINE`.
//!
//! Only this module (and `convert`) names tonic/prost types on the agent.

pub mod convert;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use outpost_proto::v1 as pb;
use pb::ingest_client::IngestClient;
use rand::Rng;
use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::buffer::Buffer;
use crate::config::{AgentSettings, CollectorSettings};
use crate::footprint;

/// Unacknowledged batches allowed in flight.
pub const WINDOW: usize = 4;
/// Largest encoded batch; well under the collector's message limit.
pub const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;
/// Largest gRPC message either side accepts.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// With batches in flight, no ack for this long means the link is dead.
pub const ACK_DEADLINE: Duration = Duration::from_secs(30);

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("collector refused the stream: {0}")]
    Status(#[from] tonic::Status),
    #[error("collector closed the stream")]
    Closed,
    #[error("no acknowledgement for {0:?}; the link is presumed dead")]
    AckTimeout(Duration),
    #[error("buffer: {0}")]
    Buffer(#[from] crate::buffer::BufferError),
    #[error("collector sent an unexpected message")]
    Unexpected,
    #[error("cannot read {path}: {reason}; fix: check the [collector] cert/key/ca/token_file paths and permissions")]
    Credentials { path: String, reason: String },
}

fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, TransportError> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(1024 * 1024).read_to_end(&mut buf))
        .map_err(|e| TransportError::Credentials {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    Ok(buf)
}

/// TLS settings for an https endpoint, read from the files now (so a
/// rotated certificate is used at the next connection).
fn tls_config(
    tls: &crate::config::ClientTls,
) -> Result<tonic::transport::ClientTlsConfig, TransportError> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut cfg = ClientTlsConfig::new();
    cfg = match &tls.ca {
        Some(ca) => cfg.ca_certificate(Certificate::from_pem(read_secret(ca)?)),
        None => cfg.with_webpki_roots(),
    };
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        cfg = cfg.identity(Identity::from_pem(read_secret(cert)?, read_secret(key)?));
    }
    if let Some(name) = &tls.server_name {
        cfg = cfg.domain_name(name.clone());
    }
    Ok(cfg)
}

/// Shared, read-only view of how delivery is going (for logs and tests).
#[derive(Debug, Default)]
pub struct Progress {
    pub acked_through: std::sync::atomic::AtomicU64,
    pub connected: std::sync::atomic::AtomicBool,
}

/// Runs until `shutdown`: connect, stream, reconnect.
pub async fn run(
    agent: AgentSettings,
    settings: CollectorSettings,
    buffer: Buffer,
    produced: Arc<Notify>,
    progress: Arc<Progress>,
    shutdown: CancellationToken,
) {
    let mut backoff = settings.backoff_initial;
    let mut endpoint_idx = 0usize;
    while !shutdown.is_cancelled() {
        let endpoint = &settings.endpoints[endpoint_idx % settings.endpoints.len()];
        let started = tokio::time::Instant::now();
        let result = session(
            &agent, &settings, endpoint, &buffer, &produced, &progress, &shutdown,
        )
        .await;
        progress
            .connected
            .store(false, std::sync::atomic::Ordering::SeqCst);
        match result {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(endpoint = %endpoint, error = %e, "collector session ended");
            }
        }
        // A session that lived a while resets the backoff.
        if started.elapsed() > Duration::from_secs(30) {
            backoff = settings.backoff_initial;
        }
        endpoint_idx += 1;
        let jittered = backoff.mul_f64(rand::rng().random_range(0.5..1.0));
        tokio::select! {
            _ = tokio::time::sleep(jittered) => {}
            _ = shutdown.cancelled() => break,
        }
        backoff = (backoff * 2).min(settings.backoff_max);
    }
}

fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The footprint message from the buffer's stats and this process.
pub fn footprint(buffer: &Buffer) -> pb::Footprint {
    let sample = footprint::sample();
    let stats = buffer.stats().ok();
    let now = now_unix_ms();
    pb::Footprint {
        rss_bytes: sample.rss_bytes,
        cpu_seconds_total: sample.cpu_seconds,
        buffer_entries: stats.as_ref().map_or(0, |s| s.entries),
        buffer_bytes: stats.as_ref().map_or(0, |s| s.bytes),
        oldest_unsent_age_seconds: stats
            .as_ref()
            .and_then(|s| s.oldest_produced_unix_ms)
            .map_or(0.0, |p| ((now - p).max(0) as f64) / 1000.0),
        dropped_total: stats.as_ref().map_or(0, |s| s.dropped_total()),
        sent_at_unix_ms: now,
    }
}

fn message(msg: pb::agent_message::Msg) -> pb::AgentMessage {
    pb::AgentMessage { msg: Some(msg) }
}

#[allow(clippy::too_many_arguments)]
async fn session(
    agent: &AgentSettings,
    settings: &CollectorSettings,
    endpoint: &http::Uri,
    buffer: &Buffer,
    produced: &Notify,
    progress: &Progress,
    shutdown: &CancellationToken,
) -> Result<(), TransportError> {
    let connect_err = |source| TransportError::Connect {
        endpoint: endpoint.to_string(),
        source,
    };
    let mut ep = tonic::transport::Endpoint::from(endpoint.clone());
    if endpoint.scheme_str() == Some("https") {
        ep = ep
            .tls_config(tls_config(&settings.tls)?)
            .map_err(connect_err)?;
    }
    let channel = ep
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(connect_err)?;
    let mut client = IngestClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);

    let (tx, rx) = mpsc::channel::<pb::AgentMessage>(WINDOW + 1);
    let hello = pb::Hello {
        agent_id: agent.id.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        labels: agent.labels.clone().into_iter().collect(),
        buffer_origin_seq: buffer.origin_seq(),
        footprint: Some(footprint(buffer)),
    };
    tx.send(message(pb::agent_message::Msg::Hello(hello)))
        .await
        .map_err(|_| TransportError::Closed)?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(path) = &settings.token_file {
        let token = read_secret(path)?;
        let value = format!("Bearer {}", String::from_utf8_lossy(&token).trim());
        let value = value.parse().map_err(|_| TransportError::Credentials {
            path: path.display().to_string(),
            reason: "the token is not valid header text".into(),
        })?;
        request.metadata_mut().insert("authorization", value);
    }
    let mut inbound = client.stream(request).await?.into_inner();

    let first = tokio::time::timeout(ACK_DEADLINE, inbound.message())
        .await
        .map_err(|_| TransportError::AckTimeout(ACK_DEADLINE))??
        .ok_or(TransportError::Closed)?;
    let mut sent_through = ack_of(first)?;
    buffer.ack_through(sent_through)?;
    progress
        .acked_through
        .store(sent_through, std::sync::atomic::Ordering::SeqCst);
    progress
        .connected
        .store(true, std::sync::atomic::Ordering::SeqCst);
    tracing::info!(endpoint = %endpoint, acked_through = sent_through, "connected to collector");

    let mut in_flight: VecDeque<(u64, tokio::time::Instant)> = VecDeque::new();
    let mut has_more = true;
    let mut heartbeat = tokio::time::interval(settings.heartbeat);
    heartbeat.tick().await;
    loop {
        let ack_deadline = in_flight.front().map_or_else(
            || tokio::time::Instant::now() + ACK_DEADLINE * 10,
            |(_, t)| *t + ACK_DEADLINE,
        );
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            msg = inbound.message() => {
                let msg = msg?.ok_or(TransportError::Closed)?;
                let acked = ack_of(msg)?;
                buffer.ack_through(acked)?;
                progress.acked_through.fetch_max(acked, std::sync::atomic::Ordering::SeqCst);
                while in_flight.front().is_some_and(|(last, _)| *last <= acked) {
                    in_flight.pop_front();
                }
            }
            _ = tokio::time::sleep_until(ack_deadline), if !in_flight.is_empty() => {
                return Err(TransportError::AckTimeout(ACK_DEADLINE));
            }
            permit = tx.reserve(), if has_more && in_flight.len() < WINDOW => {
                let permit = permit.map_err(|_| TransportError::Closed)?;
                let entries = buffer.read_after(sent_through, settings.batch_max, MAX_BATCH_BYTES)?;
                let Some(last) = entries.last().map(|e| e.seq) else {
                    has_more = false;
                    continue;
                };
                let mut results = Vec::with_capacity(entries.len());
                for e in &entries {
                    match convert::decode_buffered(&e.payload) {
                        Ok(r) => results.push(r),
                        Err(err) => {
                            // Unreadable payload: it is dropped by being skipped;
                            // the collector sees an announced gap; count it here.
                            tracing::error!(seq = e.seq, error = %err, "buffered result is unreadable; dropping it");
                            buffer.count_dropped(crate::buffer::DropReason::Corrupt, 1)?;
                        }
                    }
                }
                permit.send(message(pb::agent_message::Msg::Batch(pb::ResultBatch { results })));
                sent_through = last;
                in_flight.push_back((last, tokio::time::Instant::now()));
            }
            _ = produced.notified(), if !has_more => has_more = true,
            _ = heartbeat.tick() => {
                let hb = pb::Heartbeat { footprint: Some(footprint(buffer)) };
                if tx.try_send(message(pb::agent_message::Msg::Heartbeat(hb))).is_err() {
                    tracing::debug!("heartbeat skipped: stream is busy with batches");
                }
            }
        }
    }
}

fn ack_of(msg: pb::CollectorMessage) -> Result<u64, TransportError> {
    match msg.msg {
        Some(pb::collector_message::Msg::Ack(a)) => Ok(a.acked_through_seq),
        None => Err(TransportError::Unexpected),
    }
}
