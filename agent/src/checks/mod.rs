//! The check seam: one [`Check`] trait, one module per kind.
//!
//! A check turns its validated spec into one [`Observation`] per run; the
//! scheduler adds the name, labels and timing and hands a `CheckResult` to
//! the buffer. A run may carry [`Related`] observations too (a login's
//! `.refresh` result, a report's `pending` polls); the scheduler records
//! them with the main one, in the order they ended. Checks do no I/O
//! outside the shared HTTP client they are given (exceptions: `freshness`
//! stats its file, `login` reads credential files), keep no state between
//! runs except the shared login [`session`](crate::session)s, and never
//! panic on what a target sends back: every failure is classified into an
//! [`Outcome`].
//!
//! Adding a kind: a new module with `Raw*` (serde, spanned), a `*Spec`
//! (validated), a `Check` impl and its tests; one field in
//! `config::RawCheck`/[`RawKinds`] and one variant in [`CheckKind`].

// A failed step returns the very observation the run reports, so the
// error type of the steps is `Observation`; it is built once per failed
// run, where boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod assert;
pub mod command;
pub mod consistency;
pub mod freshness;
pub mod json;
pub mod login;
pub mod page;
pub mod poll;
pub mod report;
pub mod timestamp;

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use crate::config::{CheckSpec, ConfigError, Source};
use crate::http::{self, HttpError};
use crate::result::{Outcome, Phases};
use crate::session::{Sessions, Slot};

/// What one run of a check found, before the scheduler stamps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub outcome: Outcome,
    pub phases: Phases,
    pub http_status: Option<u16>,
    pub error: String,
    pub value: Option<f64>,
    pub tls_cert_days_left: Option<f64>,
    /// The observation's own duration when it is not the wall time of the
    /// run (a login result, whose refresh followed in the same run).
    pub elapsed: Option<Duration>,
    /// Further results of the same run, recorded with this one.
    pub related: Vec<Related>,
}

/// Another result produced by the same run: a login's refresh (its own
/// check name `<name>.refresh`) or a report's intermediate `pending` poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Related {
    /// Appended to the check's name: `""` (same check) or `".refresh"`.
    pub suffix: &'static str,
    /// When it started, counted from the start of the run.
    pub offset: Duration,
    pub duration: Duration,
    /// Its own `related` list is ignored.
    pub observation: Observation,
}

/// Most related results one run may carry (bounds a report's pending
/// results whatever its window and `pending_every`).
pub const MAX_RELATED: usize = 64;

impl Observation {
    /// An observation with only an outcome and an error text.
    pub fn bare(outcome: Outcome, error: impl Into<String>) -> Self {
        Observation {
            outcome,
            phases: Phases::default(),
            http_status: None,
            error: crate::result::short_error(&error.into()),
            value: None,
            tls_cert_days_left: None,
            elapsed: None,
            related: Vec::new(),
        }
    }

    /// Classifies a transport-level HTTP failure.
    pub fn from_http_error(e: &HttpError, phases: Phases) -> Self {
        Observation {
            phases,
            ..Observation::bare(http_error_outcome(e), e.to_string())
        }
    }

    /// The same observation with `context: ` before its error.
    pub fn context(mut self, context: &str) -> Self {
        self.error = crate::result::short_error(&format!("{context}: {}", self.error));
        self
    }
}

/// The outcome an HTTP transport failure stands for.
pub fn http_error_outcome(e: &HttpError) -> Outcome {
    match e {
        HttpError::Dns { .. } | HttpError::Connect { .. } | HttpError::Tls { .. } => {
            Outcome::Unreachable
        }
        HttpError::Timeout { .. } => Outcome::Timeout,
        HttpError::Protocol(_)
        | HttpError::BodyTooLarge { .. }
        | HttpError::TooManyRedirects { .. }
        | HttpError::BadUrl(_) => Outcome::Failed,
    }
}

/// Adds the phases of one more exchange to `total` (a flow of several
/// requests reports the sum of each phase).
pub fn add_phases(total: &mut Phases, more: &Phases) {
    let add = |a: &mut Option<Duration>, b: Option<Duration>| {
        if let Some(b) = b {
            *a = Some(a.unwrap_or_default() + b);
        }
    };
    add(&mut total.dns, more.dns);
    add(&mut total.connect, more.connect);
    add(&mut total.tls, more.tls);
    add(&mut total.first_byte, more.first_byte);
    add(&mut total.total, more.total);
}

/// Everything a run may use. Built once per run by the scheduler.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub http: http::Client,
    /// The run must be over by then; the scheduler enforces it as well.
    pub deadline: tokio::time::Instant,
}

/// A boxed future, so `Check` stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One kind of synthetic check.
pub trait Check: Send + Sync + std::fmt::Debug {
    /// The kind's name as it appears in config and results (`page`, ...).
    fn kind(&self) -> &'static str;
    /// Runs once. Must return by `ctx.deadline`; must not panic.
    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Observation>;
}

/// The kind tables of one `[[check]]`, as parsed.
#[derive(Debug, Default)]
pub struct RawKinds {
    pub page: Option<Spanned<page::RawPage>>,
    pub login: Option<Spanned<login::RawLogin>>,
    pub report: Option<Spanned<report::RawReport>>,
    pub freshness: Option<Spanned<freshness::RawFreshness>>,
    pub command: Option<Spanned<command::RawCommand>>,
    pub consistency: Option<Spanned<consistency::RawConsistency>>,
}

/// A validated check kind.
#[derive(Debug, Clone)]
pub enum CheckKind {
    Page(page::PageSpec),
    Login(Arc<login::LoginSpec>),
    Report(report::ReportSpec),
    Freshness(freshness::FreshnessSpec),
    Command(command::CommandSpec),
    Consistency(consistency::ConsistencySpec),
}

impl CheckKind {
    /// The kind's name.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Page(_) => page::KIND,
            CheckKind::Login(_) => login::KIND,
            CheckKind::Report(_) => report::KIND,
            CheckKind::Freshness(_) => freshness::KIND,
            CheckKind::Command(_) => command::KIND,
            CheckKind::Consistency(_) => consistency::KIND,
        }
    }

    /// Whether a check of this kind can use a login's session.
    pub fn takes_login(&self) -> bool {
        match self {
            CheckKind::Login(_) => false,
            CheckKind::Freshness(f) => f.is_http(),
            CheckKind::Page(_)
            | CheckKind::Report(_)
            | CheckKind::Command(_)
            | CheckKind::Consistency(_) => true,
        }
    }
}

/// Builds the runnable check for `spec`; a check naming a login gets that
/// login's shared session slot from `sessions`.
pub fn build(spec: &CheckSpec, sessions: &Sessions) -> Box<dyn Check> {
    let session = spec.login.as_deref().and_then(|name| sessions.slot(name));
    match &spec.kind {
        CheckKind::Page(p) => Box::new(page::Page::new(p.clone(), session)),
        CheckKind::Login(l) => Box::new(login::Login::new(l.clone(), sessions.slot(&spec.name))),
        CheckKind::Report(r) => Box::new(report::Report::new(r.clone(), session)),
        CheckKind::Freshness(f) => Box::new(freshness::Freshness::new(f.clone(), session)),
        CheckKind::Command(c) => Box::new(command::Command::new(c.clone(), session)),
        CheckKind::Consistency(c) => Box::new(consistency::Consistency::new(c.clone(), session)),
    }
}

/// Sends `req` with the session's credentials added (when the check names
/// a login). When the answer is 401/403 on a session that was re-used from
/// an earlier run, the session is dropped and the request sent once more
/// with a fresh login: only a 401/403 right after a login counts as
/// `access_denied`. `Err` is the observation of a failed login.
pub async fn send_with_session(
    ctx: &RunContext,
    session: Option<&Arc<Slot>>,
    req: &http::Request,
) -> Result<http::Exchange, Observation> {
    let Some(slot) = session else {
        return Ok(ctx.http.send(req, ctx.deadline).await);
    };
    let mut retried = false;
    loop {
        let (creds, fresh) = slot.credentials(ctx).await?;
        let mut authorized = req.clone();
        creds.apply(&mut authorized);
        let exchange = ctx.http.send(&authorized, ctx.deadline).await;
        let denied = exchange
            .result
            .as_ref()
            .is_ok_and(|r| r.status.as_u16() == 401 || r.status.as_u16() == 403);
        if denied && !fresh && !retried {
            slot.invalidate().await;
            retried = true;
            continue;
        }
        return Ok(exchange);
    }
}

/// Validates the one kind table a check must have.
pub fn validate_kind(
    src: &Source<'_>,
    span: Range<usize>,
    name: &str,
    timeout: Duration,
    raw: RawKinds,
) -> Result<CheckKind, ConfigError> {
    let RawKinds {
        page,
        login,
        report,
        freshness,
        command,
        consistency,
    } = raw;
    let present = [
        page.is_some(),
        login.is_some(),
        report.is_some(),
        freshness.is_some(),
        command.is_some(),
        consistency.is_some(),
    ]
    .iter()
    .filter(|p| **p)
    .count();
    if present != 1 {
        return Err(src.error(
            span,
            format!(
                "check {name:?} has {} kind tables; it needs exactly one",
                if present == 0 {
                    "no".to_string()
                } else {
                    present.to_string()
                }
            ),
            "add one kind table after the check: [check.page], [check.login], [check.report], [check.freshness], [check.command] or [check.consistency]",
        ));
    }
    if let Some(p) = page {
        return Ok(CheckKind::Page(page::validate(src, p, timeout)?));
    }
    if let Some(l) = login {
        return Ok(CheckKind::Login(Arc::new(login::validate(
            src, l, name, timeout,
        )?)));
    }
    if let Some(r) = report {
        return Ok(CheckKind::Report(report::validate(src, r, timeout)?));
    }
    if let Some(f) = freshness {
        return Ok(CheckKind::Freshness(freshness::validate(src, f, timeout)?));
    }
    if let Some(c) = consistency {
        return Ok(CheckKind::Consistency(consistency::validate(
            src, c, timeout,
        )?));
    }
    match command {
        Some(c) => Ok(CheckKind::Command(command::validate(src, c, timeout)?)),
        None => Err(src.error(span, "no kind", "add a kind table")),
    }
}

/// Validates a duration field that must be above zero and at most `max`.
pub fn bounded_duration(
    src: &Source<'_>,
    raw: &Spanned<String>,
    field: &str,
    max: Duration,
    max_name: &str,
) -> Result<Duration, ConfigError> {
    let d = src.duration(raw, field)?;
    if d.is_zero() || d > max {
        return Err(src.error(
            raw.span(),
            format!("`{field}` must be above 0 and no longer than {max_name}"),
            format!("write a duration shorter than {max_name}, or raise the check's timeout"),
        ));
    }
    Ok(d)
}

/// Validates `max_body_bytes` (default 1 MiB, 1..=64 MiB).
pub fn body_limit(src: &Source<'_>, raw: Option<&Spanned<u64>>) -> Result<usize, ConfigError> {
    match raw {
        None => Ok(http::DEFAULT_MAX_BODY_BYTES),
        Some(m) if (1..=page::MAX_BODY_LIMIT).contains(m.get_ref()) => Ok(*m.get_ref() as usize),
        Some(m) => Err(src.error(
            m.span(),
            format!("`max_body_bytes` must be 1..={}", page::MAX_BODY_LIMIT),
            "write a bound such as 1048576 (1 MiB, the default)",
        )),
    }
}
