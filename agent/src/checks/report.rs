//! `report`: an asynchronous report with an extended wait window.
//!
//! The check requests the report (`url`, POST by default), then polls
//! (`poll_url`, else the answer's `Location`, else `url` with GET) every
//! `poll_interval` while the answer says *pending* — a status in
//! `pending_status` (default 202) or a body with `pending_marker` — until
//! it is *ready* (a 2xx with `ready_marker` when one is set) or the
//! `window` (default: the check's timeout) runs out.
//!
//! Results: the final one is `ok`, or `degraded` when the time to ready is
//! over `latency_bound`; `timeout` when the window ended while pending;
//! `failed` for an error status, a `failed_marker`, or a broken answer;
//! `access_denied` for 401/403 after a login. Its value is the time to
//! ready (or waited) in seconds.
//!
//! **Intermediate `pending` results**: while the report is still pending,
//! one `pending` result is recorded per `pending_every` (default 30 s) of
//! waiting, stamped with the poll that saw it and carrying the seconds
//! waited so far. They are recorded with the final result when the run ends
//! (a run is one check execution: the scheduler never overlaps it), so a
//! report that takes 95 s yields `pending` at 30, 60 and 90 s, then `ok`.
//! `pending` is never final and never counted against an objective.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Uri};
use serde::Deserialize;
use tokio::time::Instant;
use toml::Spanned;

use super::{add_phases, poll, BoxFuture, Check, Observation, Related, RunContext, MAX_RELATED};
use crate::config::{ConfigError, Source};
use crate::http::{Request, Response};
use crate::result::{Outcome, Phases};
use crate::session::Slot;

/// The kind's name.
pub const KIND: &str = "report";

/// `[check.report]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    url: Spanned<String>,
    method: Option<Spanned<String>>,
    body: Option<String>,
    content_type: Option<String>,
    poll_url: Option<Spanned<String>>,
    id_pointer: Option<String>,
    poll_interval: Option<Spanned<String>>,
    window: Option<Spanned<String>>,
    pending_status: Option<Vec<u16>>,
    pending_marker: Option<String>,
    ready_marker: Option<String>,
    failed_marker: Option<String>,
    latency_bound: Option<Spanned<String>>,
    pending_every: Option<Spanned<String>>,
    max_body_bytes: Option<Spanned<u64>>,
}

/// Validated report settings.
#[derive(Debug, Clone)]
pub struct ReportSpec {
    pub request: Request,
    pub poll_url: Option<String>,
    pub id_pointer: String,
    pub poll_interval: Duration,
    pub window: Duration,
    pub pending_status: Vec<u16>,
    pub pending_marker: Option<String>,
    pub ready_marker: Option<String>,
    pub failed_marker: Option<String>,
    pub latency_bound: Option<Duration>,
    pub pending_every: Duration,
}

/// Validates `[check.report]`.
pub fn validate(
    src: &Source<'_>,
    raw: Spanned<RawReport>,
    timeout: Duration,
) -> Result<ReportSpec, ConfigError> {
    let raw = raw.into_inner();
    let url = super::page::parse_http_url(src, &raw.url)?;
    let mut request = poll::submit_request(
        src,
        url,
        raw.method.as_ref(),
        raw.body,
        raw.content_type,
        true,
    )?;
    request.max_body_bytes = super::body_limit(src, raw.max_body_bytes.as_ref())?;
    let window = match &raw.window {
        None => timeout,
        Some(w) => super::bounded_duration(src, w, "window", timeout, "the check's timeout")?,
    };
    let poll_interval = poll::interval(
        src,
        raw.poll_interval.as_ref(),
        Duration::from_secs(2),
        window,
    )?;
    let poll_url = raw
        .poll_url
        .as_ref()
        .map(|p| poll::template(src, p))
        .transpose()?;
    let latency_bound = raw
        .latency_bound
        .as_ref()
        .map(|l| super::bounded_duration(src, l, "latency_bound", window, "the window"))
        .transpose()?;
    let pending_every = match &raw.pending_every {
        None => Duration::from_secs(30),
        Some(p) => {
            let d = src.duration(p, "pending_every")?;
            if d < Duration::from_secs(1) {
                return Err(src.error(
                    p.span(),
                    "`pending_every` must be at least 1s",
                    "write e.g. pending_every = \"30s\"",
                ));
            }
            d
        }
    };
    Ok(ReportSpec {
        request,
        poll_url,
        id_pointer: raw.id_pointer.unwrap_or_else(|| "/id".into()),
        poll_interval,
        window,
        pending_status: raw.pending_status.unwrap_or_else(|| vec![202]),
        pending_marker: raw.pending_marker,
        ready_marker: raw.ready_marker,
        failed_marker: raw.failed_marker,
        latency_bound,
        pending_every,
    })
}

/// What one answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Pending,
    Ready,
    Denied(u16),
    Failed(String),
}

/// Pure classification of one answer.
pub fn classify(spec: &ReportSpec, resp: &Response) -> Answer {
    let status = resp.status.as_u16();
    if status == 401 || status == 403 {
        return Answer::Denied(status);
    }
    let body = String::from_utf8_lossy(&resp.body);
    if let Some(m) = &spec.failed_marker {
        if body.contains(m.as_str()) {
            return Answer::Failed(format!(
                "the report says {:?}",
                m.chars().take(64).collect::<String>()
            ));
        }
    }
    if spec.pending_status.contains(&status)
        || spec
            .pending_marker
            .as_ref()
            .is_some_and(|m| body.contains(m.as_str()))
    {
        return Answer::Pending;
    }
    if !resp.status.is_success() {
        return Answer::Failed(format!("unexpected status {status}"));
    }
    match &spec.ready_marker {
        Some(m) if !body.contains(m.as_str()) => Answer::Pending,
        _ => Answer::Ready,
    }
}

/// A runnable report check.
#[derive(Debug)]
pub struct Report {
    spec: ReportSpec,
    session: Option<Arc<Slot>>,
}

impl Report {
    pub fn new(spec: ReportSpec, session: Option<Arc<Slot>>) -> Self {
        Report { spec, session }
    }
}

struct Progress {
    phases: Phases,
    status: Option<u16>,
    cert: Option<f64>,
}

impl Progress {
    fn obs(&self, outcome: Outcome, error: impl Into<String>, value: Option<f64>) -> Observation {
        Observation {
            phases: self.phases,
            http_status: self.status,
            tls_cert_days_left: self.cert,
            value,
            ..Observation::bare(outcome, error)
        }
    }
}

impl Report {
    async fn send(
        &self,
        ctx: &RunContext,
        req: &Request,
        p: &mut Progress,
    ) -> Result<Response, Observation> {
        let exchange = super::send_with_session(ctx, self.session.as_ref(), req).await?;
        add_phases(&mut p.phases, &exchange.phases);
        match exchange.result {
            Ok(r) => {
                p.status = Some(r.status.as_u16());
                p.cert = r.tls_cert_days_left.or(p.cert);
                Ok(r)
            }
            Err(e) => Err(Observation {
                http_status: p.status,
                ..Observation::from_http_error(&e, p.phases)
            }),
        }
    }

    async fn run_inner(&self, ctx: &RunContext) -> Observation {
        let spec = &self.spec;
        let t0 = Instant::now();
        let window_end = (t0 + spec.window).min(ctx.deadline);
        let mut p = Progress {
            phases: Phases::default(),
            status: None,
            cert: None,
        };
        let mut pending = Vec::new();
        let first = match self.send(ctx, &spec.request, &mut p).await {
            Ok(r) => r,
            Err(o) => return o,
        };
        let mut answer = classify(spec, &first);
        let mut poll_req = None;
        loop {
            let waited = t0.elapsed();
            match answer {
                Answer::Ready => {
                    let secs = Some(waited.as_secs_f64());
                    let mut o = match spec.latency_bound {
                        Some(b) if waited > b => p.obs(
                            Outcome::Degraded,
                            format!(
                                "ready after {} ms, bound {} ms",
                                waited.as_millis(),
                                b.as_millis()
                            ),
                            secs,
                        ),
                        _ => p.obs(Outcome::Ok, "", secs),
                    };
                    o.related = pending;
                    return o;
                }
                Answer::Denied(s) => {
                    return p.obs(Outcome::AccessDenied, format!("status {s}"), None)
                }
                Answer::Failed(e) => {
                    let mut o = p.obs(Outcome::Failed, e, Some(waited.as_secs_f64()));
                    o.related = pending;
                    return o;
                }
                Answer::Pending => {}
            }
            let req = match &poll_req {
                Some(r) => r,
                None => {
                    let doc = super::json::parse(&first.body).ok();
                    let id = doc.as_ref().and_then(|d| poll::id_at(d, &spec.id_pointer));
                    let fallback =
                        (spec.request.method == Method::GET).then_some(&spec.request.url);
                    let url: Uri = match poll::poll_url(
                        spec.poll_url.as_deref(),
                        id.as_deref(),
                        &first,
                        fallback.or(Some(&spec.request.url)),
                    ) {
                        Ok(u) => u,
                        Err(e) => return p.obs(Outcome::Failed, e, None),
                    };
                    let mut r = Request::get(url);
                    r.max_body_bytes = spec.request.max_body_bytes;
                    r.headers = spec.request.headers.clone();
                    r.headers.remove(http::header::CONTENT_TYPE);
                    poll_req.insert(r)
                }
            };
            if !poll::wait_for(Instant::now() + spec.poll_interval, window_end).await {
                let mut o = p.obs(
                    Outcome::Timeout,
                    format!(
                        "still pending after {} s (window {} s)",
                        waited.as_secs(),
                        spec.window.as_secs()
                    ),
                    Some(waited.as_secs_f64()),
                );
                o.related = pending;
                return o;
            }
            let poll_start = Instant::now();
            let resp = match self.send(ctx, req, &mut p).await {
                Ok(r) => r,
                Err(mut o) => {
                    o.related = pending;
                    return o;
                }
            };
            answer = classify(spec, &resp);
            let waited = t0.elapsed();
            let due = spec.pending_every * (pending.len() as u32 + 1);
            if answer == Answer::Pending && waited >= due && pending.len() < MAX_RELATED {
                pending.push(Related {
                    suffix: "",
                    offset: poll_start.duration_since(t0),
                    duration: poll_start.elapsed(),
                    observation: p.obs(
                        Outcome::Pending,
                        format!("pending for {} s", waited.as_secs()),
                        Some(waited.as_secs_f64()),
                    ),
                });
            }
        }
    }
}

impl Check for Report {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Observation> {
        Box::pin(self.run_inner(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};

    fn spec() -> ReportSpec {
        ReportSpec {
            request: Request::get(Uri::from_static("http://h/r")),
            poll_url: None,
            id_pointer: "/id".into(),
            poll_interval: Duration::from_secs(1),
            window: Duration::from_secs(10),
            pending_status: vec![202],
            pending_marker: Some("\"pending\"".into()),
            ready_marker: Some("\"ready\"".into()),
            failed_marker: Some("\"failed\"".into()),
            latency_bound: None,
            pending_every: Duration::from_secs(30),
        }
    }

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
            final_url: Uri::from_static("http://h/r"),
            redirects: 0,
            tls_cert_days_left: None,
        }
    }

    #[test]
    fn answers_are_classified() {
        let s = spec();
        assert_eq!(classify(&s, &resp(202, "{}")), Answer::Pending);
        assert_eq!(
            classify(&s, &resp(200, r#"{"status":"pending"}"#)),
            Answer::Pending
        );
        assert_eq!(
            classify(&s, &resp(200, r#"{"status":"ready"}"#)),
            Answer::Ready
        );
        assert_eq!(
            classify(&s, &resp(200, r#"{"status":"other"}"#)),
            Answer::Pending
        );
        assert!(matches!(
            classify(&s, &resp(200, r#"{"status":"failed"}"#)),
            Answer::Failed(_)
        ));
        assert!(matches!(classify(&s, &resp(500, "")), Answer::Failed(_)));
        assert_eq!(classify(&s, &resp(403, "")), Answer::Denied(403));
    }
}
