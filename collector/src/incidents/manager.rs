//! The incident set and its transitions (see the module doc of
//! `incidents` for the rules). Every mutation marks the incident dirty;
//! the owner persists [`Incidents::take_dirty`] after each step.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::escalation::{Severity, Signal, MAX_SIGNAL_SERIES};
use crate::incidents::{Incident, State, TtaHistogram, MAX_INCIDENTS, MAX_LEVEL, MAX_TEXT};

/// What happened to an incident (for notifications and webhooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Opened(u64),
    SeverityRaised(u64),
    Escalated(u64),
    Acknowledged(u64),
    Resolved(u64),
    Closed(u64),
    Historical(u64),
}

impl Change {
    pub fn id(self) -> u64 {
        match self {
            Change::Opened(i)
            | Change::SeverityRaised(i)
            | Change::Escalated(i)
            | Change::Acknowledged(i)
            | Change::Resolved(i)
            | Change::Closed(i)
            | Change::Historical(i) => i,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Change::Opened(_) => "opened",
            Change::SeverityRaised(_) => "severity_raised",
            Change::Escalated(_) => "escalated",
            Change::Acknowledged(_) => "acknowledged",
            Change::Resolved(_) => "resolved",
            Change::Closed(_) => "closed",
            Change::Historical(_) => "historical",
        }
    }
}

/// A refused operator command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncidentError {
    #[error("no incident {0}")]
    NotFound(u64),
    #[error("incident {0} is already acknowledged")]
    AlreadyAcknowledged(u64),
    #[error("incident {0} has ended ({1}); an acknowledgement ends with its incident")]
    Ended(u64, &'static str),
    #[error("incident {0} is open: acknowledge it before closing it")]
    NotAcknowledged(u64),
    #[error("incident {0} is already closed")]
    AlreadyClosed(u64),
    #[error("{0}")]
    BadText(&'static str),
}

/// All incidents and the index of the active ones.
#[derive(Debug, Clone)]
pub struct Incidents {
    by_id: BTreeMap<u64, Incident>,
    active: HashMap<(String, String), u64>,
    next_id: u64,
    dirty: BTreeSet<u64>,
    removed: Vec<u64>,
    /// Critical incidents must be acknowledged within this.
    pub ack_within_ms: i64,
    /// Consecutive good runs (or quiet evaluations) that resolve.
    pub resolve_after: u32,
    pub tta: BTreeMap<Severity, TtaHistogram>,
}

impl Incidents {
    pub fn new(ack_within_ms: i64, resolve_after: u32) -> Incidents {
        Incidents {
            by_id: BTreeMap::new(),
            active: HashMap::new(),
            next_id: 1,
            dirty: BTreeSet::new(),
            removed: Vec::new(),
            ack_within_ms,
            resolve_after,
            tta: BTreeMap::new(),
        }
    }

    /// Rebuilds from stored incidents.
    pub fn restore(&mut self, incidents: Vec<Incident>) {
        for i in incidents {
            self.next_id = self.next_id.max(i.id + 1);
            if i.state.is_active() {
                self.active.insert((i.rule.clone(), i.scope.clone()), i.id);
            }
            if let Some(tta) = i.time_to_ack_ms() {
                self.tta
                    .entry(i.severity)
                    .or_default()
                    .observe(tta as f64 / 1000.0);
            }
            self.by_id.insert(i.id, i);
        }
    }

    pub fn get(&self, id: u64) -> Option<&Incident> {
        self.by_id.get(&id)
    }

    pub fn all(&self) -> impl DoubleEndedIterator<Item = &Incident> {
        self.by_id.values()
    }

    /// Open and acknowledged incidents.
    pub fn active(&self) -> impl Iterator<Item = &Incident> {
        self.active.values().filter_map(|id| self.by_id.get(id))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Incidents changed since the last call (to persist), and ids
    /// forgotten (to delete).
    pub fn take_dirty(&mut self) -> (Vec<Incident>, Vec<u64>) {
        let dirty = std::mem::take(&mut self.dirty);
        let changed = dirty
            .into_iter()
            .filter_map(|id| self.by_id.get(&id).cloned())
            .collect();
        (changed, std::mem::take(&mut self.removed))
    }

    fn touch(&mut self, id: u64) {
        self.dirty.insert(id);
    }

    /// Applies the signals that hold now (warnings are ignored here).
    /// `recovered` says whether an active incident's series all have
    /// enough consecutive good runs; `rto_ms` maps a scenario to its RTO.
    pub fn apply(
        &mut self,
        now_ms: i64,
        signals: &[Signal],
        recovered: impl Fn(&Incident) -> bool,
        rto_ms: impl Fn(&str) -> i64,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut seen = BTreeSet::new();
        for s in signals.iter().filter(|s| s.severity > Severity::Warning) {
            let key = s.key();
            seen.insert(key.clone());
            if let Some(id) = self.active.get(&key).copied() {
                let Some(inc) = self.by_id.get_mut(&id) else {
                    continue;
                };
                inc.clear_evaluations = 0;
                let mut changed = false;
                for sid in &s.series {
                    if inc.series.len() < MAX_SIGNAL_SERIES && !inc.series.contains(sid) {
                        inc.series.push(sid.clone());
                        changed = true;
                    }
                }
                if s.severity > inc.severity {
                    let from = inc.severity;
                    inc.severity = s.severity;
                    inc.note(
                        now_ms,
                        "severity",
                        format!(
                            "severity raised {} -> {}: {}",
                            from.as_str(),
                            s.severity.as_str(),
                            s.summary
                        ),
                    );
                    changes.push(Change::SeverityRaised(id));
                    changed = true;
                }
                if inc.summary != s.summary {
                    inc.summary.clone_from(&s.summary);
                    changed = true;
                }
                if changed {
                    self.touch(id);
                }
            } else {
                let id = self.next_id;
                self.next_id += 1;
                let mut inc = Incident {
                    id,
                    rule: s.rule.to_string(),
                    scope: s.scope.clone(),
                    severity: s.severity,
                    state: State::Open,
                    summary: s.summary.clone(),
                    labels: s.labels.clone(),
                    scenario: s.scenario.clone(),
                    rto_ms: rto_ms(&s.scenario),
                    started_ms: s.started_ms.min(now_ms),
                    opened_ms: now_ms,
                    acked_ms: None,
                    acked_by: None,
                    resolved_ms: None,
                    closed_ms: None,
                    root_cause: None,
                    escalation_level: 0,
                    historical: false,
                    series: s.series.clone(),
                    clear_evaluations: 0,
                    timeline: Vec::new(),
                    timeline_dropped: 0,
                };
                inc.note(
                    now_ms,
                    "opened",
                    format!("{}: {}", s.severity.as_str(), s.summary),
                );
                self.by_id.insert(id, inc);
                self.active.insert(key, id);
                self.touch(id);
                changes.push(Change::Opened(id));
            }
        }
        // Gone signals: resolve with hysteresis.
        let quiet: Vec<((String, String), u64)> = self
            .active
            .iter()
            .filter(|(k, _)| !seen.contains(*k))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (key, id) in quiet {
            let Some(inc) = self.by_id.get_mut(&id) else {
                continue;
            };
            inc.clear_evaluations = inc.clear_evaluations.saturating_add(1);
            let done = if inc.series.is_empty() {
                inc.clear_evaluations >= self.resolve_after
            } else {
                recovered(inc)
            };
            if done {
                inc.state = State::Resolved;
                inc.resolved_ms = Some(now_ms);
                let outage = inc.outage_ms(now_ms);
                let met = outage <= inc.rto_ms;
                inc.note(
                    now_ms,
                    "resolved",
                    format!(
                        "condition cleared ({} consecutive good runs); outage {} min, {} RTO {} min: {}",
                        self.resolve_after,
                        outage / 60_000,
                        inc.scenario,
                        inc.rto_ms / 60_000,
                        if met { "met" } else { "missed" }
                    ),
                );
                self.active.remove(&key);
                changes.push(Change::Resolved(id));
            }
            self.touch(id);
        }
        changes.extend(self.escalate_overdue(now_ms));
        self.bound();
        changes
    }

    /// Re-notifies unacknowledged critical incidents one level higher each
    /// time `ack_within` passes.
    fn escalate_overdue(&mut self, now_ms: i64) -> Vec<Change> {
        let mut out = Vec::new();
        if self.ack_within_ms <= 0 {
            return out;
        }
        let ids: Vec<u64> = self.active.values().copied().collect();
        for id in ids {
            let Some(inc) = self.by_id.get_mut(&id) else {
                continue;
            };
            if inc.state != State::Open || inc.severity != Severity::Critical {
                continue;
            }
            let due = ((now_ms - inc.opened_ms) / self.ack_within_ms).min(i64::from(MAX_LEVEL));
            if due > i64::from(inc.escalation_level) {
                inc.escalation_level = due as u32;
                inc.note(
                    now_ms,
                    "escalated",
                    format!(
                        "not acknowledged within {} min: re-notified at escalation level {}",
                        self.ack_within_ms / 60_000 * due,
                        inc.escalation_level
                    ),
                );
                out.push(Change::Escalated(id));
                self.dirty.insert(id);
            }
        }
        out
    }

    /// Acknowledges an open incident.
    pub fn ack(&mut self, id: u64, by: &str, now_ms: i64) -> Result<Change, IncidentError> {
        let by = by.trim();
        if by.len() > MAX_TEXT {
            return Err(IncidentError::BadText(
                "the acknowledger's name is too long",
            ));
        }
        let inc = self.by_id.get_mut(&id).ok_or(IncidentError::NotFound(id))?;
        match inc.state {
            State::Open => {}
            State::Acknowledged => return Err(IncidentError::AlreadyAcknowledged(id)),
            s => return Err(IncidentError::Ended(id, s.as_str())),
        }
        inc.state = State::Acknowledged;
        inc.acked_ms = Some(now_ms);
        inc.acked_by = (!by.is_empty()).then(|| by.to_string());
        let tta = now_ms - inc.opened_ms;
        let in_time = tta <= self.ack_within_ms;
        inc.note(
            now_ms,
            "acknowledged",
            format!(
                "acknowledged{} after {} s ({} the {} min objective)",
                if by.is_empty() {
                    String::new()
                } else {
                    format!(" by {by}")
                },
                tta / 1000,
                if in_time { "within" } else { "outside" },
                self.ack_within_ms / 60_000
            ),
        );
        let severity = inc.severity;
        self.tta
            .entry(severity)
            .or_default()
            .observe(tta as f64 / 1000.0);
        self.touch(id);
        Ok(Change::Acknowledged(id))
    }

    /// Closes an acknowledged or resolved incident with its root cause.
    pub fn close(
        &mut self,
        id: u64,
        root_cause: &str,
        now_ms: i64,
    ) -> Result<Change, IncidentError> {
        let cause = root_cause.trim();
        if cause.is_empty() {
            return Err(IncidentError::BadText(
                "a root cause is required to close an incident",
            ));
        }
        if cause.len() > MAX_TEXT {
            return Err(IncidentError::BadText(
                "the root cause is longer than 2048 bytes",
            ));
        }
        let inc = self.by_id.get_mut(&id).ok_or(IncidentError::NotFound(id))?;
        match inc.state {
            State::Acknowledged | State::Resolved => {}
            State::Open => return Err(IncidentError::NotAcknowledged(id)),
            State::Closed => return Err(IncidentError::AlreadyClosed(id)),
        }
        if inc.state == State::Acknowledged {
            self.active.remove(&(inc.rule.clone(), inc.scope.clone()));
            inc.resolved_ms.get_or_insert(now_ms);
        }
        inc.state = State::Closed;
        inc.closed_ms = Some(now_ms);
        inc.root_cause = Some(cause.to_string());
        inc.note(now_ms, "closed", format!("closed; root cause: {cause}"));
        self.touch(id);
        Ok(Change::Closed(id))
    }

    /// Forgets ended incidents beyond [`MAX_INCIDENTS`] (oldest first) and
    /// those that ended before `cutoff_ms`.
    pub fn prune(&mut self, cutoff_ms: i64) {
        let old: Vec<u64> = self
            .by_id
            .values()
            .filter(|i| !i.state.is_active() && i.resolved_ms.unwrap_or(i.opened_ms) < cutoff_ms)
            .map(|i| i.id)
            .collect();
        for id in old {
            self.by_id.remove(&id);
            self.removed.push(id);
        }
        self.bound();
    }

    fn bound(&mut self) {
        while self.by_id.len() > MAX_INCIDENTS {
            let Some(id) = self
                .by_id
                .values()
                .find(|i| !i.state.is_active())
                .map(|i| i.id)
            else {
                break;
            };
            self.by_id.remove(&id);
            self.removed.push(id);
        }
    }
}

mod history;
#[cfg(test)]
mod tests;
