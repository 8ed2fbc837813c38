//! `command`: a device command round trip.
//!
//! POSTs the command (`url`, `body`), reads its id from the answer
//! (`id_pointer`, default `/id`), then polls its status (`status_url` with
//! `{id}`, else the answer's `Location`) every `poll_interval` until the
//! state at `status_pointer` (default `/status`) is one of `done` (`ok`, or
//! `degraded` over `latency_bound`) or `failed_states` (`failed`: the
//! command's own outcome is the result), or the `window` ends (`timeout`).
//! The value is the round-trip time in seconds. 401/403 after a login is
//! `access_denied`; a refused submission or a missing command is `failed`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use toml::Spanned;

use super::{add_phases, json, poll, BoxFuture, Check, Observation, RunContext};
use crate::config::{ConfigError, Source};
use crate::http::{Request, Response};
use crate::result::{Outcome, Phases};
use crate::session::Slot;

/// The kind's name.
pub const KIND: &str = "command";

/// `[check.command]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    url: Spanned<String>,
    method: Option<Spanned<String>>,
    body: Option<String>,
    content_type: Option<String>,
    id_pointer: Option<String>,
    status_url: Option<Spanned<String>>,
    status_pointer: Option<String>,
    done: Option<Vec<String>>,
    failed_states: Option<Vec<String>>,
    poll_interval: Option<Spanned<String>>,
    window: Option<Spanned<String>>,
    latency_bound: Option<Spanned<String>>,
    max_body_bytes: Option<Spanned<u64>>,
}

/// Validated command settings.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    pub request: Request,
    pub id_pointer: String,
    pub status_url: Option<String>,
    pub status_pointer: String,
    pub done: Vec<String>,
    pub failed_states: Vec<String>,
    pub poll_interval: Duration,
    pub window: Duration,
    pub latency_bound: Option<Duration>,
}

/// Validates `[check.command]`.
pub fn validate(
    src: &Source<'_>,
    raw: Spanned<RawCommand>,
    timeout: Duration,
) -> Result<CommandSpec, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let url = super::page::parse_http_url(src, &raw.url)?;
    let mut request = poll::submit_request(
        src,
        url,
        raw.method.as_ref(),
        Some(raw.body.unwrap_or_else(|| "{}".into())),
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
        Duration::from_secs(1),
        window,
    )?;
    let pointer_ok = |p: &Option<String>| p.as_deref().is_none_or(json::valid_pointer);
    if !pointer_ok(&raw.id_pointer) || !pointer_ok(&raw.status_pointer) {
        return Err(src.error(
            span,
            "`id_pointer` and `status_pointer` must be JSON pointers",
            "write them like \"/id\" or \"/data/status\" (RFC 6901)",
        ));
    }
    let words = |v: Option<Vec<String>>, d: &[&str]| {
        v.unwrap_or_else(|| d.iter().map(|s| s.to_string()).collect())
    };
    Ok(CommandSpec {
        request,
        id_pointer: raw.id_pointer.unwrap_or_else(|| "/id".into()),
        status_url: raw
            .status_url
            .as_ref()
            .map(|s| poll::template(src, s))
            .transpose()?,
        status_pointer: raw.status_pointer.unwrap_or_else(|| "/status".into()),
        done: words(
            raw.done,
            &["executed", "succeeded", "success", "done", "completed"],
        ),
        failed_states: words(
            raw.failed_states,
            &[
                "failed",
                "error",
                "rejected",
                "cancelled",
                "canceled",
                "expired",
            ],
        ),
        poll_interval,
        window,
        latency_bound: raw
            .latency_bound
            .as_ref()
            .map(|l| super::bounded_duration(src, l, "latency_bound", window, "the window"))
            .transpose()?,
    })
}

/// The state a status document is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Done(String),
    Failed(String),
    Running(String),
}

/// Pure: the state at `status_pointer` of `doc`.
pub fn state(spec: &CommandSpec, doc: &Value) -> Result<State, String> {
    let s = doc
        .pointer(&spec.status_pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no status string at {}", spec.status_pointer))?;
    let s: String = s.chars().take(64).collect();
    Ok(if spec.done.iter().any(|d| d == &s) {
        State::Done(s)
    } else if spec.failed_states.iter().any(|d| d == &s) {
        State::Failed(s)
    } else {
        State::Running(s)
    })
}

/// A runnable command check.
#[derive(Debug)]
pub struct Command {
    spec: CommandSpec,
    session: Option<Arc<Slot>>,
}

impl Command {
    pub fn new(spec: CommandSpec, session: Option<Arc<Slot>>) -> Self {
        Command { spec, session }
    }

    async fn send(
        &self,
        ctx: &RunContext,
        req: &Request,
        phases: &mut Phases,
        last: &mut (Option<u16>, Option<f64>),
    ) -> Result<(Response, Value), Observation> {
        let exchange = super::send_with_session(ctx, self.session.as_ref(), req).await?;
        add_phases(phases, &exchange.phases);
        let fail =
            |outcome: Outcome, e: String, status: Option<u16>, cert: Option<f64>| Observation {
                phases: *phases,
                http_status: status,
                tls_cert_days_left: cert,
                ..Observation::bare(outcome, e)
            };
        let resp = match exchange.result {
            Ok(r) => r,
            Err(e) => {
                return Err(Observation {
                    http_status: last.0,
                    ..Observation::from_http_error(&e, *phases)
                })
            }
        };
        let status = resp.status.as_u16();
        *last = (Some(status), resp.tls_cert_days_left.or(last.1));
        if status == 401 || status == 403 {
            return Err(fail(
                Outcome::AccessDenied,
                format!("status {status}"),
                last.0,
                last.1,
            ));
        }
        if !resp.status.is_success() {
            return Err(fail(
                Outcome::Failed,
                format!("unexpected status {status}"),
                last.0,
                last.1,
            ));
        }
        match json::parse(&resp.body) {
            Ok(doc) => Ok((resp, doc)),
            Err(e) => Err(fail(Outcome::Failed, e, last.0, last.1)),
        }
    }

    async fn run_inner(&self, ctx: &RunContext) -> Observation {
        let spec = &self.spec;
        let t0 = Instant::now();
        let window_end = (t0 + spec.window).min(ctx.deadline);
        let mut phases = Phases::default();
        let mut last = (None, None);
        let (first, doc) = match self.send(ctx, &spec.request, &mut phases, &mut last).await {
            Ok(x) => x,
            Err(o) => return o.context("submit"),
        };
        let obs = |outcome, error: String, phases: Phases, last: (Option<u16>, Option<f64>)| {
            Observation {
                phases,
                http_status: last.0,
                tls_cert_days_left: last.1,
                value: Some(t0.elapsed().as_secs_f64()),
                ..Observation::bare(outcome, error)
            }
        };
        let id = poll::id_at(&doc, &spec.id_pointer);
        let url = match poll::poll_url(spec.status_url.as_deref(), id.as_deref(), &first, None) {
            Ok(u) => u,
            Err(e) => return obs(Outcome::Failed, e, phases, last),
        };
        let mut poll_req = Request::get(url);
        poll_req.max_body_bytes = spec.request.max_body_bytes;
        let mut current = state(spec, &doc).unwrap_or(State::Running("submitted".into()));
        loop {
            match current {
                State::Done(_) => {
                    let took = t0.elapsed();
                    return match spec.latency_bound {
                        Some(b) if took > b => obs(
                            Outcome::Degraded,
                            format!(
                                "done after {} ms, bound {} ms",
                                took.as_millis(),
                                b.as_millis()
                            ),
                            phases,
                            last,
                        ),
                        _ => obs(Outcome::Ok, String::new(), phases, last),
                    };
                }
                State::Failed(s) => {
                    return obs(
                        Outcome::Failed,
                        format!("the command ended {s:?}"),
                        phases,
                        last,
                    )
                }
                State::Running(s) => {
                    if !poll::wait_for(Instant::now() + spec.poll_interval, window_end).await {
                        return obs(
                            Outcome::Timeout,
                            format!(
                                "the command is still {s:?} after {} s",
                                t0.elapsed().as_secs()
                            ),
                            phases,
                            last,
                        );
                    }
                }
            }
            let doc = match self.send(ctx, &poll_req, &mut phases, &mut last).await {
                Ok((_, d)) => d,
                Err(o) => return o.context("status"),
            };
            current = match state(spec, &doc) {
                Ok(s) => s,
                Err(e) => return obs(Outcome::Failed, e, phases, last),
            };
        }
    }
}

impl Check for Command {
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
    use serde_json::json;

    #[test]
    fn states_follow_the_lists() {
        let spec = CommandSpec {
            request: Request::get(http::Uri::from_static("http://h/")),
            id_pointer: "/id".into(),
            status_url: None,
            status_pointer: "/status".into(),
            done: vec!["executed".into()],
            failed_states: vec!["failed".into()],
            poll_interval: Duration::from_secs(1),
            window: Duration::from_secs(5),
            latency_bound: None,
        };
        assert_eq!(
            state(&spec, &json!({"status":"executed"})),
            Ok(State::Done("executed".into()))
        );
        assert_eq!(
            state(&spec, &json!({"status":"failed"})),
            Ok(State::Failed("failed".into()))
        );
        assert_eq!(
            state(&spec, &json!({"status":"queued"})),
            Ok(State::Running("queued".into()))
        );
        assert!(state(&spec, &json!({"state":"x"})).is_err());
    }
}
