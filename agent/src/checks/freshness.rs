//! `freshness`: how old a timestamp is.
//!
//! Sources (exactly one):
//! * `url` — a JSON API; `pointer` names one timestamp, or `array` names
//!   an array and `element` the timestamp inside each element (per-device
//!   ages). Timestamps are RFC 3339 strings or epoch seconds/milliseconds
//!   (`format = "auto"` tells them apart: numbers above 10^11 are ms);
//! * `file` — a local file's modification time (a backup job's marker).
//!
//! One timestamp: `stale` when its age is over `max_age`; the value is
//! the age in seconds. An array: the newest and oldest ages, the count and
//! the share of elements older than `max_age` are computed; `stale` when
//! that share is over `max_stale_share` (default 0: any stale element);
//! the value is chosen by `value` (`oldest` default, `newest`,
//! `stale_count`, `stale_share`). Timestamps in the future count as age 0.
//! Unparsable JSON, a missing pointer or an empty array is `failed`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::{json, BoxFuture, Check, Observation, RunContext};
use crate::config::{ConfigError, Source};
use crate::http::Request;
use crate::result::Outcome;
use crate::session::Slot;

/// The kind's name.
pub const KIND: &str = "freshness";

/// `[check.freshness]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFreshness {
    url: Option<Spanned<String>>,
    file: Option<Spanned<String>>,
    pointer: Option<Spanned<String>>,
    array: Option<Spanned<String>>,
    element: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    max_age: Spanned<String>,
    max_stale_share: Option<Spanned<f64>>,
    value: Option<Spanned<String>>,
    max_body_bytes: Option<Spanned<u64>>,
}

/// How timestamps are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Auto,
    Rfc3339,
    EpochSeconds,
    EpochMillis,
}

/// Which figure of an array becomes the result's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueOf {
    Oldest,
    Newest,
    StaleCount,
    StaleShare,
}

/// Where the timestamp comes from.
#[derive(Debug, Clone)]
pub enum Target {
    Json {
        request: Box<Request>,
        select: Select,
        format: Format,
    },
    File(PathBuf),
}

/// Which timestamps of the document.
#[derive(Debug, Clone)]
pub enum Select {
    One(String),
    Each { array: String, element: String },
}

/// Validated freshness settings.
#[derive(Debug, Clone)]
pub struct FreshnessSpec {
    pub target: Target,
    pub max_age: Duration,
    pub max_stale_share: f64,
    pub value: ValueOf,
}

impl FreshnessSpec {
    /// Whether it reads over HTTP (and so may use a login's session).
    pub fn is_http(&self) -> bool {
        matches!(self.target, Target::Json { .. })
    }
}

fn pointer(src: &Source<'_>, p: Spanned<String>) -> Result<String, ConfigError> {
    if json::valid_pointer(p.get_ref()) {
        Ok(p.into_inner())
    } else {
        Err(src.error(
            p.span(),
            format!("{:?} is not a JSON pointer", p.get_ref()),
            "write a pointer such as \"/last_success\" or \"/data/0/ts\" (RFC 6901)",
        ))
    }
}

/// Validates `[check.freshness]`.
pub fn validate(
    src: &Source<'_>,
    raw: Spanned<RawFreshness>,
    _timeout: Duration,
) -> Result<FreshnessSpec, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let max_age = src.duration(&raw.max_age, "max_age")?;
    if max_age.is_zero() {
        return Err(src.error(
            raw.max_age.span(),
            "`max_age` must be above 0",
            "write the largest acceptable age, e.g. max_age = \"30m\" (an RPO)",
        ));
    }
    let target = match (raw.url, raw.file) {
        (Some(url), None) => {
            let url = super::page::parse_http_url(src, &url)?;
            let select = match (raw.pointer, raw.array) {
                (Some(p), None) => Select::One(pointer(src, p)?),
                (None, Some(a)) => Select::Each {
                    array: pointer(src, a)?,
                    element: raw.element.map(|e| pointer(src, e)).transpose()?.unwrap_or_default(),
                },
                _ => {
                    return Err(src.error(
                        span,
                        "a JSON freshness check needs exactly one of `pointer` or `array`",
                        "write pointer = \"/last_success\" (one timestamp) or array = \"/devices\" with element = \"/last_seen\"",
                    ))
                }
            };
            let format = match raw.format.as_ref().map(|f| f.get_ref().as_str()) {
                None | Some("auto") => Format::Auto,
                Some("rfc3339") => Format::Rfc3339,
                Some("epoch_s") => Format::EpochSeconds,
                Some("epoch_ms") => Format::EpochMillis,
                Some(other) => {
                    return Err(src.error(
                        raw.format.as_ref().map_or(span.clone(), Spanned::span),
                        format!("unknown timestamp format {other:?}"),
                        "write format = \"auto\", \"rfc3339\", \"epoch_s\" or \"epoch_ms\"",
                    ))
                }
            };
            let mut request = Request::get(url);
            request.max_body_bytes = super::body_limit(src, raw.max_body_bytes.as_ref())?;
            request.headers.insert(
                http::header::ACCEPT,
                http::HeaderValue::from_static("application/json"),
            );
            Target::Json {
                request: Box::new(request),
                select,
                format,
            }
        }
        (None, Some(file)) => {
            if raw.pointer.is_some() || raw.array.is_some() || raw.format.is_some() {
                return Err(src.error(
                    span,
                    "a file freshness check uses the file's modification time only",
                    "remove pointer/array/format, or read the timestamp from a url",
                ));
            }
            Target::File(PathBuf::from(file.into_inner()))
        }
        _ => {
            return Err(src.error(
                span,
                "a freshness check needs exactly one of `url` or `file`",
                "write url = \"https://...\" (JSON API) or file = \"/var/backups/last-success\" (mtime)",
            ))
        }
    };
    let max_stale_share = match raw.max_stale_share {
        None => 0.0,
        Some(s) if (0.0..1.0).contains(s.get_ref()) => *s.get_ref(),
        Some(s) => {
            return Err(src.error(
                s.span(),
                "`max_stale_share` must be in 0.0..1.0",
                "write the share of elements that may be stale, e.g. 0.2 (default 0: none)",
            ))
        }
    };
    let value = match raw.value.as_ref().map(|v| v.get_ref().as_str()) {
        None | Some("oldest") => ValueOf::Oldest,
        Some("newest") => ValueOf::Newest,
        Some("stale_count") => ValueOf::StaleCount,
        Some("stale_share") => ValueOf::StaleShare,
        Some(other) => {
            return Err(src.error(
                raw.value.as_ref().map_or(span, Spanned::span),
                format!("unknown value {other:?}"),
                "write value = \"oldest\", \"newest\", \"stale_count\" or \"stale_share\"",
            ))
        }
    };
    Ok(FreshnessSpec {
        target,
        max_age,
        max_stale_share,
        value,
    })
}

/// Unix seconds of a timestamp value.
pub fn timestamp(v: &Value, format: Format) -> Option<f64> {
    let number = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if format != Format::Rfc3339 && format != Format::Auto => {
            s.trim().parse().ok()
        }
        _ => None,
    };
    match (format, number, v) {
        (Format::EpochSeconds, Some(n), _) => Some(n),
        (Format::EpochMillis, Some(n), _) => Some(n / 1000.0),
        (Format::Auto, Some(n), _) if n > 1e11 => Some(n / 1000.0),
        (Format::Auto, Some(n), _) => Some(n),
        (Format::Auto | Format::Rfc3339, None, Value::String(s)) => super::timestamp::rfc3339(s),
        _ => None,
    }
    .filter(|t| t.is_finite())
}

/// Ages (seconds, never negative) of the selected timestamps.
pub fn ages(doc: &Value, select: &Select, format: Format, now: f64) -> Result<Vec<f64>, String> {
    let age = |v: &Value, at: &str| -> Result<f64, String> {
        timestamp(v, format)
            .map(|t| (now - t).max(0.0))
            .ok_or_else(|| format!("no timestamp at {at}"))
    };
    match select {
        Select::One(p) => {
            let v = doc.pointer(p).ok_or_else(|| format!("nothing at {p}"))?;
            Ok(vec![age(v, p)?])
        }
        Select::Each { array, element } => {
            let list = doc
                .pointer(array)
                .and_then(Value::as_array)
                .ok_or_else(|| format!("no array at {array}"))?;
            if list.is_empty() {
                return Err(format!("the array at {array} is empty"));
            }
            list.iter()
                .enumerate()
                .map(|(i, e)| {
                    let v = e
                        .pointer(element)
                        .ok_or_else(|| format!("element {i} has nothing at {element}"))?;
                    age(v, &format!("{array}/{i}{element}"))
                })
                .collect()
        }
    }
}

/// Pure verdict on ages: outcome, error and value.
pub fn judge(spec: &FreshnessSpec, ages: &[f64]) -> (Outcome, String, f64) {
    let max = spec.max_age.as_secs_f64();
    let n = ages.len().max(1);
    let stale = ages.iter().filter(|a| **a > max).count();
    let share = stale as f64 / n as f64;
    let oldest = ages.iter().copied().fold(0.0, f64::max);
    let newest = ages
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(oldest);
    let value = match spec.value {
        ValueOf::Oldest => oldest,
        ValueOf::Newest => newest,
        ValueOf::StaleCount => stale as f64,
        ValueOf::StaleShare => share,
    };
    let is_stale = if ages.len() == 1 {
        stale == 1
    } else {
        share > spec.max_stale_share
    };
    if !is_stale {
        return (Outcome::Ok, String::new(), value);
    }
    let error = if ages.len() == 1 {
        format!("{oldest:.0} s old, max_age {max:.0} s")
    } else {
        format!(
            "{stale} of {} ({:.0}%) older than {max:.0} s; newest {newest:.0} s, oldest {oldest:.0} s",
            ages.len(),
            share * 100.0
        )
    };
    (Outcome::Stale, error, value)
}

/// A runnable freshness check.
#[derive(Debug)]
pub struct Freshness {
    spec: FreshnessSpec,
    session: Option<Arc<Slot>>,
}

impl Freshness {
    pub fn new(spec: FreshnessSpec, session: Option<Arc<Slot>>) -> Self {
        Freshness { spec, session }
    }

    async fn run_inner(&self, ctx: &RunContext) -> Observation {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        match &self.spec.target {
            Target::File(path) => {
                let meta = tokio::time::timeout_at(ctx.deadline, tokio::fs::metadata(path)).await;
                let mtime = match meta {
                    Err(_) => return Observation::bare(Outcome::Timeout, "stat timed out"),
                    Ok(Err(e)) => {
                        return Observation::bare(
                            Outcome::Failed,
                            format!("cannot stat {}: {e}", path.display()),
                        )
                    }
                    Ok(Ok(m)) => m.modified().ok(),
                };
                let Some(t) = mtime.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) else {
                    return Observation::bare(Outcome::Failed, "the file has no modification time");
                };
                let (outcome, error, value) =
                    judge(&self.spec, &[(now - t.as_secs_f64()).max(0.0)]);
                Observation {
                    value: Some(value),
                    ..Observation::bare(outcome, error)
                }
            }
            Target::Json {
                request,
                select,
                format,
            } => {
                let exchange =
                    match super::send_with_session(ctx, self.session.as_ref(), request).await {
                        Ok(e) => e,
                        Err(o) => return o,
                    };
                let resp = match exchange.result {
                    Ok(r) => r,
                    Err(e) => return Observation::from_http_error(&e, exchange.phases),
                };
                let status = resp.status.as_u16();
                let base = |outcome, error: String, value| Observation {
                    phases: exchange.phases,
                    http_status: Some(status),
                    tls_cert_days_left: resp.tls_cert_days_left,
                    value,
                    ..Observation::bare(outcome, error)
                };
                if status == 401 || status == 403 {
                    return base(Outcome::AccessDenied, format!("status {status}"), None);
                }
                if !resp.status.is_success() {
                    return base(Outcome::Failed, format!("unexpected status {status}"), None);
                }
                let result =
                    json::parse(&resp.body).and_then(|doc| ages(&doc, select, *format, now));
                match result {
                    Err(e) => base(Outcome::Failed, e, None),
                    Ok(a) => {
                        let (outcome, error, value) = judge(&self.spec, &a);
                        base(outcome, error, Some(value))
                    }
                }
            }
        }
    }
}

impl Check for Freshness {
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
    fn epoch_formats() {
        assert_eq!(
            timestamp(&json!(1_700_000_000), Format::Auto),
            Some(1_700_000_000.0)
        );
        assert_eq!(
            timestamp(&json!(1_700_000_000_000u64), Format::Auto),
            Some(1_700_000_000.0)
        );
        assert_eq!(
            timestamp(&json!("1700000000"), Format::EpochSeconds),
            Some(1_700_000_000.0)
        );
        assert_eq!(timestamp(&json!("soon"), Format::Auto), None);
        assert_eq!(timestamp(&json!(true), Format::Auto), None);
    }

    fn spec(value: ValueOf, share: f64) -> FreshnessSpec {
        FreshnessSpec {
            target: Target::File(PathBuf::from("/x")),
            max_age: Duration::from_secs(60),
            max_stale_share: share,
            value,
        }
    }

    #[test]
    fn arrays_give_newest_oldest_count_and_share() {
        let doc = json!({"devices":[{"t":"1970-01-01T00:16:40Z"},{"t":1000},{"t":400}]});
        let sel = Select::Each {
            array: "/devices".into(),
            element: "/t".into(),
        };
        let a = ages(&doc, &sel, Format::Auto, 1030.0).unwrap();
        assert_eq!(a, vec![30.0, 30.0, 630.0]);
        let (o, e, v) = judge(&spec(ValueOf::Oldest, 0.0), &a);
        assert_eq!((o, v), (Outcome::Stale, 630.0));
        assert!(e.contains("1 of 3"), "{e}");
        assert_eq!(judge(&spec(ValueOf::StaleShare, 0.5), &a).0, Outcome::Ok);
        assert_eq!(judge(&spec(ValueOf::Newest, 0.5), &a).2, 30.0);
        assert_eq!(judge(&spec(ValueOf::StaleCount, 0.5), &a).2, 1.0);
        let empty = json!({"devices": []});
        assert!(ages(&empty, &sel, Format::Auto, 0.0)
            .unwrap_err()
            .contains("empty"));
        let future = ages(
            &json!({"t": 5000}),
            &Select::One("/t".into()),
            Format::Auto,
            10.0,
        )
        .unwrap();
        assert_eq!(future, vec![0.0]);
    }
}
