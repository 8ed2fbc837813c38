//! Service objectives as the evaluation sees them: which results count
//! (a label selector), how each outcome counts (good, bad or excluded) and
//! the target. The shipped defaults are the seed's four objectives.
//!
//! Invariants: a target is strictly between 0 and 1; every outcome has
//! exactly one class; an acknowledgement objective selects incidents, not
//! results. Pure data, no I/O.

use std::collections::BTreeMap;

use crate::model::Outcome;

/// How an outcome counts against an objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Good,
    Bad,
    /// Neither good nor bad: not counted (access_denied, pending).
    Excluded,
}

/// The default class of each outcome (the brief's outcome table).
pub fn default_class(o: Outcome) -> Class {
    match o {
        Outcome::Ok => Class::Good,
        Outcome::Pending | Outcome::AccessDenied => Class::Excluded,
        Outcome::Degraded
        | Outcome::Failed
        | Outcome::Timeout
        | Outcome::Unreachable
        | Outcome::Stale => Class::Bad,
    }
}

/// Selects results by their check's labels and kind. Every listed label
/// must be equal; when `kinds` is not empty the kind must be one of them.
/// An empty selector selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    pub labels: BTreeMap<String, String>,
    pub kinds: Vec<String>,
}

impl Selector {
    /// Selects results whose `key` label is `value`.
    pub fn label(key: &str, value: &str) -> Selector {
        Selector {
            labels: BTreeMap::from([(key.to_string(), value.to_string())]),
            kinds: Vec::new(),
        }
    }

    pub fn matches(&self, kind: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind))
            && self
                .labels
                .iter()
                .all(|(k, v)| labels.get(k).is_some_and(|x| x == v))
    }
}

/// The guard that keeps burn-rate alerts meaningful on low-volume
/// synthetic data (see ARCHITECTURE.md, "Low-volume guard"): an alert
/// window pair may fire only when its short window holds at least
/// `min_bad_events` bad results that arrived on time, from at least
/// `min(min_bad_sites, sites reporting in that window)` distinct sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    pub min_bad_events: u32,
    pub min_bad_sites: u32,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            min_bad_events: 3,
            min_bad_sites: 2,
        }
    }
}

/// Where an objective's events come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Check results selected by labels, classified per outcome
    /// (indexed by [`Outcome::index`]).
    Results {
        selector: Selector,
        classes: [Class; 8],
    },
    /// Incidents of `severity`: good when acknowledged within `within_ms`
    /// of opening, bad when not.
    Acknowledgement { within_ms: i64, severity: String },
}

/// One service objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    pub name: String,
    pub description: String,
    /// Fraction of good events required, strictly between 0 and 1.
    pub target: f64,
    pub source: Source,
    pub guard: Guard,
    /// Raise burn-rate escalations (page → critical, ticket → minor).
    pub alert: bool,
    /// Recovery scenario of an outage of this objective (RTO lookup).
    pub scenario: String,
}

impl Objective {
    /// The class of `outcome`, or `None` for an acknowledgement objective.
    pub fn class(&self, outcome: Outcome) -> Option<Class> {
        match &self.source {
            Source::Results { classes, .. } => Some(classes[outcome.index()]),
            Source::Acknowledgement { .. } => None,
        }
    }

    /// Whether this objective counts the result.
    pub fn selects(&self, kind: &str, labels: &BTreeMap<String, String>) -> bool {
        match &self.source {
            Source::Results { selector, .. } => selector.matches(kind, labels),
            Source::Acknowledgement { .. } => false,
        }
    }

    /// Allowed bad fraction, `1 - target`.
    pub fn budget(&self) -> f64 {
        1.0 - self.target
    }

    fn results(name: &str, description: &str, target: f64, scenario: &str) -> Objective {
        Objective {
            name: name.to_string(),
            description: description.to_string(),
            target,
            source: Source::Results {
                selector: Selector::label("objective", name),
                classes: default_classes(),
            },
            guard: Guard::default(),
            alert: true,
            scenario: scenario.to_string(),
        }
    }

    /// The seed's objectives, shipped as defaults.
    pub fn defaults() -> Vec<Objective> {
        vec![
            Objective::results(
                "portal_availability",
                "Successful access to core user workflows (page checks)",
                0.995,
                "full_platform",
            ),
            Objective::results(
                "authentication",
                "Successful identity handoff for valid users (login and token refresh)",
                0.999,
                "full_platform",
            ),
            Objective::results(
                "report_completion",
                "Successful report page load completion",
                0.99,
                "report_subsystem",
            ),
            Objective {
                name: "incident_acknowledgement".to_string(),
                description: "Critical incidents acknowledged within 15 minutes".to_string(),
                target: 0.95,
                source: Source::Acknowledgement {
                    within_ms: 15 * 60_000,
                    severity: "critical".to_string(),
                },
                guard: Guard::default(),
                alert: false,
                scenario: "single_service".to_string(),
            },
        ]
    }
}

/// Every outcome's default class.
pub fn default_classes() -> [Class; 8] {
    Outcome::ALL.map(default_class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds_objectives() {
        let d = Objective::defaults();
        let targets: Vec<(&str, f64)> = d.iter().map(|o| (o.name.as_str(), o.target)).collect();
        assert_eq!(
            targets,
            vec![
                ("portal_availability", 0.995),
                ("authentication", 0.999),
                ("report_completion", 0.99),
                ("incident_acknowledgement", 0.95),
            ]
        );
        assert!(matches!(
            d[3].source,
            Source::Acknowledgement {
                within_ms: 900_000,
                ..
            }
        ));
    }

    #[test]
    fn access_denied_and_pending_are_not_counted_by_default() {
        let o = &Objective::defaults()[0];
        assert_eq!(o.class(Outcome::AccessDenied), Some(Class::Excluded));
        assert_eq!(o.class(Outcome::Pending), Some(Class::Excluded));
        assert_eq!(o.class(Outcome::Ok), Some(Class::Good));
        assert_eq!(o.class(Outcome::Degraded), Some(Class::Bad));
    }

    #[test]
    fn selector_needs_every_label_and_a_listed_kind() {
        let mut s = Selector::label("objective", "authentication");
        let mut labels = BTreeMap::from([("objective".to_string(), "authentication".to_string())]);
        assert!(s.matches("login", &labels));
        s.kinds = vec!["login".into()];
        assert!(!s.matches("page", &labels));
        labels.insert("objective".into(), "portal_availability".into());
        assert!(!s.matches("login", &labels));
        assert!(Selector::default().matches("x", &BTreeMap::new()));
    }
}
