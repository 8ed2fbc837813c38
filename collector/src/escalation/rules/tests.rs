//! One scenario per rule and per warning, on hand-built series.

use super::*;
use crate::engine::series::Arrival;
use crate::model::{Phases, ResultRecord};

const NOW: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;

fn rec(check: &str, kind: &str, labels: &[(&str, &str)], at: i64, o: Outcome) -> ResultRecord {
    ResultRecord {
        seq: 0,
        check: check.into(),
        kind: kind.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        started_unix_ms: at,
        duration_us: 1_000,
        phases: Phases::default(),
        outcome: o,
        http_status: None,
        error: String::new(),
        value: None,
        confirmation: false,
        tls_cert_days_left: None,
        received_unix_ms: at + 500,
    }
}

/// A series at `site` whose last runs (one a minute, ending now) had
/// these outcomes, oldest first.
fn series(
    site: &str,
    check: &str,
    kind: &str,
    labels: &[(&str, &str)],
    outcomes: &[Outcome],
) -> SeriesState {
    series_v(site, check, kind, labels, outcomes, None)
}

fn series_v(
    site: &str,
    check: &str,
    kind: &str,
    labels: &[(&str, &str)],
    outcomes: &[Outcome],
    value: Option<f64>,
) -> SeriesState {
    let cfg = RulesConfig::default();
    let n = outcomes.len() as i64;
    let first = rec(check, kind, labels, NOW - n * MIN, Outcome::Ok);
    let mut s = SeriesState::new(&format!("agent-{site}"), site, &first);
    for (i, o) in outcomes.iter().enumerate() {
        let mut r = rec(check, kind, labels, NOW - (n - 1 - i as i64) * MIN, *o);
        r.value = value;
        s.observe(&r, Arrival::OnTime, &cfg.failing);
    }
    s
}

fn run(series: &[SeriesState], slo: &[SloFiring]) -> Vec<Signal> {
    let cfg = RulesConfig::default();
    let input = RuleInput {
        now_ms: NOW + 1_000,
        series: series.iter().collect(),
        slo,
        config: &cfg,
    };
    evaluate(&input)
}

fn rules_of(signals: &[Signal]) -> Vec<(&str, &str, Severity)> {
    signals
        .iter()
        .map(|s| (s.rule, s.scope.as_str(), s.severity))
        .collect()
}

use Outcome::{AccessDenied, Failed, Ok, Stale, Timeout};

fn login(site: &str, o: &[Outcome]) -> SeriesState {
    series(
        site,
        "login",
        "login",
        &[("objective", "authentication")],
        o,
    )
}

#[test]
fn auth_failing_at_half_the_sites_is_critical() {
    let s = vec![
        login("a", &[Ok, Failed, Failed]),
        login("b", &[Ok, Timeout, Failed]),
        login("c", &[Ok, Ok, Ok]),
        login("d", &[Ok, Ok, Ok]),
    ];
    let out = run(&s, &[]);
    assert_eq!(
        rules_of(&out),
        vec![("auth_failing_broadly", "platform", Severity::Critical)]
    );
    assert_eq!(out[0].started_ms, NOW - MIN);
    assert_eq!(out[0].series.len(), 2);
    assert_eq!(out[0].scenario, "full_platform");
}

#[test]
fn auth_needs_two_consecutive_failures_per_site() {
    let s = vec![login("a", &[Ok, Ok, Failed]), login("b", &[Ok, Ok, Failed])];
    assert!(run(&s, &[]).is_empty());
}

#[test]
fn auth_at_one_site_while_others_succeed_is_a_site_warning() {
    let s = vec![
        login("a", &[Failed, Failed, Failed]),
        login("b", &[Ok, Ok, Ok]),
        login("c", &[Ok, Ok, Ok]),
    ];
    assert_eq!(
        rules_of(&run(&s, &[])),
        vec![("site_failing", "a", Severity::Warning)]
    );
}

#[test]
fn auth_below_the_share_warns_per_site() {
    let mut s: Vec<SeriesState> = (0..6).map(|i| login(&format!("s{i}"), &[Ok, Ok])).collect();
    s.push(login("x", &[Failed, Failed]));
    s.push(login("y", &[Failed, Failed]));
    let out = run(&s, &[]);
    assert_eq!(
        rules_of(&out),
        vec![
            ("site_failing", "x", Severity::Warning),
            ("site_failing", "y", Severity::Warning)
        ]
    );
}

#[test]
fn auth_at_the_only_site_is_critical() {
    let out = run(&[login("a", &[Failed, Failed])], &[]);
    assert_eq!(out[0].rule, "auth_failing_broadly");
}

fn page(site: &str, module: &str, o: &[Outcome]) -> SeriesState {
    series(
        site,
        &format!("{module}-page"),
        "page",
        &[("module", module)],
        o,
    )
}

#[test]
fn pages_failing_in_two_modules_are_critical_one_module_is_not() {
    let s = vec![
        page("a", "devices", &[Failed, Failed]),
        page("b", "devices", &[Failed, Failed]),
        page("a", "billing", &[Ok, Ok]),
    ];
    assert!(run(&s, &[]).is_empty());
    let s = vec![
        page("a", "devices", &[Failed, Failed]),
        page("b", "billing", &[Failed, Timeout]),
        page("a", "home", &[Ok, Ok]),
    ];
    let out = run(&s, &[]);
    assert_eq!(
        rules_of(&out),
        vec![(
            "pages_failing_across_modules",
            "platform",
            Severity::Critical
        )]
    );
    assert_eq!(out[0].labels["modules"], "billing,devices");
}

#[test]
fn pages_failing_at_one_site_only_are_a_site_warning() {
    let s = vec![
        page("a", "devices", &[Failed, Failed]),
        page("a", "billing", &[Failed, Failed]),
        page("b", "devices", &[Ok, Ok]),
        page("b", "billing", &[Ok, Ok]),
    ];
    assert_eq!(
        rules_of(&run(&s, &[])),
        vec![("site_failing", "a", Severity::Warning)]
    );
}

#[test]
fn telemetry_failing_persistently_is_major() {
    let tele = |o: &[Outcome]| series("a", "telemetry-api", "page", &[("module", "telemetry")], o);
    assert!(run(&[tele(&[Ok, Failed, Failed])], &[]).is_empty());
    let out = run(&[tele(&[Failed, Failed, Failed])], &[]);
    assert_eq!(
        rules_of(&out),
        vec![("persistent_failure", "telemetry", Severity::Major)]
    );
    assert_eq!(out[0].scenario, "single_service");
}

#[test]
fn a_slow_check_failing_for_the_duration_is_persistent_too() {
    // A report check every 10 minutes: two failures span > 10 minutes.
    let cfg = RulesConfig::default();
    let first = rec("sales-report", "report", &[], NOW - 30 * MIN, Ok);
    let mut s = SeriesState::new("agent-a", "a", &first);
    for (t, o) in [
        (NOW - 20 * MIN, Ok),
        (NOW - 10 * MIN, Failed),
        (NOW, Failed),
    ] {
        s.observe(
            &rec("sales-report", "report", &[], t, o),
            Arrival::OnTime,
            &cfg.failing,
        );
    }
    let out = run(&[s], &[]);
    assert_eq!(
        rules_of(&out),
        vec![("persistent_failure", "sales-report", Severity::Major)]
    );
    assert_eq!(out[0].scenario, "report_subsystem");
}

#[test]
fn stale_operational_data_is_major_but_backups_are_judged_by_rpo() {
    let fresh = |check: &str, labels: &[(&str, &str)], o: &[Outcome], v: f64| {
        series_v("a", check, "freshness", labels, o, Some(v))
    };
    let out = run(&[fresh("telemetry-age", &[], &[Ok, Stale], 900.0)], &[]);
    assert_eq!(
        rules_of(&out),
        vec![("data_stale", "telemetry-age", Severity::Major)]
    );
    assert!(out[0].summary.contains("900 s"));

    let backup = |scenario: &str, age_min: f64| {
        fresh(
            &format!("backup-{scenario}"),
            &[("purpose", "backup"), ("scenario", scenario)],
            &[Ok, Ok],
            age_min * 60.0,
        )
    };
    // RPOs: full platform 30 min, single service 15 min, reports 1 h.
    let out = run(
        &[
            backup("full_platform", 31.0),
            backup("single_service", 16.0),
            backup("report_subsystem", 50.0),
        ],
        &[],
    );
    assert_eq!(
        rules_of(&out),
        vec![
            (
                "backup_rpo_exceeded",
                "backup-full_platform",
                Severity::Major
            ),
            (
                "backup_rpo_exceeded",
                "backup-single_service",
                Severity::Major
            ),
        ]
    );
    let out = run(&[backup("full_platform", 29.0)], &[]);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn slo_page_is_critical_and_ticket_minor() {
    let f = |objective: &str, level| SloFiring {
        objective: objective.into(),
        level,
        scenario: "full_platform".into(),
        burn_long: 20.0,
        since_ms: NOW,
    };
    let out = run(
        &[],
        &[
            f("portal_availability", AlertLevel::Page),
            f("report_completion", AlertLevel::Ticket),
        ],
    );
    assert_eq!(
        rules_of(&out),
        vec![
            ("slo_burn", "portal_availability", Severity::Critical),
            ("slo_burn", "report_completion", Severity::Minor)
        ]
    );
}

#[test]
fn an_agent_silent_for_three_intervals_is_a_warning() {
    let s = page("a", "home", &[Ok, Ok, Ok]); // 1-minute interval, last at NOW
    let cfg = RulesConfig::default();
    let at = |now: i64| {
        evaluate(&RuleInput {
            now_ms: now,
            series: vec![&s],
            slo: &[],
            config: &cfg,
        })
    };
    assert!(at(NOW + 3 * MIN).is_empty());
    assert_eq!(
        rules_of(&at(NOW + 3 * MIN + 1_000)),
        vec![("agent_silent", "agent-a", Severity::Warning)]
    );
}

#[test]
fn access_denied_is_a_warning_and_not_a_failure() {
    let s = vec![
        login("a", &[AccessDenied, AccessDenied]),
        login("b", &[AccessDenied, AccessDenied]),
    ];
    let out = run(&s, &[]);
    assert_eq!(
        rules_of(&out),
        vec![("access_denied", "login", Severity::Warning)]
    );
    assert_eq!(out[0].series.len(), 2);
}

#[test]
fn site_warnings_from_several_rules_merge_into_one() {
    let s = vec![
        login("a", &[Failed, Failed]),
        login("b", &[Ok, Ok]),
        page("a", "devices", &[Failed, Failed]),
        page("b", "devices", &[Ok, Ok]),
    ];
    let out = run(&s, &[]);
    assert_eq!(
        rules_of(&out),
        vec![("site_failing", "a", Severity::Warning)]
    );
    assert_eq!(out[0].series.len(), 2);
}

#[test]
fn thresholds_are_tunable() {
    let mut cfg = RulesConfig::default();
    cfg.auth.consecutive = 1;
    let s = [login("a", &[Ok, Failed]), login("b", &[Ok, Failed])];
    let input = RuleInput {
        now_ms: NOW,
        series: s.iter().collect(),
        slo: &[],
        config: &cfg,
    };
    assert_eq!(evaluate(&input)[0].rule, "auth_failing_broadly");
}

#[test]
fn consistency_checks_failing_persistently_are_data_inconsistent_once() {
    use Outcome::*;
    let labels = [("module", "telemetry")];
    // Two failures: below the default 3 consecutive runs.
    let s = series_v(
        "a",
        "devices-vs-telemetry",
        "consistency",
        &labels,
        &[Ok, Failed, Failed],
        Some(42.0),
    );
    assert!(run(&[s], &[]).is_empty());
    let a = series_v(
        "a",
        "devices-vs-telemetry",
        "consistency",
        &labels,
        &[Failed, Failed, Failed],
        Some(42.0),
    );
    let b = series_v(
        "b",
        "devices-vs-telemetry",
        "consistency",
        &labels,
        &[Failed, Failed, Failed],
        Some(-57.0),
    );
    let signals = run(&[a, b], &[]);
    // One incident: not also a persistent_failure of module telemetry.
    assert_eq!(
        rules_of(&signals),
        vec![("data_inconsistent", "devices-vs-telemetry", Severity::Major)]
    );
    let s = &signals[0];
    assert!(
        s.summary.contains("devices-vs-telemetry") && s.summary.contains("-57"),
        "{}",
        s.summary
    );
    assert_eq!(s.scenario, "single_service");
    assert_eq!(s.series.len(), 2);
    // A telemetry page check failing the same way is still persistent_failure.
    let p = series(
        "a",
        "telemetry-page",
        "page",
        &labels,
        &[Failed, Failed, Failed],
    );
    assert_eq!(
        rules_of(&run(&[p], &[])),
        vec![("persistent_failure", "telemetry", Severity::Major)]
    );
}

#[test]
fn the_inconsistent_rule_is_configurable() {
    use Outcome::*;
    let mut cfg = RulesConfig::default();
    cfg.inconsistent.consecutive = 1;
    cfg.inconsistent.scenario = "report_subsystem".into();
    let s = series_v(
        "a",
        "report-vs-page",
        "consistency",
        &[],
        &[Ok, Failed],
        Some(3.0),
    );
    let input = RuleInput {
        now_ms: NOW + 1_000,
        series: vec![&s],
        slo: &[],
        config: &cfg,
    };
    let signals = evaluate(&input);
    assert_eq!(signals.len(), 1);
    assert_eq!(
        (signals[0].rule, signals[0].scenario.as_str()),
        ("data_inconsistent", "report_subsystem")
    );
    // Recovered (an ok run): no signal.
    let ok = series_v(
        "a",
        "report-vs-page",
        "consistency",
        &[],
        &[Failed, Ok],
        Some(0.0),
    );
    let input = RuleInput {
        series: vec![&ok],
        ..input
    };
    assert!(evaluate(&input).is_empty());
}
