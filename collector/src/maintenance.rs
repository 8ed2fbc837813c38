//! Maintenance windows: spans of time during which selected checks'
//! runs are excluded from the SLIs and raise no escalation.
//!
//! A window starts at `start_ms`, lasts `duration_ms` and, when `every_ms`
//! is set, recurs at that period from its start (e.g. weekly). It applies
//! to the results whose site, agent, check, kind and check labels match its
//! selector (all given keys must be equal; an empty selector matches
//! everything). Windows come from the config file (fixed) and from the API
//! (stored, removable).
//!
//! Invariants: at most [`MAX_WINDOWS`] windows; `duration_ms > 0`;
//! `every_ms > duration_ms` when set. Pure, no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::series::SeriesState;
use crate::model::ResultRecord;

/// Most windows held (config and API together).
pub const MAX_WINDOWS: usize = 1_000;
/// Most selector keys per window.
pub const MAX_SELECTOR_KEYS: usize = 16;

/// Where a window came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    Config,
    Api,
}

/// One maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub name: String,
    pub start_ms: i64,
    pub duration_ms: i64,
    pub every_ms: Option<i64>,
    /// Keys: `site`, `agent`, `check`, `kind`, or any check label.
    pub selector: BTreeMap<String, String>,
    pub reason: String,
    pub origin: Origin,
}

/// A window that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("`name` must be 1-64 characters of A-Z a-z 0-9 . _ -")]
    Name,
    #[error("`duration` must be positive")]
    Duration,
    #[error("`every` must be longer than `duration`")]
    Every,
    #[error("at most {MAX_SELECTOR_KEYS} selector keys")]
    Selector,
    #[error("at most {MAX_WINDOWS} maintenance windows")]
    TooMany,
    #[error("a window named {0:?} exists")]
    Exists(String),
    #[error("no API window named {0:?} (config windows are changed in the config file)")]
    NotFound(String),
}

impl Window {
    /// Checks the invariants.
    pub fn validate(&self) -> Result<(), WindowError> {
        let name_ok = (1..=64).contains(&self.name.len())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !name_ok {
            return Err(WindowError::Name);
        }
        if self.duration_ms <= 0 {
            return Err(WindowError::Duration);
        }
        if self.every_ms.is_some_and(|e| e <= self.duration_ms) {
            return Err(WindowError::Every);
        }
        if self.selector.len() > MAX_SELECTOR_KEYS {
            return Err(WindowError::Selector);
        }
        Ok(())
    }

    /// The occurrence covering `t`, as `[from, to)`.
    pub fn occurrence(&self, t: i64) -> Option<(i64, i64)> {
        if t < self.start_ms {
            return None;
        }
        let from = match self.every_ms {
            None => self.start_ms,
            Some(e) => self.start_ms + (t - self.start_ms).div_euclid(e) * e,
        };
        (t < from + self.duration_ms).then_some((from, from + self.duration_ms))
    }

    pub fn active_at(&self, t: i64) -> bool {
        self.occurrence(t).is_some()
    }

    /// Whether the selector matches a run's identity.
    pub fn matches(
        &self,
        agent: &str,
        site: &str,
        check: &str,
        kind: &str,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        self.selector.iter().all(|(k, v)| match k.as_str() {
            "site" => site == v,
            "agent" => agent == v,
            "check" => check == v,
            "kind" => kind == v,
            _ => labels.get(k).is_some_and(|x| x == v),
        })
    }

    /// Whether the selector names an objective (or everything).
    pub fn matches_objective(&self, objective: &str) -> bool {
        self.selector
            .iter()
            .all(|(k, v)| k == "objective" && v == objective)
    }
}

/// Every window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Maintenance {
    windows: Vec<Window>,
}

impl Maintenance {
    pub fn new(windows: Vec<Window>) -> Maintenance {
        Maintenance { windows }
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// Adds an API window.
    pub fn add(&mut self, w: Window) -> Result<(), WindowError> {
        w.validate()?;
        if self.windows.len() >= MAX_WINDOWS {
            return Err(WindowError::TooMany);
        }
        if self.windows.iter().any(|x| x.name == w.name) {
            return Err(WindowError::Exists(w.name));
        }
        self.windows.push(w);
        Ok(())
    }

    /// Removes an API window.
    pub fn remove(&mut self, name: &str) -> Result<Window, WindowError> {
        let i = self
            .windows
            .iter()
            .position(|w| w.name == name && w.origin == Origin::Api)
            .ok_or_else(|| WindowError::NotFound(name.to_string()))?;
        Ok(self.windows.remove(i))
    }

    /// The window covering a result of `agent` at `site`, if any.
    pub fn covering(&self, agent: &str, site: &str, r: &ResultRecord) -> Option<&Window> {
        self.windows.iter().find(|w| {
            w.active_at(r.started_unix_ms) && w.matches(agent, site, &r.check, &r.kind, &r.labels)
        })
    }

    /// Whether `s` is under maintenance at `t`.
    pub fn covers_series(&self, t: i64, s: &SeriesState) -> bool {
        self.windows
            .iter()
            .any(|w| w.active_at(t) && w.matches(&s.agent, &s.site, &s.check, &s.kind, &s.labels))
    }

    /// Whether an objective's burn is under maintenance at `t`.
    pub fn covers_objective(&self, t: i64, objective: &str) -> bool {
        self.windows
            .iter()
            .any(|w| w.active_at(t) && w.matches_objective(objective))
    }

    /// Windows that began or ended in `(from, to]`: (window, began?, at).
    pub fn transitions(&self, from: i64, to: i64) -> Vec<(&Window, bool, i64)> {
        let mut out = Vec::new();
        if to <= from {
            return out;
        }
        for w in &self.windows {
            if let Some((a, _)) = w.occurrence(to) {
                if a > from {
                    out.push((w, true, a));
                }
            }
            if let Some((_, b)) = w.occurrence(from) {
                if b <= to {
                    out.push((w, false, b));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn window(
        name: &str,
        start: i64,
        dur: i64,
        every: Option<i64>,
        sel: &[(&str, &str)],
    ) -> Window {
        Window {
            name: name.into(),
            start_ms: start,
            duration_ms: dur,
            every_ms: every,
            selector: sel
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            reason: String::new(),
            origin: Origin::Api,
        }
    }

    #[test]
    fn one_off_and_recurring_occurrences() {
        let w = window("once", 10 * H, 2 * H, None, &[]);
        assert!(!w.active_at(10 * H - 1));
        assert!(w.active_at(10 * H));
        assert!(!w.active_at(12 * H));
        let weekly = window("weekly", 10 * H, 2 * H, Some(168 * H), &[]);
        assert!(weekly.active_at(10 * H + 168 * H + H));
        assert!(!weekly.active_at(10 * H + 168 * H + 2 * H));
        assert_eq!(
            weekly.occurrence(10 * H + 336 * H + 5),
            Some((346 * H, 348 * H))
        );
    }

    #[test]
    fn selectors_match_site_agent_check_and_labels() {
        let w = window("w", 0, H, None, &[("site", "a"), ("module", "reports")]);
        let labels = BTreeMap::from([("module".to_string(), "reports".to_string())]);
        assert!(w.matches("ag", "a", "c", "page", &labels));
        assert!(!w.matches("ag", "b", "c", "page", &labels));
        assert!(!w.matches("ag", "a", "c", "page", &BTreeMap::new()));
        assert!(window("all", 0, H, None, &[]).matches_objective("x"));
        assert!(window("o", 0, H, None, &[("objective", "x")]).matches_objective("x"));
        assert!(!w.matches_objective("x"));
    }

    #[test]
    fn invalid_windows_are_refused_and_only_api_windows_removed() {
        let mut m = Maintenance::default();
        assert_eq!(
            m.add(window("bad name", 0, H, None, &[])),
            Err(WindowError::Name)
        );
        assert_eq!(
            m.add(window("w", 0, 0, None, &[])),
            Err(WindowError::Duration)
        );
        assert_eq!(
            m.add(window("w", 0, H, Some(H), &[])),
            Err(WindowError::Every)
        );
        m.add(window("w", 0, H, None, &[])).unwrap();
        assert!(matches!(
            m.add(window("w", 0, H, None, &[])),
            Err(WindowError::Exists(_))
        ));
        let mut c = window("cfg", 0, H, None, &[]);
        c.origin = Origin::Config;
        m.add(c).unwrap();
        assert!(m.remove("cfg").is_err());
        assert!(m.remove("w").is_ok());
    }

    #[test]
    fn transitions_report_starts_and_ends() {
        let m = Maintenance::new(vec![window("w", 10 * H, H, None, &[])]);
        let t = m.transitions(9 * H, 10 * H + 1);
        assert_eq!(t.len(), 1);
        assert!(t[0].1);
        let t = m.transitions(10 * H + 1, 12 * H);
        assert_eq!((t.len(), t[0].1, t[0].2), (1, false, 11 * H));
    }
}
