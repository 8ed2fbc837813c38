//! Config sections of the evaluation (issue #5): `[slo]`, `[[objective]]`,
//! `[escalation]` with one table per rule, `[scenario.NAME]`,
//! `[[maintenance]]`, `[api]`, `[[alertmanager]]` and `[[webhook]]`.
//! Raw serde structs mirror the TOML; [`validate`] turns them into typed
//! values with file:line:column errors. Every section is optional: the
//! defaults are the seed's objectives and the rules' documented
//! thresholds; without receivers nothing is sent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use outpost_config_diag::{ConfigError, Source};
use serde::Deserialize;
use toml::Spanned;

use crate::engine::{EngineConfig, DEFAULT_MAX_SERIES};
use crate::escalation::Scenario;
use crate::maintenance::{self, Origin, MAX_SELECTOR_KEYS, MAX_WINDOWS};
use crate::model::Outcome;
use crate::notify::client::HttpUrl;
use crate::slo::objective::{
    default_classes, Class, Guard, Objective, Selector, Source as ObjSource,
};

/// Most objectives, receivers, selectors per rule.
const MAX_OBJECTIVES: usize = 64;
const MAX_RECEIVERS: usize = 16;
const MAX_SELECTORS: usize = 32;
/// Largest secret file read.
const MAX_SECRET_BYTES: u64 = 4096;

type Matcher = BTreeMap<String, String>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlo {
    evaluate_every: Option<Spanned<String>>,
    late_after: Option<Spanned<String>>,
    series_expiry: Option<Spanned<String>>,
    site_label: Option<Spanned<String>>,
    max_series: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawObjective {
    name: Spanned<String>,
    description: Option<String>,
    target: Spanned<f64>,
    #[serde(rename = "match")]
    matcher: Option<Spanned<Matcher>>,
    good: Option<Spanned<Vec<String>>>,
    bad: Option<Spanned<Vec<String>>>,
    excluded: Option<Spanned<Vec<String>>>,
    min_bad_events: Option<Spanned<u32>>,
    min_bad_sites: Option<Spanned<u32>>,
    alert: Option<bool>,
    scenario: Option<Spanned<String>>,
    acknowledge_within: Option<Spanned<String>>,
    severity: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    #[serde(rename = "match")]
    matchers: Option<Spanned<Vec<Matcher>>>,
    min_share: Option<Spanned<f64>>,
    consecutive: Option<Spanned<u32>>,
    min_modules: Option<Spanned<u32>>,
    duration: Option<Spanned<String>>,
    scenario: Option<Spanned<String>>,
    scenario_label: Option<String>,
    default_scenario: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEscalation {
    failing: Option<Spanned<Vec<String>>>,
    resolve_after: Option<Spanned<u32>>,
    silent_factor: Option<Spanned<f64>>,
    auth: Option<RawRule>,
    pages: Option<RawRule>,
    persistent: Option<RawRule>,
    stale: Option<RawRule>,
    backup: Option<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    rto: Spanned<String>,
    rpo: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    name: Spanned<String>,
    start: Spanned<String>,
    duration: Spanned<String>,
    every: Option<Spanned<String>>,
    #[serde(rename = "match")]
    matcher: Option<Spanned<Matcher>>,
    reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    token_file: Option<Spanned<String>>,
    external_url: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlertmanager {
    name: Option<String>,
    url: Spanned<String>,
    resend: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    name: Option<String>,
    url: Spanned<String>,
    secret_file: Spanned<String>,
    timeout: Option<Spanned<String>>,
    max_attempts: Option<Spanned<u32>>,
    queue: Option<Spanned<u32>>,
}

/// The raw sections, as `config::RawConfig` holds them.
#[derive(Debug, Default)]
pub(super) struct RawSections {
    pub slo: RawSlo,
    pub objective: Vec<RawObjective>,
    pub escalation: RawEscalation,
    pub scenario: BTreeMap<String, RawScenario>,
    pub maintenance: Vec<RawMaintenance>,
    pub api: RawApi,
    pub alertmanager: Vec<RawAlertmanager>,
    pub webhook: Vec<RawWebhook>,
}

/// A secret read from a file. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One Alertmanager.
#[derive(Debug, Clone)]
pub struct AlertmanagerConfig {
    pub name: String,
    pub url: HttpUrl,
    pub resend: Duration,
    pub timeout: Duration,
}

/// One signed JSON webhook.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub name: String,
    pub url: HttpUrl,
    pub secret: Secret,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub queue: usize,
}

/// The validated evaluation settings.
#[derive(Debug, Clone)]
pub struct EvaluationConfig {
    pub engine: EngineConfig,
    pub evaluate_every: Duration,
    /// Bearer token for write calls; `None` refuses them.
    pub api_token: Option<Secret>,
    /// Where the token came from (for the CLI).
    pub api_token_file: Option<PathBuf>,
    /// Base URL in alerts' generatorURL (default: http://<http listen>).
    pub external_url: Option<String>,
    pub alertmanagers: Vec<AlertmanagerConfig>,
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        EvaluationConfig {
            engine: EngineConfig::default(),
            evaluate_every: Duration::from_secs(10),
            api_token: None,
            api_token_file: None,
            external_url: None,
            alertmanagers: Vec::new(),
            webhooks: Vec::new(),
        }
    }
}

fn name_ok(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn outcome(s: &str) -> Option<Outcome> {
    Outcome::ALL.into_iter().find(|o| o.as_str() == s)
}

const OUTCOMES: &str = "ok, degraded, pending, access_denied, failed, timeout, unreachable, stale";

struct V<'a> {
    src: Source<'a>,
}

impl V<'_> {
    fn duration(
        &self,
        v: &Spanned<String>,
        field: &str,
        min: Duration,
    ) -> Result<Duration, ConfigError> {
        let d = self.src.duration(v, field)?;
        if d < min {
            return Err(self.src.error(
                v.span(),
                format!(
                    "`{field}` must be at least {}",
                    humantime::format_duration(min)
                ),
                format!("write a longer duration for `{field}`"),
            ));
        }
        Ok(d)
    }

    fn outcomes(&self, v: &Spanned<Vec<String>>, field: &str) -> Result<Vec<Outcome>, ConfigError> {
        v.get_ref()
            .iter()
            .map(|s| {
                outcome(s).ok_or_else(|| {
                    self.src.error(
                        v.span(),
                        format!("`{field}` names an unknown outcome {s:?}"),
                        format!("use outcomes from: {OUTCOMES}"),
                    )
                })
            })
            .collect()
    }

    fn selector(&self, m: &Matcher, span: std::ops::Range<usize>) -> Result<Selector, ConfigError> {
        if m.len() > MAX_SELECTOR_KEYS {
            return Err(self.src.error(
                span,
                format!("a `match` table has more than {MAX_SELECTOR_KEYS} keys"),
                "select with fewer labels",
            ));
        }
        let mut s = Selector::default();
        for (k, v) in m {
            if k == "kind" {
                s.kinds.push(v.clone());
            } else {
                s.labels.insert(k.clone(), v.clone());
            }
        }
        Ok(s)
    }

    fn selectors(&self, v: &Spanned<Vec<Matcher>>) -> Result<Vec<Selector>, ConfigError> {
        if v.get_ref().is_empty() || v.get_ref().len() > MAX_SELECTORS {
            return Err(self.src.error(
                v.span(),
                format!("`match` must list 1 to {MAX_SELECTORS} label tables"),
                "write e.g. match = [{ kind = \"login\" }, { objective = \"authentication\" }]",
            ));
        }
        v.get_ref()
            .iter()
            .map(|m| self.selector(m, v.span()))
            .collect()
    }

    fn scenario(
        &self,
        v: &Spanned<String>,
        scenarios: &BTreeMap<String, Scenario>,
    ) -> Result<String, ConfigError> {
        if scenarios.contains_key(v.get_ref()) {
            Ok(v.get_ref().clone())
        } else {
            let known: Vec<&str> = scenarios.keys().map(String::as_str).collect();
            Err(self.src.error(
                v.span(),
                format!("unknown scenario {:?}", v.get_ref()),
                format!(
                    "use one of {} or define [scenario.{}]",
                    known.join(", "),
                    v.get_ref()
                ),
            ))
        }
    }

    fn secret(&self, v: &Spanned<String>, what: &str) -> Result<Secret, ConfigError> {
        let path = PathBuf::from(v.get_ref());
        let unreadable = |e: String| {
            self.src.error(
                v.span(),
                format!("cannot read the {what} file {}: {e}", path.display()),
                format!("create the file with the {what} (one line), readable by the collector"),
            )
        };
        let meta = std::fs::metadata(&path).map_err(|e| unreadable(e.to_string()))?;
        if meta.len() > MAX_SECRET_BYTES {
            return Err(unreadable(format!("larger than {MAX_SECRET_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| unreadable(e.to_string()))?;
        let t = text.trim();
        if t.is_empty() {
            return Err(unreadable("the file is empty".into()));
        }
        Ok(Secret::new(t))
    }
}

/// Validates the evaluation sections. `retention` comes from `[store]`.
pub(super) fn validate(
    src: Source<'_>,
    raw: RawSections,
    retention: Duration,
) -> Result<EvaluationConfig, ConfigError> {
    let v = V { src };
    let mut out = EvaluationConfig::default();
    let e = &mut out.engine;
    e.retention_ms = retention.as_millis() as i64;

    // [slo]
    if let Some(d) = &raw.slo.evaluate_every {
        out.evaluate_every = v.duration(d, "evaluate_every", Duration::from_millis(100))?;
    }
    if let Some(d) = &raw.slo.late_after {
        e.late_after_ms = v
            .duration(d, "late_after", Duration::from_secs(1))?
            .as_millis() as i64;
    }
    if let Some(d) = &raw.slo.series_expiry {
        e.series_expiry_ms = v
            .duration(d, "series_expiry", Duration::from_secs(60))?
            .as_millis() as i64;
    }
    if let Some(s) = &raw.slo.site_label {
        e.site_label.clone_from(s.get_ref());
    }
    if let Some(m) = &raw.slo.max_series {
        if !(1..=10_000_000).contains(m.get_ref()) {
            return Err(src.error(
                m.span(),
                "`max_series` must be 1..=10000000",
                format!("write e.g. {DEFAULT_MAX_SERIES} (the default)"),
            ));
        }
        e.max_series = *m.get_ref() as usize;
    }

    // [scenario.NAME] (before anything that names a scenario)
    let rules = &mut e.rules;
    for (name, s) in &raw.scenario {
        rules.scenarios.insert(
            name.clone(),
            Scenario {
                rto_ms: v
                    .duration(&s.rto, "rto", Duration::from_secs(60))?
                    .as_millis() as i64,
                rpo_ms: v
                    .duration(&s.rpo, "rpo", Duration::from_secs(60))?
                    .as_millis() as i64,
            },
        );
    }
    let scenarios = rules.scenarios.clone();

    // [[objective]]
    if !raw.objective.is_empty() {
        if raw.objective.len() > MAX_OBJECTIVES {
            return Err(src.error(
                raw.objective[MAX_OBJECTIVES].name.span(),
                format!("more than {MAX_OBJECTIVES} objectives"),
                "merge objectives",
            ));
        }
        let mut objectives: Vec<Objective> = Vec::new();
        for o in &raw.objective {
            objectives.push(objective(&v, o, &scenarios)?);
            if objectives[..objectives.len() - 1]
                .iter()
                .any(|x| x.name == o.name.get_ref().as_str())
            {
                return Err(src.error(
                    o.name.span(),
                    format!("objective {:?} is defined twice", o.name.get_ref()),
                    "give each objective a unique name",
                ));
            }
        }
        let acks = objectives
            .iter()
            .filter(|o| matches!(o.source, ObjSource::Acknowledgement { .. }))
            .count();
        if acks > 1 {
            return Err(src.error(
                raw.objective[0].name.span(),
                "more than one acknowledgement objective",
                "keep one objective with `acknowledge_within`",
            ));
        }
        out.engine.objectives = objectives;
    }

    // [escalation]
    let rules = &mut out.engine.rules;
    let esc = &raw.escalation;
    if let Some(f) = &esc.failing {
        let list = v.outcomes(f, "failing")?;
        if list.is_empty() {
            return Err(src.error(f.span(), "`failing` is empty", "list the outcomes the rules treat as failing, e.g. [\"failed\", \"timeout\", \"unreachable\", \"stale\"]"));
        }
        rules.failing = Outcome::ALL.map(|o| list.contains(&o));
    }
    if let Some(n) = &esc.resolve_after {
        if !(1..=1000).contains(n.get_ref()) {
            return Err(src.error(
                n.span(),
                "`resolve_after` must be 1..=1000",
                "write e.g. 3 (the default)",
            ));
        }
        rules.resolve_after = *n.get_ref();
    }
    if let Some(f) = &esc.silent_factor {
        if !(1.0..=1000.0).contains(f.get_ref()) {
            return Err(src.error(
                f.span(),
                "`silent_factor` must be 1..=1000",
                "write e.g. 3.0 (the default)",
            ));
        }
        rules.silent_factor = *f.get_ref();
    }
    let consecutive = |c: &Option<Spanned<u32>>, d: &mut u32| -> Result<(), ConfigError> {
        if let Some(c) = c {
            if !(1..=1000).contains(c.get_ref()) {
                return Err(src.error(c.span(), "`consecutive` must be 1..=1000", "write e.g. 2"));
            }
            *d = *c.get_ref();
        }
        Ok(())
    };
    if let Some(r) = &esc.auth {
        if let Some(m) = &r.matchers {
            rules.auth.selectors = v.selectors(m)?;
        }
        if let Some(s) = &r.min_share {
            if !(0.0..=1.0).contains(s.get_ref()) || *s.get_ref() == 0.0 {
                return Err(src.error(
                    s.span(),
                    "`min_share` must be in (0, 1]",
                    "write e.g. 0.5 (half the reporting sites)",
                ));
            }
            rules.auth.min_share = *s.get_ref();
        }
        consecutive(&r.consecutive, &mut rules.auth.consecutive)?;
        if let Some(s) = &r.scenario {
            rules.auth.scenario = v.scenario(s, &scenarios)?;
        }
    }
    if let Some(r) = &esc.pages {
        if let Some(m) = &r.matchers {
            rules.pages.selectors = v.selectors(m)?;
        }
        if let Some(n) = &r.min_modules {
            if !(1..=1000).contains(n.get_ref()) {
                return Err(src.error(n.span(), "`min_modules` must be 1..=1000", "write e.g. 2"));
            }
            rules.pages.min_modules = *n.get_ref();
        }
        consecutive(&r.consecutive, &mut rules.pages.consecutive)?;
        if let Some(s) = &r.scenario {
            rules.pages.scenario = v.scenario(s, &scenarios)?;
        }
    }
    if let Some(r) = &esc.persistent {
        if let Some(m) = &r.matchers {
            rules.persistent.selectors = v.selectors(m)?;
        }
        consecutive(&r.consecutive, &mut rules.persistent.consecutive)?;
        if let Some(d) = &r.duration {
            rules.persistent.duration_ms = v
                .duration(d, "duration", Duration::from_secs(1))?
                .as_millis() as i64;
        }
        if let Some(s) = &r.scenario {
            rules.persistent.scenario = v.scenario(s, &scenarios)?;
        }
    }
    if let Some(r) = &esc.stale {
        if let Some(m) = &r.matchers {
            rules.stale.selectors = v.selectors(m)?;
        }
        consecutive(&r.consecutive, &mut rules.stale.consecutive)?;
        if let Some(s) = &r.scenario {
            rules.stale.scenario = v.scenario(s, &scenarios)?;
        }
    }
    if let Some(r) = &esc.backup {
        if let Some(m) = &r.matchers {
            rules.backup.selectors = v.selectors(m)?;
        }
        if let Some(l) = &r.scenario_label {
            rules.backup.scenario_label.clone_from(l);
        }
        if let Some(s) = &r.default_scenario {
            rules.backup.default_scenario = v.scenario(s, &scenarios)?;
        }
    }

    // [[maintenance]]
    if raw.maintenance.len() > MAX_WINDOWS {
        return Err(src.error(
            raw.maintenance[MAX_WINDOWS].name.span(),
            format!("more than {MAX_WINDOWS} maintenance windows"),
            "merge windows",
        ));
    }
    for m in &raw.maintenance {
        let start = humantime::parse_rfc3339_weak(m.start.get_ref().trim()).map_err(|e| {
            src.error(
                m.start.span(),
                format!("`start` = {:?} is not a time ({e})", m.start.get_ref()),
                "write an RFC 3339 UTC time such as \"2025-01-05T02:00:00Z\"",
            )
        })?;
        let start_ms = start
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let w = maintenance::Window {
            name: m.name.get_ref().clone(),
            start_ms,
            duration_ms: v
                .duration(&m.duration, "duration", Duration::from_secs(1))?
                .as_millis() as i64,
            every_ms: match &m.every {
                Some(e) => {
                    Some(v.duration(e, "every", Duration::from_secs(60))?.as_millis() as i64)
                }
                None => None,
            },
            selector: m
                .matcher
                .as_ref()
                .map(|x| x.get_ref().clone())
                .unwrap_or_default(),
            reason: m.reason.clone().unwrap_or_default(),
            origin: Origin::Config,
        };
        if let Err(err) = w.validate() {
            return Err(src.error(
                m.name.span(),
                format!("maintenance window {:?}: {err}", w.name),
                "correct the window (README.md, \"Maintenance windows\")",
            ));
        }
        if out.engine.maintenance.iter().any(|x| x.name == w.name) {
            return Err(src.error(
                m.name.span(),
                format!("maintenance window {:?} is defined twice", w.name),
                "give each window a unique name",
            ));
        }
        out.engine.maintenance.push(w);
    }

    // [api]
    if let Some(t) = &raw.api.token_file {
        out.api_token = Some(v.secret(t, "API token")?);
        out.api_token_file = Some(PathBuf::from(t.get_ref()));
    }
    if let Some(u) = &raw.api.external_url {
        let url = u.get_ref().trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(src.error(u.span(), "`external_url` must start with http:// or https://", "write the URL people use to reach this collector, e.g. \"https://outpost.example\""));
        }
        out.external_url = Some(url.to_string());
    }

    // receivers
    if raw.alertmanager.len() + raw.webhook.len() > MAX_RECEIVERS {
        return Err(src.error(
            0..0,
            format!("more than {MAX_RECEIVERS} receivers"),
            "use fewer [[alertmanager]] and [[webhook]] tables",
        ));
    }
    let url = |u: &Spanned<String>| {
        HttpUrl::parse(u.get_ref()).map_err(|e| {
            src.error(
                u.span(),
                format!("receiver url {:?}: {e}", u.get_ref()),
                "write http://HOST:PORT (optionally with a path prefix)",
            )
        })
    };
    let timeout = |t: &Option<Spanned<String>>| -> Result<Duration, ConfigError> {
        match t {
            None => Ok(Duration::from_secs(5)),
            Some(t) => v.duration(t, "timeout", Duration::from_millis(100)),
        }
    };
    for (i, a) in raw.alertmanager.iter().enumerate() {
        out.alertmanagers.push(AlertmanagerConfig {
            name: a
                .name
                .clone()
                .unwrap_or_else(|| format!("alertmanager-{}", i + 1)),
            url: url(&a.url)?,
            resend: match &a.resend {
                None => Duration::from_secs(60),
                Some(r) => v.duration(r, "resend", Duration::from_millis(100))?,
            },
            timeout: timeout(&a.timeout)?,
        });
    }
    for (i, w) in raw.webhook.iter().enumerate() {
        let max_attempts = match &w.max_attempts {
            None => 5,
            Some(n) if (1..=100).contains(n.get_ref()) => *n.get_ref(),
            Some(n) => {
                return Err(src.error(
                    n.span(),
                    "`max_attempts` must be 1..=100",
                    "write e.g. 5 (the default)",
                ))
            }
        };
        let queue = match &w.queue {
            None => 1024,
            Some(n) if (1..=100_000).contains(n.get_ref()) => *n.get_ref() as usize,
            Some(n) => {
                return Err(src.error(
                    n.span(),
                    "`queue` must be 1..=100000",
                    "write e.g. 1024 (the default)",
                ))
            }
        };
        out.webhooks.push(WebhookConfig {
            name: w
                .name
                .clone()
                .unwrap_or_else(|| format!("webhook-{}", i + 1)),
            url: url(&w.url)?,
            secret: v.secret(&w.secret_file, "webhook secret")?,
            timeout: timeout(&w.timeout)?,
            max_attempts,
            queue,
        });
    }
    Ok(out)
}

fn objective(
    v: &V<'_>,
    o: &RawObjective,
    scenarios: &BTreeMap<String, Scenario>,
) -> Result<Objective, ConfigError> {
    let src = v.src;
    if !name_ok(o.name.get_ref()) {
        return Err(src.error(
            o.name.span(),
            format!("objective name {:?} is not valid", o.name.get_ref()),
            "use 1-64 of A-Z a-z 0-9 . _ -",
        ));
    }
    let t = *o.target.get_ref();
    if !(50.0..100.0).contains(&t) {
        return Err(src.error(
            o.target.span(),
            format!("`target` = {t} is not a percentage in [50, 100)"),
            "write the target in percent, e.g. 99.5",
        ));
    }
    let scenario = match &o.scenario {
        Some(s) => v.scenario(s, scenarios)?,
        None => "single_service".to_string(),
    };
    let mut guard = Guard::default();
    if let Some(n) = &o.min_bad_events {
        if !(1..=100_000).contains(n.get_ref()) {
            return Err(src.error(
                n.span(),
                "`min_bad_events` must be 1..=100000",
                "write e.g. 3 (the default)",
            ));
        }
        guard.min_bad_events = *n.get_ref();
    }
    if let Some(n) = &o.min_bad_sites {
        if !(1..=10_000).contains(n.get_ref()) {
            return Err(src.error(
                n.span(),
                "`min_bad_sites` must be 1..=10000",
                "write e.g. 2 (the default)",
            ));
        }
        guard.min_bad_sites = *n.get_ref();
    }
    let source = if let Some(within) = &o.acknowledge_within {
        if let Some(m) = &o.matcher {
            return Err(src.error(
                m.span(),
                "an acknowledgement objective counts incidents and takes no `match`",
                "remove `match` (or `acknowledge_within`)",
            ));
        }
        let severity = match &o.severity {
            None => "critical".to_string(),
            Some(s) if crate::escalation::Severity::parse(s.get_ref()).is_some() => {
                s.get_ref().clone()
            }
            Some(s) => {
                return Err(src.error(
                    s.span(),
                    format!("unknown severity {:?}", s.get_ref()),
                    "use critical, major or minor",
                ))
            }
        };
        ObjSource::Acknowledgement {
            within_ms: v
                .duration(within, "acknowledge_within", Duration::from_secs(1))?
                .as_millis() as i64,
            severity,
        }
    } else {
        let selector = match &o.matcher {
            Some(m) => v.selector(m.get_ref(), m.span())?,
            None => Selector::label("objective", o.name.get_ref()),
        };
        let mut classes = default_classes();
        let mut given: BTreeMap<Outcome, &str> = BTreeMap::new();
        for (list, class, field) in [
            (&o.good, Class::Good, "good"),
            (&o.bad, Class::Bad, "bad"),
            (&o.excluded, Class::Excluded, "excluded"),
        ] {
            let Some(list) = list else { continue };
            for oc in v.outcomes(list, field)? {
                if let Some(prev) = given.insert(oc, field) {
                    return Err(src.error(
                        list.span(),
                        format!(
                            "outcome {:?} is listed in both `{prev}` and `{field}`",
                            oc.as_str()
                        ),
                        "list each outcome in one class only",
                    ));
                }
                classes[oc.index()] = class;
            }
        }
        ObjSource::Results { selector, classes }
    };
    Ok(Objective {
        name: o.name.get_ref().clone(),
        description: o.description.clone().unwrap_or_default(),
        target: t / 100.0,
        source,
        guard,
        alert: o.alert.unwrap_or(true),
        scenario,
    })
}

#[cfg(test)]
mod tests;
