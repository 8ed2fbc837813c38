//! The signed JSON webhook receiver: one `POST` per event (incident opened,
//! acknowledged, escalated, resolved, closed; warning raised or cleared).
//!
//! Signature: `X-Outpost-Signature: sha256=<hex HMAC-SHA256(secret,
//! timestamp + "." + body)>` with `X-Outpost-Timestamp: <unix seconds>`, so
//! a receiver can verify integrity and reject replays. The secret comes
//! from a file and is never logged.
//!
//! Delivery: up to `max_attempts` tries with exponential backoff (0.5 s,
//! 1 s, 2 s … capped at 30 s); then the event is dropped and counted. The
//! queue in front is bounded ([`Webhook::offer`] never waits).

use std::time::Duration;

use http::Method;
use ring::hmac;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::evaluation::{Secret, WebhookConfig};
use crate::notify::{client, with_stats, NotifyStats};

/// Longest backoff between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// `sha256=<hex>` over `timestamp.body`.
pub fn signature(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The sending side of one webhook's queue.
#[derive(Clone)]
pub struct Webhook {
    pub name: String,
    tx: mpsc::Sender<serde_json::Value>,
    stats: NotifyStats,
}

impl Webhook {
    /// Queues an event; a full queue drops it (counted).
    pub fn offer(&self, event: serde_json::Value) {
        if self.tx.try_send(event).is_err() {
            tracing::warn!(receiver = %self.name, "webhook queue full: event dropped");
            with_stats(&self.stats, &self.name, "webhook", |s| s.dropped += 1);
        }
    }
}

/// Creates a webhook's queue; run the returned future as its task.
pub fn spawn_parts(
    cfg: WebhookConfig,
    clock: SharedClock,
    stats: NotifyStats,
    shutdown: CancellationToken,
) -> (Webhook, impl std::future::Future<Output = ()>) {
    let (tx, rx) = mpsc::channel(cfg.queue);
    let hook = Webhook {
        name: cfg.name.clone(),
        tx,
        stats: stats.clone(),
    };
    (hook, run(cfg, rx, clock, stats, shutdown))
}

async fn run(
    cfg: WebhookConfig,
    mut rx: mpsc::Receiver<serde_json::Value>,
    clock: SharedClock,
    stats: NotifyStats,
    shutdown: CancellationToken,
) {
    with_stats(&stats, &cfg.name, "webhook", |_| {});
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = rx.recv() => match e { Some(e) => e, None => break },
        };
        let body = event.to_string().into_bytes();
        let mut backoff = Duration::from_millis(500);
        let mut delivered = false;
        for attempt in 1..=cfg.max_attempts {
            let ts = clock.now_ms() / 1000;
            let headers = [
                ("content-type", "application/json".to_string()),
                ("x-outpost-timestamp", ts.to_string()),
                ("x-outpost-signature", signature(&cfg.secret, ts, &body)),
            ];
            let r = client::send(
                &cfg.url,
                Method::POST,
                "",
                &headers,
                body.clone(),
                cfg.timeout,
            )
            .await;
            match r {
                Ok(r) if (200..300).contains(&r.status) => {
                    delivered = true;
                    break;
                }
                other => {
                    let why = match other {
                        Ok(r) => format!("status {}", r.status),
                        Err(e) => e.to_string(),
                    };
                    tracing::warn!(receiver = %cfg.name, attempt, error = %why, "webhook delivery failed");
                    with_stats(&stats, &cfg.name, "webhook", |s| s.failed_attempts += 1);
                    if attempt == cfg.max_attempts {
                        break;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        let now = clock.now_ms();
        with_stats(&stats, &cfg.name, "webhook", |s| {
            if delivered {
                s.sent += 1;
                s.last_success_ms = now;
            } else {
                s.dropped += 1;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: python3 -c "import hmac,hashlib;
        // print(hmac.new(b'Jefe', b'12.what', hashlib.sha256).hexdigest())"
        let s = signature(&Secret::new("Jefe"), 12, b"what");
        assert_eq!(
            s,
            "sha256=eaede0083054a444f05203cc2e7773fecaca0fc9d7c42fe8a1c8413d750a4d7d"
        );
        assert_ne!(s, signature(&Secret::new("Jefe"), 13, b"what"));
    }
}
