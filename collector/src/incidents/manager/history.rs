//! Incident history: late failures recorded (never paged), maintenance
//! notes, and the acknowledgement objective's events.

use std::collections::BTreeMap;

use super::{Change, Incidents};
use crate::escalation::Severity;
use crate::incidents::{Incident, State};
use crate::slo::buckets::Counts;

impl Incidents {
    /// Records late failures of `agent` (`count` results produced between
    /// `from_ms` and `to_ms`): on the active incident about that agent, or
    /// on a historical incident (never notified).
    pub fn historical(
        &mut self,
        now_ms: i64,
        agent: &str,
        count: u64,
        from_ms: i64,
        to_ms: i64,
    ) -> Change {
        let text = format!(
            "historical: {count} failing result(s) from agent {agent}, produced {}..{} (unix ms), arrived late",
            from_ms, to_ms
        );
        let target = self
            .active
            .values()
            .copied()
            .find(|id| {
                self.by_id
                    .get(id)
                    .is_some_and(|i| i.series.iter().any(|(a, _)| a == agent))
            })
            .or_else(|| {
                self.by_id
                    .values()
                    .rev()
                    .find(|i| {
                        i.historical
                            && i.scope == agent
                            && i.timeline
                                .last()
                                .is_some_and(|e| now_ms - e.at_ms < 3_600_000)
                    })
                    .map(|i| i.id)
            });
        if let Some(id) = target {
            if let Some(inc) = self.by_id.get_mut(&id) {
                inc.note(now_ms, "historical", text);
                inc.started_ms = inc.started_ms.min(from_ms);
                self.touch(id);
                return Change::Historical(id);
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut inc = Incident {
            id,
            rule: "late_failures".into(),
            scope: agent.to_string(),
            severity: Severity::Minor,
            state: State::Resolved,
            summary: format!("failures of agent {agent} that arrived late (recorded, not paged)"),
            labels: BTreeMap::from([("agent".to_string(), agent.to_string())]),
            scenario: "single_service".into(),
            rto_ms: 0,
            started_ms: from_ms,
            opened_ms: now_ms,
            acked_ms: None,
            acked_by: None,
            resolved_ms: Some(now_ms),
            closed_ms: None,
            root_cause: None,
            escalation_level: 0,
            historical: true,
            series: Vec::new(),
            clear_evaluations: 0,
            timeline: Vec::new(),
            timeline_dropped: 0,
        };
        inc.note(now_ms, "historical", text);
        self.by_id.insert(id, inc);
        self.touch(id);
        self.bound();
        Change::Historical(id)
    }

    /// Adds a maintenance note to every active incident.
    pub fn note_active(&mut self, now_ms: i64, kind: &str, text: &str) {
        let ids: Vec<u64> = self.active.values().copied().collect();
        for id in ids {
            if let Some(inc) = self.by_id.get_mut(&id) {
                inc.note(now_ms, kind, text);
                self.dirty.insert(id);
            }
        }
    }

    /// The acknowledgement objective's events in `[from_ms, to_ms)`:
    /// incidents of `severity` opened then; good when acknowledged within
    /// `within_ms`, bad when acknowledged later or still unacknowledged
    /// past it; not counted while the deadline is running or when the
    /// incident ended before its deadline without an acknowledgement.
    pub fn ack_counts(
        &self,
        severity: Severity,
        within_ms: i64,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Counts {
        let mut c = Counts::default();
        for i in self.by_id.values() {
            if i.historical
                || i.severity != severity
                || i.opened_ms < from_ms
                || i.opened_ms >= to_ms
            {
                continue;
            }
            let deadline = i.opened_ms + within_ms;
            match i.acked_ms {
                Some(a) if a <= deadline => c.good += 1,
                Some(_) => c.bad += 1,
                None if i.resolved_ms.is_some_and(|r| r <= deadline) => c.excluded += 1,
                None if now_ms > deadline => c.bad += 1,
                None => {}
            }
        }
        c
    }
}
