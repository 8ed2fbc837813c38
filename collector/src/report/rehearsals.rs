//! The evidence report's "Restore rehearsal confirmation" (the month's
//! rehearsals: scenario, elapsed against the RTO, met/missed, checks that
//! failed on the way) and "Named contact points" sections, in HTML and
//! Markdown, from the JSON of `/api/v1/rehearsals` and `/api/v1/contacts`.

use std::fmt::Write as _;

use super::render::md;
use super::Report;
use crate::status_page::age;
use crate::status_page::svg::esc;

fn s<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

fn verdict(r: &serde_json::Value) -> &'static str {
    match s(r, "status") {
        "met" => "RTO met",
        "missed" => "RTO missed",
        "not_green" => "never green",
        "abandoned" => "abandoned",
        "running" => "running",
        _ => "–",
    }
}

fn elapsed(r: &serde_json::Value) -> String {
    age((r["elapsed_seconds"].as_f64().unwrap_or(0.0) * 1000.0) as i64)
}

fn rto(r: &serde_json::Value) -> String {
    age(r["rto_seconds"].as_i64().unwrap_or(0) * 1000)
}

fn failed(r: &serde_json::Value) -> String {
    let list: Vec<String> = r["failed_on_the_way"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            format!(
                "{} failed {}× (first: {} {}; last: {})",
                s(c, "check"),
                c["times_failed"].as_u64().unwrap_or(0),
                s(c, "first_outcome"),
                s(c, "first_error"),
                s(c, "last_outcome")
            )
        })
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join("; ")
    }
}

fn name(r: &serde_json::Value) -> &str {
    if s(r, "name").is_empty() {
        s(r, "id")
    } else {
        s(r, "name")
    }
}

fn reach(c: &serde_json::Value) -> String {
    ["email", "phone", "url"]
        .iter()
        .map(|k| s(c, k))
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

fn covers(c: &serde_json::Value) -> String {
    let list = |k: &str| -> Vec<String> {
        c[k].as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let (o, m) = (list("objectives"), list("modules"));
    if o.is_empty() && m.is_empty() {
        return "everything".into();
    }
    let mut parts = Vec::new();
    if !o.is_empty() {
        parts.push(format!("objectives: {}", o.join(", ")));
    }
    if !m.is_empty() {
        parts.push(format!("modules: {}", m.join(", ")));
    }
    parts.join("; ")
}

fn count(n: usize) -> String {
    match n {
        1 => "1 rehearsal".into(),
        n => format!("{n} rehearsals"),
    }
}

/// The HTML sections.
pub fn html(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<h2>Restore rehearsal confirmation ({})</h2>",
        count(r.rehearsals.len())
    );
    if r.rehearsals.is_empty() {
        h.push_str("<p class=muted>No restore rehearsal started this month.</p>");
    } else {
        h.push_str("<div class=scroll><table><tr><th>rehearsal</th><th>agent</th><th>scenario</th><th>started</th><th>green</th><th class=num>elapsed</th><th class=num>RTO</th><th>result</th><th>checks that failed on the way</th></tr>");
        for x in &r.rehearsals {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td><td><span class='badge {}'>{}</span></td><td>{}</td></tr>",
                esc(name(x)), esc(s(x, "agent")), esc(s(x, "scenario")), esc(s(x, "started")),
                esc(x["green"].as_str().unwrap_or("never")), esc(&elapsed(x)), esc(&rto(x)),
                match s(x, "status") { "met" => "ok", "running" => "warn", _ => "bad" },
                verdict(x), esc(&failed(x)),
            );
        }
        h.push_str("</table></div>");
    }
    let _ = write!(h, "<h2>Named contact points ({})</h2>", r.contacts.len());
    if r.contacts.is_empty() {
        h.push_str("<p class=muted>No contact points configured ([[contact]] in the collector config).</p>");
        return;
    }
    h.push_str("<div class=scroll><table><tr><th>name</th><th>role</th><th>reach</th><th>covers</th><th>note</th></tr>");
    for c in &r.contacts {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(s(c, "name")),
            esc(s(c, "role")),
            esc(&reach(c)),
            esc(&covers(c)),
            esc(s(c, "note"))
        );
    }
    h.push_str("</table></div>");
}

/// The Markdown sections.
pub fn markdown(m: &mut String, r: &Report) {
    let _ = writeln!(
        m,
        "\n## Restore rehearsal confirmation ({})\n",
        count(r.rehearsals.len())
    );
    if r.rehearsals.is_empty() {
        m.push_str("No restore rehearsal started this month.\n");
    } else {
        m.push_str("| rehearsal | agent | scenario | started | green | elapsed | RTO | result | checks that failed on the way |\n|---|---|---|---|---|---|---|---|---|\n");
        for x in &r.rehearsals {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                md(name(x)),
                md(s(x, "agent")),
                md(s(x, "scenario")),
                md(s(x, "started")),
                md(x["green"].as_str().unwrap_or("never")),
                elapsed(x),
                rto(x),
                verdict(x),
                md(&failed(x))
            );
        }
    }
    let _ = writeln!(m, "\n## Named contact points ({})\n", r.contacts.len());
    if r.contacts.is_empty() {
        m.push_str("No contact points configured.\n");
        return;
    }
    m.push_str("| name | role | reach | covers | note |\n|---|---|---|---|---|\n");
    for c in &r.contacts {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} |",
            md(s(c, "name")),
            md(s(c, "role")),
            md(&reach(c)),
            md(&covers(c)),
            md(s(c, "note"))
        );
    }
}
