//! The status page's sections: objectives (gauges and burn chart), open
//! incidents, the agent fleet and the per-module check grid. Each appends
//! escaped HTML to the page.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::svg::{burn_chart, esc, gauge, gauge_judged};
use super::{age, pct, pct_short, MAX_INCIDENTS_SHOWN};
use crate::live::Live;
use crate::model::Outcome;

/// The rolling windows whose burn rates the chart shows.
pub const BURN_WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// The window the gauges show.
pub const GAUGE_WINDOW: &str = "30d";

fn window<'a>(o: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    o["windows"]
        .as_array()?
        .iter()
        .find(|w| w["window"].as_str() == Some(name))
}

fn list(v: &serde_json::Value) -> &[serde_json::Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// CSS class of an outcome's colour.
pub fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Degraded | Outcome::Pending | Outcome::AccessDenied => "warn",
        _ => "bad",
    }
}

pub fn objectives(h: &mut String, slo: &serde_json::Value) {
    let objs = list(&slo["objectives"]);
    let _ = write!(h, "<h2>Objectives ({})</h2>", objs.len());
    if objs.is_empty() {
        h.push_str("<p class=muted>No objectives configured.</p>");
        return;
    }
    if let Some(m) = slo["maintenance_active"]
        .as_array()
        .filter(|m| !m.is_empty())
    {
        let names: Vec<String> = m.iter().filter_map(|n| n.as_str()).map(esc).collect();
        let _ = write!(
            h,
            "<p><span class='badge warn'>maintenance</span> {}</p>",
            names.join(", ")
        );
    }
    h.push_str("<div class=grid>");
    for o in objs {
        let name = o["name"].as_str().unwrap_or("?");
        let target = o["target"].as_f64();
        let firing = o["firing"].as_str();
        let _ = write!(
            h,
            "<div class=card><h3>{} {}</h3><div class=muted>{} · target {}</div>",
            esc(name),
            match firing {
                Some(l) => format!("<span class='badge bad'>{} burn</span>", esc(l)),
                None => "<span class='badge ok'>no burn alert</span>".to_string(),
            },
            esc(o["description"].as_str().unwrap_or("")),
            esc(&pct(target)),
        );
        let w = window(o, GAUGE_WINDOW);
        let sli = w.and_then(|w| w["sli"].as_f64());
        let budget = w.and_then(|w| w["error_budget_remaining"].as_f64());
        let complete = w.and_then(|w| w["completeness"].as_f64());
        let _ = write!(
            h,
            "<div class=gauges>{}{}{}</div>",
            gauge_judged(
                sli,
                &pct_short(sli),
                &format!("SLI {GAUGE_WINDOW}"),
                sli.zip(target).map(|(s, t)| s >= t)
            ),
            gauge(budget, &pct_short(budget), "error budget left"),
            gauge(complete, &pct_short(complete), "data complete"),
        );
        let bars: Vec<(String, Option<f64>)> = BURN_WINDOWS
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    window(o, n).and_then(|w| w["burn_rate"].as_f64()),
                )
            })
            .collect();
        h.push_str(&burn_chart(&bars, &format!("burn rate of {name}")));
        h.push_str("</div>");
    }
    h.push_str("</div>");
}

pub fn incidents(h: &mut String, incidents: &[serde_json::Value], now_ms: i64) {
    let _ = write!(h, "<h2>Open incidents ({})</h2>", incidents.len());
    if incidents.is_empty() {
        h.push_str("<p class=muted>None.</p>");
        return;
    }
    h.push_str("<div class=scroll><table><tr><th>id</th><th>severity</th><th>state</th><th>rule</th><th>scope</th><th>summary</th><th>age</th><th>acknowledged</th><th>RTO</th></tr>");
    for i in incidents.iter().take(MAX_INCIDENTS_SHOWN) {
        let s = |k: &str| esc(i[k].as_str().unwrap_or(""));
        let state = i["state"].as_str().unwrap_or("");
        let ack = match i["acknowledged_by"].as_str() {
            _ if state != "acknowledged" => "<span class='badge bad'>not yet</span>".to_string(),
            Some(by) if !by.is_empty() => format!("<span class='badge ok'>by {}</span>", esc(by)),
            _ => "<span class='badge ok'>yes</span>".to_string(),
        };
        let age_text = super::parse_time_ms(i["opened"].as_str().unwrap_or(""))
            .map(|t| age(now_ms - t))
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td class=num>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{ack}</td><td>{}</td></tr>",
            i["id"].as_u64().unwrap_or(0),
            s("severity"),
            esc(state),
            s("rule"),
            s("scope"),
            s("summary"),
            esc(&age_text),
            s("rto"),
        );
    }
    h.push_str("</table></div>");
    if incidents.len() > MAX_INCIDENTS_SHOWN {
        let _ = write!(
            h,
            "<p class=muted>{} more: see /api/v1/incidents</p>",
            incidents.len() - MAX_INCIDENTS_SHOWN
        );
    }
}

pub fn agents(h: &mut String, live: &Live, now_ms: i64) {
    let _ = write!(h, "<h2>Agents ({})</h2>", live.agents.len());
    h.push_str("<div class=scroll><table><tr><th>agent</th><th>connected</th><th>last seen</th><th>version</th><th class=num>stored</th><th class=num>buffer depth</th><th class=num>oldest unsent</th><th class=num>dropped</th><th class=num>gaps</th></tr>");
    for (id, a) in &live.agents {
        let s = &a.state;
        let f = &s.footprint;
        let last = if s.last_seen_unix_ms > 0 {
            format!("{} ago", age(now_ms - s.last_seen_unix_ms))
        } else {
            "never".to_string()
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{:.0} s</td><td class=num>{}</td><td class=num>{}</td></tr>",
            esc(id),
            if a.connected_streams > 0 {
                "<span class='badge ok'>yes</span>"
            } else {
                "<span class='badge bad'>no</span>"
            },
            esc(&last),
            esc(&s.version),
            s.stored,
            f.buffer_entries,
            f.oldest_unsent_age_seconds,
            f.dropped_total,
            s.gap_results,
        );
    }
    h.push_str("</table></div>");
}

pub fn check_grid(h: &mut String, live: &Live) {
    let mut modules: BTreeMap<&str, Vec<(&str, &str, Outcome, &str)>> = BTreeMap::new();
    for ((agent, check), s) in &live.series {
        let module = if s.module.is_empty() {
            "(none)"
        } else {
            &s.module
        };
        modules.entry(module).or_default().push((
            agent,
            check,
            s.last.outcome,
            s.last.error.as_str(),
        ));
    }
    let _ = write!(
        h,
        "<h2>Checks ({} in {} modules)</h2>",
        live.series.len(),
        modules.len()
    );
    h.push_str("<div class=scroll><table><tr><th>module</th><th>latest outcome per check (agent / check)</th></tr>");
    for (module, checks) in &modules {
        let _ = write!(h, "<tr><td>{}</td><td><div class=tiles>", esc(module));
        for (agent, check, outcome, error) in checks {
            let _ = write!(
                h,
                "<span class='tile {}' title='{}'>{} / {}: {}</span>",
                outcome_class(*outcome),
                esc(error),
                esc(agent),
                esc(check),
                outcome.as_str(),
            );
        }
        h.push_str("</div></td></tr>");
    }
    h.push_str("</table></div>");
}
