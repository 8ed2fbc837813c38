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
use crate::slo::objective::Selector;

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
    inconsistent: Option<RawRule>,
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

pub use receivers::{AlertmanagerConfig, Secret, WebhookConfig};

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
    if let Some(objectives) = objectives::objectives(&v, &raw.objective, &scenarios)? {
        out.engine.objectives = objectives;
    }

    // [escalation]
    rules::escalation(&v, &raw.escalation, &mut out.engine.rules, &scenarios)?;

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

    // [api], [[alertmanager]], [[webhook]]
    receivers::receivers(&v, &raw.api, &raw.alertmanager, &raw.webhook, &mut out)?;
    Ok(out)
}

mod objectives;
mod receivers;
mod rules;
#[cfg(test)]
mod tests;
