//! The status page at `/`: server-rendered HTML, no scripts, no external
//! assets (sites may be offline), refreshed by a meta tag. Every value
//! shown is HTML-escaped.

use std::fmt::Write as _;

use crate::live::Live;
use crate::model::Outcome;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn color(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "#1a7f37",
        Outcome::Degraded | Outcome::Pending | Outcome::AccessDenied => "#9a6700",
        _ => "#cf222e",
    }
}

/// Renders the page.
pub fn render(live: &Live) -> String {
    let mut h = String::with_capacity(8192);
    h.push_str(concat!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        "<meta http-equiv=refresh content=15><title>Outpost status</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:1rem;color:#1f2328}",
        "table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}",
        "th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #d0d7de}",
        "th{background:#f6f8fa}.o{font-weight:600}</style></head><body>",
        "<h1>Outpost</h1>"
    ));
    let _ = write!(h, "<h2>Agents ({})</h2><table><tr><th>agent</th><th>connected</th><th>version</th><th>stored</th><th>buffer depth</th><th>oldest unsent</th><th>dropped</th></tr>", live.agents.len());
    for (id, a) in &live.agents {
        let f = &a.state.footprint;
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0} s</td><td>{}</td></tr>",
            esc(id),
            if a.connected_streams > 0 { "yes" } else { "no" },
            esc(&a.state.version),
            a.state.stored,
            f.buffer_entries,
            f.oldest_unsent_age_seconds,
            f.dropped_total
        );
    }
    h.push_str("</table>");
    let _ = write!(h, "<h2>Checks ({})</h2><table><tr><th>agent</th><th>check</th><th>kind</th><th>module</th><th>latest</th><th>duration</th><th>error</th></tr>", live.series.len());
    for ((agent, check), s) in &live.series {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=o style='color:{}'>{}</td><td>{:.1} ms</td><td>{}</td></tr>",
            esc(agent),
            esc(check),
            esc(&s.kind),
            esc(&s.module),
            color(s.last.outcome),
            s.last.outcome.as_str(),
            s.last.duration_us as f64 / 1000.0,
            esc(&s.last.error)
        );
    }
    h.push_str("</table><p><a href=/metrics>/metrics</a> · <a href=/api/v1/agents>/api/v1/agents</a></p></body></html>");
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_escaped() {
        assert_eq!(
            super::esc("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
