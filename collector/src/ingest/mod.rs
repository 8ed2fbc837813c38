//! The gRPC ingest service: thin by design. It authenticates the stream
//! (the hello), validates and converts every message (`convert`), hands
//! batches to the store task and relays its acknowledgement. It owns no
//! state beyond one stream.
//!
//! Per stream: the first message must be a Hello, answered with an Ack of
//! the agent's high-water mark; each batch is answered with an Ack after
//! the store has flushed it. A malformed or oversized message ends that
//! stream with INVALID_ARGUMENT (or RESOURCE_EXHAUSTED) and is counted;
//! other agents are not affected. A store failure ends the stream with
//! UNAVAILABLE so the agent reconnects and resends.

pub mod convert;
pub mod rate;
pub mod rehearsal;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use outpost_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{AuthState, Proof};
use crate::live::Live;
use crate::store::StoreHandle;

/// Largest gRPC message accepted.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// How long a new stream may take to send its hello.
pub const HELLO_DEADLINE: Duration = Duration::from_secs(10);

/// The tonic service.
#[derive(Clone)]
pub struct IngestService {
    store: StoreHandle,
    live: Arc<Mutex<Live>>,
    sessions: TaskTracker,
    shutdown: CancellationToken,
    auth: Arc<RwLock<AuthState>>,
    rate: u64,
    /// Restore rehearsals (`Rehearse`); `None` answers unimplemented.
    rehearsals: Option<crate::rehearsal::task::RehearsalHandle>,
}

impl IngestService {
    pub fn new(
        store: StoreHandle,
        live: Arc<Mutex<Live>>,
        sessions: TaskTracker,
        shutdown: CancellationToken,
        auth: Arc<RwLock<AuthState>>,
    ) -> Self {
        IngestService {
            store,
            live,
            sessions,
            shutdown,
            auth,
            rate: 50_000,
            rehearsals: None,
        }
    }

    /// Sets the per-stream results-per-second bound.
    pub fn with_rate(mut self, results_per_second: u64) -> Self {
        self.rate = results_per_second;
        self
    }

    /// Records restore rehearsals with `handle` (the `Rehearse` RPC).
    pub fn with_rehearsals(mut self, handle: crate::rehearsal::task::RehearsalHandle) -> Self {
        self.rehearsals = Some(handle);
        self
    }

    /// The service wrapped with its message-size bounds.
    pub fn into_server(self) -> pb::ingest_server::IngestServer<Self> {
        pb::ingest_server::IngestServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Checks that `proof` proves `agent` (and that it is allowed); a
    /// refusal is counted, logged as `what` (never the token) and
    /// answered UNAUTHENTICATED or PERMISSION_DENIED.
    fn authorize(&self, agent: &str, proof: &Proof, what: &'static str) -> Result<(), Status> {
        let verdict = self
            .auth
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .check(agent, proof);
        let Err(refusal) = verdict else {
            return Ok(());
        };
        self.reject(refusal.as_str());
        tracing::warn!(claimed = %agent, proof = ?proof_kind(proof), reason = refusal.as_str(), "{what}");
        Err(match refusal {
            crate::auth::Refusal::Unauthenticated | crate::auth::Refusal::BadToken => {
                Status::unauthenticated(
                    "present a client certificate or a valid bearer token for this agent id",
                )
            }
            _ => Status::permission_denied(format!(
                "agent id {agent:?} is not the identity you proved, or is not allowed"
            )),
        })
    }

    fn reject(&self, reason: &'static str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reject(reason);
    }
}

/// What the stream proved: a verified client certificate (rustls checked
/// the chain during the handshake) or a bearer token.
fn proof_of<T>(request: &Request<T>) -> Proof {
    if let Some(certs) = request.peer_certs() {
        if let Some(leaf) = certs.first() {
            return Proof::Certificate(crate::auth::cert_identities(leaf.as_ref()));
        }
    }
    match request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => match v.strip_prefix("Bearer ") {
            Some(token) => Proof::Token(crate::auth::hash_token(token.trim().as_bytes())),
            None => Proof::Token([0; 32]),
        },
        None => Proof::None,
    }
}

/// The proof's kind for logs: never the token or its hash.
fn proof_kind(p: &Proof) -> &'static str {
    match p {
        Proof::Certificate(_) => "certificate",
        Proof::Token(_) => "token",
        Proof::None => "none",
    }
}

fn ack(seq: u64) -> pb::CollectorMessage {
    pb::CollectorMessage {
        msg: Some(pb::collector_message::Msg::Ack(pb::Ack {
            acked_through_seq: seq,
        })),
    }
}

fn status_of(e: &Status) -> &'static str {
    match e.code() {
        tonic::Code::ResourceExhausted => "message_too_large",
        tonic::Code::Cancelled => "cancelled",
        _ => "stream_error",
    }
}

#[tonic::async_trait]
impl pb::ingest_server::Ingest for IngestService {
    type StreamStream = ReceiverStream<Result<pb::CollectorMessage, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let proof = proof_of(&request);
        let mut inbound = request.into_inner();
        let first = match tokio::time::timeout(HELLO_DEADLINE, inbound.message()).await {
            Err(_) => {
                self.reject("no_hello");
                return Err(Status::deadline_exceeded("no hello within 10s"));
            }
            Ok(Err(e)) => {
                self.reject(status_of(&e));
                return Err(e);
            }
            Ok(Ok(None)) => return Err(Status::invalid_argument("stream closed before hello")),
            Ok(Ok(Some(m))) => m,
        };
        let Some(pb::agent_message::Msg::Hello(hello)) = first.msg else {
            self.reject("no_hello");
            return Err(Status::invalid_argument(
                "the first message must be a hello",
            ));
        };
        let hello = convert::hello(hello).map_err(|e| {
            self.reject(e.reason);
            Status::invalid_argument(e.to_string())
        })?;
        let agent = hello.agent_id.clone();
        self.authorize(&agent, &proof, "agent refused")?;
        let hwm = self.store.hello(hello).await.map_err(|e| {
            tracing::error!(error = %e, "store refused a hello");
            Status::unavailable("collector store unavailable; retry")
        })?;

        let (tx, rx) = mpsc::channel(4);
        if tx.send(Ok(ack(hwm))).await.is_err() {
            return Err(Status::cancelled("stream closed"));
        }
        tracing::info!(agent = %agent, hwm, "agent connected");
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stream_delta(&agent, true);
        let this = self.clone();
        self.sessions.spawn(async move {
            let end = this.session(&agent, &mut inbound, &tx).await;
            this.live.lock().unwrap_or_else(|p| p.into_inner()).stream_delta(&agent, false);
            match end {
                Ok(()) => tracing::info!(agent = %agent, "agent disconnected"),
                Err(status) => {
                    tracing::warn!(agent = %agent, code = ?status.code(), message = status.message(), "agent stream ended with an error");
                    let _ = tx.send(Err(status)).await;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn rehearse(
        &self,
        request: Request<pb::RehearsalReport>,
    ) -> Result<Response<pb::RehearsalReceipt>, Status> {
        self.rehearse_report(request).await
    }
}

impl IngestService {
    async fn session(
        &self,
        agent: &str,
        inbound: &mut Streaming<pb::AgentMessage>,
        tx: &mpsc::Sender<Result<pb::CollectorMessage, Status>>,
    ) -> Result<(), Status> {
        let mut bucket = rate::Bucket::new(self.rate);
        let mut last = tokio::time::Instant::now();
        loop {
            let msg = tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(()),
                m = inbound.message() => m,
            };
            let msg = match msg {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.reject(status_of(&e));
                    return Err(e);
                }
            };
            match msg.msg {
                Some(pb::agent_message::Msg::Batch(batch)) => {
                    if !self
                        .auth
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .still_allowed(agent)
                    {
                        self.reject("agent_revoked");
                        return Err(Status::permission_denied("this agent id has been revoked"));
                    }
                    let batch = convert::batch(batch).map_err(|e| {
                        self.reject(e.reason);
                        Status::invalid_argument(e.to_string())
                    })?;
                    let now = tokio::time::Instant::now();
                    let wait = bucket.take(batch.results.len(), now - last);
                    last = now;
                    if !wait.is_zero() {
                        self.live
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .ingest
                            .throttled_seconds_total += wait.as_secs_f64();
                        tokio::select! {
                            _ = self.shutdown.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                    let ingested = self
                        .store
                        .ingest(agent.to_string(), batch.results, batch.dropped_through)
                        .await
                        .map_err(|e| {
                            tracing::error!(error = %e, "store failed a batch");
                            Status::unavailable("collector store unavailable; retry")
                        })?;
                    if ingested.gap > 0 {
                        tracing::warn!(
                            agent,
                            dropped_by_agent = ingested.gap,
                            "agent announced dropped results (buffer full, write error or corrupt)"
                        );
                    }
                    if ingested.lost > 0 {
                        tracing::error!(
                            agent,
                            lost = ingested.lost,
                            "results missing that the agent did not announce as dropped"
                        );
                    }
                    if tx.send(Ok(ack(ingested.hwm))).await.is_err() {
                        return Ok(());
                    }
                }
                Some(pb::agent_message::Msg::Heartbeat(hb)) => {
                    self.store
                        .heartbeat(agent.to_string(), convert::footprint(hb.footprint))
                        .await;
                }
                Some(pb::agent_message::Msg::Hello(_)) => {
                    self.reject("second_hello");
                    return Err(Status::invalid_argument(
                        "hello may only be sent once per stream",
                    ));
                }
                None => {
                    self.reject("empty_message");
                    return Err(Status::invalid_argument("empty message"));
                }
            }
        }
    }
}
