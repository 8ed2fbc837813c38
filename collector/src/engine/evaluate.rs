//! The engine's evaluation step: SLO reports (with expected runs for
//! completeness), burn alerts, rules, incidents and warnings at `now`.

use std::collections::{BTreeMap, HashMap};

use super::{Engine, Evaluation, Warning};
use crate::engine::series::SeriesState;
use crate::escalation::rules::{self, RuleInput, SloFiring};
use crate::escalation::{Severity, Signal};
use crate::slo::buckets::Counts;
use crate::slo::eval::{self, ObjectiveReport, SiteInput};
use crate::slo::objective::Source;
use crate::slo::window::Window;

impl Engine {
    /// The SLO reports at `now` (no side effects).
    pub fn reports(&self, now_ms: i64) -> Vec<ObjectiveReport> {
        // Expected runs per (objective, site, window), from the series.
        let spans: Vec<(i64, i64)> = Window::ALL.iter().map(|w| w.span_ms(now_ms)).collect();
        let mut expected: Vec<HashMap<&str, [f64; 9]>> =
            self.cfg.objectives.iter().map(|_| HashMap::new()).collect();
        for s in self.series.values() {
            for (i, o) in self.cfg.objectives.iter().enumerate() {
                if !o.selects(&s.kind, &s.labels) {
                    continue;
                }
                let e = expected[i].entry(s.site.as_str()).or_insert([0.0; 9]);
                for (k, (a, b)) in spans.iter().enumerate() {
                    e[k] += s.expected_runs(*a, *b, now_ms, self.cfg.series_expiry_ms);
                }
            }
        }
        let mut out = Vec::with_capacity(self.cfg.objectives.len());
        for (i, o) in self.cfg.objectives.iter().enumerate() {
            match &o.source {
                Source::Results { .. } => {
                    let mut sites: Vec<SiteInput<'_>> = self.buckets[i]
                        .iter()
                        .map(|(site, b)| SiteInput {
                            site,
                            buckets: b,
                            expected: expected[i].get(site.as_str()).copied().unwrap_or([0.0; 9]),
                        })
                        .collect();
                    sites.sort_by(|a, b| a.site.cmp(b.site));
                    out.push(eval::evaluate(o, &sites, now_ms));
                }
                Source::Acknowledgement {
                    within_ms,
                    severity,
                } => {
                    let sev = Severity::parse(severity).unwrap_or(Severity::Critical);
                    let counts = spans.map_counts(|(a, b)| {
                        self.incidents.ack_counts(sev, *within_ms, *a, *b, now_ms)
                    });
                    out.push(eval::from_counts(o, counts));
                }
            }
        }
        out
    }

    /// Evaluates everything at `now`: SLOs, rules, incidents, warnings.
    pub fn evaluate(&mut self, now_ms: i64) -> Evaluation {
        self.counters.evaluations += 1;
        // Maintenance transitions go on the active incidents' timelines.
        if let Some(prev) = self.last_eval_ms {
            let notes: Vec<(i64, String)> = self
                .maintenance
                .transitions(prev, now_ms)
                .into_iter()
                .map(|(w, began, at)| {
                    (
                        at,
                        format!(
                            "maintenance window {} {} {}",
                            w.name,
                            if began { "began" } else { "ended" },
                            if w.reason.is_empty() {
                                String::new()
                            } else {
                                format!("({})", w.reason)
                            }
                        ),
                    )
                })
                .collect();
            for (at, text) in notes {
                self.incidents.note_active(at, "maintenance", &text);
            }
        }
        self.last_eval_ms = Some(now_ms);

        // Late failures: history, never live.
        for (agent, l) in std::mem::take(&mut self.late) {
            self.incidents
                .historical(now_ms, &agent, l.count, l.from_ms, l.to_ms);
        }

        let reports = self.reports(now_ms);
        let mut firing = Vec::new();
        for (o, r) in self.cfg.objectives.iter().zip(&reports) {
            match r.firing() {
                Some(level) if o.alert && !self.maintenance.covers_objective(now_ms, &o.name) => {
                    let since = *self.slo_since.entry(o.name.clone()).or_insert(now_ms);
                    let burn_long = r
                        .alerts
                        .iter()
                        .filter(|a| !a.guarded && a.rule.level == level)
                        .map(|a| a.burn_long)
                        .fold(0.0, f64::max);
                    firing.push(SloFiring {
                        objective: o.name.clone(),
                        level,
                        scenario: o.scenario.clone(),
                        burn_long,
                        since_ms: since,
                    });
                }
                _ => {
                    self.slo_since.remove(&o.name);
                }
            }
        }
        // Series under maintenance raise nothing; series gone for longer
        // than the expiry (decommissioned agents) are no longer judged.
        let expiry = self.cfg.series_expiry_ms;
        let live: Vec<&SeriesState> = self
            .series
            .values()
            .filter(|s| {
                now_ms - s.last_received_ms <= expiry && !self.maintenance.covers_series(now_ms, s)
            })
            .collect();
        let mut signals = rules::evaluate(&RuleInput {
            now_ms,
            series: live,
            slo: &firing,
            config: &self.cfg.rules,
        });
        signals.sort_by(|a, b| (a.rule, &a.scope).cmp(&(b.rule, &b.scope)));

        let resolve_after = self.cfg.rules.resolve_after;
        let series = &self.series;
        let scenarios = &self.cfg.rules.scenarios;
        let changes = self.incidents.apply(
            now_ms,
            &signals,
            |inc| {
                inc.series.iter().all(|k| {
                    series
                        .get(k)
                        .is_some_and(|s| s.consecutive_good >= resolve_after)
                })
            },
            |scenario| scenarios.get(scenario).map_or(3_600_000, |s| s.rto_ms),
        );

        // Warnings: raised and cleared.
        let mut now_warn: BTreeMap<(String, String), Signal> = signals
            .iter()
            .filter(|s| s.severity == Severity::Warning)
            .map(|s| (s.key(), s.clone()))
            .collect();
        let mut raised = Vec::new();
        let mut cleared = Vec::new();
        let old: Vec<(String, String)> = self.warnings.keys().cloned().collect();
        for k in old {
            match now_warn.remove(&k) {
                Some(sig) => {
                    if let Some(w) = self.warnings.get_mut(&k) {
                        w.signal = sig;
                    }
                }
                None => {
                    if let Some(w) = self.warnings.remove(&k) {
                        cleared.push(w.signal);
                    }
                }
            }
        }
        for (k, sig) in now_warn {
            raised.push(sig.clone());
            self.warnings.insert(
                k,
                Warning {
                    signal: sig,
                    since_ms: now_ms,
                },
            );
        }
        Evaluation {
            at_ms: now_ms,
            reports,
            signals,
            changes,
            warnings_raised: raised,
            warnings_cleared: cleared,
        }
    }

    /// Active warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Warning> {
        self.warnings.values()
    }

    pub fn series(&self) -> impl Iterator<Item = &SeriesState> {
        self.series.values()
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }
}

/// `[T; 9]` from the window spans.
trait MapCounts {
    fn map_counts(&self, f: impl Fn(&(i64, i64)) -> Counts) -> [Counts; 9];
}

impl MapCounts for Vec<(i64, i64)> {
    fn map_counts(&self, f: impl Fn(&(i64, i64)) -> Counts) -> [Counts; 9] {
        let mut out = [Counts::default(); 9];
        for (o, s) in out.iter_mut().zip(self) {
            *o = f(s);
        }
        out
    }
}
