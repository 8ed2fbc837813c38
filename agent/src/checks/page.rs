//! `page`: a (protected) page or API answers as expected.
//!
//! Assertions, in order: the status is in the expected set; the body
//! contains every `body_contains` and none of `body_not_contains`; every
//! `body_matches` regex matches; the final URL after redirects does not
//! look like a login page. A pass slower than `latency_bound` is
//! `degraded`. The body is read up to `max_body_bytes`; larger is
//! `failed`, never a big allocation.
//!
//! With `login = "NAME"` on the check, the request carries that login's
//! shared session (bearer token and/or cookies, see [`crate::session`]);
//! a 401/403 on a re-used session triggers one fresh login and retry, so
//! `access_denied` always means "denied right after a successful login".

use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::{BoxFuture, Check, Observation, RunContext};
use crate::config::{ConfigError, Source};
use crate::http::{Request, Response, DEFAULT_MAX_REDIRECTS};
use crate::result::Outcome;
use crate::session::Slot;

/// The kind's name.
pub const KIND: &str = "page";
/// Most body assertions per check.
pub const MAX_ASSERTIONS: usize = 32;
/// Hard cap on `max_body_bytes`.
pub const MAX_BODY_LIMIT: u64 = 64 * 1024 * 1024;

/// `[check.page]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPage {
    url: Spanned<String>,
    #[serde(default)]
    expect_status: Option<Spanned<Vec<u16>>>,
    #[serde(default)]
    body_contains: Vec<String>,
    #[serde(default)]
    body_not_contains: Vec<String>,
    #[serde(default)]
    body_matches: Vec<Spanned<String>>,
    latency_bound: Option<Spanned<String>>,
    max_body_bytes: Option<Spanned<u64>>,
    max_redirects: Option<Spanned<u32>>,
    /// A substring of the final URL that means "sent to the login page".
    login_url_marker: Option<String>,
    /// JSON assertions on the body (see `checks::assert`).
    #[serde(rename = "assert")]
    assertions: Option<Spanned<Vec<Spanned<super::assert::RawAssertion>>>>,
    /// A JSON pointer whose number becomes the result's value.
    value_pointer: Option<Spanned<String>>,
}

/// Validated page settings.
#[derive(Debug, Clone)]
pub struct PageSpec {
    pub url: Uri,
    /// Empty means any 2xx.
    pub expect_status: Vec<u16>,
    pub body_contains: Vec<String>,
    pub body_not_contains: Vec<String>,
    pub body_matches: Vec<Regex>,
    pub latency_bound: Option<Duration>,
    pub max_body_bytes: usize,
    pub max_redirects: usize,
    pub login_url_marker: Option<String>,
    pub assertions: Vec<super::assert::Assertion>,
    pub value_pointer: Option<String>,
}

/// Validates `[check.page]`.
pub fn validate(
    src: &Source<'_>,
    raw: Spanned<RawPage>,
    timeout: Duration,
) -> Result<PageSpec, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let url = parse_http_url(src, &raw.url)?;
    let expect_status = match raw.expect_status {
        None => Vec::new(),
        Some(s) => {
            if s.get_ref().iter().any(|c| !(100..=599).contains(c)) || s.get_ref().is_empty() {
                return Err(src.error(
                    s.span(),
                    "`expect_status` must list HTTP status codes (100-599)",
                    "write e.g. expect_status = [200, 204], or remove it to accept any 2xx",
                ));
            }
            s.into_inner()
        }
    };
    if raw.body_contains.len() + raw.body_not_contains.len() + raw.body_matches.len()
        > MAX_ASSERTIONS
    {
        return Err(src.error(
            span,
            format!("more than {MAX_ASSERTIONS} body assertions"),
            "keep the assertions that tell a broken page from a working one",
        ));
    }
    let mut body_matches = Vec::new();
    for re in raw.body_matches {
        let compiled = regex::RegexBuilder::new(re.get_ref())
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                src.error(
                    re.span(),
                    format!("`body_matches` regex is invalid: {e}"),
                    "write a valid regular expression (Rust regex syntax)",
                )
            })?;
        body_matches.push(compiled);
    }
    let latency_bound = match raw.latency_bound {
        None => None,
        Some(l) => {
            let d = src.duration(&l, "latency_bound")?;
            if d.is_zero() || d > timeout {
                return Err(src.error(
                    l.span(),
                    "`latency_bound` must be above 0 and no longer than the check's timeout",
                    "write a bound shorter than the timeout, e.g. \"2s\"",
                ));
            }
            Some(d)
        }
    };
    let max_body_bytes = super::body_limit(src, raw.max_body_bytes.as_ref())?;
    let assertions = super::assert::validate(src, raw.assertions, raw.value_pointer.as_ref())?;
    let max_redirects = match raw.max_redirects {
        None => DEFAULT_MAX_REDIRECTS,
        Some(m) if *m.get_ref() <= 20 => *m.get_ref() as usize,
        Some(m) => {
            return Err(src.error(
                m.span(),
                "`max_redirects` must be 0..=20",
                "write a small number such as 5 (the default)",
            ))
        }
    };
    Ok(PageSpec {
        url,
        expect_status,
        body_contains: raw.body_contains,
        body_not_contains: raw.body_not_contains,
        body_matches,
        latency_bound,
        max_body_bytes,
        max_redirects,
        login_url_marker: raw.login_url_marker,
        assertions,
        value_pointer: raw.value_pointer.map(Spanned::into_inner),
    })
}

/// Parses an absolute http(s) URL field.
pub fn parse_http_url(src: &Source<'_>, raw: &Spanned<String>) -> Result<Uri, ConfigError> {
    let fix = "write an absolute URL such as \"https://portal.example/home\"";
    let uri: Uri = raw.get_ref().parse().map_err(|e| {
        src.error(
            raw.span(),
            format!("{:?} is not a URL ({e})", raw.get_ref()),
            fix,
        )
    })?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.host().is_some() => Ok(uri),
        _ => Err(src.error(
            raw.span(),
            format!("{:?} is not an absolute http(s) URL", raw.get_ref()),
            fix,
        )),
    }
}

/// A runnable page check.
#[derive(Debug)]
pub struct Page {
    spec: PageSpec,
    request: Request,
    session: Option<Arc<Slot>>,
}

impl Page {
    pub fn new(spec: PageSpec, session: Option<Arc<Slot>>) -> Self {
        let mut request = Request::get(spec.url.clone());
        request.max_body_bytes = spec.max_body_bytes;
        request.max_redirects = spec.max_redirects;
        Page {
            spec,
            request,
            session,
        }
    }
}

impl Check for Page {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Observation> {
        Box::pin(async move {
            let exchange =
                match super::send_with_session(ctx, self.session.as_ref(), &self.request).await {
                    Ok(e) => e,
                    Err(login_failed) => return login_failed,
                };
            match exchange.result {
                Err(e) => Observation::from_http_error(&e, exchange.phases),
                Ok(resp) => {
                    let total = exchange.phases.total.unwrap_or_default();
                    let (mut outcome, mut error) = classify(&self.spec, &resp, total);
                    let mut value = None;
                    let json_wanted =
                        !self.spec.assertions.is_empty() || self.spec.value_pointer.is_some();
                    if json_wanted && matches!(outcome, Outcome::Ok | Outcome::Degraded) {
                        match super::assert::judge(
                            &resp.body,
                            &self.spec.assertions,
                            self.spec.value_pointer.as_deref(),
                        ) {
                            Ok(v) => value = v,
                            Err(e) => (outcome, error) = (Outcome::Failed, e),
                        }
                    }
                    Observation {
                        outcome,
                        phases: exchange.phases,
                        http_status: Some(resp.status.as_u16()),
                        error: crate::result::short_error(&error),
                        value,
                        tls_cert_days_left: resp.tls_cert_days_left,
                        ..Observation::bare(outcome, "")
                    }
                }
            }
        })
    }
}

/// Pure classification of a complete response.
pub fn classify(spec: &PageSpec, resp: &Response, elapsed: Duration) -> (Outcome, String) {
    let status = resp.status.as_u16();
    if let Some(marker) = &spec.login_url_marker {
        if resp.final_url.to_string().contains(marker.as_str()) {
            return (
                Outcome::Failed,
                format!(
                    "landed on the login page after {} redirects",
                    resp.redirects
                ),
            );
        }
    }
    let status_ok = if spec.expect_status.is_empty() {
        resp.status.is_success()
    } else {
        spec.expect_status.contains(&status)
    };
    if !status_ok {
        let outcome = if status == 401 || status == 403 {
            Outcome::AccessDenied
        } else {
            Outcome::Failed
        };
        return (outcome, format!("unexpected status {status}"));
    }
    let body = String::from_utf8_lossy(&resp.body);
    if let Some(missing) = spec
        .body_contains
        .iter()
        .find(|s| !body.contains(s.as_str()))
    {
        return (
            Outcome::Failed,
            format!("body does not contain {:?}", truncate(missing)),
        );
    }
    if let Some(found) = spec
        .body_not_contains
        .iter()
        .find(|s| body.contains(s.as_str()))
    {
        return (
            Outcome::Failed,
            format!("body contains {:?}", truncate(found)),
        );
    }
    if let Some(re) = spec.body_matches.iter().find(|re| !re.is_match(&body)) {
        return (
            Outcome::Failed,
            format!("body does not match /{}/", truncate(re.as_str())),
        );
    }
    match spec.latency_bound {
        Some(bound) if elapsed > bound => (
            Outcome::Degraded,
            format!(
                "took {} ms, bound {} ms",
                elapsed.as_millis(),
                bound.as_millis()
            ),
        ),
        _ => (Outcome::Ok, String::new()),
    }
}

fn truncate(s: &str) -> String {
    crate::result::short_error(s).chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};

    fn spec() -> PageSpec {
        PageSpec {
            url: Uri::from_static("http://127.0.0.1/"),
            expect_status: vec![],
            body_contains: vec!["Welcome".into()],
            body_not_contains: vec!["Exception".into()],
            body_matches: vec![],
            latency_bound: Some(Duration::from_millis(500)),
            max_body_bytes: 1024,
            max_redirects: 5,
            login_url_marker: Some("/login".into()),
            assertions: Vec::new(),
            value_pointer: None,
        }
    }

    fn resp(status: u16, body: &str, url: &str) -> Response {
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
            final_url: url.parse().unwrap(),
            redirects: 0,
            tls_cert_days_left: None,
        }
    }

    #[test]
    fn classification_covers_each_page_outcome() {
        let s = spec();
        let fast = Duration::from_millis(10);
        let cases = [
            (resp(200, "Welcome", "http://h/home"), fast, Outcome::Ok),
            (
                resp(200, "Welcome", "http://h/home"),
                Duration::from_secs(1),
                Outcome::Degraded,
            ),
            (resp(500, "Welcome", "http://h/home"), fast, Outcome::Failed),
            (resp(403, "", "http://h/home"), fast, Outcome::AccessDenied),
            (resp(401, "", "http://h/home"), fast, Outcome::AccessDenied),
            (resp(200, "Hello", "http://h/home"), fast, Outcome::Failed),
            (
                resp(200, "Welcome Exception", "http://h/home"),
                fast,
                Outcome::Failed,
            ),
            (
                resp(200, "Welcome", "http://h/login?next=/home"),
                fast,
                Outcome::Failed,
            ),
        ];
        for (i, (r, elapsed, want)) in cases.iter().enumerate() {
            let (got, err) = classify(&s, r, *elapsed);
            assert_eq!(got, *want, "case {i}: {err}");
            assert_eq!(err.is_empty(), *want == Outcome::Ok, "case {i}: {err}");
        }
    }

    #[test]
    fn explicit_status_set_replaces_2xx() {
        let mut s = spec();
        s.expect_status = vec![404];
        s.body_contains.clear();
        assert_eq!(
            classify(&s, &resp(404, "", "http://h/x"), Duration::ZERO).0,
            Outcome::Ok
        );
        assert_eq!(
            classify(&s, &resp(200, "", "http://h/x"), Duration::ZERO).0,
            Outcome::Failed
        );
    }
}
