//! The check seam: one [`Check`] trait, one module per kind.
//!
//! A check turns its validated spec into one [`Observation`] per run; the
//! scheduler adds the name, labels and timing and hands a `CheckResult` to
//! the buffer. Checks do no I/O outside the shared HTTP client they are
//! given, keep no state between runs except what their kind needs, and
//! never panic on what a target sends back: every failure is classified
//! into an [`Outcome`].
//!
//! Adding a kind: a new module with `Raw*` (serde, spanned), a `*Spec`
//! (validated), a `Check` impl and its tests; one field in
//! `config::RawCheck`/[`RawKinds`] and one variant in [`CheckKind`].

pub mod page;

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::time::Duration;

use toml::Spanned;

use crate::config::{ConfigError, Source};
use crate::http::{self, HttpError};
use crate::result::{Outcome, Phases};

/// What one run of a check found, before the scheduler stamps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub outcome: Outcome,
    pub phases: Phases,
    pub http_status: Option<u16>,
    pub error: String,
    pub value: Option<f64>,
    pub tls_cert_days_left: Option<f64>,
}

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
        }
    }

    /// Classifies a transport-level HTTP failure.
    pub fn from_http_error(e: &HttpError, phases: Phases) -> Self {
        let outcome = match e {
            HttpError::Dns { .. } | HttpError::Connect { .. } | HttpError::Tls { .. } => {
                Outcome::Unreachable
            }
            HttpError::Timeout { .. } => Outcome::Timeout,
            HttpError::Protocol(_)
            | HttpError::BodyTooLarge { .. }
            | HttpError::TooManyRedirects { .. }
            | HttpError::BadUrl(_) => Outcome::Failed,
        };
        Observation {
            phases,
            ..Observation::bare(outcome, e.to_string())
        }
    }
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
}

/// A validated check kind.
#[derive(Debug, Clone)]
pub enum CheckKind {
    Page(page::PageSpec),
}

impl CheckKind {
    /// The kind's name.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Page(_) => page::KIND,
        }
    }

    /// Builds the runnable check.
    pub fn build(&self) -> Box<dyn Check> {
        match self {
            CheckKind::Page(spec) => Box::new(page::Page::new(spec.clone())),
        }
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
    let RawKinds { page } = raw;
    let present = [page.is_some()].iter().filter(|p| **p).count();
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
            format!(
                "add one kind table after the check, e.g. [check.{}] with its url",
                page::KIND
            ),
        ));
    }
    match page {
        Some(p) => Ok(CheckKind::Page(page::validate(src, p, timeout)?)),
        None => Err(src.error(span, "no kind", "add a kind table")),
    }
}
