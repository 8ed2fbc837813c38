//! Escalation rules: the seed's "escalate immediately when" list turned
//! into pure functions from the current state (series streaks, SLO burn)
//! to a set of [`Signal`]s. A signal at `critical`, `major` or `minor`
//! becomes (or keeps open) an incident; a `warning` never does.
//!
//! Every threshold is in [`RulesConfig`] (config section `[escalation]`);
//! the defaults are the ones documented in README.md. Pure, no I/O: the
//! rules read a snapshot and return signals, `incidents` decides what
//! happens to them.

pub mod rules;

use std::collections::BTreeMap;

use crate::model::Outcome;
use crate::slo::objective::Selector;

/// How bad a signal is. Ordered: `Warning < Minor < Major < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    Warning,
    Minor,
    Major,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "warning" => Some(Severity::Warning),
            "minor" => Some(Severity::Minor),
            "major" => Some(Severity::Major),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// Most series named by one signal or incident.
pub const MAX_SIGNAL_SERIES: usize = 64;

/// A condition that holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// The rule's name (`auth_failing_broadly`, ...).
    pub rule: &'static str,
    /// What it is about: `platform`, a site, a module, a check, an agent.
    pub scope: String,
    pub severity: Severity,
    pub summary: String,
    /// When the condition began (the first failing run).
    pub started_ms: i64,
    /// (agent, check) series involved, at most [`MAX_SIGNAL_SERIES`].
    pub series: Vec<(String, String)>,
    /// Recovery scenario (RTO/RPO lookup).
    pub scenario: String,
    /// Extra alert labels (objective, site, module, ...).
    pub labels: BTreeMap<String, String>,
}

impl Signal {
    /// The grouping key: one incident per (rule, scope).
    pub fn key(&self) -> (String, String) {
        (self.rule.to_string(), self.scope.to_string())
    }
}

/// Login failing at a share of the reporting sites.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthRule {
    pub selectors: Vec<Selector>,
    /// Share of reporting sites that must fail (default 0.5).
    pub min_share: f64,
    /// Consecutive failing runs for a site to count as failing.
    pub consecutive: u32,
    pub scenario: String,
}

/// Protected pages failing across modules.
#[derive(Debug, Clone, PartialEq)]
pub struct PagesRule {
    pub selectors: Vec<Selector>,
    pub min_modules: u32,
    pub consecutive: u32,
    pub scenario: String,
}

/// Telemetry, report or alert-queue checks failing persistently.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistentRule {
    pub selectors: Vec<Selector>,
    /// Fires after this many consecutive failing runs …
    pub consecutive: u32,
    /// … or after failing for this long.
    pub duration_ms: i64,
    pub scenario: String,
}

/// Operational data stale (freshness checks).
#[derive(Debug, Clone, PartialEq)]
pub struct StaleRule {
    pub selectors: Vec<Selector>,
    pub consecutive: u32,
    pub scenario: String,
}

/// Operational data materially inconsistent between two sources
/// (consistency checks), persistently.
#[derive(Debug, Clone, PartialEq)]
pub struct InconsistentRule {
    pub selectors: Vec<Selector>,
    /// Consecutive failing on-time runs before it fires.
    pub consecutive: u32,
    pub scenario: String,
}

/// Backup older than its scenario's RPO.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupRule {
    pub selectors: Vec<Selector>,
    /// Label naming the check's recovery scenario (default `scenario`).
    pub scenario_label: String,
    /// Scenario used when the label is missing.
    pub default_scenario: String,
}

/// A recovery scenario's objectives.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub rto_ms: i64,
    pub rpo_ms: i64,
}

/// Every rule's thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesConfig {
    /// Outcomes the rules treat as failing (by [`Outcome::index`]).
    pub failing: [bool; 8],
    pub auth: AuthRule,
    pub pages: PagesRule,
    pub persistent: PersistentRule,
    pub stale: StaleRule,
    pub backup: BackupRule,
    /// Data inconsistent persistently (consistency checks).
    pub inconsistent: InconsistentRule,
    /// An agent is silent after this many times its longest interval.
    pub silent_factor: f64,
    /// Consecutive good runs that resolve an incident (hysteresis).
    pub resolve_after: u32,
    pub scenarios: BTreeMap<String, Scenario>,
}

fn sel(pairs: &[(&str, &str)]) -> Selector {
    let mut s = Selector::default();
    for (k, v) in pairs {
        if *k == "kind" {
            s.kinds.push((*v).to_string());
        } else {
            s.labels.insert((*k).to_string(), (*v).to_string());
        }
    }
    s
}

impl Default for RulesConfig {
    fn default() -> Self {
        let failing = Outcome::ALL.map(|o| {
            matches!(
                o,
                Outcome::Failed | Outcome::Timeout | Outcome::Unreachable | Outcome::Stale
            )
        });
        let h = 3_600_000;
        RulesConfig {
            failing,
            auth: AuthRule {
                selectors: vec![
                    sel(&[("kind", "login")]),
                    sel(&[("objective", "authentication")]),
                ],
                min_share: 0.5,
                consecutive: 2,
                scenario: "full_platform".into(),
            },
            pages: PagesRule {
                selectors: vec![sel(&[("kind", "page")])],
                min_modules: 2,
                consecutive: 2,
                scenario: "full_platform".into(),
            },
            persistent: PersistentRule {
                selectors: vec![
                    sel(&[("module", "telemetry")]),
                    sel(&[("module", "alerts")]),
                    sel(&[("module", "reports")]),
                    sel(&[("kind", "report")]),
                ],
                consecutive: 3,
                duration_ms: 10 * 60_000,
                scenario: "single_service".into(),
            },
            stale: StaleRule {
                selectors: vec![sel(&[("kind", "freshness")])],
                consecutive: 1,
                scenario: "single_service".into(),
            },
            backup: BackupRule {
                selectors: vec![sel(&[("purpose", "backup")])],
                scenario_label: "scenario".into(),
                default_scenario: "full_platform".into(),
            },
            inconsistent: InconsistentRule {
                selectors: vec![sel(&[("kind", "consistency")])],
                consecutive: 3,
                scenario: "single_service".into(),
            },
            silent_factor: 3.0,
            resolve_after: 3,
            scenarios: BTreeMap::from([
                (
                    "full_platform".to_string(),
                    Scenario {
                        rto_ms: 4 * h,
                        rpo_ms: 30 * 60_000,
                    },
                ),
                (
                    "single_service".to_string(),
                    Scenario {
                        rto_ms: h,
                        rpo_ms: 15 * 60_000,
                    },
                ),
                (
                    "report_subsystem".to_string(),
                    Scenario {
                        rto_ms: 2 * h,
                        rpo_ms: h,
                    },
                ),
            ]),
        }
    }
}

/// Whether any selector matches.
pub fn any_matches(selectors: &[Selector], kind: &str, labels: &BTreeMap<String, String>) -> bool {
    selectors.iter().any(|s| s.matches(kind, labels))
}
