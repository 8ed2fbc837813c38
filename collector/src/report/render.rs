//! The evidence report as HTML (self-contained: inline CSS and SVG, no
//! scripts, prints and opens offline) or Markdown. Every value is escaped
//! for its format.

use std::fmt::Write as _;

use super::Report;
use crate::notify::rfc3339;
use crate::status_page::svg::{esc, gauge, gauge_judged};
use crate::status_page::{age, head, pct, pct_short};

fn yes_no(v: Option<bool>, yes: &str, no: &str) -> String {
    match v {
        Some(true) => yes.to_string(),
        Some(false) => no.to_string(),
        None => "–".to_string(),
    }
}

fn tta(i: &serde_json::Value) -> String {
    i["time_to_acknowledge_seconds"].as_f64().map_or_else(
        || "not acknowledged".to_string(),
        |s| age((s * 1000.0) as i64),
    )
}

fn s<'a>(i: &'a serde_json::Value, k: &str) -> &'a str {
    i[k].as_str().unwrap_or("")
}

fn last_ok(ms: Option<i64>) -> String {
    ms.map_or_else(|| "never this month".to_string(), rfc3339)
}

/// One-line summary of the month.
fn summary(r: &Report) -> String {
    let met = r
        .objectives
        .iter()
        .filter(|o| o.met() == Some(true))
        .count();
    let rto_missed = r.incidents.iter().filter(|i| i["rto"] == "missed").count();
    let dropped: u64 = r.agents.iter().map(|a| a.dropped_total).sum();
    let gaps: u64 = r.agents.iter().map(|a| a.seq_gaps).sum();
    format!(
        "{met} of {} objectives met · {} incidents ({rto_missed} missed RTO) · {} agents · {dropped} results dropped at agents · {gaps} results missing in sequence",
        r.objectives.len(),
        r.incidents.len(),
        r.agents.len()
    )
}

fn unavailable_note(r: &Report) -> String {
    format!(
        "SLO attainment for {} is not available: the collector's calendar-month window was {} when this report was made. Run the report during the month (e.g. on its last day) to keep it.",
        r.month.label(),
        r.evaluated_at.as_deref().unwrap_or("never evaluated")
    )
}

/// The report as a self-contained HTML page.
pub fn html(r: &Report) -> String {
    let title = format!("Outpost evidence report {}", r.month.label());
    let mut h = head(&title, None);
    let _ = write!(
        h,
        "<h1>{}</h1><p class=muted>Generated {} from {} (evaluation at {})</p><p><b>{}</b></p>",
        esc(&title),
        esc(&rfc3339(r.generated_ms)),
        esc(&r.source),
        esc(r.evaluated_at.as_deref().unwrap_or("–")),
        esc(&summary(r))
    );
    h.push_str("<h2>SLO attainment</h2>");
    if !r.slo_available {
        let _ = write!(h, "<p class=muted>{}</p>", esc(&unavailable_note(r)));
    }
    h.push_str("<div class=grid>");
    for o in &r.objectives {
        let _ = write!(
            h,
            "<div class=card><h3>{} <span class='badge {}'>{}</span></h3><div class=muted>{} · target {}</div><div class=gauges>{}{}</div><div>good {} · bad {} · data complete {}</div></div>",
            esc(&o.name),
            match o.met() { Some(true) => "ok", Some(false) => "bad", None => "none" },
            yes_no(o.met(), "met", "missed"),
            esc(&o.description),
            esc(&pct(Some(o.target))),
            gauge_judged(o.attainment, &pct_short(o.attainment), "attainment", o.met()),
            gauge(o.budget_remaining, &pct_short(o.budget_remaining), "budget left"),
            o.good,
            o.bad,
            esc(&pct(o.completeness)),
        );
    }
    h.push_str("</div>");
    let _ = write!(h, "<h2>Incidents ({})</h2>", r.incidents.len());
    if r.incidents_truncated {
        h.push_str("<p><b>The collector listed only its newest incidents: older ones of this month may be missing.</b></p>");
    }
    h.push_str("<div class=scroll><table><tr><th>id</th><th>severity</th><th>rule</th><th>scope</th><th>opened</th><th>time to acknowledge</th><th>outage</th><th>RTO</th><th>state</th><th>root cause</th></tr>");
    for i in &r.incidents {
        let _ = write!(
            h,
            "<tr><td class=num>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i["id"].as_u64().unwrap_or(0),
            esc(s(i, "severity")),
            esc(s(i, "rule")),
            esc(s(i, "scope")),
            esc(s(i, "opened")),
            esc(&tta(i)),
            esc(&age(i["outage_seconds"].as_i64().unwrap_or(0) * 1000)),
            esc(s(i, "rto")),
            esc(s(i, "state")),
            esc(s(i, "root_cause")),
        );
    }
    h.push_str("</table></div>");
    let _ = write!(
        h,
        "<h2>Backup freshness evidence ({} checks)</h2>",
        r.freshness.len()
    );
    if r.freshness.is_empty() {
        h.push_str("<p class=muted>No freshness or backup checks reported this month.</p>");
    } else {
        h.push_str("<div class=scroll><table><tr><th>agent</th><th>check</th><th>module</th><th class=num>runs</th><th class=num>ok</th><th>last ok</th><th class=num>last value</th></tr>");
        for f in &r.freshness {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td><td>{}</td><td class=num>{}</td></tr>",
                esc(&f.agent), esc(&f.check), esc(&f.module), f.runs, f.ok,
                esc(&last_ok(f.last_ok_ms)),
                f.last_value.map_or_else(|| "–".to_string(), |v| format!("{v:.0}")),
            );
        }
        h.push_str("</table></div>");
    }
    super::rehearsals::html(&mut h, r);
    let _ = write!(
        h,
        "<h2>Agent fleet and data completeness ({} agents)</h2>",
        r.agents.len()
    );
    h.push_str("<div class=scroll><table><tr><th>agent</th><th>version</th><th>connected</th><th>last seen</th><th class=num>results this month</th><th class=num>missing in sequence</th><th class=num>announced gaps</th><th class=num>dropped at agent</th><th class=num>buffer depth</th></tr>");
    for a in &r.agents {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=num>{}{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td></tr>",
            esc(&a.agent), esc(&a.version), if a.connected { "yes" } else { "no" },
            esc(&rfc3339(a.last_seen_ms)), a.results, if a.truncated { "+" } else { "" },
            a.seq_gaps, a.gap_results, a.dropped_total, a.buffer_entries,
        );
    }
    h.push_str("</table></div></body></html>");
    h
}

/// Escapes a Markdown table cell.
pub fn md(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
        .replace('<', "&lt;")
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# Outpost evidence report {}\n", r.month.label());
    let _ = writeln!(
        m,
        "Generated {} from {} (evaluation at {}).\n\n**{}**\n",
        rfc3339(r.generated_ms),
        md(&r.source),
        md(r.evaluated_at.as_deref().unwrap_or("–")),
        summary(r)
    );
    m.push_str("## SLO attainment\n\n");
    if !r.slo_available {
        let _ = writeln!(m, "{}\n", md(&unavailable_note(r)));
    }
    m.push_str("| objective | target | attainment | met | budget left | good | bad | data complete |\n|---|---|---|---|---|---|---|---|\n");
    for o in &r.objectives {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            md(&o.name),
            pct(Some(o.target)),
            pct(o.attainment),
            yes_no(o.met(), "met", "missed"),
            pct(o.budget_remaining),
            o.good,
            o.bad,
            pct(o.completeness)
        );
    }
    let _ = writeln!(m, "\n## Incidents ({})\n", r.incidents.len());
    if r.incidents_truncated {
        m.push_str("**The collector listed only its newest incidents: older ones of this month may be missing.**\n\n");
    }
    m.push_str("| id | severity | rule | scope | opened | time to acknowledge | RTO | state | root cause |\n|---|---|---|---|---|---|---|---|---|\n");
    for i in &r.incidents {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            i["id"].as_u64().unwrap_or(0),
            md(s(i, "severity")),
            md(s(i, "rule")),
            md(s(i, "scope")),
            md(s(i, "opened")),
            tta(i),
            md(s(i, "rto")),
            md(s(i, "state")),
            md(s(i, "root_cause"))
        );
    }
    let _ = writeln!(
        m,
        "\n## Backup freshness evidence ({} checks)\n",
        r.freshness.len()
    );
    m.push_str("| agent | check | module | runs | ok | last ok |\n|---|---|---|---|---|---|\n");
    for f in &r.freshness {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} |",
            md(&f.agent),
            md(&f.check),
            md(&f.module),
            f.runs,
            f.ok,
            last_ok(f.last_ok_ms)
        );
    }
    super::rehearsals::markdown(&mut m, r);
    let _ = writeln!(
        m,
        "\n## Agent fleet and data completeness ({} agents)\n",
        r.agents.len()
    );
    m.push_str("| agent | version | last seen | results this month | missing in sequence | announced gaps | dropped at agent |\n|---|---|---|---|---|---|---|\n");
    for a in &r.agents {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {}{} | {} | {} | {} |",
            md(&a.agent),
            md(&a.version),
            rfc3339(a.last_seen_ms),
            a.results,
            if a.truncated { "+" } else { "" },
            a.seq_gaps,
            a.gap_results,
            a.dropped_total
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::super::{AgentRow, Month, ObjectiveRow, Report};
    use super::*;

    fn report() -> Report {
        Report {
            month: Month::parse("2026-11").unwrap(),
            source: "http://127.0.0.1:1".into(),
            generated_ms: 1_764_000_000_000,
            evaluated_at: Some("2026-11-30T23:50:00Z".into()),
            slo_available: true,
            objectives: vec![ObjectiveRow {
                name: "auth|<x>".into(),
                target: 0.99,
                attainment: Some(0.995),
                ..Default::default()
            }],
            incidents_truncated: false,
            incidents: vec![
                serde_json::json!({"id": 7, "rule": "r", "rto": "missed", "time_to_acknowledge_seconds": 90.0, "root_cause": "a\nb|c"}),
            ],
            freshness: vec![],
            agents: vec![AgentRow {
                agent: "a1".into(),
                dropped_total: 3,
                seq_gaps: 2,
                ..Default::default()
            }],
            rehearsals: vec![
                serde_json::json!({"id": "r1", "name": "nightly|restore", "agent": "a1",
                "scenario": "single_service", "started": "2026-11-02T01:00:00Z", "green": "2026-11-02T03:00:00Z",
                "elapsed_seconds": 7200.0, "rto_seconds": 3600, "status": "missed",
                "failed_on_the_way": [{"check": "reports", "times_failed": 2, "first_outcome": "failed",
                    "first_error": "HTTP 503", "last_outcome": "ok"}]}),
            ],
            contacts: vec![
                serde_json::json!({"name": "Ops <desk>", "role": "operations",
                "email": "ops@example.org", "phone": "", "url": "", "note": "",
                "objectives": ["authentication"], "modules": []}),
            ],
        }
    }

    #[test]
    fn rehearsals_and_contacts_are_listed() {
        let h = html(&report());
        assert!(h.contains("Restore rehearsal confirmation (1 rehearsal)"));
        assert!(
            h.contains("RTO missed") && h.contains("2 h 0 min") && h.contains("reports failed 2×")
        );
        assert!(h.contains("Named contact points (1)") && h.contains("Ops &lt;desk&gt;"));
        assert!(h.contains("objectives: authentication"));
        let m = markdown(&report());
        assert!(
            m.contains("| nightly\\|restore | a1 | single_service |"),
            "{m}"
        );
        assert!(m.contains("| RTO missed |") && m.contains("ops@example.org"));
    }

    #[test]
    fn html_is_escaped_and_balanced() {
        let h = html(&report());
        assert!(h.contains("auth|&lt;x&gt;") && !h.contains("<x>"));
        assert!(h.contains("1 of 1 objectives met") && h.contains("1 missed RTO"));
        assert!(h.contains("3 results dropped") && h.contains("2 results missing"));
        assert_eq!(h.matches("<svg").count(), h.matches("</svg>").count());
        assert!(!h.contains("<script") && !h.contains("http-equiv=refresh"));
    }

    #[test]
    fn markdown_cells_are_escaped() {
        let m = markdown(&report());
        assert!(
            m.contains("| auth\\|&lt;x> | 99.000% | 99.500% | met |"),
            "{m}"
        );
        assert!(m.contains("a b\\|c"));
        assert!(m.contains("| 7 | "), "{m}");
    }

    #[test]
    fn truncated_incident_list_is_said() {
        let mut r = report();
        assert!(!html(&r).contains("may be missing"));
        r.incidents_truncated = true;
        assert!(html(&r).contains("may be missing") && markdown(&r).contains("may be missing"));
    }

    #[test]
    fn unavailable_month_says_so() {
        let mut r = report();
        r.slo_available = false;
        r.objectives[0].attainment = None;
        assert!(html(&r).contains("not available"));
        assert!(markdown(&r).contains("| – |"));
    }
}
