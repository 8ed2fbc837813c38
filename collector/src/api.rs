//! The evaluation's JSON API, served by `http`:
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/api/v1/slo` | objectives: SLI, burn, budget, completeness per window and site; alerts |
//! | GET | `/api/v1/incidents?state=&limit=&timeline=1` | newest first |
//! | GET | `/api/v1/incidents/ID` | one incident with its timeline |
//! | POST | `/api/v1/incidents/ID/ack` | body `{"by": "name"}` (optional) — token |
//! | POST | `/api/v1/incidents/ID/close` | body `{"root_cause": "..."}` — token |
//! | GET | `/api/v1/warnings` | active warnings |
//! | GET/POST | `/api/v1/maintenance` | list / add `{name, start, duration, every?, match?, reason?}` — token |
//! | DELETE | `/api/v1/maintenance/NAME` | remove an API window — token |
//!
//! Write calls need `Authorization: Bearer <token>` (the `[api] token_file`;
//! without it they are refused with 403). The token is compared in
//! constant time and never logged. Request bodies are bounded
//! ([`MAX_BODY`]); handlers own no state (they ask the evaluator).

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::config::evaluation::Secret;
use crate::escalation::Signal;
use crate::evaluator::{CommandError, EvaluatorHandle, Snapshot};
use crate::incidents::{Incident, IncidentError, State};
use crate::maintenance::{self, Origin, WindowError};
use crate::notify::rfc3339;
use crate::slo::eval::WindowStats;

/// Largest request body read.
pub const MAX_BODY: usize = 64 * 1024;
/// Most incidents one listing returns.
pub const MAX_INCIDENTS_PAGE: usize = 1_000;

/// What the evaluation routes need.
#[derive(Clone)]
pub struct ApiState {
    pub evaluator: EvaluatorHandle,
    pub token: Option<Secret>,
}

type Resp = Response<Full<Bytes>>;

fn json(status: StatusCode, v: &serde_json::Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    h.insert(
        "cache-control",
        header::HeaderValue::from_static("no-store"),
    );
    h.insert(
        "x-content-type-options",
        header::HeaderValue::from_static("nosniff"),
    );
    r
}

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Resp {
    json(status, &serde_json::json!({ "error": msg.to_string() }))
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The refusal of a write call, if it is not authorized.
fn refuse<B>(req: &Request<B>, token: &Option<Secret>) -> Option<Resp> {
    let Some(token) = token else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "write calls are disabled: configure [api] token_file on the collector",
        ));
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.trim().as_bytes(), token.expose().as_bytes()) {
        None
    } else {
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        Some(r)
    }
}

async fn body<T: for<'de> Deserialize<'de> + Default>(req: Request<Incoming>) -> Result<T, Resp> {
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body: {e} (limit {MAX_BODY} bytes)"),
            )
        })?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

fn command_error(e: CommandError) -> Resp {
    let status = match &e {
        CommandError::Incident(IncidentError::NotFound(_))
        | CommandError::Window(WindowError::NotFound(_)) => StatusCode::NOT_FOUND,
        CommandError::Incident(IncidentError::BadText(_)) => StatusCode::BAD_REQUEST,
        CommandError::Incident(_) | CommandError::Window(WindowError::Exists(_)) => {
            StatusCode::CONFLICT
        }
        CommandError::Window(_) => StatusCode::BAD_REQUEST,
        CommandError::Store(_) | CommandError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    root_cause: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowBody {
    name: String,
    start: String,
    duration: String,
    every: Option<String>,
    #[serde(rename = "match", default)]
    matcher: BTreeMap<String, String>,
    reason: Option<String>,
}

fn parse_window(b: WindowBody) -> Result<maintenance::Window, String> {
    let start = humantime::parse_rfc3339_weak(b.start.trim()).map_err(|e| {
        format!(
            "start {:?}: {e}; write RFC 3339 UTC, e.g. 2025-01-05T02:00:00Z",
            b.start
        )
    })?;
    let start_ms = start
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let dur = |s: &str, f: &str| {
        humantime::parse_duration(s.trim())
            .map(|d| d.as_millis() as i64)
            .map_err(|e| format!("{f} {s:?}: {e}; write e.g. \"2h\""))
    };
    let reason = b.reason.unwrap_or_default();
    if reason.len() > 1024 {
        return Err("reason is longer than 1024 bytes".into());
    }
    let w = maintenance::Window {
        name: b.name,
        start_ms,
        duration_ms: dur(&b.duration, "duration")?,
        every_ms: match b.every {
            Some(e) => Some(dur(&e, "every")?),
            None => None,
        },
        selector: b.matcher,
        reason,
        origin: Origin::Api,
    };
    w.validate().map_err(|e| e.to_string())?;
    Ok(w)
}

/// Serves the evaluation routes; gives the request back when the path is
/// not one of them.
pub async fn route(
    req: Request<Incoming>,
    api: Option<&ApiState>,
) -> Result<Resp, Request<Incoming>> {
    let path = req.uri().path().to_string();
    let ours = path == "/api/v1/slo"
        || path == "/api/v1/warnings"
        || path == "/api/v1/incidents"
        || path.starts_with("/api/v1/incidents/")
        || path == "/api/v1/maintenance"
        || path.starts_with("/api/v1/maintenance/");
    if !ours {
        return Err(req);
    }
    let Some(api) = api else {
        return Ok(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the evaluation is not running",
        ));
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let ev = &api.evaluator;
    let now = ev.clock.now_ms();
    let segments: Vec<&str> = path.trim_start_matches("/api/v1/").split('/').collect();
    let r = match (method.clone(), segments.as_slice()) {
        (Method::GET, ["slo"]) => json(StatusCode::OK, &slo_json(&ev.snapshot.borrow())),
        (Method::GET, ["warnings"]) => {
            let snap = ev.snapshot.borrow().clone();
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "warnings": snap.warnings.iter().map(|w| {
                        let mut v = signal_json(&w.signal);
                        v["since"] = rfc3339(w.since_ms).into();
                        v
                    }).collect::<Vec<_>>()
                }),
            )
        }
        (Method::GET, ["incidents"]) => {
            let state = match query_param(&query, "state") {
                None | Some("") | Some("all") => None,
                Some(s) => match [
                    State::Open,
                    State::Acknowledged,
                    State::Resolved,
                    State::Closed,
                ]
                .into_iter()
                .find(|x| x.as_str() == s)
                {
                    Some(x) => Some(x),
                    None => {
                        return Ok(error(
                            StatusCode::BAD_REQUEST,
                            "state must be open, acknowledged, resolved, closed or all",
                        ))
                    }
                },
            };
            let limit = query_param(&query, "limit")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100)
                .min(MAX_INCIDENTS_PAGE);
            let timeline = query_param(&query, "timeline") == Some("1");
            match ev.incidents(state, limit).await {
                Ok(list) => json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "incidents": list.iter().map(|i| incident_json_with_contacts(i, now, timeline, &ev.snapshot.borrow())).collect::<Vec<_>>()
                    }),
                ),
                Err(e) => command_error(e),
            }
        }
        (m, ["incidents", id, rest @ ..]) => {
            let Ok(id) = id.parse::<u64>() else {
                return Ok(error(StatusCode::BAD_REQUEST, "incident ids are numbers"));
            };
            match (m, rest) {
                (Method::GET, []) => match ev.incident(id).await {
                    Ok(Some(i)) => json(
                        StatusCode::OK,
                        &incident_json_with_contacts(&i, now, true, &ev.snapshot.borrow()),
                    ),
                    Ok(None) => error(StatusCode::NOT_FOUND, format!("no incident {id}")),
                    Err(e) => command_error(e),
                },
                (Method::POST, ["ack"]) => {
                    if let Some(r) = refuse(&req, &api.token) {
                        return Ok(r);
                    }
                    let b: AckBody = match body(req).await {
                        Ok(b) => b,
                        Err(r) => return Ok(r),
                    };
                    match ev.ack(id, b.by.unwrap_or_default()).await {
                        Ok(i) => json(
                            StatusCode::OK,
                            &incident_json_with_contacts(&i, now, true, &ev.snapshot.borrow()),
                        ),
                        Err(e) => command_error(e),
                    }
                }
                (Method::POST, ["close"]) => {
                    if let Some(r) = refuse(&req, &api.token) {
                        return Ok(r);
                    }
                    let b: CloseBody = match body(req).await {
                        Ok(b) => b,
                        Err(r) => return Ok(r),
                    };
                    match ev.close(id, b.root_cause.unwrap_or_default()).await {
                        Ok(i) => json(
                            StatusCode::OK,
                            &incident_json_with_contacts(&i, now, true, &ev.snapshot.borrow()),
                        ),
                        Err(e) => command_error(e),
                    }
                }
                _ => error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "use GET /api/v1/incidents/ID, POST .../ack or POST .../close",
                ),
            }
        }
        (Method::GET, ["maintenance"]) => match ev.windows().await {
            Ok(ws) => json(
                StatusCode::OK,
                &serde_json::json!({
                    "windows": ws.iter().map(|w| window_json(w, now)).collect::<Vec<_>>()
                }),
            ),
            Err(e) => command_error(e),
        },
        (Method::POST, ["maintenance"]) => {
            if let Some(r) = refuse(&req, &api.token) {
                return Ok(r);
            }
            let b: WindowBody = match body(req).await {
                Ok(b) => b,
                Err(r) => return Ok(r),
            };
            match parse_window(b) {
                Err(msg) => error(StatusCode::BAD_REQUEST, msg),
                Ok(w) => match ev.add_window(w.clone()).await {
                    Ok(()) => json(StatusCode::CREATED, &window_json(&w, now)),
                    Err(e) => command_error(e),
                },
            }
        }
        (Method::DELETE, ["maintenance", name]) => {
            if let Some(r) = refuse(&req, &api.token) {
                return Ok(r);
            }
            match ev.remove_window(name.to_string()).await {
                Ok(w) => json(StatusCode::OK, &window_json(&w, now)),
                Err(e) => command_error(e),
            }
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} {path} is not served"),
        ),
    };
    Ok(r)
}

fn opt_ms(v: Option<i64>) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, |t| rfc3339(t).into())
}

/// One incident as JSON (webhooks and the API).
pub fn incident_json(i: &Incident, now_ms: i64, timeline: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": i.id,
        "rule": i.rule,
        "scope": i.scope,
        "severity": i.severity.as_str(),
        "state": i.state.as_str(),
        "summary": i.summary,
        "labels": i.labels,
        "historical": i.historical,
        "started": rfc3339(i.started_ms),
        "opened": rfc3339(i.opened_ms),
        "acknowledged": opt_ms(i.acked_ms),
        "acknowledged_by": i.acked_by,
        "resolved": opt_ms(i.resolved_ms),
        "closed": opt_ms(i.closed_ms),
        "root_cause": i.root_cause,
        "escalation_level": i.escalation_level,
        "time_to_acknowledge_seconds": i.time_to_ack_ms().map(|t| t as f64 / 1000.0),
        "scenario": i.scenario,
        "rto_seconds": i.rto_ms / 1000,
        "outage_seconds": i.outage_ms(now_ms) / 1000,
        "rto": match (i.historical, i.rto_met(now_ms)) {
            (true, _) => "n/a",
            (false, Some(true)) => "met",
            (false, Some(false)) => "missed",
            (false, None) => "pending",
        },
        "series": i.series.iter().map(|(a, c)| serde_json::json!({"agent": a, "check": c})).collect::<Vec<_>>(),
    });
    if timeline {
        v["timeline"] = i
            .timeline
            .iter()
            .map(|e| serde_json::json!({"at": rfc3339(e.at_ms), "kind": e.kind, "text": e.text}))
            .collect::<Vec<_>>()
            .into();
        v["timeline_dropped"] = i.timeline_dropped.into();
    }
    v
}

/// `incident_json` plus the incident's named contact points (from the
/// snapshot: the contacts of the objectives and modules it concerns).
pub fn incident_json_with_contacts(
    i: &Incident,
    now_ms: i64,
    timeline: bool,
    snap: &Snapshot,
) -> serde_json::Value {
    let mut v = incident_json(i, now_ms, timeline);
    let names = snap.incident_contacts.get(&i.id);
    v["contacts"] = snap
        .contacts
        .iter()
        .filter(|c| names.is_some_and(|n| n.contains(&c.name)))
        .map(crate::contacts::Contact::json)
        .collect::<Vec<_>>()
        .into();
    v
}

/// A signal (warning) as JSON.
pub fn signal_json(s: &Signal) -> serde_json::Value {
    serde_json::json!({
        "rule": s.rule,
        "scope": s.scope,
        "severity": s.severity.as_str(),
        "summary": s.summary,
        "started": rfc3339(s.started_ms),
        "labels": s.labels,
        "series": s.series.iter().map(|(a, c)| serde_json::json!({"agent": a, "check": c})).collect::<Vec<_>>(),
    })
}

fn window_json(w: &maintenance::Window, now_ms: i64) -> serde_json::Value {
    serde_json::json!({
        "name": w.name,
        "start": rfc3339(w.start_ms),
        "duration_seconds": w.duration_ms / 1000,
        "every_seconds": w.every_ms.map(|e| e / 1000),
        "match": w.selector,
        "reason": w.reason,
        "origin": match w.origin { Origin::Config => "config", Origin::Api => "api" },
        "active": w.active_at(now_ms),
    })
}

fn stats_json(s: &WindowStats, target: f64) -> serde_json::Value {
    serde_json::json!({
        "window": s.window.name(),
        "sli": s.sli(),
        "burn_rate": s.burn_rate(target),
        "error_budget_remaining": s.budget_remaining(target),
        "good": s.counts.good,
        "bad": s.counts.bad,
        "excluded": s.counts.excluded,
        "maintenance": s.counts.maintenance,
        "expected_runs": s.expected,
        "completeness": s.completeness(),
        "sites_reporting": s.sites_reporting,
    })
}

/// The SLO report as JSON.
pub fn slo_json(snap: &Snapshot) -> serde_json::Value {
    let objectives: Vec<serde_json::Value> = snap
        .objectives
        .iter()
        .zip(&snap.reports)
        .map(|(o, r)| {
            serde_json::json!({
                "name": o.name,
                "description": o.description,
                "target": o.target,
                "kind": match o.source {
                    crate::slo::objective::Source::Results { .. } => "results",
                    crate::slo::objective::Source::Acknowledgement { .. } => "acknowledgement",
                },
                "firing": r.firing().map(|l| l.as_str()),
                "alerts": r.alerts.iter().map(|a| serde_json::json!({
                    "level": a.rule.level.as_str(),
                    "long_window": a.rule.long.name(),
                    "short_window": a.rule.short.name(),
                    "factor": a.rule.factor,
                    "burn_long": a.burn_long,
                    "burn_short": a.burn_short,
                    "held_by_guard": a.guarded,
                })).collect::<Vec<_>>(),
                "windows": r.windows.iter().map(|w| stats_json(w, o.target)).collect::<Vec<_>>(),
                "sites": r.sites.iter().map(|s| serde_json::json!({
                    "site": s.site,
                    "windows": s.windows.iter().map(|w| stats_json(w, o.target)).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "evaluated_at": (snap.at_ms > 0).then(|| rfc3339(snap.at_ms)),
        "objectives": objectives,
        "maintenance_active": snap.maintenance_active,
        "active_incidents": snap.active.len(),
        "warnings": snap.warnings.len(),
    })
}
