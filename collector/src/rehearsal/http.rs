//! The JSON routes of restore rehearsals and contact points, served by
//! `http` (read-only, from the rehearsal task's view and the config):
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/api/v1/rehearsals?status=&limit=` | newest start first, with the scenarios' RTOs |
//! | GET | `/api/v1/rehearsals/AGENT/ID` | one rehearsal |
//! | GET | `/api/v1/contacts` | the named contact points |

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;

use super::task::RehearsalHandle;
use super::Status;
use crate::contacts::Contact;

/// Most rehearsals one listing returns.
pub const MAX_PAGE: usize = 1_000;

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

fn error(status: StatusCode, msg: &str) -> Resp {
    json(status, &serde_json::json!({ "error": msg }))
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// The listing as JSON (`status` filters; at most `limit`).
pub fn list_json(h: &RehearsalHandle, status: Option<Status>, limit: usize) -> serde_json::Value {
    let now = h.clock.now_ms();
    let view = h.view.borrow().clone();
    let abandon = h.config.abandon_after_ms;
    let list: Vec<serde_json::Value> = view
        .records
        .iter()
        .filter(|r| status.is_none_or(|s| r.status(now, abandon) == s))
        .take(limit)
        .map(|r| r.json(now, abandon))
        .collect();
    serde_json::json!({
        "rehearsals": list,
        "default_scenario": h.config.default_scenario,
        "scenarios": h.config.rto_ms.iter().map(|(name, rto)| serde_json::json!({
            "name": name, "rto_seconds": rto / 1000,
        })).collect::<Vec<_>>(),
        "held": view.records.len(),
        "evicted": view.evicted,
    })
}

/// Serves the routes above; `None` when the path is not one of them.
pub fn route<B>(
    req: &Request<B>,
    rehearsals: Option<&RehearsalHandle>,
    contacts: &[Contact],
) -> Option<Resp> {
    let path = req.uri().path();
    let ours = path == "/api/v1/rehearsals"
        || path.starts_with("/api/v1/rehearsals/")
        || path == "/api/v1/contacts";
    if !ours {
        return None;
    }
    if req.method() != Method::GET {
        return Some(error(StatusCode::METHOD_NOT_ALLOWED, "only GET is served"));
    }
    if path == "/api/v1/contacts" {
        return Some(json(
            StatusCode::OK,
            &serde_json::json!({ "contacts": contacts.iter().map(Contact::json).collect::<Vec<_>>() }),
        ));
    }
    let Some(h) = rehearsals else {
        return Some(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "rehearsals are not recorded by this collector",
        ));
    };
    let query = req.uri().query().unwrap_or("");
    let segments: Vec<&str> = path.trim_start_matches("/api/v1/").split('/').collect();
    Some(match segments.as_slice() {
        ["rehearsals"] => {
            let status = match query_param(query, "status") {
                None | Some("") | Some("all") => None,
                Some(s) => match Status::ALL.into_iter().find(|x| x.as_str() == s) {
                    Some(x) => Some(x),
                    None => {
                        return Some(error(
                            StatusCode::BAD_REQUEST,
                            "status must be running, met, missed, not_green, abandoned or all",
                        ))
                    }
                },
            };
            let limit = query_param(query, "limit")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100)
                .min(MAX_PAGE);
            json(StatusCode::OK, &list_json(h, status, limit))
        }
        ["rehearsals", agent, id] => {
            let now = h.clock.now_ms();
            let view = h.view.borrow().clone();
            match view
                .records
                .iter()
                .find(|r| r.agent == *agent && r.id == *id)
            {
                Some(r) => json(StatusCode::OK, &r.json(now, h.config.abandon_after_ms)),
                None => error(StatusCode::NOT_FOUND, "no such rehearsal"),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "use /api/v1/rehearsals or /api/v1/rehearsals/AGENT/ID",
        ),
    })
}
