//! Prometheus remote write: every durable result is also sent, with its
//! original timestamp, to each configured remote-write receiver (Mimir,
//! Thanos, VictoriaMetrics, Prometheus with
//! `--web.enable-remote-write-receiver`) — the path for users who outgrow
//! one collector.
//!
//! One task per receiver owns a bounded queue. Invariants:
//! * the ingest path never waits for a receiver: enqueueing is `try_send`;
//!   a full queue drops the group and counts its samples (`queue_full`);
//! * 5xx, 429 and connection errors are retried with capped exponential
//!   backoff, at most `max_retries` times, then counted
//!   (`retries_exhausted`); other 4xx (e.g. `400 out of order sample`,
//!   `out of bounds` for late results when the receiver has no
//!   out-of-order window) are counted (`rejected`) and never retried;
//! * every sample is accounted once: sent, or dropped with a reason.

pub mod encode;
mod http_post;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::live::Live;
pub use encode::Item;

/// One receiver's settings (validated config).
#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: String,
    pub url: http::Uri,
    pub external_labels: BTreeMap<String, String>,
    pub bearer_token_file: Option<std::path::PathBuf>,
    /// Groups of results queued at most.
    pub queue_groups: usize,
    pub max_samples_per_send: usize,
    pub max_retries: u32,
    pub timeout: Duration,
}

/// Counters of one receiver (exported by `metrics`).
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub samples_sent: u64,
    pub samples_dropped: BTreeMap<&'static str, u64>,
    pub requests: BTreeMap<String, u64>,
    pub retries: u64,
}

/// Where the store task hands durable results to a receiver.
#[derive(Clone)]
pub struct Handle {
    name: String,
    tx: mpsc::Sender<Vec<Item>>,
    live: Arc<Mutex<Live>>,
}

impl Handle {
    /// Queues `items` without waiting; a full queue drops and counts them.
    pub fn enqueue(&self, items: Vec<Item>) {
        let samples: usize = items.iter().map(encode::samples_of).sum();
        if let Err(e) = self.tx.try_send(items) {
            let reason = match e {
                mpsc::error::TrySendError::Full(_) => "queue_full",
                mpsc::error::TrySendError::Closed(_) => "shutdown",
            };
            count_dropped(&self.live, &self.name, reason, samples as u64);
        }
    }
}

fn with_stats(live: &Mutex<Live>, name: &str, f: impl FnOnce(&mut Stats)) {
    let mut l = live.lock().unwrap_or_else(|p| p.into_inner());
    f(l.remote_write.entry(name.to_string()).or_default());
}

fn count_dropped(live: &Mutex<Live>, name: &str, reason: &'static str, n: u64) {
    if n > 0 {
        tracing::warn!(
            receiver = name,
            reason,
            samples = n,
            "remote write dropped samples"
        );
    }
    with_stats(live, name, |s| {
        *s.samples_dropped.entry(reason).or_insert(0) += n
    });
}

/// Passes every durable group on to the evaluator (waiting, as the store
/// would) after offering it to each receiver's queue (never waiting).
/// Ends when the store task stops.
pub fn tee(
    mut stored: mpsc::Receiver<crate::store::StoredResults>,
    receivers: Vec<Handle>,
) -> (
    mpsc::Receiver<crate::store::StoredResults>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(stored.max_capacity());
    let task = tokio::spawn(async move {
        while let Some(group) = stored.recv().await {
            if !receivers.is_empty() {
                let items: Vec<Item> = group
                    .results
                    .iter()
                    .map(|r| Item {
                        agent: group.agent.clone(),
                        record: r.clone(),
                    })
                    .collect();
                for r in &receivers {
                    r.enqueue(items.clone());
                }
            }
            if tx.send(group).await.is_err() {
                tracing::debug!("evaluator stopped; it replays from the store on start");
            }
        }
    });
    (rx, task)
}

/// Starts the task for `receiver`; it ends at `shutdown` (samples still
/// queued then are counted as dropped, reason `shutdown`).
pub fn spawn(
    receiver: Receiver,
    live: Arc<Mutex<Live>>,
    shutdown: CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) -> Handle {
    let (tx, rx) = mpsc::channel(receiver.queue_groups.max(1));
    with_stats(&live, &receiver.name, |_| {});
    let handle = Handle {
        name: receiver.name.clone(),
        tx,
        live: live.clone(),
    };
    tracker.spawn(run(receiver, rx, live, shutdown));
    handle
}

async fn run(
    receiver: Receiver,
    mut rx: mpsc::Receiver<Vec<Item>>,
    live: Arc<Mutex<Live>>,
    shutdown: CancellationToken,
) {
    let client = http_post::Client::new();
    let mut pending: Vec<Item> = Vec::new();
    loop {
        if pending.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                g = rx.recv() => match g {
                    Some(g) => pending.extend(g),
                    None => break,
                },
            }
        }
        while pending.iter().map(encode::samples_of).sum::<usize>() < receiver.max_samples_per_send
        {
            match rx.try_recv() {
                Ok(g) => pending.extend(g),
                Err(_) => break,
            }
        }
        // Take up to max_samples_per_send samples' worth of items.
        let mut take = 0;
        let mut samples = 0;
        for item in &pending {
            let s = encode::samples_of(item);
            if take > 0 && samples + s > receiver.max_samples_per_send {
                break;
            }
            take += 1;
            samples += s;
        }
        let batch: Vec<Item> = pending.drain(..take).collect();
        let request = encode::write_request(&batch, &receiver.external_labels);
        let body = match encode::body(&request) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "remote write encoding failed");
                count_dropped(&live, &receiver.name, "encode_error", samples as u64);
                continue;
            }
        };
        if !send_with_retries(&client, &receiver, body, samples as u64, &live, &shutdown).await {
            break;
        }
    }
    let mut left: u64 = pending.iter().map(encode::samples_of).sum::<usize>() as u64;
    rx.close();
    while let Ok(g) = rx.try_recv() {
        left += g.iter().map(encode::samples_of).sum::<usize>() as u64;
    }
    count_dropped(&live, &receiver.name, "shutdown", left);
}

/// Sends one request until it is accepted, refused, or retries run out.
/// Returns false when shutdown interrupted it.
async fn send_with_retries(
    client: &http_post::Client,
    receiver: &Receiver,
    body: Vec<u8>,
    samples: u64,
    live: &Mutex<Live>,
    shutdown: &CancellationToken,
) -> bool {
    let token = receiver
        .bearer_token_file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| t.trim().to_string());
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 0u32;
    loop {
        let result = client
            .post(
                &receiver.url,
                body.clone(),
                token.as_deref(),
                receiver.timeout,
            )
            .await;
        let code = match &result {
            Ok((status, _)) => status.as_u16().to_string(),
            Err(_) => "error".to_string(),
        };
        with_stats(live, &receiver.name, |s| {
            *s.requests.entry(code).or_insert(0) += 1
        });
        let retry = match result {
            Ok((status, _)) if status.is_success() => {
                with_stats(live, &receiver.name, |s| s.samples_sent += samples);
                return true;
            }
            Ok((status, text)) if status.as_u16() == 429 || status.is_server_error() => {
                tracing::warn!(receiver = %receiver.name, status = status.as_u16(), body = %text, "remote write: receiver busy or failing; will retry");
                true
            }
            Ok((status, text)) => {
                tracing::warn!(receiver = %receiver.name, status = status.as_u16(), body = %text, "remote write: samples refused (not retried)");
                count_dropped(live, &receiver.name, "rejected", samples);
                return true;
            }
            Err(e) => {
                tracing::warn!(receiver = %receiver.name, error = %e, "remote write: send failed; will retry");
                true
            }
        };
        if retry {
            if attempt >= receiver.max_retries {
                count_dropped(live, &receiver.name, "retries_exhausted", samples);
                return true;
            }
            attempt += 1;
            with_stats(live, &receiver.name, |s| s.retries += 1);
            tokio::select! {
                _ = shutdown.cancelled() => {
                    count_dropped(live, &receiver.name, "shutdown", samples);
                    return false;
                }
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}
