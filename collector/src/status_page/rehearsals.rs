//! The status page's "Restore rehearsals" section: the newest rehearsals
//! as `/api/v1/rehearsals` lists them (status, scenario, elapsed against
//! the RTO, checks that failed on the way). Every value is escaped.

use std::fmt::Write as _;

use super::age;
use super::svg::esc;

/// Most rehearsals shown on the page.
pub const MAX_SHOWN: usize = 20;

fn class(status: &str) -> &'static str {
    match status {
        "met" => "ok",
        "running" => "warn",
        "missed" | "not_green" => "bad",
        _ => "none",
    }
}

/// Appends the section for `list` (the JSON of `/api/v1/rehearsals`).
pub fn section(h: &mut String, list: &serde_json::Value) {
    let all = list["rehearsals"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let held = list["held"].as_u64().unwrap_or(all.len() as u64);
    let _ = write!(h, "<h2>Restore rehearsals ({held})</h2>");
    if held > MAX_SHOWN as u64 {
        let _ = write!(
            h,
            "<p class=muted>The newest {MAX_SHOWN}; all in <a href=/api/v1/rehearsals>/api/v1/rehearsals</a>.</p>"
        );
    }
    if all.is_empty() {
        h.push_str("<p class=muted>No restore rehearsal recorded yet (<code>outpost-agent smoke --until-green</code>).</p>");
        return;
    }
    h.push_str("<div class=scroll><table><tr><th>status</th><th>rehearsal</th><th>agent</th><th>scenario</th><th>started</th><th class=num>elapsed</th><th class=num>RTO</th><th class=num>rounds</th><th>failed on the way</th></tr>");
    for r in all.iter().take(MAX_SHOWN) {
        let s = |k: &str| r[k].as_str().unwrap_or("");
        let status = s("status");
        let failed: Vec<String> = r["failed_on_the_way"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|c| {
                format!(
                    "{} ×{} ({})",
                    c["check"].as_str().unwrap_or(""),
                    c["times_failed"].as_u64().unwrap_or(0),
                    c["first_error"].as_str().unwrap_or("")
                )
            })
            .collect();
        let name = if s("name").is_empty() {
            s("id")
        } else {
            s("name")
        };
        let _ = write!(
            h,
            "<tr><td><span class='badge {}'>{}</span></td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td>{}</td></tr>",
            class(status),
            esc(status),
            esc(name),
            esc(s("agent")),
            esc(s("scenario")),
            r["scenario_note"].as_str().map_or(String::new(), |n| format!(" <span class=muted>({})</span>", esc(n))),
            esc(s("started")),
            esc(&age((r["elapsed_seconds"].as_f64().unwrap_or(0.0) * 1000.0) as i64)),
            esc(&age(r["rto_seconds"].as_i64().unwrap_or(0) * 1000)),
            r["rounds"].as_u64().unwrap_or(0),
            if failed.is_empty() { "–".to_string() } else { esc(&failed.join("; ")) },
        );
    }
    h.push_str("</table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rehearsals_are_listed_and_escaped() {
        let mut h = String::new();
        section(&mut h, &serde_json::json!({"rehearsals": []}));
        assert!(h.contains("No restore rehearsal"));
        let mut h = String::new();
        section(
            &mut h,
            &serde_json::json!({"rehearsals": [{"status": "missed", "name": "<b>x</b>", "agent": "a1",
                "scenario": "single_service", "started": "2026-12-01T00:00:00Z", "elapsed_seconds": 7200.0,
                "rto_seconds": 3600, "rounds": 3,
                "failed_on_the_way": [{"check": "reports", "times_failed": 2, "first_error": "HTTP 503"}]}]}),
        );
        assert!(h.contains("'badge bad'>missed") && h.contains("&lt;b&gt;x"));
        assert!(
            h.contains("2 h 0 min")
                && h.contains("1 h 0 min")
                && h.contains("reports ×2 (HTTP 503)")
        );
    }
}
