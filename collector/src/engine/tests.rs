//! Engine scenarios on a simulated clock (minutes of history run in
//! microseconds), and the property that bucket sums equal sums over the
//! raw results.

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::escalation::Severity;
use crate::incidents::State;
use crate::model::{Outcome, Phases};
use crate::slo::eval::AlertLevel;
use crate::slo::objective::{Class, Objective, Source};
use crate::slo::window::Window;

const MIN: i64 = 60_000;
/// 2024-03-15T12:00:00Z.
const T0: i64 = 1_710_504_000_000;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Clone)]
struct Check {
    name: &'static str,
    kind: &'static str,
    labels: BTreeMap<String, String>,
}

fn login() -> Check {
    Check {
        name: "login",
        kind: "login",
        labels: labels(&[("objective", "authentication")]),
    }
}

fn page(module: &'static str, name: &'static str) -> Check {
    Check {
        name,
        kind: "page",
        labels: labels(&[("objective", "portal_availability"), ("module", module)]),
    }
}

/// A fleet of agents (one per site) probing once a minute.
struct Sim {
    e: Engine,
    now: i64,
    seq: HashMap<String, u64>,
    sites: Vec<String>,
    checks: Vec<Check>,
    /// Results produced but not delivered, per site (offline sites).
    held: HashMap<String, Vec<ResultRecord>>,
    offline: Vec<String>,
}

impl Sim {
    fn new(sites: usize, checks: Vec<Check>) -> Sim {
        Sim::with(EngineConfig::default(), sites, checks)
    }

    fn with(cfg: EngineConfig, sites: usize, checks: Vec<Check>) -> Sim {
        Sim {
            e: Engine::new(cfg),
            now: T0,
            seq: HashMap::new(),
            sites: (0..sites).map(|i| format!("site-{i}")).collect(),
            checks,
            held: HashMap::new(),
            offline: Vec::new(),
        }
    }

    fn agent(site: &str) -> String {
        format!("agent-{site}")
    }

    fn record(&mut self, site: &str, c: &Check, outcome: Outcome) -> ResultRecord {
        let agent = Sim::agent(site);
        let seq = self.seq.entry(agent).or_insert(1_000);
        *seq += 1;
        ResultRecord {
            seq: *seq,
            check: c.name.into(),
            kind: c.kind.into(),
            labels: c.labels.clone(),
            started_unix_ms: self.now,
            duration_us: 200_000,
            phases: Phases::default(),
            outcome,
            http_status: None,
            error: String::new(),
            value: None,
            confirmation: false,
            tls_cert_days_left: None,
            received_unix_ms: self.now + 300,
        }
    }

    fn deliver(&mut self, site: &str, mut rs: Vec<ResultRecord>) {
        for r in &mut rs {
            r.received_unix_ms = r.received_unix_ms.max(self.now + 300);
        }
        let agent = Sim::agent(site);
        let l = labels(&[("site", site)]);
        self.e.fold(&agent, &l, &rs, self.now);
    }

    /// One minute: every site probes every check (`outcome(site, check)`),
    /// online sites deliver, then the engine evaluates.
    fn minute(&mut self, outcome: impl Fn(usize, &str) -> Outcome) -> Evaluation {
        let sites = self.sites.clone();
        let checks = self.checks.clone();
        for (i, site) in sites.iter().enumerate() {
            let rs: Vec<ResultRecord> = checks
                .iter()
                .map(|c| self.record(site, c, outcome(i, c.name)))
                .collect();
            if self.offline.contains(site) {
                self.held.entry(site.clone()).or_default().extend(rs);
            } else {
                self.deliver(site, rs);
            }
        }
        self.now += MIN;
        self.e.evaluate(self.now)
    }

    fn run(&mut self, minutes: usize, outcome: impl Fn(usize, &str) -> Outcome) -> Vec<Evaluation> {
        (0..minutes).map(|_| self.minute(&outcome)).collect()
    }

    fn reconnect(&mut self, site: &str) {
        self.offline.retain(|s| s != site);
        let rs = self.held.remove(site).unwrap_or_default();
        self.deliver(site, rs);
    }

    fn report(&self, objective: &str) -> ObjectiveReport {
        self.e
            .reports(self.now)
            .into_iter()
            .find(|r| r.objective == objective)
            .unwrap()
    }

    fn active(&self) -> Vec<(String, String, Severity)> {
        let mut v: Vec<_> = self
            .e
            .incidents
            .active()
            .map(|i| (i.rule.clone(), i.scope.clone(), i.severity))
            .collect();
        v.sort();
        v
    }
}

fn all_ok(_: usize, _: &str) -> Outcome {
    Outcome::Ok
}

#[test]
fn one_transient_failure_does_not_page_a_real_outage_pages_within_minutes() {
    let mut sim = Sim::new(
        3,
        vec![login(), page("home", "home"), page("devices", "devices")],
    );
    sim.run(120, all_ok);
    // One failed login at one site.
    sim.minute(|s, c| {
        if s == 0 && c == "login" {
            Outcome::Failed
        } else {
            Outcome::Ok
        }
    });
    for ev in sim.run(30, all_ok) {
        assert!(ev.changes.is_empty(), "{:?}", ev.changes);
        assert!(ev.signals.is_empty(), "{:?}", ev.signals);
    }
    assert!(sim.e.incidents.is_empty());
    // The identity provider goes down for everyone.
    let mut opened = Vec::new();
    for m in 1..=10 {
        let ev = sim.minute(|_, c| {
            if c == "login" {
                Outcome::Failed
            } else {
                Outcome::Ok
            }
        });
        for c in ev.changes {
            if let Change::Opened(id) = c {
                let i = sim.e.incidents.get(id).unwrap();
                opened.push((m, i.rule.clone(), i.severity));
            }
        }
    }
    // Three sites failing in the same minute already corroborate a fast
    // burn; the login rule wants two consecutive runs.
    assert_eq!(
        opened,
        vec![
            (1, "slo_burn".to_string(), Severity::Critical),
            (2, "auth_failing_broadly".to_string(), Severity::Critical),
        ]
    );
    assert_eq!(
        sim.report("authentication").firing(),
        Some(AlertLevel::Page)
    );
}

#[test]
fn one_site_alone_failing_is_a_warning_not_an_incident() {
    let mut sim = Sim::new(
        3,
        vec![login(), page("home", "home"), page("devices", "devices")],
    );
    sim.run(60, all_ok);
    let evs = sim.run(20, |s, _| {
        if s == 2 {
            Outcome::Unreachable
        } else {
            Outcome::Ok
        }
    });
    assert!(sim.e.incidents.is_empty(), "{:?}", sim.active());
    let raised: Vec<(&str, &str)> = evs
        .iter()
        .flat_map(|e| e.warnings_raised.iter())
        .map(|s| (s.rule, s.scope.as_str()))
        .collect();
    assert_eq!(raised, vec![("site_failing", "site-2")]);
    // The SLI still shows the site's failures.
    assert!(
        sim.report("portal_availability")
            .window(Window::H1)
            .counts
            .bad
            >= 40
    );
}

#[test]
fn unknown_is_not_bad_and_late_results_backfill_without_paging() {
    let mut sim = Sim::new(2, vec![login()]);
    sim.run(60, all_ok);
    // Site 1 loses its link for 2 hours; the platform fails there for
    // its first 30 minutes (nobody can tell yet).
    sim.offline.push("site-1".into());
    let start = sim.now;
    let evs = sim.run(
        120,
        |s, _| {
            if s == 1 {
                Outcome::Failed
            } else {
                Outcome::Ok
            }
        },
    );
    let _ = evs;
    // While cut off: site 1's minutes are unknown, not bad.
    let r = sim.report("authentication");
    let h1 = r.window(Window::H1);
    assert_eq!((h1.counts.good, h1.counts.bad), (59, 0)); // current minute: no runs yet
    let site1 = r.sites.iter().find(|s| s.site == "site-1").unwrap();
    assert_eq!(site1.windows[Window::H1.index()].completeness(), Some(0.0));
    assert!(h1.completeness().unwrap() < 0.51);
    // The backlog arrives: failures land in the minutes they were produced.
    sim.held
        .get_mut("site-1")
        .unwrap()
        .iter_mut()
        .for_each(|r| {
            if r.started_unix_ms >= start + 30 * MIN {
                r.outcome = Outcome::Ok;
            }
        });
    sim.reconnect("site-1");
    let ev = sim.e.evaluate(sim.now);
    let r = sim.report("authentication");
    let h3 = r.window(Window::D1);
    assert_eq!(h3.counts.bad, 30);
    assert_eq!(h3.counts.bad_live, 0);
    assert!(r.window(Window::H1).completeness().unwrap() > 0.99);
    // Nothing pages for the past; it is on record as history.
    assert!(
        ev.changes
            .iter()
            .all(|c| matches!(c, Change::Historical(_))),
        "{:?}",
        ev.changes
    );
    assert!(ev.warnings_raised.is_empty());
    assert_eq!(sim.active(), vec![]);
    let hist: Vec<&Incident> = sim.e.incidents.all().filter(|i| i.historical).collect();
    assert_eq!(hist.len(), 1);
    assert!(hist[0].timeline[0].text.contains("30 failing result(s)"));
    assert_eq!(hist[0].started_ms, start);
}

#[test]
fn incidents_resolve_with_hysteresis_and_measure_rto() {
    let tele = Check {
        name: "telemetry",
        kind: "freshness",
        labels: labels(&[("module", "telemetry")]),
    };
    let mut sim = Sim::new(1, vec![tele]);
    sim.run(10, all_ok);
    let t_fail = sim.now;
    sim.run(3, |_, _| Outcome::Failed);
    assert_eq!(
        sim.active(),
        vec![(
            "persistent_failure".into(),
            "telemetry".into(),
            Severity::Major
        )]
    );
    // good, fail, good, good: not yet 3 consecutive good runs.
    for o in [Outcome::Ok, Outcome::Failed, Outcome::Ok, Outcome::Ok] {
        sim.minute(|_, _| o);
        assert_eq!(sim.active().len(), 1, "flapped on {o:?}");
    }
    let ev = sim.minute(all_ok);
    assert_eq!(ev.changes, vec![Change::Resolved(1)]);
    let i = sim.e.incidents.get(1).unwrap();
    assert_eq!(i.started_ms, t_fail);
    assert_eq!(i.outage_ms(0), 8 * MIN);
    assert_eq!(i.rto_met(sim.now), Some(true)); // single service, 1 h
}

#[test]
fn an_outage_longer_than_its_rto_is_reported_missed() {
    let mut sim = Sim::new(2, vec![login()]);
    sim.run(5, all_ok);
    sim.run(4 * 60 + 5, |_, _| Outcome::Failed);
    let i = sim
        .e
        .incidents
        .active()
        .find(|i| i.rule == "auth_failing_broadly")
        .unwrap()
        .clone();
    assert_eq!(i.rto_met(sim.now), Some(false)); // full platform, 4 h
    sim.run(3, all_ok);
    let i = sim.e.incidents.get(i.id).unwrap();
    assert_eq!(i.state, State::Resolved);
    assert_eq!(i.rto_met(sim.now), Some(false));
}

#[test]
fn unacknowledged_critical_is_renotified_and_the_alert_set_follows() {
    let mut sim = Sim::new(2, vec![login()]);
    sim.run(5, all_ok);
    sim.run(2, |_, _| Outcome::Failed);
    let alerts = sim.e.alerts();
    let a = alerts
        .iter()
        .find(|a| a.labels["alertname"] == "auth_failing_broadly")
        .unwrap();
    assert_eq!(a.labels["severity"], "critical");
    assert_eq!(a.labels["escalation_level"], "0");
    let evs = sim.run(15, |_, _| Outcome::Failed);
    let escalated: Vec<_> = evs
        .iter()
        .flat_map(|e| e.changes.iter())
        .filter(|c| matches!(c, Change::Escalated(_)))
        .collect();
    assert_eq!(escalated.len(), 2, "auth and slo_burn incidents, once each");
    assert!(sim
        .e
        .alerts()
        .iter()
        .filter(|a| a.incident.is_some())
        .all(|a| a.labels["escalation_level"] == "1"));
    // Acknowledged a minute past the objective: counted late; the other
    // one is still unacknowledged past it: counted too.
    sim.minute(|_, _| Outcome::Failed);
    let id = sim.e.incidents.active().next().unwrap().id;
    sim.e.ack(id, "ops", sim.now).unwrap();
    let ack = sim.report("incident_acknowledgement");
    assert_eq!(ack.window(Window::H1).counts.bad, 2);
}

#[test]
fn maintenance_excludes_runs_and_raises_nothing() {
    let mut cfg = EngineConfig::default();
    cfg.maintenance.push(maintenance::Window {
        name: "patching".into(),
        start_ms: T0 + 60 * MIN,
        duration_ms: 60 * MIN,
        every_ms: None,
        selector: BTreeMap::new(),
        reason: "monthly patching".into(),
        origin: maintenance::Origin::Config,
    });
    let mut sim = Sim::with(
        cfg,
        2,
        vec![login(), page("home", "home"), page("devices", "devices")],
    );
    sim.run(60, all_ok);
    let evs = sim.run(60, |_, _| Outcome::Failed);
    assert!(evs
        .iter()
        .all(|e| e.signals.is_empty() && e.changes.is_empty()));
    assert!(sim.e.incidents.is_empty());
    let r = sim.report("portal_availability");
    let h2 = r.window(Window::H2);
    // 2 sites x 2 pages; the window's current minute has no runs yet.
    assert_eq!(
        (h2.counts.good, h2.counts.bad, h2.counts.maintenance),
        (59 * 4, 0, 60 * 4)
    );
    assert_eq!(h2.sli(), Some(1.0));
    // Failing on after the window ends: escalations resume.
    sim.run(3, |_, _| Outcome::Failed);
    assert!(sim
        .active()
        .iter()
        .any(|(r, _, _)| r == "auth_failing_broadly"));
}

#[test]
fn maintenance_beginning_during_an_incident_is_on_its_timeline() {
    let mut sim = Sim::new(2, vec![login()]);
    sim.run(3, |_, _| Outcome::Failed);
    assert_eq!(sim.active().len(), 2, "{:?}", sim.active()); // login rule and SLO burn
    sim.e
        .maintenance
        .add(maintenance::Window {
            name: "fix".into(),
            start_ms: sim.now + 30_000,
            duration_ms: 30 * MIN,
            every_ms: None,
            selector: BTreeMap::new(),
            reason: String::new(),
            origin: maintenance::Origin::Api,
        })
        .unwrap();
    sim.minute(|_, _| Outcome::Failed);
    for i in sim.e.incidents.active() {
        assert!(i
            .timeline
            .iter()
            .any(|e| e.kind == "maintenance" && e.text.contains("fix began")));
    }
}

#[test]
fn persisted_state_restores_to_the_same_reports() {
    let mut sim = Sim::new(3, vec![login(), page("home", "home")]);
    sim.run(300, |s, c| {
        if s == 1 && c == "home" {
            Outcome::Degraded
        } else {
            Outcome::Ok
        }
    });
    sim.run(3, |_, _| Outcome::Failed);
    let p = sim.e.take_persist();
    let mut e2 = Engine::new(EngineConfig::default());
    for (k, rec) in p.blocks {
        e2.restore_block(&k, rec, sim.now);
    }
    for s in p.series {
        e2.restore_series(s);
    }
    for (a, seq) in &p.folded {
        e2.restore_folded(a, *seq);
    }
    e2.restore_incidents(p.incidents);
    assert_eq!(e2.reports(sim.now), sim.e.reports(sim.now));
    assert_eq!(
        e2.incidents.active().count(),
        sim.e.incidents.active().count()
    );
    // A replayed batch is not counted twice.
    let agent = Sim::agent("site-0");
    let rs = vec![sim.record("site-0", &login(), Outcome::Ok)];
    let mut old = rs.clone();
    old[0].seq = 5;
    e2.fold(&agent, &labels(&[("site", "site-0")]), &old, sim.now);
    assert_eq!(e2.counters.results_replayed_skipped, 1);
    assert!(!p.folded.is_empty());
}

#[test]
fn thirty_days_with_a_slow_burn_ticket_and_budget() {
    let mut sim = Sim::new(2, vec![page("home", "home")]);
    // 30 days at 0.6% failures (1.2x the 99.5% budget), one check a minute
    // per site; evaluate once an hour to keep the test fast.
    for day in 0..30 {
        for hour in 0..24 {
            for m in 0..60 {
                let k = (day * 1440 + hour * 60 + m) as usize;
                let rs: Vec<_> = (0..2)
                    .map(|s| {
                        let bad = (k * 2 + s).is_multiple_of(167);
                        let site = format!("site-{s}");
                        let o = if bad { Outcome::Failed } else { Outcome::Ok };
                        (site.clone(), sim.record(&site, &page("home", "home"), o))
                    })
                    .collect();
                for (site, r) in rs {
                    sim.deliver(&site, vec![r]);
                }
                sim.now += MIN;
            }
            sim.e.evaluate(sim.now);
            let _ = sim.e.take_persist(); // as the evaluator task does
            sim.e.trim(sim.now);
        }
    }
    let r = sim.report("portal_availability");
    let d30 = r.window(Window::Rolling30d);
    // The current hour (no runs yet) and the 719 before it.
    assert_eq!(d30.counts.valid(), 2 * 719 * 60);
    let burn = d30.burn_rate(0.995).unwrap();
    assert!((1.1..1.3).contains(&burn), "burn {burn}");
    assert!(d30.budget_remaining(0.995).unwrap() < 0.0);
    // 1.2x over 3 days and 6 hours: a ticket (minor), never a page.
    assert_eq!(r.firing(), Some(AlertLevel::Ticket));
    assert_eq!(
        sim.active(),
        vec![(
            "slo_burn".into(),
            "portal_availability".into(),
            Severity::Minor
        )]
    );
    assert!(sim.e.bucket_bytes() < 1_000_000, "{}", sim.e.bucket_bytes());
}

mod property;
