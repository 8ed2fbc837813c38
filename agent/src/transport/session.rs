//! One connection to one collector endpoint: handshake, then the send /
//! ack loop. See the parent module for the invariants it keeps.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use outpost_proto::v1 as pb;
use tokio::sync::{mpsc, Notify};
use tokio::time::{Duration, Instant};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::codec::{self, RawCodec};
use super::{
    convert, footprint, Progress, SessionEnd, TransportError, ACK_DEADLINE, BUFFER_RETRY,
    HANDSHAKE_DEADLINE, MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, WINDOW,
};
use crate::buffer::{Buffer, BufferError, Entry};
use crate::config::{AgentSettings, CollectorSettings};

const STREAM_PATH: &str = "/outpost.v1.Ingest/Stream";
/// At most one buffer-failure warning per this period.
const BUFFER_WARN_EVERY: Duration = Duration::from_secs(30);

/// What a session needs.
pub(super) struct Context<'a> {
    pub agent: &'a AgentSettings,
    pub settings: &'a CollectorSettings,
    pub endpoint: &'a http::Uri,
    pub buffer: &'a Buffer,
    pub produced: &'a Notify,
    pub progress: &'a Progress,
    pub shutdown: &'a CancellationToken,
    /// Decode every payload before sending (after a refused batch).
    pub validate: bool,
}

fn ack_of(msg: pb::CollectorMessage) -> Result<u64, TransportError> {
    match msg.msg {
        Some(pb::collector_message::Msg::Ack(a)) => Ok(a.acked_through_seq),
        None => Err(TransportError::Unexpected),
    }
}

/// Rate-limited warnings about buffer failures (the recorder and the
/// buffer's maintenance task log the failure itself).
struct BufferTrouble {
    last_warn: Option<Instant>,
}

impl BufferTrouble {
    fn note(&mut self, what: &'static str, e: &BufferError) {
        if self
            .last_warn
            .is_none_or(|t| t.elapsed() >= BUFFER_WARN_EVERY)
        {
            self.last_warn = Some(Instant::now());
            tracing::warn!(error = %e, "buffer {what} failed; retrying in {BUFFER_RETRY:?}");
        }
    }
}

pub(super) async fn run(ctx: Context<'_>) -> SessionEnd {
    let mut made_progress = false;
    let result = stream(&ctx, &mut made_progress).await;
    SessionEnd {
        made_progress,
        result,
    }
}

/// Opens the stream: connect, hello, first ack (the collector's
/// high-water mark). Bounded by [`HANDSHAKE_DEADLINE`].
async fn handshake(
    ctx: &Context<'_>,
    tx: &mpsc::Sender<Bytes>,
    rx: mpsc::Receiver<Bytes>,
) -> Result<(tonic::Streaming<pb::CollectorMessage>, u64), TransportError> {
    let channel = super::connect(ctx.settings, ctx.endpoint).await?;
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let hello = pb::Hello {
        agent_id: ctx.agent.id.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        labels: ctx.agent.labels.clone().into_iter().collect(),
        buffer_origin_seq: ctx.buffer.origin_seq(),
        footprint: Some(footprint(ctx.buffer)),
    };
    tx.send(codec::message(pb::agent_message::Msg::Hello(hello)))
        .await
        .map_err(|_| TransportError::Closed)?;
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("channel not ready: {e}")))?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    super::authorize(ctx.settings, &mut request)?;
    let mut inbound = grpc
        .streaming(
            request,
            http::uri::PathAndQuery::from_static(STREAM_PATH),
            RawCodec,
        )
        .await?
        .into_inner();
    let first = inbound.message().await?.ok_or(TransportError::Closed)?;
    Ok((inbound, ack_of(first)?))
}

async fn stream(ctx: &Context<'_>, made_progress: &mut bool) -> Result<(), TransportError> {
    let buffer = ctx.buffer;
    // Window batches plus a heartbeat: the stream's only queue.
    let (tx, rx) = mpsc::channel::<Bytes>(WINDOW + 1);
    let (mut inbound, hwm) = tokio::select! {
        _ = ctx.shutdown.cancelled() => return Ok(()),
        r = tokio::time::timeout(HANDSHAKE_DEADLINE, handshake(ctx, &tx, rx)) => {
            r.map_err(|_| TransportError::Timeout(HANDSHAKE_DEADLINE))??
        }
    };
    let mut trouble = BufferTrouble { last_warn: None };
    // Entries at or below the hwm are stored at the collector: delete them.
    let mut pending_ack = Some(hwm);
    let mut sent_through = hwm;
    ctx.progress.acked_through.store(hwm, Ordering::SeqCst);
    ctx.progress.connected.store(true, Ordering::SeqCst);
    ctx.progress.sessions.fetch_add(1, Ordering::SeqCst);
    tracing::info!(endpoint = %ctx.endpoint, acked_through = hwm, "connected to collector");

    let mut in_flight: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut has_more = true;
    let mut retry_at: Option<Instant> = None;
    let mut heartbeat = tokio::time::interval(ctx.settings.heartbeat);
    heartbeat.tick().await;
    loop {
        if let Some(acked) = pending_ack {
            match buffer.ack_through(acked) {
                Ok(_) => pending_ack = None,
                Err(e) => {
                    trouble.note("delete of acknowledged results", &e);
                    retry_at.get_or_insert(Instant::now() + BUFFER_RETRY);
                }
            }
        }
        let ack_deadline = in_flight
            .front()
            .map_or_else(|| Instant::now() + ACK_DEADLINE, |(_, t)| *t + ACK_DEADLINE);
        let can_send = has_more && retry_at.is_none() && in_flight.len() < WINDOW;
        tokio::select! {
            biased;
            _ = ctx.shutdown.cancelled() => return Ok(()),
            msg = inbound.message() => {
                let acked = ack_of(msg?.ok_or(TransportError::Closed)?)?;
                pending_ack = Some(pending_ack.map_or(acked, |p| p.max(acked)));
                ctx.progress.acked_through.fetch_max(acked, Ordering::SeqCst);
                *made_progress = true;
                while in_flight.front().is_some_and(|(last, _)| *last <= acked) {
                    in_flight.pop_front();
                }
            }
            _ = tokio::time::sleep_until(ack_deadline), if !in_flight.is_empty() => {
                return Err(TransportError::Timeout(ACK_DEADLINE));
            }
            _ = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {
                retry_at = None;
                has_more = true;
            }
            permit = tx.reserve(), if can_send => {
                let permit = permit.map_err(|_| TransportError::Closed)?;
                let entries = match read_batch(ctx, sent_through).await {
                    Ok(e) => e,
                    Err(e) => {
                        trouble.note("read", &e);
                        retry_at = Some(Instant::now() + BUFFER_RETRY);
                        continue;
                    }
                };
                let Some(last) = entries.last().map(|e| e.seq) else {
                    has_more = false;
                    continue;
                };
                permit.send(codec::batch_of(&entries, Some(buffer.dropped_through())));
                sent_through = last;
                in_flight.push_back((last, Instant::now()));
            }
            _ = ctx.produced.notified(), if !has_more => has_more = true,
            _ = heartbeat.tick() => {
                let hb = pb::Heartbeat { footprint: Some(footprint(buffer)) };
                if tx.try_send(codec::message(pb::agent_message::Msg::Heartbeat(hb))).is_err() {
                    tracing::debug!("heartbeat skipped: stream is busy with batches");
                }
            }
        }
    }
}

/// The next batch after `after`. In validate mode every payload is decoded
/// first and the undecodable ones are dropped (counted as `corrupt`).
async fn read_batch(ctx: &Context<'_>, mut after: u64) -> Result<Vec<Entry>, BufferError> {
    let buffer = ctx.buffer;
    loop {
        let entries = buffer
            .read_after(after, ctx.settings.batch_max, MAX_BATCH_BYTES)
            .await?;
        let sealer = buffer.sealer();
        let entries = if sealer.encrypting()
            || entries
                .iter()
                .any(|e| crate::seal::looks_sealed(&e.payload))
        {
            let Some(last) = entries.last().map(|e| e.seq) else {
                return Ok(entries);
            };
            let mut opened = Vec::with_capacity(entries.len());
            for e in entries {
                match sealer.open(e.seq, &e.payload) {
                    Ok(plain) => opened.push(Entry {
                        payload: plain.into(),
                        ..e
                    }),
                    Err(err) => {
                        tracing::error!(seq = e.seq, error = %err, "buffered result does not open; dropping it (counted as corrupt)");
                        buffer.drop_corrupt(e.seq).await?;
                    }
                }
            }
            if opened.is_empty() {
                after = last;
                continue;
            }
            opened
        } else {
            entries
        };
        if !ctx.validate {
            return Ok(entries);
        }
        let Some(last) = entries.last().map(|e| e.seq) else {
            return Ok(entries);
        };
        let mut keep = Vec::with_capacity(entries.len());
        for e in entries {
            match convert::decode_buffered(&e.payload) {
                Ok(_) => keep.push(e),
                Err(err) => {
                    tracing::error!(seq = e.seq, error = %err, "buffered result does not decode; dropping it (counted as corrupt)");
                    buffer.drop_corrupt(e.seq).await?;
                }
            }
        }
        if !keep.is_empty() {
            return Ok(keep);
        }
        after = last;
    }
}
