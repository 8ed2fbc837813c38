//! The Alertmanager receiver: `POST /api/v2/alerts` with the current alert
//! set (labels, annotations, `startsAt`, `endsAt`, `generatorURL`).
//!
//! * Firing alerts carry `endsAt = now + 4 × resend`, like Prometheus: if
//!   the collector stops, Alertmanager resolves them by itself.
//! * An alert that left the set is posted with `endsAt = when it left`
//!   [`RESOLVED_SENDS`] times (Alertmanager deduplicates), then forgotten.
//! * A failed post is retried with exponential backoff (up to `resend`);
//!   the set to post is always the latest, so nothing queues up.
//!
//! Bounds: at most [`MAX_RESOLVED`] ended alerts remembered (the oldest
//! beyond are dropped and counted).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::evaluation::AlertmanagerConfig;
use crate::engine::alerts::Alert;
use crate::notify::{client, rfc3339, with_stats, AlertSet, NotifyStats};

/// Posts of an ended alert.
pub const RESOLVED_SENDS: u32 = 3;
/// Ended alerts remembered.
pub const MAX_RESOLVED: usize = 10_000;

/// The JSON body of one post.
pub fn payload(
    firing: &[Alert],
    resolved: &[(Alert, i64)],
    now_ms: i64,
    ends_in_ms: i64,
    external_url: &str,
) -> serde_json::Value {
    let one = |a: &Alert, ends_ms: i64| {
        let generator = match a.incident {
            Some(id) => format!("{external_url}/api/v1/incidents/{id}"),
            None => format!("{external_url}/api/v1/incidents"),
        };
        serde_json::json!({
            "labels": a.labels,
            "annotations": a.annotations,
            "startsAt": rfc3339(a.starts_at_ms.min(ends_ms)),
            "endsAt": rfc3339(ends_ms),
            "generatorURL": generator,
        })
    };
    let mut v: Vec<serde_json::Value> =
        firing.iter().map(|a| one(a, now_ms + ends_in_ms)).collect();
    v.extend(resolved.iter().map(|(a, ended)| one(a, *ended)));
    serde_json::Value::Array(v)
}

/// Runs one Alertmanager receiver until `shutdown`.
pub async fn run(
    cfg: AlertmanagerConfig,
    mut alerts: watch::Receiver<Arc<AlertSet>>,
    clock: SharedClock,
    external_url: String,
    stats: NotifyStats,
    shutdown: CancellationToken,
) {
    let name = cfg.name.clone();
    with_stats(&stats, &name, "alertmanager", |_| {});
    let resend_ms = cfg.resend.as_millis() as i64;
    // What Alertmanager last accepted as firing.
    let mut accepted: HashMap<String, Alert> = HashMap::new();
    let mut resolved: VecDeque<(Alert, i64, u32)> = VecDeque::new();
    let mut backoff = Duration::from_millis(250);
    let mut next = tokio::time::Instant::now();
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = alerts.changed() => {
                if changed.is_err() { break; }
                // A change goes out at once, unless we are backing off.
                if !failing {
                    next = tokio::time::Instant::now();
                }
                continue;
            }
            _ = tokio::time::sleep_until(next) => {}
        }
        let set = alerts.borrow_and_update().clone();
        let now = clock.now_ms();
        let current: HashMap<String, &Alert> =
            set.alerts.iter().map(|a| (a.fingerprint(), a)).collect();
        // Alerts that left the set since the last accepted post.
        let mut ended: Vec<(Alert, i64)> = accepted
            .iter()
            .filter(|(fp, _)| !current.contains_key(*fp))
            .map(|(_, a)| (a.clone(), now))
            .collect();
        ended.extend(resolved.iter().map(|(a, t, _)| (a.clone(), *t)));
        let body = payload(&set.alerts, &ended, now, 4 * resend_ms, &external_url);
        let sent = client::send(
            &cfg.url,
            Method::POST,
            "/api/v2/alerts",
            &[("content-type", "application/json".to_string())],
            body.to_string().into_bytes(),
            cfg.timeout,
        )
        .await;
        match sent {
            Ok(r) if (200..300).contains(&r.status) => {
                // Newly ended alerts start their resolved sends.
                let newly: Vec<Alert> = accepted
                    .iter()
                    .filter(|(fp, _)| !current.contains_key(*fp))
                    .map(|(_, a)| a.clone())
                    .collect();
                for (_, _, left) in resolved.iter_mut() {
                    *left = left.saturating_sub(1);
                }
                resolved.retain(|(_, _, left)| *left > 0);
                for a in newly {
                    resolved.push_back((a, now, RESOLVED_SENDS - 1));
                }
                let mut dropped = 0;
                while resolved.len() > MAX_RESOLVED {
                    resolved.pop_front();
                    dropped += 1;
                }
                accepted = current.into_iter().map(|(k, v)| (k, v.clone())).collect();
                let n = set.alerts.len() as u64;
                with_stats(&stats, &name, "alertmanager", |s| {
                    s.sent += 1;
                    s.dropped += dropped;
                    s.last_success_ms = now;
                    s.alerts_in_last_post = n;
                });
                backoff = Duration::from_millis(250);
                failing = false;
                next = tokio::time::Instant::now() + cfg.resend;
            }
            other => {
                let why = match other {
                    Ok(r) => format!(
                        "status {}: {}",
                        r.status,
                        String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
                    ),
                    Err(e) => e.to_string(),
                };
                tracing::warn!(receiver = %name, error = %why, retry_in = ?backoff, "alertmanager post failed");
                with_stats(&stats, &name, "alertmanager", |s| s.failed_attempts += 1);
                failing = true;
                next = tokio::time::Instant::now() + backoff;
                backoff = (backoff * 2).min(cfg.resend.max(Duration::from_millis(250)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn payload_has_the_v2_fields() {
        let a = Alert {
            labels: BTreeMap::from([("alertname".to_string(), "auth_failing_broadly".to_string())]),
            annotations: BTreeMap::from([("summary".to_string(), "x".to_string())]),
            starts_at_ms: 1_700_000_000_000,
            incident: Some(7),
        };
        let v = payload(
            std::slice::from_ref(&a),
            &[(a.clone(), 1_700_000_100_000)],
            1_700_000_050_000,
            240_000,
            "http://c:9464",
        );
        assert_eq!(v[0]["labels"]["alertname"], "auth_failing_broadly");
        assert_eq!(v[0]["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v[0]["endsAt"], "2023-11-14T22:18:10.000Z");
        assert_eq!(v[0]["generatorURL"], "http://c:9464/api/v1/incidents/7");
        assert_eq!(v[1]["endsAt"], "2023-11-14T22:15:00.000Z");
    }
}
