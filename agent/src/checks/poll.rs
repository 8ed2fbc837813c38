//! Shared pieces of the polling kinds (`report`, `command`): request
//! settings, the poll URL, and waiting for the next poll within a window.

use std::time::Duration;

use http::{HeaderValue, Method, Uri};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use toml::Spanned;

use super::page::parse_http_url;
use crate::config::{ConfigError, Source};
use crate::http::{resolve_location, Request, Response};

/// Shortest poll interval accepted.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How the first request of a polling check is made, as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSubmit {
    pub method: Option<Spanned<String>>,
    pub body: Option<String>,
    pub content_type: Option<String>,
}

/// Builds the first request: `method` (default POST with a body, GET
/// without), body and content type (default `application/json`).
pub fn submit_request(
    src: &Source<'_>,
    url: Uri,
    method: Option<&Spanned<String>>,
    body: Option<String>,
    content_type: Option<String>,
    default_post: bool,
) -> Result<Request, ConfigError> {
    let method = match method.map(|m| m.get_ref().to_ascii_uppercase()) {
        None if body.is_some() || default_post => Method::POST,
        None => Method::GET,
        Some(m) if m == "GET" || m == "POST" || m == "PUT" => {
            Method::from_bytes(m.as_bytes()).unwrap_or(Method::POST)
        }
        Some(_) => {
            let m = method.map_or(0..0, Spanned::span);
            return Err(src.error(
                m,
                "`method` must be GET, POST or PUT",
                "write method = \"POST\" (the default with a body) or \"GET\"",
            ));
        }
    };
    let mut req = Request::get(url);
    req.method = method;
    if let Some(body) = body {
        req.body = body.into();
        let ct = content_type.unwrap_or_else(|| "application/json".into());
        let v = HeaderValue::from_str(&ct).map_err(|_| {
            src.error(
                0..0,
                format!("`content_type` {ct:?} is not a header value"),
                "write a media type such as \"application/json\"",
            )
        })?;
        req.headers.insert(http::header::CONTENT_TYPE, v);
    }
    req.headers.insert(
        http::header::ACCEPT,
        HeaderValue::from_static("application/json, text/html;q=0.9, */*;q=0.5"),
    );
    Ok(req)
}

/// Validates a poll URL template (`{id}` is replaced by the answer's id).
pub fn template(src: &Source<'_>, raw: &Spanned<String>) -> Result<String, ConfigError> {
    let probe = Spanned::new(raw.span(), raw.get_ref().replace("{id}", "x"));
    parse_http_url(src, &probe)?;
    Ok(raw.get_ref().clone())
}

/// The id in a JSON answer at `pointer` (a string or a number).
pub fn id_at(doc: &Value, pointer: &str) -> Option<String> {
    match doc.pointer(pointer)? {
        Value::String(s) if !s.is_empty() && s.len() <= 256 => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Where to poll: the template with `{id}` (percent-encoded), else the
/// answer's `Location`, else `fallback`.
pub fn poll_url(
    template: Option<&str>,
    id: Option<&str>,
    first: &Response,
    fallback: Option<&Uri>,
) -> Result<Uri, String> {
    if let Some(t) = template {
        let url = if t.contains("{id}") {
            let id = id.ok_or("the answer has no id for the poll URL")?;
            t.replace("{id}", &crate::http::encode_form([("", id)])[1..])
        } else {
            t.to_string()
        };
        return url
            .parse()
            .map_err(|_| "the poll URL is not valid".to_string());
    }
    if let Some(loc) = first.headers.get(http::header::LOCATION) {
        return resolve_location(&first.final_url, loc).map_err(|e| e.to_string());
    }
    fallback
        .cloned()
        .ok_or_else(|| "the answer has no Location to poll and no poll URL is configured".into())
}

/// Validates `poll_interval` (default `default`, at least 100 ms).
pub fn interval(
    src: &Source<'_>,
    raw: Option<&Spanned<String>>,
    default: Duration,
    window: Duration,
) -> Result<Duration, ConfigError> {
    let Some(raw) = raw else {
        return Ok(default.min(window));
    };
    let d = src.duration(raw, "poll_interval")?;
    if d < MIN_POLL_INTERVAL || d > window {
        return Err(src.error(
            raw.span(),
            "`poll_interval` must be at least 100ms and no longer than the window",
            "write e.g. poll_interval = \"2s\"",
        ));
    }
    Ok(d)
}

/// Waits until `next`; `false` (without waiting) when that is past
/// `window_end`.
pub async fn wait_for(next: Instant, window_end: Instant) -> bool {
    if next > window_end {
        return false;
    }
    tokio::time::sleep_until(next).await;
    true
}
