//! Restore rehearsal metric families, rendered from the rehearsal task's
//! view. Part of `metrics`: every name is defined here or in its parent.
//! Labels are bounded: `scenario` is a configured scenario (unknown ones
//! were resolved to the default), `status` one of five.

use std::collections::BTreeMap;

use super::Exposition;
use crate::rehearsal::task::RehearsalHandle;
use crate::rehearsal::Status;

/// Renders the rehearsal families (appended to the exposition).
pub fn render_rehearsals(h: &RehearsalHandle) -> String {
    let now = h.clock.now_ms();
    let view = h.view.borrow().clone();
    let abandon = h.config.abandon_after_ms;
    let mut e = Exposition {
        out: String::with_capacity(2048),
    };
    let mut by: BTreeMap<(&str, Status), u64> = BTreeMap::new();
    for s in h.config.rto_ms.keys() {
        for st in Status::ALL {
            by.insert((s.as_str(), st), 0);
        }
    }
    // Newest first: the first record of a scenario is its latest.
    let mut latest: BTreeMap<&str, f64> = BTreeMap::new();
    for r in &view.records {
        *by.entry((r.scenario.as_str(), r.status(now, abandon)))
            .or_insert(0) += 1;
        latest
            .entry(r.scenario.as_str())
            .or_insert(r.elapsed_or_running_ms(now) as f64 / 1000.0);
    }
    e.family(
        "outpost_rehearsals",
        "gauge",
        "Restore rehearsals held (the newest, bounded), by scenario and status (running, met, missed, not_green, abandoned).",
    );
    for ((scenario, status), n) in &by {
        e.sample(
            "outpost_rehearsals",
            &[("scenario", scenario), ("status", status.as_str())],
            *n as f64,
        );
    }
    e.family(
        "outpost_rehearsal_last_elapsed_seconds",
        "gauge",
        "Latest rehearsal of the scenario: green minus start (or time so far while not green).",
    );
    for (scenario, v) in &latest {
        e.sample(
            "outpost_rehearsal_last_elapsed_seconds",
            &[("scenario", scenario)],
            *v,
        );
    }
    e.family(
        "outpost_rehearsal_rto_seconds",
        "gauge",
        "Recovery time objective of the scenario.",
    );
    for (scenario, rto) in h.config.rto_ms.iter() {
        e.sample(
            "outpost_rehearsal_rto_seconds",
            &[("scenario", scenario)],
            *rto as f64 / 1000.0,
        );
    }
    for (name, help, v) in [
        (
            "outpost_rehearsal_reports_total",
            "Rehearsal reports recorded (new rounds and retried copies of the latest round).",
            view.recorded,
        ),
        (
            "outpost_rehearsal_duplicate_reports_total",
            "Rehearsal reports of an older round than the latest (changed nothing).",
            view.duplicates,
        ),
        (
            "outpost_rehearsal_evicted_total",
            "Rehearsal records evicted to stay within [rehearsal] keep.",
            view.evicted,
        ),
        (
            "outpost_rehearsal_store_errors_total",
            "Rehearsal records that could not be written (the agent was told to retry).",
            view.store_errors,
        ),
    ] {
        e.family(name, "counter", help);
        e.sample(name, &[], v as f64);
    }
    e.out
}
