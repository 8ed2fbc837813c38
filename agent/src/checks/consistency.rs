//! `consistency`: two sources that should agree, do.
//!
//! Each run GETs two JSON documents (`left` and `right`: a device registry
//! and a telemetry store, a page's API and a report's) and compares what a
//! JSON pointer names in each:
//!
//! * `mode = "number"` (default): one number per side. Within tolerance
//!   when `|right − left| <= max(abs_tolerance, rel_tolerance ×
//!   max(|left|, |right|))` (both default 0: the numbers must be equal).
//!   The result's value is the signed difference **right − left**.
//! * `mode = "set"`: the pointer names an array of ids (strings or
//!   integers; `7` and `"7"` are the same id), or an array of objects with
//!   `id` naming the id inside each element. `missing_left` counts the ids
//!   only the right side has, `missing_right` those only the left has;
//!   within tolerance when their sum is at most `max_missing` (default 0).
//!   The value is the sum.
//!
//! Beyond tolerance is `failed`, with both values (or both missing counts
//! and a few example ids) in the error. Either source failing to answer is
//! classified like a page (`unreachable`, `timeout`, `access_denied`,
//! `failed` for another status: [`super::page::classify`]), its error
//! prefixed with the side (`left (registry): ...`). Malformed JSON, a
//! pointer to nothing, a string where a number is expected, a non-array
//! where a set is expected, an id that is neither a string nor an integer:
//! `failed`, naming the side and the pointer. Never a panic.
//!
//! Bounds: bodies by `max_body_bytes` (the HTTP client), nesting by
//! [`super::json`], sets by [`MAX_SET_IDS`] elements per side. With
//! `login = "NAME"` on the check, both requests carry that login's session.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::page::{self, PageSpec};
use super::{json, BoxFuture, Check, Observation, RunContext};
use crate::config::{ConfigError, Source};
use crate::http::{Request, DEFAULT_MAX_REDIRECTS};
use crate::result::{Outcome, Phases};
use crate::session::Slot;

/// The kind's name.
pub const KIND: &str = "consistency";
/// Most elements a set source may have.
pub const MAX_SET_IDS: usize = 100_000;
/// Example ids named per side in a failed set comparison.
const EXAMPLES: usize = 3;
/// Longest example id shown (in characters).
const EXAMPLE_LEN: usize = 32;
/// Longest source name.
const MAX_NAME_LEN: usize = 32;

/// `[check.consistency]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsistency {
    mode: Option<Spanned<String>>,
    abs_tolerance: Option<Spanned<f64>>,
    rel_tolerance: Option<Spanned<f64>>,
    max_missing: Option<Spanned<i64>>,
    max_body_bytes: Option<Spanned<u64>>,
    left: Spanned<RawSource>,
    right: Spanned<RawSource>,
}

/// `[check.consistency.left]` / `.right` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    url: Spanned<String>,
    pointer: Spanned<String>,
    /// Set mode: the id inside each element of the array.
    id: Option<Spanned<String>>,
    /// Shown in errors: `left (registry)`.
    name: Option<Spanned<String>>,
}

/// Which side a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

/// How the two sides are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compare {
    Number { abs: f64, rel: f64 },
    Set { max_missing: u64 },
}

/// One validated source.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub side: Side,
    pub name: Option<String>,
    pub url: http::Uri,
    pub pointer: String,
    /// Set mode with an array of objects: the id's pointer inside each.
    pub id: Option<String>,
}

impl SourceSpec {
    /// `left` or `left (registry)`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{} ({n})", self.side.as_str()),
            None => self.side.as_str().to_string(),
        }
    }
}

/// Validated consistency settings.
#[derive(Debug, Clone)]
pub struct ConsistencySpec {
    pub compare: Compare,
    pub left: SourceSpec,
    pub right: SourceSpec,
    pub max_body_bytes: usize,
}

fn pointer(src: &Source<'_>, p: &Spanned<String>, field: &str) -> Result<String, ConfigError> {
    if json::valid_pointer(p.get_ref()) {
        Ok(p.get_ref().clone())
    } else {
        Err(src.error(
            p.span(),
            format!("`{field}` {:?} is not a JSON pointer", p.get_ref()),
            "write a pointer such as \"/count\" or \"/devices\" (RFC 6901: empty or starting with /)",
        ))
    }
}

fn source(
    src: &Source<'_>,
    raw: Spanned<RawSource>,
    side: Side,
    set_mode: bool,
) -> Result<SourceSpec, ConfigError> {
    let raw = raw.into_inner();
    let url = page::parse_http_url(src, &raw.url)?;
    let ptr = pointer(src, &raw.pointer, "pointer")?;
    let id = match (&raw.id, set_mode) {
        (None, _) => None,
        (Some(id), true) => Some(pointer(src, id, "id")?),
        (Some(id), false) => {
            return Err(src.error(
                id.span(),
                format!("`id` on the {} source is for mode = \"set\"", side.as_str()),
                "remove `id`, or set mode = \"set\" to compare sets of ids",
            ))
        }
    };
    let name = match raw.name {
        None => None,
        Some(n) => {
            let ok = !n.get_ref().is_empty()
                && n.get_ref().len() <= MAX_NAME_LEN
                && n.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ' '));
            if !ok {
                return Err(src.error(
                    n.span(),
                    format!("source name {:?} is not valid", n.get_ref()),
                    format!("use 1 to {MAX_NAME_LEN} characters from A-Z a-z 0-9 . _ - and space, e.g. \"registry\""),
                ));
            }
            Some(n.into_inner())
        }
    };
    Ok(SourceSpec {
        side,
        name,
        url,
        pointer: ptr,
        id,
    })
}

fn tolerance(
    src: &Source<'_>,
    raw: Option<&Spanned<f64>>,
    field: &str,
    max: Option<f64>,
) -> Result<f64, ConfigError> {
    let Some(t) = raw else { return Ok(0.0) };
    let v = *t.get_ref();
    let in_range = v >= 0.0 && v.is_finite() && max.is_none_or(|m| v <= m);
    if !in_range {
        return Err(src.error(
            t.span(),
            format!(
                "`{field}` = {v} must be {}",
                match max {
                    Some(m) => format!("between 0 and {m}"),
                    None => "a finite number of at least 0".to_string(),
                }
            ),
            match field {
                "rel_tolerance" => "write a fraction of the larger value, e.g. 0.01 for 1%",
                _ => "write the largest difference that is still fine, e.g. 2",
            },
        ));
    }
    Ok(v)
}

/// Validates `[check.consistency]`.
pub fn validate(
    src: &Source<'_>,
    raw: Spanned<RawConsistency>,
    _timeout: Duration,
) -> Result<ConsistencySpec, ConfigError> {
    let raw = raw.into_inner();
    let set_mode = match raw.mode.as_ref().map(|m| m.get_ref().as_str()) {
        None | Some("number") => false,
        Some("set") => true,
        Some(other) => {
            return Err(src.error(
                raw.mode.as_ref().map_or(0..0, Spanned::span),
                format!("unknown consistency mode {other:?}"),
                "write mode = \"number\" (compare two numbers) or mode = \"set\" (compare two sets of ids)",
            ))
        }
    };
    let compare = if set_mode {
        for (field, t) in [
            ("abs_tolerance", &raw.abs_tolerance),
            ("rel_tolerance", &raw.rel_tolerance),
        ] {
            if let Some(t) = t {
                return Err(src.error(
                    t.span(),
                    format!("`{field}` is for mode = \"number\""),
                    "use max_missing = N to tolerate N missing ids in a set comparison",
                ));
            }
        }
        let max_missing = match &raw.max_missing {
            None => 0,
            Some(m) if (0..=2 * MAX_SET_IDS as i64).contains(m.get_ref()) => *m.get_ref() as u64,
            Some(m) => {
                return Err(src.error(
                    m.span(),
                    format!("`max_missing` = {} is out of range", m.get_ref()),
                    format!(
                        "write how many ids may be missing in total, 0 to {}",
                        2 * MAX_SET_IDS
                    ),
                ))
            }
        };
        Compare::Set { max_missing }
    } else {
        if let Some(m) = &raw.max_missing {
            return Err(src.error(
                m.span(),
                "`max_missing` is for mode = \"set\"",
                "use abs_tolerance / rel_tolerance to compare numbers, or set mode = \"set\"",
            ));
        }
        Compare::Number {
            abs: tolerance(src, raw.abs_tolerance.as_ref(), "abs_tolerance", None)?,
            rel: tolerance(src, raw.rel_tolerance.as_ref(), "rel_tolerance", Some(1.0))?,
        }
    };
    let max_body_bytes = super::body_limit(src, raw.max_body_bytes.as_ref())?;
    Ok(ConsistencySpec {
        compare,
        left: source(src, raw.left, Side::Left, set_mode)?,
        right: source(src, raw.right, Side::Right, set_mode)?,
        max_body_bytes,
    })
}

// ------------------------------------------------------------- reading ----

/// What one side yielded.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Number(f64),
    Ids(BTreeSet<String>),
}

fn shown(p: &str) -> &str {
    if p.is_empty() {
        "(root)"
    } else {
        p
    }
}

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(EXAMPLE_LEN).collect();
    if s.chars().count() > EXAMPLE_LEN {
        out.push('…');
    }
    out
}

/// The number at `pointer`.
pub fn read_number(doc: &Value, pointer: &str) -> Result<f64, String> {
    let v = doc
        .pointer(pointer)
        .ok_or_else(|| format!("nothing at {}", shown(pointer)))?;
    v.as_f64().ok_or_else(|| {
        let detail = match v {
            Value::String(s) => format!(" {:?}", short(s)),
            _ => String::new(),
        };
        format!(
            "{} is {}{detail}, not a number",
            shown(pointer),
            super::json::kind_of(v)
        )
    })
}

/// The ids of the array at `pointer` (each element, or what `id` names
/// inside each element).
pub fn read_ids(doc: &Value, pointer: &str, id: Option<&str>) -> Result<BTreeSet<String>, String> {
    let v = doc
        .pointer(pointer)
        .ok_or_else(|| format!("nothing at {}", shown(pointer)))?;
    let list = v.as_array().ok_or_else(|| {
        format!(
            "{} is {}, not an array of ids",
            shown(pointer),
            super::json::kind_of(v)
        )
    })?;
    if list.len() > MAX_SET_IDS {
        return Err(format!(
            "{} has {} elements, more than the limit of {MAX_SET_IDS}",
            shown(pointer),
            list.len()
        ));
    }
    let mut ids = BTreeSet::new();
    for (i, element) in list.iter().enumerate() {
        let at = || format!("{pointer}/{i}{}", id.unwrap_or(""));
        let value = match id {
            None => element,
            Some(p) => element
                .pointer(p)
                .ok_or_else(|| format!("nothing at {}", at()))?,
        };
        let key = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            other => {
                return Err(format!(
                    "{} is {}, not a string or integer id",
                    at(),
                    super::json::kind_of(other)
                ))
            }
        };
        ids.insert(key);
    }
    Ok(ids)
}

// ------------------------------------------------------------- judging ----

/// Pure verdict on two numbers: outcome, error and value (right − left).
pub fn judge_numbers(
    left: (&SourceSpec, f64),
    right: (&SourceSpec, f64),
    abs: f64,
    rel: f64,
) -> (Outcome, String, f64) {
    let (l, r) = (left.1, right.1);
    let diff = r - l;
    let allowed = abs.max(rel * l.abs().max(r.abs()));
    if diff.abs() <= allowed {
        return (Outcome::Ok, String::new(), diff);
    }
    let error = format!(
        "{} {} = {l}, {} {} = {r}: right − left = {diff}, beyond tolerance (abs {abs}, rel {rel}: {allowed})",
        left.0.label(),
        shown(&left.0.pointer),
        right.0.label(),
        shown(&right.0.pointer),
    );
    (Outcome::Failed, error, diff)
}

fn examples<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    ids.take(EXAMPLES)
        .map(|s| short(s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Pure verdict on two sets: outcome, error and value (total missing).
pub fn judge_sets(
    left: (&SourceSpec, &BTreeSet<String>),
    right: (&SourceSpec, &BTreeSet<String>),
    max_missing: u64,
) -> (Outcome, String, f64) {
    let (l, r) = (left.1, right.1);
    let missing_left = r.difference(l).count() as u64;
    let missing_right = l.difference(r).count() as u64;
    let total = missing_left + missing_right;
    if total <= max_missing {
        return (Outcome::Ok, String::new(), total as f64);
    }
    let side = |n: u64, only: &SourceSpec, ids: String| {
        if n == 0 {
            format!("{n}")
        } else {
            format!("{n} (only in {}: {ids})", only.label())
        }
    };
    let error = format!(
        "sets differ: missing_left {}, missing_right {}; left {} ids, right {} ids; max_missing {max_missing}",
        side(missing_left, right.0, examples(r.difference(l))),
        side(missing_right, left.0, examples(l.difference(r))),
        l.len(),
        r.len(),
    );
    (Outcome::Failed, error, total as f64)
}

// ----------------------------------------------------------------- run ----

/// A runnable source: the request and the status-only page spec whose
/// classification its answer goes through.
#[derive(Debug)]
struct Fetch {
    spec: SourceSpec,
    request: Request,
    status_only: PageSpec,
}

/// What one side gave: its reading, or the observation of its failure.
struct Fetched {
    phases: Phases,
    http_status: Option<u16>,
    tls_cert_days_left: Option<f64>,
    reading: Result<Reading, Observation>,
}

/// A runnable consistency check.
#[derive(Debug)]
pub struct Consistency {
    compare: Compare,
    left: Fetch,
    right: Fetch,
    session: Option<Arc<Slot>>,
}

impl Consistency {
    pub fn new(spec: ConsistencySpec, session: Option<Arc<Slot>>) -> Self {
        let fetch = |s: SourceSpec| {
            let mut request = Request::get(s.url.clone());
            request.max_body_bytes = spec.max_body_bytes;
            request.headers.insert(
                http::header::ACCEPT,
                http::HeaderValue::from_static("application/json"),
            );
            let status_only = PageSpec {
                url: s.url.clone(),
                expect_status: Vec::new(),
                body_contains: Vec::new(),
                body_not_contains: Vec::new(),
                body_matches: Vec::new(),
                latency_bound: None,
                max_body_bytes: spec.max_body_bytes,
                max_redirects: DEFAULT_MAX_REDIRECTS,
                login_url_marker: None,
                assertions: Vec::new(),
                value_pointer: None,
            };
            Fetch {
                spec: s,
                request,
                status_only,
            }
        };
        Consistency {
            compare: spec.compare,
            left: fetch(spec.left),
            right: fetch(spec.right),
            session,
        }
    }

    async fn fetch(&self, ctx: &RunContext, f: &Fetch) -> Fetched {
        let label = f.spec.label();
        let exchange = match super::send_with_session(ctx, self.session.as_ref(), &f.request).await
        {
            Ok(e) => e,
            Err(login_failed) => {
                return Fetched {
                    phases: Phases::default(),
                    http_status: None,
                    tls_cert_days_left: None,
                    reading: Err(login_failed.context(&label)),
                }
            }
        };
        let resp = match exchange.result {
            Ok(r) => r,
            Err(e) => {
                return Fetched {
                    phases: exchange.phases,
                    http_status: None,
                    tls_cert_days_left: None,
                    reading: Err(Observation::from_http_error(&e, exchange.phases).context(&label)),
                }
            }
        };
        let (outcome, error) = page::classify(&f.status_only, &resp, Duration::ZERO);
        let reading = if outcome != Outcome::Ok {
            Err(Observation::bare(outcome, error).context(&label))
        } else {
            json::parse(&resp.body)
                .and_then(|doc| match self.compare {
                    Compare::Number { .. } => {
                        read_number(&doc, &f.spec.pointer).map(Reading::Number)
                    }
                    Compare::Set { .. } => {
                        read_ids(&doc, &f.spec.pointer, f.spec.id.as_deref()).map(Reading::Ids)
                    }
                })
                .map_err(|e| Observation::bare(Outcome::Failed, format!("{label}: {e}")))
        };
        Fetched {
            phases: exchange.phases,
            http_status: Some(resp.status.as_u16()),
            tls_cert_days_left: resp.tls_cert_days_left,
            reading,
        }
    }

    async fn run_inner(&self, ctx: &RunContext) -> Observation {
        let (left, right) = tokio::join!(self.fetch(ctx, &self.left), self.fetch(ctx, &self.right));
        let mut phases = left.phases;
        super::add_phases(&mut phases, &right.phases);
        let tls_cert_days_left = match (left.tls_cert_days_left, right.tls_cert_days_left) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (l, r) = match (left.reading, right.reading) {
            (Err(failed), _) => {
                return Observation {
                    phases,
                    http_status: failed.http_status.or(left.http_status),
                    tls_cert_days_left,
                    ..failed
                }
            }
            (_, Err(failed)) => {
                return Observation {
                    phases,
                    http_status: failed.http_status.or(right.http_status),
                    tls_cert_days_left,
                    ..failed
                }
            }
            (Ok(l), Ok(r)) => (l, r),
        };
        let (outcome, error, value) = match (&l, &r, self.compare) {
            (Reading::Number(a), Reading::Number(b), Compare::Number { abs, rel }) => {
                judge_numbers((&self.left.spec, *a), (&self.right.spec, *b), abs, rel)
            }
            (Reading::Ids(a), Reading::Ids(b), Compare::Set { max_missing }) => {
                judge_sets((&self.left.spec, a), (&self.right.spec, b), max_missing)
            }
            _ => (
                Outcome::Failed,
                "internal: the two sides were read in different modes".to_string(),
                0.0,
            ),
        };
        Observation {
            phases,
            http_status: right.http_status.or(left.http_status),
            value: Some(value),
            tls_cert_days_left,
            ..Observation::bare(outcome, error)
        }
    }
}

impl Check for Consistency {
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
    use std::path::Path;

    fn src(side: Side, name: Option<&str>, pointer: &str) -> SourceSpec {
        SourceSpec {
            side,
            name: name.map(str::to_string),
            url: http::Uri::from_static("http://127.0.0.1/"),
            pointer: pointer.into(),
            id: None,
        }
    }

    fn ids(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn numbers_within_and_beyond_tolerance() {
        let l = src(Side::Left, Some("registry"), "/count");
        let r = src(Side::Right, Some("telemetry"), "/devices_reporting");
        assert_eq!(judge_numbers((&l, 5.0), (&r, 5.0), 0.0, 0.0).0, Outcome::Ok);
        let (o, e, v) = judge_numbers((&l, 7.0), (&r, 5.0), 1.0, 0.0);
        assert_eq!((o, v), (Outcome::Failed, -2.0));
        assert!(e.contains("left (registry) /count = 7"), "{e}");
        assert!(
            e.contains("right (telemetry) /devices_reporting = 5"),
            "{e}"
        );
        assert_eq!(judge_numbers((&l, 7.0), (&r, 5.0), 2.0, 0.0).0, Outcome::Ok);
        // Relative to the larger magnitude: 2 of 200 is 1%.
        assert_eq!(
            judge_numbers((&l, 200.0), (&r, 198.0), 0.0, 0.01).0,
            Outcome::Ok
        );
        assert_eq!(
            judge_numbers((&l, 200.0), (&r, 197.0), 0.0, 0.01).0,
            Outcome::Failed
        );
        // Either tolerance suffices.
        assert_eq!(
            judge_numbers((&l, 10.0), (&r, 13.0), 3.0, 0.01).0,
            Outcome::Ok
        );
        assert!(e.len() <= crate::result::MAX_ERROR_LEN, "{e}");
    }

    #[test]
    fn sets_count_what_each_side_misses() {
        let l = src(Side::Left, Some("registry"), "/devices");
        let r = src(Side::Right, None, "/devices");
        let left = ids(&["dev-1", "dev-2", "dev-3", "dev-6"]);
        let right = ids(&["dev-1", "dev-2", "dev-3", "dev-4", "dev-5"]);
        let (o, e, v) = judge_sets((&l, &left), (&r, &right), 0);
        assert_eq!((o, v), (Outcome::Failed, 3.0));
        assert!(
            e.contains("missing_left 2 (only in right: dev-4, dev-5)"),
            "{e}"
        );
        assert!(
            e.contains("missing_right 1 (only in left (registry): dev-6)"),
            "{e}"
        );
        assert!(e.contains("left 4 ids, right 5 ids"), "{e}");
        assert_eq!(judge_sets((&l, &left), (&r, &right), 3).0, Outcome::Ok);
        let (o, e, v) = judge_sets((&l, &left), (&r, &left), 0);
        assert_eq!((o, e.as_str(), v), (Outcome::Ok, "", 0.0));
        // Long ids and many of them stay within the error bound.
        let many: BTreeSet<String> = (0..1000).map(|i| format!("{i:0>80}")).collect();
        let (_, e, v) = judge_sets((&l, &many), (&r, &BTreeSet::new()), 0);
        assert_eq!(v, 1000.0);
        assert!(e.len() <= crate::result::MAX_ERROR_LEN + 32, "{e}");
    }

    #[test]
    fn ids_are_strings_or_integers_bare_or_in_objects() {
        let doc = json!({"a": ["x", 7, "7"], "o": [{"id": 1}, {"id": "b"}], "bad": [true], "n": 3, "f": [1.5]});
        assert_eq!(read_ids(&doc, "/a", None).unwrap(), ids(&["7", "x"]));
        assert_eq!(read_ids(&doc, "/o", Some("/id")).unwrap(), ids(&["1", "b"]));
        let e = read_ids(&doc, "/bad", None).unwrap_err();
        assert_eq!(e, "/bad/0 is a boolean, not a string or integer id");
        let e = read_ids(&doc, "/n", None).unwrap_err();
        assert_eq!(e, "/n is a number, not an array of ids");
        assert!(read_ids(&doc, "/f", None)
            .unwrap_err()
            .contains("not a string or integer"));
        assert_eq!(
            read_ids(&doc, "/nope", None).unwrap_err(),
            "nothing at /nope"
        );
        assert_eq!(
            read_ids(&doc, "/o", Some("/key")).unwrap_err(),
            "nothing at /o/0/key"
        );
        let huge = Value::Array(vec![Value::from(1); MAX_SET_IDS + 1]);
        assert!(read_ids(&huge, "", None)
            .unwrap_err()
            .contains("more than the limit of 100000"));
    }

    #[test]
    fn numbers_must_be_numbers() {
        let doc = json!({"count": "12", "n": 4, "list": []});
        assert_eq!(read_number(&doc, "/n").unwrap(), 4.0);
        assert_eq!(
            read_number(&doc, "/count").unwrap_err(),
            "/count is a string \"12\", not a number"
        );
        assert_eq!(
            read_number(&doc, "/list").unwrap_err(),
            "/list is an array, not a number"
        );
        assert_eq!(read_number(&doc, "/x").unwrap_err(), "nothing at /x");
    }

    fn parse(table: &str) -> Result<ConsistencySpec, ConfigError> {
        #[derive(Deserialize)]
        struct W {
            consistency: Spanned<RawConsistency>,
        }
        let text = format!("[consistency]\n{table}");
        let w: W = toml::from_str(&text).map_err(|e| {
            Source {
                path: Path::new("t.toml"),
                text: &text,
            }
            .toml_error(&e)
        })?;
        validate(
            &Source {
                path: Path::new("t.toml"),
                text: &text,
            },
            w.consistency,
            Duration::from_secs(10),
        )
    }

    const LEFT: &str = "left = { url = \"http://127.0.0.1:1/a\", pointer = \"/count\", name = \"registry\" }\nright = { url = \"http://127.0.0.1:1/b\", pointer = \"/n\" }\n";

    #[test]
    fn good_tables_validate() {
        let s = parse(&format!("abs_tolerance = 2\nrel_tolerance = 0.05\n{LEFT}")).unwrap();
        assert_eq!(
            s.compare,
            Compare::Number {
                abs: 2.0,
                rel: 0.05
            }
        );
        assert_eq!(s.left.label(), "left (registry)");
        let s = parse("mode = \"set\"\nmax_missing = 1\nleft = { url = \"http://h/a\", pointer = \"/d\", id = \"/id\" }\nright = { url = \"http://h/b\", pointer = \"/ids\" }\n").unwrap();
        assert_eq!(s.compare, Compare::Set { max_missing: 1 });
        assert_eq!(s.left.id.as_deref(), Some("/id"));
    }

    #[test]
    fn bad_tables_are_config_errors_with_positions() {
        for (table, line, needle) in [
            (
                format!("mode = \"sum\"\n{LEFT}"),
                2,
                "unknown consistency mode",
            ),
            (format!("abs_tolerance = -1\n{LEFT}"), 2, "at least 0"),
            (format!("rel_tolerance = 1.5\n{LEFT}"), 2, "between 0 and 1"),
            (format!("rel_tolerance = nan\n{LEFT}"), 2, "rel_tolerance"),
            (format!("max_missing = 1\n{LEFT}"), 2, "for mode = \"set\""),
            (
                format!("mode = \"set\"\nabs_tolerance = 1\n{LEFT}"),
                3,
                "for mode = \"number\"",
            ),
            (
                format!("mode = \"set\"\nmax_missing = -1\n{LEFT}"),
                3,
                "out of range",
            ),
            (
                LEFT.replace("\"/count\"", "\"count\""),
                2,
                "not a JSON pointer",
            ),
            (
                LEFT.replace(", pointer = \"/n\"", ""),
                3,
                "missing field `pointer`",
            ),
            (
                LEFT.replace("\"registry\"", "\"reg/istry\""),
                2,
                "source name",
            ),
            (
                LEFT.replace("pointer = \"/n\"", "pointer = \"/n\", id = \"/id\""),
                3,
                "for mode = \"set\"",
            ),
            (
                LEFT.replace("http://127.0.0.1:1/b", "ftp://x/b"),
                3,
                "http(s) URL",
            ),
            (
                "left = { url = \"http://h/a\", pointer = \"/a\" }\n".to_string(),
                1,
                "missing field `right`",
            ),
        ] {
            match parse(&table) {
                Err(ConfigError::Invalid {
                    line: l,
                    message,
                    fix,
                    ..
                }) => {
                    assert_eq!(l, line, "{table}: {message}");
                    assert!(message.contains(needle), "{table}: {message}");
                    assert!(!fix.is_empty());
                }
                other => panic!("{table}: expected an Invalid error, got {other:?}"),
            }
        }
    }
}
