//! The collector's HTTP side: `/metrics`, `/healthz`, the JSON API and
//! the status page. Handlers only read the live view or ask the store
//! task (or, for the evaluation's routes in `api`, the evaluator); they own
//! no state.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (further ones
//! wait in the kernel backlog), request bodies are read only by the
//! evaluation's write calls (bounded by `api::MAX_BODY`), a result listing
//! returns at most [`MAX_RESULTS_PAGE`] entries.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::live::Live;
use crate::metrics;
use crate::store::StoreHandle;

/// Concurrent HTTP connections served.
pub const MAX_CONNECTIONS: usize = 256;
/// Most results one API call returns.
pub const MAX_RESULTS_PAGE: usize = 10_000;

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    pub live: Arc<Mutex<Live>>,
    pub store: StoreHandle,
    /// The evaluation's routes (`api`): SLOs, incidents, maintenance.
    pub api: Option<crate::api::ApiState>,
    /// Receivers' counters, for /metrics.
    pub notify: crate::notify::NotifyStats,
    /// Restore rehearsals (`/api/v1/rehearsals`, status page, metrics).
    pub rehearsals: Option<crate::rehearsal::task::RehearsalHandle>,
    /// Named contact points (`/api/v1/contacts`).
    pub contacts: Arc<Vec<crate::contacts::Contact>>,
}

/// Serves until `shutdown` is cancelled; connections are tracked and
/// finish their current request.
pub async fn serve(listener: TcpListener, state: HttpState, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    continue;
                }
            },
        };
        let state = state.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(req, &state).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    tracker.close();
    tracker.wait().await;
}

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    let h = r.headers_mut();
    h.insert(
        "x-content-type-options",
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "cache-control",
        header::HeaderValue::from_static("no-store"),
    );
    r
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    respond(status, "application/json", value.to_string())
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

async fn route(req: Request<Incoming>, state: &HttpState) -> Response<Full<Bytes>> {
    let req = match crate::api::route(req, state.api.as_ref()).await {
        Ok(response) => return response,
        Err(req) => req,
    };
    if let Some(r) = crate::rehearsal::http::route(&req, state.rehearsals.as_ref(), &state.contacts)
    {
        return r;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": "only GET is served"}),
        );
    }
    let query = req.uri().query().unwrap_or("");
    match req.uri().path() {
        "/metrics" => {
            let mut text = metrics::render(&state.live.lock().unwrap_or_else(|p| p.into_inner()));
            if let Some(api) = &state.api {
                let snap = api.evaluator.snapshot.borrow().clone();
                let notify = state
                    .notify
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                text.push_str(&metrics::render_evaluation(&snap, &notify));
            }
            if let Some(r) = &state.rehearsals {
                text.push_str(&metrics::render_rehearsals(r));
            }
            respond(StatusCode::OK, metrics::CONTENT_TYPE, text)
        }
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n"),
        "/api/v1/agents" => json(
            StatusCode::OK,
            &agents_json(&state.live.lock().unwrap_or_else(|p| p.into_inner())),
        ),
        "/api/v1/results" => {
            let Some(agent) =
                query_param(query, "agent").filter(|a| crate::ingest::convert::valid_id(a))
            else {
                return json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({"error": "give ?agent=ID (and optionally after=SEQ, limit=N)"}),
                );
            };
            let after = query_param(query, "after")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let limit = query_param(query, "limit")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000)
                .min(MAX_RESULTS_PAGE);
            match state.store.results(agent.to_string(), after, limit).await {
                Ok(rs) => json(
                    StatusCode::OK,
                    &serde_json::json!({ "agent": agent, "results": rs.iter().map(result_json).collect::<Vec<_>>() }),
                ),
                Err(e) => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({"error": e.to_string()}),
                ),
            }
        }
        "/" => {
            let html = status_page_html(state);
            let mut r = respond(StatusCode::OK, "text/html; charset=utf-8", html);
            r.headers_mut().insert(
                "content-security-policy",
                header::HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                ),
            );
            r.headers_mut()
                .insert("x-frame-options", header::HeaderValue::from_static("DENY"));
            r
        }
        _ => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "not found", "see": ["/", "/metrics", "/healthz", "/api/v1/agents", "/api/v1/results?agent=ID", "/api/v1/slo", "/api/v1/incidents", "/api/v1/warnings", "/api/v1/maintenance"]}),
        ),
    }
}

/// The status page: the evaluation's JSON (as `/api/v1/slo` and
/// `/api/v1/incidents` serve it, from the snapshot) and the live view.
fn status_page_html(state: &HttpState) -> String {
    let eval = state.api.as_ref().map(|api| {
        let now = api.evaluator.clock.now_ms();
        let snap = api.evaluator.snapshot.borrow().clone();
        let incidents: Vec<serde_json::Value> = snap
            .active
            .iter()
            .map(|i| crate::api::incident_json(i, now, false))
            .collect();
        (crate::api::slo_json(&snap), incidents, now)
    });
    let rehearsals = state.rehearsals.as_ref().map(|r| {
        crate::rehearsal::http::list_json(r, None, crate::status_page::rehearsals::MAX_SHOWN)
    });
    let live = state.live.lock().unwrap_or_else(|p| p.into_inner());
    match &eval {
        Some((slo, incidents, now)) => crate::status_page::render_with_rehearsals(
            &live,
            Some(crate::status_page::Evaluation { slo, incidents }),
            rehearsals.as_ref(),
            *now,
        ),
        None => crate::status_page::render_with_rehearsals(
            &live,
            None,
            rehearsals.as_ref(),
            crate::store::now_unix_ms(),
        ),
    }
}

fn result_json(r: &crate::model::ResultRecord) -> serde_json::Value {
    serde_json::json!({
        "seq": r.seq,
        "check": r.check,
        "kind": r.kind,
        "labels": r.labels,
        "started_unix_ms": r.started_unix_ms,
        "received_unix_ms": r.received_unix_ms,
        "duration_us": r.duration_us,
        "outcome": r.outcome.as_str(),
        "http_status": r.http_status,
        "error": r.error,
        "value": r.value,
        "confirmation": r.confirmation,
        "tls_cert_days_left": r.tls_cert_days_left,
        "phases_us": {
            "dns": r.phases.dns_us, "connect": r.phases.connect_us, "tls": r.phases.tls_us,
            "first_byte": r.phases.first_byte_us, "total": r.phases.total_us,
        },
    })
}

fn agents_json(live: &Live) -> serde_json::Value {
    let agents: Vec<_> = live
        .agents
        .iter()
        .map(|(id, a)| {
            let s = &a.state;
            serde_json::json!({
                "agent": id,
                "connected": a.connected_streams > 0,
                "version": s.version,
                "labels": s.labels,
                "hwm": s.hwm,
                "origin": s.origin,
                "stored": s.stored,
                "duplicates": s.duplicates,
                "gap_results": s.gap_results,
                "buffer_resets": s.buffer_resets,
                "last_seen_unix_ms": s.last_seen_unix_ms,
                "clock_offset_ms": s.clock_offset_ms,
                "footprint": {
                    "rss_bytes": s.footprint.rss_bytes,
                    "cpu_seconds_total": s.footprint.cpu_seconds_total,
                    "buffer_entries": s.footprint.buffer_entries,
                    "buffer_bytes": s.footprint.buffer_bytes,
                    "oldest_unsent_age_seconds": s.footprint.oldest_unsent_age_seconds,
                    "dropped_total": s.footprint.dropped_total,
                },
            })
        })
        .collect();
    serde_json::json!({ "agents": agents })
}
