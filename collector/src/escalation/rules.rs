//! The rules themselves. Each reads the series' on-time streaks (and the
//! SLO alert levels) and returns the signals that hold now.
//!
//! Corroboration: a failure seen at exactly one site while another site
//! reports the same checks succeeding is that site's problem (its link),
//! so it becomes a `site_failing` warning instead of a platform incident.
//! Stale data and backups are judged from the data itself and are not
//! subject to this.

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::series::SeriesState;
use crate::escalation::{any_matches, RulesConfig, Severity, Signal, MAX_SIGNAL_SERIES};
use crate::model::Outcome;
use crate::slo::eval::AlertLevel;

/// An objective's firing burn alert, as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SloFiring {
    pub objective: String,
    pub level: AlertLevel,
    pub scenario: String,
    pub burn_long: f64,
    pub since_ms: i64,
}

/// What the rules read.
pub struct RuleInput<'a> {
    pub now_ms: i64,
    /// Series not under maintenance now.
    pub series: Vec<&'a SeriesState>,
    pub slo: &'a [SloFiring],
    pub config: &'a RulesConfig,
}

fn ids(series: &[&SeriesState]) -> Vec<(String, String)> {
    series
        .iter()
        .take(MAX_SIGNAL_SERIES)
        .map(|s| (s.agent.clone(), s.check.clone()))
        .collect()
}

fn since(series: &[&SeriesState], now: i64) -> i64 {
    series
        .iter()
        .filter_map(|s| s.failing_since_ms)
        .min()
        .unwrap_or(now)
}

impl RuleInput<'_> {
    fn is_failing(&self, s: &SeriesState, consecutive: u32) -> bool {
        s.consecutive_bad >= consecutive.max(1)
    }

    /// The latest on-time run passed (neither failing nor access-denied).
    fn is_succeeding(&self, s: &SeriesState) -> bool {
        s.last_live.is_some_and(|l| {
            !self.config.failing[l.outcome.index()] && l.outcome != Outcome::AccessDenied
        })
    }

    /// Has an on-time run and is not silent.
    fn is_reporting(&self, s: &SeriesState) -> bool {
        s.last_live.is_some()
            && s.interval_ms.is_none_or(|i| {
                (self.now_ms - s.last_received_ms) as f64 <= self.config.silent_factor * i as f64
            })
    }

    fn pick(&self, f: impl Fn(&SeriesState) -> bool) -> Vec<&SeriesState> {
        self.series.iter().copied().filter(|s| f(s)).collect()
    }
}

fn site_warning(site: &str, why: &str, series: &[&SeriesState], now: i64) -> Signal {
    Signal {
        rule: "site_failing",
        scope: site.to_string(),
        severity: Severity::Warning,
        summary: format!(
            "site {site} alone fails {why} while other sites succeed: check the site's link"
        ),
        started_ms: since(series, now),
        series: ids(series),
        scenario: "single_service".into(),
        labels: BTreeMap::from([("site".to_string(), site.to_string())]),
    }
}

/// `failing` is at exactly one site and another site reports `group`
/// succeeding: returns that site.
fn isolated<'s>(
    input: &RuleInput<'_>,
    failing: &[&'s SeriesState],
    group: &[&SeriesState],
) -> Option<&'s str> {
    let sites: BTreeSet<&str> = failing.iter().map(|s| s.site.as_str()).collect();
    let only = *sites.iter().next()?;
    (sites.len() == 1
        && group
            .iter()
            .any(|s| s.site != only && input.is_reporting(s) && input.is_succeeding(s)))
    .then(|| failing[0].site.as_str())
}

/// Evaluates every rule.
pub fn evaluate(input: &RuleInput<'_>) -> Vec<Signal> {
    let mut out = Vec::new();
    auth(input, &mut out);
    pages(input, &mut out);
    persistent(input, &mut out);
    stale(input, &mut out);
    backup(input, &mut out);
    inconsistent(input, &mut out);
    slo(input, &mut out);
    silent(input, &mut out);
    access_denied(input, &mut out);
    merge_site_warnings(out)
}

fn auth(input: &RuleInput<'_>, out: &mut Vec<Signal>) {
    let r = &input.config.auth;
    let group = input.pick(|s| any_matches(&r.selectors, &s.kind, &s.labels));
    let mut sites: BTreeMap<&str, (bool, Vec<&SeriesState>)> = BTreeMap::new();
    for s in &group {
        if !input.is_reporting(s) {
            continue;
        }
        let e = sites.entry(s.site.as_str()).or_default();
        e.0 = true;
        if input.is_failing(s, r.consecutive) {
            e.1.push(s);
        }
    }
    let reporting = sites.len();
    let failing_sites: Vec<(&str, &Vec<&SeriesState>)> = sites
        .iter()
        .filter(|(_, (_, f))| !f.is_empty())
        .map(|(k, (_, f))| (*k, f))
        .collect();
    let n = failing_sites.len();
    if n == 0 {
        return;
    }
    let all: Vec<&SeriesState> = failing_sites
        .iter()
        .flat_map(|(_, f)| f.iter().copied())
        .collect();
    if n == 1 && reporting >= 2 {
        out.push(site_warning(
            failing_sites[0].0,
            "login",
            &all,
            input.now_ms,
        ));
    } else if n as f64 >= r.min_share * reporting as f64 && (n >= 2 || reporting == 1) {
        out.push(Signal {
            rule: "auth_failing_broadly",
            scope: "platform".into(),
            severity: Severity::Critical,
            summary: format!(
                "login failing at {n} of {reporting} reporting sites ({} consecutive runs or more)",
                r.consecutive
            ),
            started_ms: since(&all, input.now_ms),
            series: ids(&all),
            scenario: r.scenario.clone(),
            labels: BTreeMap::new(),
        });
    } else {
        for (site, f) in failing_sites {
            out.push(site_warning(site, "login", f, input.now_ms));
        }
    }
}

fn pages(input: &RuleInput<'_>, out: &mut Vec<Signal>) {
    let r = &input.config.pages;
    let auth = &input.config.auth.selectors;
    let group = input.pick(|s| {
        any_matches(&r.selectors, &s.kind, &s.labels)
            && !any_matches(auth, &s.kind, &s.labels)
            && !s.module().is_empty()
    });
    let failing: Vec<&SeriesState> = group
        .iter()
        .copied()
        .filter(|s| input.is_reporting(s) && input.is_failing(s, r.consecutive))
        .collect();
    if failing.is_empty() {
        return;
    }
    if let Some(site) = isolated(input, &failing, &group) {
        out.push(site_warning(
            site,
            "protected pages",
            &failing,
            input.now_ms,
        ));
        return;
    }
    let modules: BTreeSet<&str> = failing.iter().map(|s| s.module()).collect();
    if modules.len() as u32 >= r.min_modules.max(1) {
        let list: Vec<&str> = modules.iter().copied().collect();
        out.push(Signal {
            rule: "pages_failing_across_modules",
            scope: "platform".into(),
            severity: Severity::Critical,
            summary: format!(
                "protected pages failing in {} modules: {}",
                modules.len(),
                list.join(", ")
            ),
            started_ms: since(&failing, input.now_ms),
            series: ids(&failing),
            scenario: r.scenario.clone(),
            labels: BTreeMap::from([("modules".to_string(), list.join(","))]),
        });
    }
}

fn persistent(input: &RuleInput<'_>, out: &mut Vec<Signal>) {
    let r = &input.config.persistent;
    // Consistency checks have their own rule (`data_inconsistent`): one
    // problem, one incident.
    let inconsistent = &input.config.inconsistent.selectors;
    let group = input.pick(|s| {
        any_matches(&r.selectors, &s.kind, &s.labels)
            && !any_matches(inconsistent, &s.kind, &s.labels)
    });
    let mut by_scope: BTreeMap<String, Vec<&SeriesState>> = BTreeMap::new();
    for s in &group {
        let scope = if s.module().is_empty() {
            s.check.clone()
        } else {
            s.module().to_string()
        };
        by_scope.entry(scope).or_default().push(s);
    }
    for (scope, members) in by_scope {
        let failing: Vec<&SeriesState> = members
            .iter()
            .copied()
            .filter(|s| {
                input.is_reporting(s)
                    && s.consecutive_bad > 0
                    && (s.consecutive_bad >= r.consecutive.max(1)
                        || s.failing_since_ms
                            .is_some_and(|t| input.now_ms - t >= r.duration_ms))
            })
            .collect();
        if failing.is_empty() {
            continue;
        }
        if let Some(site) = isolated(input, &failing, &members) {
            out.push(site_warning(site, &scope, &failing, input.now_ms));
            continue;
        }
        let scenario = failing
            .iter()
            .find_map(|s| s.labels.get("scenario").cloned())
            .unwrap_or_else(|| {
                if failing
                    .iter()
                    .any(|s| s.kind == "report" || s.module() == "reports")
                {
                    "report_subsystem".to_string()
                } else {
                    r.scenario.clone()
                }
            });
        out.push(Signal {
            rule: "persistent_failure",
            scope: scope.clone(),
            severity: Severity::Major,
            summary: format!(
                "{scope} checks failing persistently ({} series, {} consecutive runs or {} min)",
                failing.len(),
                r.consecutive,
                r.duration_ms / 60_000
            ),
            started_ms: since(&failing, input.now_ms),
            series: ids(&failing),
            scenario,
            labels: BTreeMap::from([("module".to_string(), scope)]),
        });
    }
}

fn by_check(series: Vec<&SeriesState>) -> BTreeMap<String, Vec<&SeriesState>> {
    let mut m: BTreeMap<String, Vec<&SeriesState>> = BTreeMap::new();
    for s in series {
        m.entry(s.check.clone()).or_default().push(s);
    }
    m
}

fn stale(input: &RuleInput<'_>, out: &mut Vec<Signal>) {
    let r = &input.config.stale;
    let backup = &input.config.backup.selectors;
    let hits = input.pick(|s| {
        any_matches(&r.selectors, &s.kind, &s.labels)
            && !any_matches(backup, &s.kind, &s.labels)
            && s.last_live.is_some_and(|l| l.outcome == Outcome::Stale)
            && s.consecutive_bad >= r.consecutive.max(1)
    });
    for (check, series) in by_check(hits) {
        let age = series
            .iter()
            .filter_map(|s| s.last_live.and_then(|l| l.value))
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        out.push(Signal {
            rule: "data_stale",
            scope: check.clone(),
            severity: Severity::Major,
            summary: match age {
                Some(a) => format!("operational data of {check} is stale ({a:.0} s old)"),
                None => format!("operational data of {check} is stale"),
            },
            started_ms: since(&series, input.now_ms),
            series: ids(&series),
            scenario: r.scenario.clone(),
            labels: BTreeMap::from([("check".to_string(), check)]),
        });
    }
}

fn backup(input: &RuleInput<'_>, out: &mut Vec<Signal>) {
    let r = &input.config.backup;
    let mut hits: BTreeMap<String, (String, i64, f64, Vec<&SeriesState>)> = BTreeMap::new();
    for s in input.pick(|s| any_matches(&r.selectors, &s.kind, &s.labels)) {
        let Some(last) = s.last_live else { continue };
        let scenario = s
            .labels
            .get(&r.scenario_label)
            .cloned()
            .unwrap_or_else(|| r.default_scenario.clone());
        let Some(rpo) = input.config.scenarios.get(&scenario).map(|x| x.rpo_ms) else {
            continue;
        };
        let age_s = last.value.unwrap_or(0.0);
        let over = age_s * 1000.0 > rpo as f64 || last.outcome == Outcome::Stale;
        if over {
            let e = hits
                .entry(s.check.clone())
                .or_insert_with(|| (scenario.clone(), rpo, age_s, Vec::new()));
            e.2 = e.2.max(age_s);
            e.3.push(s);
        }
    }
    for (check, (scenario, rpo, age, series)) in hits {
        out.push(Signal {
            rule: "backup_rpo_exceeded",
            scope: check.clone(),
            severity: Severity::Major,
            summary: format!(
                "backup {check} is {:.0} min old, over the {scenario} RPO of {} min",
                age / 60.0,
                rpo / 60_000
            ),
            started_ms: since(&series, input.now_ms),
            series: ids(&series),
            scenario,
            labels: BTreeMap::from([("check".to_string(), check)]),
        });
    }
}

/// Consistency checks failing `consecutive` on-time runs in a row: the
/// two sources disagree beyond tolerance persistently. The summary names
/// the check and the difference (the result's value, the largest across
/// sites).
fn inconsistent(input: &RuleInput<'_>, out: &mut Vec<Signal>) {
    let r = &input.config.inconsistent;
    let hits = input.pick(|s| {
        any_matches(&r.selectors, &s.kind, &s.labels)
            && input.is_reporting(s)
            && input.is_failing(s, r.consecutive)
    });
    for (check, series) in by_check(hits) {
        let diff = series
            .iter()
            .filter_map(|s| s.last_live.and_then(|l| l.value))
            .fold(None, |m: Option<f64>, v| {
                Some(m.map_or(v, |m: f64| if v.abs() > m.abs() { v } else { m }))
            });
        let scenario = series
            .iter()
            .find_map(|s| s.labels.get("scenario").cloned())
            .filter(|s| input.config.scenarios.contains_key(s))
            .unwrap_or_else(|| r.scenario.clone());
        out.push(Signal {
            rule: "data_inconsistent",
            scope: check.clone(),
            severity: Severity::Major,
            summary: match diff {
                Some(d) => format!(
                    "data of {check} inconsistent between its sources: they differ by {d} ({} consecutive runs or more)",
                    r.consecutive
                ),
                None => format!(
                    "data of {check} inconsistent between its sources ({} consecutive runs or more)",
                    r.consecutive
                ),
            },
            started_ms: since(&series, input.now_ms),
            series: ids(&series),
            scenario,
            labels: BTreeMap::from([("check".to_string(), check)]),
        });
    }
}

fn slo(input: &RuleInput<'_>, out: &mut Vec<Signal>) {
    for f in input.slo {
        let severity = match f.level {
            AlertLevel::Page => Severity::Critical,
            AlertLevel::Ticket => Severity::Minor,
        };
        out.push(Signal {
            rule: "slo_burn",
            scope: f.objective.clone(),
            severity,
            summary: format!(
                "{} error budget burning at {:.1}x ({})",
                f.objective,
                f.burn_long,
                f.level.as_str()
            ),
            started_ms: f.since_ms,
            series: Vec::new(),
            scenario: f.scenario.clone(),
            labels: BTreeMap::from([("objective".to_string(), f.objective.clone())]),
        });
    }
}

fn silent(input: &RuleInput<'_>, out: &mut Vec<Signal>) {
    let mut agents: BTreeMap<&str, (i64, i64, Vec<&SeriesState>)> = BTreeMap::new();
    for s in &input.series {
        let e = agents
            .entry(s.agent.as_str())
            .or_insert((0, i64::MIN, Vec::new()));
        e.0 = e.0.max(s.interval_ms.unwrap_or(0));
        e.1 = e.1.max(s.last_received_ms);
        e.2.push(s);
    }
    for (agent, (longest, last, series)) in agents {
        if longest <= 0 {
            continue;
        }
        let quiet = input.now_ms - last;
        if quiet as f64 > input.config.silent_factor * longest as f64 {
            out.push(Signal {
                rule: "agent_silent",
                scope: agent.to_string(),
                severity: Severity::Warning,
                summary: format!(
                    "agent {agent} silent for {} s (longest interval {} s)",
                    quiet / 1000,
                    longest / 1000
                ),
                started_ms: last,
                series: ids(&series),
                scenario: "single_service".into(),
                labels: BTreeMap::from([("agent".to_string(), agent.to_string())]),
            });
        }
    }
}

fn access_denied(input: &RuleInput<'_>, out: &mut Vec<Signal>) {
    let hits = input.pick(|s| {
        input.is_reporting(s)
            && s.last_live
                .is_some_and(|l| l.outcome == Outcome::AccessDenied)
    });
    for (check, series) in by_check(hits) {
        let started = series
            .iter()
            .filter_map(|s| s.last_live.map(|l| l.started_ms))
            .min()
            .unwrap_or(input.now_ms);
        out.push(Signal {
            rule: "access_denied",
            scope: check.clone(),
            severity: Severity::Warning,
            summary: format!(
                "{check}: access denied for a valid login at {} agent(s): a role/access issue, not an outage",
                series.len()
            ),
            started_ms: started,
            series: ids(&series),
            scenario: "single_service".into(),
            labels: BTreeMap::from([("check".to_string(), check)]),
        });
    }
}

/// One `site_failing` warning per site.
fn merge_site_warnings(signals: Vec<Signal>) -> Vec<Signal> {
    let mut out: Vec<Signal> = Vec::with_capacity(signals.len());
    for s in signals {
        if s.rule == "site_failing" {
            if let Some(prev) = out
                .iter_mut()
                .find(|p| p.rule == "site_failing" && p.scope == s.scope)
            {
                prev.started_ms = prev.started_ms.min(s.started_ms);
                for id in s.series {
                    if prev.series.len() < MAX_SIGNAL_SERIES && !prev.series.contains(&id) {
                        prev.series.push(id);
                    }
                }
                continue;
            }
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests;
