//! The evaluation's metric families (SLOs, incidents, warnings,
//! maintenance, the evaluator itself, receivers), rendered from the
//! evaluator's snapshot. Part of `metrics`: every name is defined here or
//! in its parent.

use super::Exposition;

/// Renders the evaluation's families (appended to [`render`]'s output).
pub fn render_evaluation(
    snap: &crate::evaluator::Snapshot,
    notify: &std::collections::BTreeMap<String, crate::notify::ReceiverStats>,
) -> String {
    use crate::slo::window::Window;
    let mut e = Exposition {
        out: String::with_capacity(8192),
    };
    e.family(
        "outpost_slo_objective_target",
        "gauge",
        "Objective target (fraction of good events).",
    );
    for o in &snap.objectives {
        e.sample(
            "outpost_slo_objective_target",
            &[("objective", &o.name)],
            o.target,
        );
    }
    type Stat = fn(&crate::slo::eval::WindowStats, f64) -> Option<f64>;
    let per_window: [(&str, &str, Stat); 5] = [
        (
            "outpost_slo_sli",
            "Good / (good + bad) over the window (absent without events).",
            |s, _| s.sli(),
        ),
        (
            "outpost_slo_burn_rate",
            "Error rate over the allowed error rate (1 - target), per window.",
            |s, t| s.burn_rate(t),
        ),
        (
            "outpost_slo_error_budget_remaining",
            "1 - burn rate of the window: share of the window's error budget left.",
            |s, t| s.budget_remaining(t),
        ),
        (
            "outpost_slo_data_completeness",
            "Runs that arrived / runs expected in the window (unknown minutes lower it).",
            |s, _| s.completeness(),
        ),
        (
            "outpost_slo_expected_runs",
            "Runs expected in the window from each series' interval.",
            |s, _| Some(s.expected),
        ),
    ];
    for (name, help, f) in per_window {
        e.family(name, "gauge", help);
        for (o, r) in snap.objectives.iter().zip(&snap.reports) {
            for w in &r.windows {
                if let Some(v) = f(w, o.target) {
                    e.sample(
                        name,
                        &[("objective", &o.name), ("window", w.window.name())],
                        v,
                    );
                }
            }
        }
    }
    e.family(
        "outpost_slo_events",
        "gauge",
        "Events in the window by class (good, bad, excluded, maintenance).",
    );
    for r in &snap.reports {
        for w in &r.windows {
            let c = &w.counts;
            for (class, v) in [
                ("good", c.good),
                ("bad", c.bad),
                ("excluded", c.excluded),
                ("maintenance", c.maintenance),
            ] {
                e.sample(
                    "outpost_slo_events",
                    &[
                        ("objective", &r.objective),
                        ("window", w.window.name()),
                        ("class", class),
                    ],
                    f64::from(v),
                );
            }
        }
    }
    for (name, help, window) in [
        (
            "outpost_slo_site_sli_30d",
            "SLI of one site over the rolling 30 days.",
            Window::Rolling30d,
        ),
        (
            "outpost_slo_site_sli_1h",
            "SLI of one site over the last hour.",
            Window::H1,
        ),
    ] {
        e.family(name, "gauge", help);
        for r in &snap.reports {
            for s in &r.sites {
                if let Some(v) = s.windows[window.index()].sli() {
                    e.sample(name, &[("objective", &r.objective), ("site", &s.site)], v);
                }
            }
        }
    }
    e.family(
        "outpost_slo_site_data_completeness_1h",
        "gauge",
        "Data completeness of one site over the last hour.",
    );
    for r in &snap.reports {
        for s in &r.sites {
            if let Some(v) = s.windows[Window::H1.index()].completeness() {
                e.sample(
                    "outpost_slo_site_data_completeness_1h",
                    &[("objective", &r.objective), ("site", &s.site)],
                    v,
                );
            }
        }
    }
    for (name, help, held) in [
        (
            "outpost_slo_burn_alert",
            "1 while a multiwindow burn-rate alert fires (level page or ticket).",
            false,
        ),
        (
            "outpost_slo_burn_alert_held",
            "1 while burn rates reach a level but the low-volume guard holds the alert.",
            true,
        ),
    ] {
        e.family(name, "gauge", help);
        for r in &snap.reports {
            for level in ["page", "ticket"] {
                let on = r
                    .alerts
                    .iter()
                    .any(|a| a.guarded == held && a.rule.level.as_str() == level);
                e.sample(
                    name,
                    &[("objective", &r.objective), ("level", level)],
                    f64::from(u8::from(on)),
                );
            }
        }
    }

    e.family(
        "outpost_incidents",
        "gauge",
        "Incidents held, by state and severity.",
    );
    for ((state, severity), n) in &snap.by_state {
        e.sample(
            "outpost_incidents",
            &[("state", state), ("severity", severity)],
            *n as f64,
        );
    }
    e.family(
        "outpost_incident_active",
        "gauge",
        "1 for each open or acknowledged incident.",
    );
    for i in &snap.active {
        let id = i.id.to_string();
        let level = i.escalation_level.to_string();
        e.sample(
            "outpost_incident_active",
            &[
                ("incident", &id),
                ("rule", &i.rule),
                ("scope", &i.scope),
                ("severity", i.severity.as_str()),
                ("state", i.state.as_str()),
                ("escalation_level", &level),
            ],
            1.0,
        );
    }
    e.family(
        "outpost_incidents_rto",
        "gauge",
        "Ended incidents held, by scenario and whether the outage met its RTO.",
    );
    for ((scenario, result), n) in &snap.rto {
        e.sample(
            "outpost_incidents_rto",
            &[("scenario", scenario), ("result", result)],
            *n as f64,
        );
    }
    e.family(
        "outpost_incident_time_to_acknowledge_seconds",
        "histogram",
        "Time from an incident opening to its acknowledgement.",
    );
    for (sev, h) in &snap.tta {
        for (bound, n) in crate::incidents::TTA_BUCKETS.iter().zip(h.buckets) {
            let le = format!("{bound}");
            e.sample(
                "outpost_incident_time_to_acknowledge_seconds_bucket",
                &[("severity", sev.as_str()), ("le", &le)],
                n as f64,
            );
        }
        e.sample(
            "outpost_incident_time_to_acknowledge_seconds_bucket",
            &[("severity", sev.as_str()), ("le", "+Inf")],
            h.count as f64,
        );
        e.sample(
            "outpost_incident_time_to_acknowledge_seconds_sum",
            &[("severity", sev.as_str())],
            h.sum_seconds,
        );
        e.sample(
            "outpost_incident_time_to_acknowledge_seconds_count",
            &[("severity", sev.as_str())],
            h.count as f64,
        );
    }
    e.family(
        "outpost_warning_active",
        "gauge",
        "1 for each active warning (never an incident).",
    );
    for w in &snap.warnings {
        e.sample(
            "outpost_warning_active",
            &[("rule", w.signal.rule), ("scope", &w.signal.scope)],
            1.0,
        );
    }
    e.family(
        "outpost_maintenance_window_active",
        "gauge",
        "1 while a maintenance window is active.",
    );
    for name in &snap.maintenance_active {
        e.sample(
            "outpost_maintenance_window_active",
            &[("window", name)],
            1.0,
        );
    }

    let c = &snap.counters;
    e.family(
        "outpost_evaluation_results_total",
        "counter",
        "Results folded into minute buckets, by arrival (on_time, late, maintenance).",
    );
    let on_time = c
        .results_folded
        .saturating_sub(c.results_late + c.results_maintenance);
    for (arrival, v) in [
        ("on_time", on_time),
        ("late", c.results_late),
        ("maintenance", c.results_maintenance),
    ] {
        e.sample(
            "outpost_evaluation_results_total",
            &[("arrival", arrival)],
            v as f64,
        );
    }
    for (name, help, v) in [
        (
            "outpost_evaluation_results_too_old_total",
            "Results older than retention: counted for streaks, not bucketed.",
            c.results_too_old,
        ),
        (
            "outpost_evaluation_replay_skipped_total",
            "Results seen again (replay) and not folded twice.",
            c.results_replayed_skipped,
        ),
        (
            "outpost_evaluation_series_overflow_total",
            "Results of series beyond the series bound (not tracked for rules).",
            c.series_overflow,
        ),
        (
            "outpost_evaluation_bucket_saturated_total",
            "Counts that did not fit a minute bucket (u16 per class).",
            snap.saturated,
        ),
        (
            "outpost_evaluation_store_errors_total",
            "Evaluation state writes or reads that failed.",
            snap.store_errors,
        ),
        (
            "outpost_evaluations_total",
            "Evaluations run.",
            c.evaluations,
        ),
    ] {
        e.family(name, "counter", help);
        e.sample(name, &[], v as f64);
    }
    for (name, help, v) in [
        (
            "outpost_evaluation_duration_seconds",
            "Duration of the latest evaluation.",
            snap.last_evaluation_seconds,
        ),
        (
            "outpost_evaluation_series",
            "(agent, check) series tracked.",
            snap.series as f64,
        ),
        (
            "outpost_evaluation_bucket_bytes",
            "Approximate memory of the minute buckets.",
            snap.bucket_bytes as f64,
        ),
        (
            "outpost_evaluation_timestamp_seconds",
            "When the latest evaluation ran.",
            snap.at_ms as f64 / 1000.0,
        ),
    ] {
        e.family(name, "gauge", help);
        e.sample(name, &[], v);
    }

    type Rs = fn(&crate::notify::ReceiverStats) -> f64;
    let receivers: [(&str, &str, &str, Rs); 5] = [
        (
            "outpost_notify_sent_total",
            "counter",
            "Successful posts to the receiver.",
            |s| s.sent as f64,
        ),
        (
            "outpost_notify_failed_attempts_total",
            "counter",
            "Failed posts to the receiver (each retry counts).",
            |s| s.failed_attempts as f64,
        ),
        (
            "outpost_notify_dropped_total",
            "counter",
            "Events or alerts given up for the receiver (queue full, attempts exhausted).",
            |s| s.dropped as f64,
        ),
        (
            "outpost_notify_last_success_timestamp_seconds",
            "gauge",
            "When the receiver last accepted a post.",
            |s| s.last_success_ms as f64 / 1000.0,
        ),
        (
            "outpost_notify_alerts_in_last_post",
            "gauge",
            "Alerts in the last accepted Alertmanager post.",
            |s| s.alerts_in_last_post as f64,
        ),
    ];
    for (name, kind, help, f) in receivers {
        e.family(name, kind, help);
        for (receiver, s) in notify {
            e.sample(name, &[("receiver", receiver), ("kind", s.kind)], f(s));
        }
    }
    e.out
}
