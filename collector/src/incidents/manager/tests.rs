//! Lifecycle scenarios with a hand-moved clock.

use std::collections::BTreeMap;

use super::*;

const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;

fn signal(rule: &'static str, scope: &str, severity: Severity, series: &[&str]) -> Signal {
    Signal {
        rule,
        scope: scope.into(),
        severity,
        summary: format!("{rule} at {scope}"),
        started_ms: T0 - 2 * MIN,
        series: series
            .iter()
            .map(|a| (a.to_string(), "login".to_string()))
            .collect(),
        scenario: "full_platform".into(),
        labels: BTreeMap::new(),
    }
}

fn rto(s: &str) -> i64 {
    match s {
        "full_platform" => 240 * MIN,
        _ => 60 * MIN,
    }
}

fn incidents() -> Incidents {
    Incidents::new(15 * MIN, 3)
}

#[test]
fn same_rule_and_scope_group_into_one_incident() {
    let mut inc = incidents();
    let a = signal(
        "auth_failing_broadly",
        "platform",
        Severity::Critical,
        &["a1", "a2"],
    );
    let ch = inc.apply(T0, std::slice::from_ref(&a), |_| false, rto);
    assert_eq!(ch, vec![Change::Opened(1)]);
    let b = signal(
        "auth_failing_broadly",
        "platform",
        Severity::Critical,
        &["a3"],
    );
    let ch = inc.apply(T0 + MIN, &[b], |_| false, rto);
    assert!(ch.is_empty(), "{ch:?}");
    assert_eq!(inc.len(), 1);
    assert_eq!(inc.get(1).unwrap().series.len(), 3);
    // A different scope is a different incident; warnings never are.
    let c = signal("persistent_failure", "telemetry", Severity::Major, &[]);
    let w = signal("site_failing", "site-x", Severity::Warning, &[]);
    let ch = inc.apply(T0 + 2 * MIN, &[a, c, w], |_| false, rto);
    assert_eq!(ch, vec![Change::Opened(2)]);
    assert_eq!(inc.len(), 2);
}

#[test]
fn resolves_only_after_recovery_then_a_new_incident_needs_a_new_ack() {
    let mut inc = incidents();
    let s = signal(
        "auth_failing_broadly",
        "platform",
        Severity::Critical,
        &["a1"],
    );
    inc.apply(T0, std::slice::from_ref(&s), |_| false, rto);
    inc.ack(1, "alice", T0 + 5 * MIN).unwrap();
    // Signal gone but the series have not had enough good runs: stays.
    let ch = inc.apply(T0 + 6 * MIN, &[], |_| false, rto);
    assert!(ch.is_empty());
    assert_eq!(inc.get(1).unwrap().state, State::Acknowledged);
    // Flap: back again -> the same incident, no new page.
    assert!(inc
        .apply(T0 + 7 * MIN, std::slice::from_ref(&s), |_| false, rto)
        .is_empty());
    let ch = inc.apply(T0 + 10 * MIN, &[], |_| true, rto);
    assert_eq!(ch, vec![Change::Resolved(1)]);
    let i = inc.get(1).unwrap();
    assert_eq!(i.state, State::Resolved);
    assert_eq!(i.outage_ms(T0 + 99 * MIN), 12 * MIN);
    assert_eq!(i.rto_met(T0), Some(true));
    // It comes back after resolution: a new incident, unacknowledged.
    let ch = inc.apply(T0 + 20 * MIN, &[s], |_| false, rto);
    assert_eq!(ch, vec![Change::Opened(2)]);
    assert_eq!(inc.get(2).unwrap().state, State::Open);
    assert_eq!(
        inc.ack(1, "bob", T0 + 21 * MIN),
        Err(IncidentError::Ended(1, "resolved"))
    );
}

#[test]
fn incidents_without_series_resolve_after_quiet_evaluations() {
    let mut inc = incidents();
    let s = signal("slo_burn", "portal_availability", Severity::Critical, &[]);
    inc.apply(T0, &[s], |_| false, rto);
    assert!(inc.apply(T0 + 1, &[], |_| false, rto).is_empty());
    assert!(inc.apply(T0 + 2, &[], |_| false, rto).is_empty());
    assert_eq!(
        inc.apply(T0 + 3, &[], |_| false, rto),
        vec![Change::Resolved(1)]
    );
}

#[test]
fn an_unacknowledged_critical_incident_is_renotified_one_level_up() {
    let mut inc = incidents();
    let s = signal(
        "auth_failing_broadly",
        "platform",
        Severity::Critical,
        &["a1"],
    );
    inc.apply(T0, std::slice::from_ref(&s), |_| false, rto);
    assert!(inc
        .apply(T0 + 14 * MIN, std::slice::from_ref(&s), |_| false, rto)
        .is_empty());
    assert_eq!(
        inc.apply(T0 + 15 * MIN, std::slice::from_ref(&s), |_| false, rto),
        vec![Change::Escalated(1)]
    );
    assert_eq!(inc.get(1).unwrap().escalation_level, 1);
    assert!(inc
        .apply(T0 + 16 * MIN, std::slice::from_ref(&s), |_| false, rto)
        .is_empty());
    assert_eq!(
        inc.apply(T0 + 30 * MIN, std::slice::from_ref(&s), |_| false, rto),
        vec![Change::Escalated(1)]
    );
    // Acknowledged incidents are not escalated further.
    inc.ack(1, "", T0 + 31 * MIN).unwrap();
    assert!(inc.apply(T0 + 60 * MIN, &[s], |_| false, rto).is_empty());
    // Major incidents are not subject to the 15-minute objective.
    let m = signal("persistent_failure", "alerts", Severity::Major, &["a"]);
    inc.apply(T0, std::slice::from_ref(&m), |_| false, rto);
    let ch = inc.apply(T0 + 20 * MIN, &[m], |_| false, rto);
    assert!(!ch.iter().any(|c| matches!(c, Change::Escalated(_))));
}

#[test]
fn severity_is_raised_within_the_same_incident() {
    let mut inc = incidents();
    let minor = signal("slo_burn", "portal_availability", Severity::Minor, &[]);
    let crit = signal("slo_burn", "portal_availability", Severity::Critical, &[]);
    inc.apply(T0, &[minor], |_| false, rto);
    assert_eq!(
        inc.apply(T0 + MIN, &[crit], |_| false, rto),
        vec![Change::SeverityRaised(1)]
    );
    assert_eq!(inc.get(1).unwrap().severity, Severity::Critical);
}

#[test]
fn closing_needs_an_ack_or_resolution_and_a_root_cause() {
    let mut inc = incidents();
    let s = signal(
        "auth_failing_broadly",
        "platform",
        Severity::Critical,
        &["a1"],
    );
    inc.apply(T0, &[s], |_| false, rto);
    assert_eq!(
        inc.close(1, "dns", T0),
        Err(IncidentError::NotAcknowledged(1))
    );
    inc.ack(1, "alice", T0 + MIN).unwrap();
    assert_eq!(
        inc.ack(1, "alice", T0 + MIN),
        Err(IncidentError::AlreadyAcknowledged(1))
    );
    assert!(matches!(
        inc.close(1, "  ", T0),
        Err(IncidentError::BadText(_))
    ));
    assert_eq!(
        inc.close(1, "expired IdP certificate", T0 + 9 * MIN),
        Ok(Change::Closed(1))
    );
    let i = inc.get(1).unwrap().clone();
    assert_eq!(i.state, State::Closed);
    assert_eq!(i.root_cause.as_deref(), Some("expired IdP certificate"));
    assert_eq!(inc.active().count(), 0);
    assert_eq!(inc.close(1, "x", T0), Err(IncidentError::AlreadyClosed(1)));
    assert_eq!(inc.close(9, "x", T0), Err(IncidentError::NotFound(9)));
    let kinds: Vec<&str> = i.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["opened", "acknowledged", "closed"]);
}

#[test]
fn rto_is_met_or_missed_by_outage_duration() {
    let mut inc = incidents();
    let mut s = signal("persistent_failure", "reports", Severity::Major, &["a1"]);
    s.scenario = "single_service".into(); // RTO 1 h
    inc.apply(T0, &[s], |_| false, rto);
    let i = inc.get(1).unwrap();
    assert_eq!(i.rto_met(T0 + 30 * MIN), None);
    assert_eq!(i.rto_met(T0 + 59 * MIN), Some(false)); // started 2 min before T0
    inc.apply(T0 + 70 * MIN, &[], |_| true, rto);
    let i = inc.get(1).unwrap();
    assert_eq!(i.rto_met(T0 + 999 * MIN), Some(false));
    assert!(i.timeline.last().unwrap().text.ends_with("missed"));
}

#[test]
fn ack_objective_counts_in_time_late_and_overdue() {
    let mut inc = incidents();
    for (k, scope) in ["a", "b", "c", "d"].iter().enumerate() {
        let s = signal("auth_failing_broadly", scope, Severity::Critical, &["x"]);
        inc.apply(T0 + k as i64, &[s], |_| false, rto);
    }
    inc.ack(1, "", T0 + 10 * MIN).unwrap(); // in time
    inc.ack(2, "", T0 + 20 * MIN).unwrap(); // late
                                            // 3 never acknowledged; 4 resolved at once without an ack.
    inc.apply(
        T0 + 5,
        &[
            signal("auth_failing_broadly", "a", Severity::Critical, &["x"]),
            signal("auth_failing_broadly", "b", Severity::Critical, &["x"]),
            signal("auth_failing_broadly", "c", Severity::Critical, &["x"]),
        ],
        |i| i.scope == "d",
        rto,
    );
    let c = inc.ack_counts(
        Severity::Critical,
        15 * MIN,
        T0 - MIN,
        T0 + MIN,
        T0 + 10 * MIN,
    );
    assert_eq!(
        (c.good, c.bad, c.excluded),
        (1, 1, 1),
        "3 still within its deadline"
    );
    let c = inc.ack_counts(
        Severity::Critical,
        15 * MIN,
        T0 - MIN,
        T0 + MIN,
        T0 + 16 * MIN,
    );
    assert_eq!((c.good, c.bad, c.excluded), (1, 2, 1));
    assert_eq!(inc.tta[&Severity::Critical].count, 2);
    assert_eq!(inc.tta[&Severity::Critical].buckets[3], 1); // <= 900 s
}

#[test]
fn late_failures_are_recorded_as_history_never_opened_live() {
    let mut inc = incidents();
    let ch = inc.historical(T0, "site-b-agent", 12, T0 - 3 * 60 * MIN, T0 - 60 * MIN);
    assert_eq!(ch, Change::Historical(1));
    let i = inc.get(1).unwrap();
    assert!(i.historical);
    assert_eq!(i.state, State::Resolved);
    assert_eq!(inc.active().count(), 0);
    // More of the same backlog joins it.
    assert_eq!(
        inc.historical(T0 + MIN, "site-b-agent", 3, T0 - 50 * MIN, T0 - 40 * MIN),
        Change::Historical(1)
    );
    // With an active incident about the agent, the note goes there.
    let s = signal(
        "auth_failing_broadly",
        "platform",
        Severity::Critical,
        &["site-c-agent"],
    );
    inc.apply(T0, &[s], |_| false, rto);
    assert_eq!(
        inc.historical(T0 + MIN, "site-c-agent", 1, T0 - 9 * MIN, T0 - 9 * MIN),
        Change::Historical(2)
    );
    assert_eq!(
        inc.get(2).unwrap().timeline.last().unwrap().kind,
        "historical"
    );
}

#[test]
fn timelines_are_bounded_and_keep_their_first_entry() {
    let mut inc = incidents();
    inc.apply(
        T0,
        &[signal("slo_burn", "x", Severity::Minor, &[])],
        |_| false,
        rto,
    );
    for k in 0..300 {
        inc.historical(T0 + k, "nobody", 1, T0, T0);
        inc.note_active(T0 + k, "maintenance", "m");
    }
    let i = inc.get(1).unwrap();
    assert_eq!(i.timeline.len(), crate::incidents::MAX_TIMELINE);
    assert_eq!(i.timeline[0].kind, "opened");
    assert!(i.timeline_dropped > 0);
    let (dirty, _) = inc.take_dirty();
    assert!(!dirty.is_empty());
    assert!(inc.take_dirty().0.is_empty());
}
