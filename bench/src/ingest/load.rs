//! The load generator: N simulated agents, each its own connection and
//! stream, speaking the real protocol with the agent's own codec
//! (`outpost_agent::transport::codec`): Hello, the server's Ack of the
//! high-water mark, then batches of real encoded results with ascending
//! sequences, at most [`outpost_agent::transport::WINDOW`] unacknowledged
//! per stream, as the agent's transport does when it drains a backlog.
//!
//! Every stream connects and says hello first; then all start sending at
//! once, stop starting new batches at the deadline, and wait for the acks
//! of what they sent. Throughput counts acknowledged results only (the
//! collector acks after its store flushed), from the start signal to the
//! last ack. A stream whose acks do not match what it sent fails the run.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use outpost_agent::transport::codec::{self, RawCodec};
use outpost_agent::transport::{MAX_MESSAGE_BYTES, WINDOW};
use outpost_proto::v1 as pb;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::http::uri::PathAndQuery;

use super::payload::Templates;

const STREAM_PATH: &str = "/outpost.v1.Ingest/Stream";
/// How long the acks of the last batches may take after the deadline.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);
/// Connections being set up at once.
const CONNECTING_AT_ONCE: usize = 64;
/// The agent's HTTP/2 keepalive default.
pub const KEEPALIVE: Duration = Duration::from_secs(10);

/// One load run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// gRPC address, `127.0.0.1:PORT`.
    pub addr: String,
    pub streams: usize,
    /// Results per batch.
    pub batch: u64,
    /// How long new batches are started.
    pub duration: Duration,
    /// Agent ids are `{prefix}{index}`.
    pub prefix: String,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Results acknowledged.
    pub results: u64,
    /// Start signal to the last ack.
    pub elapsed: Duration,
    /// Send-to-ack time of every batch, µs, sorted.
    pub latencies_us: Vec<u64>,
    /// Results acknowledged per agent id.
    pub per_agent: Vec<(String, u64)>,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.results as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile of the ack latency, ms.
    pub fn latency_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// An open stream after its handshake.
pub struct Stream {
    pub agent: String,
    pub tx: mpsc::Sender<Bytes>,
    pub inbound: tonic::Streaming<pb::CollectorMessage>,
    /// The server's high-water mark from the first ack.
    pub hwm: u64,
}

fn ack_of(msg: Option<pb::CollectorMessage>) -> Result<u64> {
    match msg.and_then(|m| m.msg) {
        Some(pb::collector_message::Msg::Ack(a)) => Ok(a.acked_through_seq),
        None => bail!("the server closed the stream or sent no ack"),
    }
}

/// A footprint like the agent's (small, plausible figures).
pub fn footprint() -> pb::Footprint {
    pb::Footprint {
        rss_bytes: 8 << 20,
        cpu_seconds_total: 1.0,
        sent_at_unix_ms: outpost_now_ms(),
        ..pb::Footprint::default()
    }
}

fn outpost_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Connects like the agent (keepalive, nodelay), sends the hello and
/// waits for the first ack.
pub async fn open(addr: &str, agent: String, origin: u64) -> Result<Stream> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(KEEPALIVE)
        .keep_alive_timeout(KEEPALIVE)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    let channel = endpoint.connect().await.context("connect")?;
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let (tx, rx) = mpsc::channel::<Bytes>(WINDOW + 1);
    let hello = pb::Hello {
        agent_id: agent.clone(),
        version: "bench".into(),
        labels: [("site".to_string(), "bench".to_string())].into(),
        buffer_origin_seq: origin,
        footprint: Some(footprint()),
    };
    tx.send(codec::message(pb::agent_message::Msg::Hello(hello)))
        .await
        .map_err(|_| anyhow!("stream closed before hello"))?;
    grpc.ready().await.context("channel not ready")?;
    let mut inbound = grpc
        .streaming(
            tonic::Request::new(ReceiverStream::new(rx)),
            PathAndQuery::from_static(STREAM_PATH),
            RawCodec,
        )
        .await
        .context("open the stream")?
        .into_inner();
    let hwm = ack_of(inbound.message().await.context("first ack")?)?;
    Ok(Stream {
        agent,
        tx,
        inbound,
        hwm,
    })
}

/// Opens `n` streams (ids `{prefix}{first..first+n}`), a bounded number
/// at a time.
pub async fn open_many(addr: &str, prefix: &str, first: usize, n: usize) -> Result<Vec<Stream>> {
    let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut tasks = tokio::task::JoinSet::new();
    for i in first..first + n {
        let (addr, agent, gate) = (addr.to_string(), format!("{prefix}{i}"), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let s = open(&addr, agent.clone(), 1)
                .await
                .with_context(|| format!("agent {agent}"))?;
            Ok::<_, anyhow::Error>((i, s))
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        out.push(r??);
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

struct StreamResult {
    agent: String,
    results: u64,
    last_ack: Instant,
    latencies_us: Vec<u64>,
}

async fn drive(
    mut s: Stream,
    templates: Arc<Templates>,
    batch: u64,
    mut start: watch::Receiver<Option<Instant>>,
    duration: Duration,
) -> Result<StreamResult> {
    let t0 = loop {
        if let Some(t) = *start.borrow() {
            break t;
        }
        start.changed().await?;
    };
    let stop_at = t0 + duration;
    let mut next = s.hwm + 1;
    let mut in_flight: VecDeque<(u64, u64, Instant)> = VecDeque::new();
    let mut results = 0u64;
    let mut last_ack = t0;
    let mut latencies_us = Vec::new();
    loop {
        let sending = Instant::now() < stop_at;
        if !sending && in_flight.is_empty() {
            break;
        }
        if sending && in_flight.len() < WINDOW {
            let msg = templates.batch(next, batch, Some(0));
            s.tx.send(msg)
                .await
                .map_err(|_| anyhow!("{}: the stream closed", s.agent))?;
            in_flight.push_back((next + batch - 1, batch, Instant::now()));
            next += batch;
            continue;
        }
        let wait = if sending {
            stop_at.saturating_duration_since(Instant::now())
        } else {
            DRAIN_DEADLINE
        };
        let msg = match tokio::time::timeout(wait, s.inbound.message()).await {
            Err(_) if sending => continue,
            Err(_) => bail!("{}: no ack within {DRAIN_DEADLINE:?}", s.agent),
            Ok(m) => m.with_context(|| format!("{}: stream failed", s.agent))?,
        };
        let acked = ack_of(msg)?;
        let now = Instant::now();
        while let Some(&(last, n, sent)) = in_flight.front() {
            if last > acked {
                break;
            }
            in_flight.pop_front();
            results += n;
            latencies_us.push(now.duration_since(sent).as_micros() as u64);
            last_ack = now;
        }
    }
    if next - 1 != s.hwm + results {
        bail!(
            "{}: sent through {} but acks cover {} results from {}",
            s.agent,
            next - 1,
            results,
            s.hwm + 1
        );
    }
    drop(s.tx);
    Ok(StreamResult {
        agent: s.agent,
        results,
        last_ack,
        latencies_us,
    })
}

/// Streams connected and waiting for the start signal.
pub struct Prepared {
    start: watch::Sender<Option<Instant>>,
    tasks: tokio::task::JoinSet<Result<StreamResult>>,
    streams: usize,
}

/// Opens the plan's streams (hello answered); nothing is sent yet.
pub async fn prepare(plan: &Plan, templates: Arc<Templates>) -> Result<Prepared> {
    let streams = open_many(&plan.addr, &plan.prefix, 0, plan.streams).await?;
    let (start, start_rx) = watch::channel(None);
    let mut tasks = tokio::task::JoinSet::new();
    for s in streams {
        tasks.spawn(drive(
            s,
            templates.clone(),
            plan.batch,
            start_rx.clone(),
            plan.duration,
        ));
    }
    Ok(Prepared {
        start,
        tasks,
        streams: plan.streams,
    })
}

impl Prepared {
    /// Starts every stream at once; returns what was acknowledged.
    pub async fn go(mut self) -> Result<Outcome> {
        let t0 = Instant::now();
        self.start.send_replace(Some(t0));
        let mut out = Outcome {
            results: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
            per_agent: Vec::with_capacity(self.streams),
        };
        let mut last = t0;
        while let Some(r) = self.tasks.join_next().await {
            let r = r??;
            out.results += r.results;
            last = last.max(r.last_ack);
            out.latencies_us.extend(r.latencies_us);
            out.per_agent.push((r.agent, r.results));
        }
        out.elapsed = last.duration_since(t0);
        out.latencies_us.sort_unstable();
        Ok(out)
    }
}
