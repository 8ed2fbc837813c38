//! The gRPC stream to the collector: sends the buffer oldest-first in
//! batches, deletes only what the collector acknowledged, reconnects with
//! capped exponential backoff and jitter, and fails over across endpoints.
//!
//! Protocol per connection (`session.rs`): Hello → (collector) Ack(high-
//! water mark) → batches and heartbeats, each batch answered by an Ack.
//!
//! Invariants:
//! * **Delete only on ack.** The only deletion here is
//!   `Buffer::ack_through(seq)` with a `seq` the collector sent.
//! * **Send only durable entries,** oldest first: `Buffer::read_after`
//!   returns nothing above the buffer's durable mark.
//! * **Drops are announced.** Every batch carries the buffer's
//!   `dropped_through` mark, so the collector can tell a gap the agent
//!   dropped and counted from a loss.
//! * **Bounded memory whatever the collector does.** At most [`WINDOW`]
//!   batches of at most [`MAX_BATCH_BYTES`] are unacknowledged; the
//!   backlog stays in sled, not in RAM. Batches are framed from the stored
//!   bytes (`codec.rs`): one contiguous buffer each, no decode.
//! * **A dead link is noticed in bounded time.** HTTP/2 keepalive pings
//!   (`[collector] keepalive`, default 10 s) end a connection whose pings go
//!   unanswered within the same time; the handshake has a deadline
//!   ([`HANDSHAKE_DEADLINE`]); a batch unacknowledged for [`ACK_DEADLINE`]
//!   ends the session.
//! * **A buffer failure does not end the session**: reads and deletions
//!   that fail are retried after [`BUFFER_RETRY`] (the buffer recovers by
//!   itself), and heartbeats keep reporting the dropped counters.
//!
//! Only this module (`codec`, `convert`, `session`) names tonic/prost
//! types on the agent.

pub mod codec;
pub mod convert;
pub mod rehearse;
mod session;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use outpost_proto::v1 as pb;
use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::buffer::{Buffer, DropReason};
use crate::config::{AgentSettings, CollectorSettings};
use crate::footprint;

/// Unacknowledged batches allowed in flight.
pub const WINDOW: usize = 4;
/// Largest batch, in stored bytes; well under the collector's message limit.
pub const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;
/// Largest gRPC message either side accepts.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// With batches in flight, no ack for this long means the link is dead.
pub const ACK_DEADLINE: Duration = Duration::from_secs(30);
/// Connect, hello and the collector's first ack must fit in this.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(15);
/// TCP connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before retrying a buffer read or delete that failed (the buffer
/// may be reopening, or recovering from a write failure).
pub const BUFFER_RETRY: Duration = Duration::from_millis(200);
/// A session that lasted this long resets the backoff.
const STABLE_SESSION: Duration = Duration::from_secs(30);

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
    #[error("no answer within {0:?}; the link is presumed dead")]
    Timeout(Duration),
    #[error("collector sent an unexpected message")]
    Unexpected,
    #[error("cannot read {path}: {reason}; fix: check the [collector] cert/key/ca/token_file paths and permissions")]
    Credentials { path: String, reason: String },
}

/// Reads a credential file (at most 1 MiB); errors name the path, never
/// the content.
pub(crate) fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, TransportError> {
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
pub(crate) fn tls_config(
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

/// Connects to `endpoint` with the `[collector]` settings: TLS (CA,
/// client identity for mutual TLS, server name; files read now) for
/// https, the connect timeout, HTTP/2 keepalive. The result stream and
/// rehearsal reports ([`rehearse`]) both connect here.
pub(crate) async fn connect(
    settings: &CollectorSettings,
    endpoint: &http::Uri,
) -> Result<tonic::transport::Channel, TransportError> {
    let keepalive = settings.keepalive;
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
    ep.connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(keepalive)
        .keep_alive_timeout(keepalive)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(connect_err)
}

/// Adds `authorization: Bearer <token>` from `token_file` (read now, so a
/// rotated token is used at once) to `request`, when one is configured.
pub(crate) fn authorize<T>(
    settings: &CollectorSettings,
    request: &mut tonic::Request<T>,
) -> Result<(), TransportError> {
    let Some(path) = &settings.token_file else {
        return Ok(());
    };
    let token = read_secret(path)?;
    let mut value: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
        format!("Bearer {}", String::from_utf8_lossy(&token).trim())
            .parse()
            .map_err(|_| TransportError::Credentials {
                path: path.display().to_string(),
                reason: "the token is not valid header text".into(),
            })?;
    value.set_sensitive(true);
    request.metadata_mut().insert("authorization", value);
    Ok(())
}

/// Shared, read-only view of how delivery is going (for logs and tests).
#[derive(Debug, Default)]
pub struct Progress {
    pub acked_through: AtomicU64,
    pub connected: AtomicBool,
    /// Sessions that completed their handshake.
    pub sessions: AtomicU64,
}

/// Capped exponential backoff with jitter: each wait is drawn from
/// `[d/2, d)` where `d` doubles per failed round up to the cap.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            current: initial,
        }
    }

    /// The next wait (jittered); doubles the base for the one after.
    pub fn next_wait(&mut self, rng: &mut impl Rng) -> Duration {
        let wait = self.current.mul_f64(rng.random_range(0.5..1.0));
        self.current = (self.current * 2).min(self.max);
        wait
    }

    /// A short jittered pause (the first step), without growing.
    pub fn first_wait(&self, rng: &mut impl Rng) -> Duration {
        self.initial.mul_f64(rng.random_range(0.5..1.0))
    }

    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

/// How a session ended, for the reconnect policy.
pub(crate) struct SessionEnd {
    /// Acks beyond the handshake were received: the link worked.
    pub made_progress: bool,
    pub result: Result<(), TransportError>,
}

/// Runs until `shutdown`: connect, stream, reconnect. Endpoints are tried
/// in turn; a failed endpoint is followed at once (after a short jittered
/// pause) by the next, and a whole failed round by the growing backoff.
pub async fn run(
    agent: AgentSettings,
    settings: CollectorSettings,
    buffer: Buffer,
    produced: Arc<Notify>,
    progress: Arc<Progress>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(settings.backoff_initial, settings.backoff_max);
    let endpoints = settings.endpoints.len().max(1);
    let mut idx = 0usize;
    let mut validate = false;
    while !shutdown.is_cancelled() {
        let Some(endpoint) = settings.endpoints.get(idx % endpoints) else {
            tracing::error!("no collector endpoint configured");
            return;
        };
        let ctx = session::Context {
            agent: &agent,
            settings: &settings,
            endpoint,
            buffer: &buffer,
            produced: &produced,
            progress: &progress,
            shutdown: &shutdown,
            validate,
        };
        let started = tokio::time::Instant::now();
        let end = session::run(ctx).await;
        progress.connected.store(false, Ordering::SeqCst);
        match end.result {
            Ok(()) => break,
            Err(e) => {
                // A batch the collector refuses as malformed: check every
                // payload of the next batches and drop what does not decode.
                validate = matches!(&e, TransportError::Status(s) if s.code() == tonic::Code::InvalidArgument);
                tracing::warn!(endpoint = %endpoint, error = %e, "collector session ended");
            }
        }
        if end.made_progress || started.elapsed() > STABLE_SESSION {
            backoff.reset();
            validate = false;
        }
        idx += 1;
        let wait = if endpoints > 1 && !idx.is_multiple_of(endpoints) {
            backoff.first_wait(&mut rand::rng())
        } else {
            backoff.next_wait(&mut rand::rng())
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => break,
        }
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
    let stats = buffer.stats();
    let now = now_unix_ms();
    pb::Footprint {
        rss_bytes: sample.rss_bytes,
        cpu_seconds_total: sample.cpu_seconds,
        buffer_entries: stats.entries,
        buffer_bytes: stats.bytes,
        oldest_unsent_age_seconds: stats
            .oldest_produced_unix_ms
            .map_or(0.0, |p| ((now - p).max(0) as f64) / 1000.0),
        dropped_total: stats.dropped_total(),
        sent_at_unix_ms: now,
        dropped_buffer_full: stats.dropped(DropReason::BufferFull),
        dropped_write_error: stats.dropped(DropReason::WriteError),
        dropped_corrupt: stats.dropped(DropReason::Corrupt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let mut bases = Vec::new();
        for _ in 0..8 {
            let base = b.current;
            let w = b.next_wait(&mut rng);
            assert!(
                w >= base / 2 && w < base,
                "{w:?} outside [{:?}, {base:?})",
                base / 2
            );
            bases.push(base.as_millis());
        }
        assert_eq!(bases, vec![100, 200, 400, 800, 1000, 1000, 1000, 1000]);
        b.reset();
        assert_eq!(b.current, Duration::from_millis(100));
        let f = b.first_wait(&mut rng);
        assert!(f >= Duration::from_millis(50) && f < Duration::from_millis(100));
    }
}
