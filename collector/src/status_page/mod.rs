//! The status page at `/`: server-rendered HTML with inline SVG charts, no
//! scripts, no external assets (sites may be offline), refreshed by a meta
//! tag, laid out to read on a laptop and on a phone.
//!
//! The page shows what `/api/v1/slo` and `/api/v1/incidents` show — it
//! renders the very JSON of `api::slo_json` and `api::incident_json`, so
//! the SLO math lives in one place — plus the live view's agents and
//! checks. Every value shown is HTML-escaped (`svg::esc`).

use std::fmt::Write as _;

use crate::live::Live;

pub mod rehearsals;
mod sections;
pub mod svg;

pub use svg::esc;

/// Seconds between the page's automatic reloads.
pub const REFRESH_SECONDS: u32 = 15;

/// Most incidents listed on the page.
pub const MAX_INCIDENTS_SHOWN: usize = 50;

/// The evaluation's part of the page, as the API renders it.
pub struct Evaluation<'a> {
    /// `api::slo_json` of the current snapshot.
    pub slo: &'a serde_json::Value,
    /// `api::incident_json` of the open and acknowledged incidents.
    pub incidents: &'a [serde_json::Value],
}

/// Shared stylesheet of the page and the evidence report (inline; the
/// CSP allows inline styles only).
pub const CSS: &str = concat!(
    "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;padding:1rem;max-width:1200px;color:#1f2328}",
    "h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.5rem 0 .5rem;border-bottom:1px solid #d0d7de}",
    ".muted{color:#57606a}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:1rem}",
    ".card{border:1px solid #d0d7de;border-radius:6px;padding:.6rem .8rem;background:#fff}",
    ".card h3{margin:0 0 .3rem;font-size:1rem;overflow-wrap:anywhere}",
    ".gauges{display:flex;gap:.5rem;flex-wrap:wrap}",
    ".scroll{overflow-x:auto}table{border-collapse:collapse;width:100%}",
    "th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top}",
    "th{background:#f6f8fa}.num{text-align:right;font-variant-numeric:tabular-nums}",
    ".badge{display:inline-block;padding:0 .4rem;border-radius:1rem;color:#fff;font-size:.8rem}",
    ".tiles{display:flex;flex-wrap:wrap;gap:.3rem}",
    ".tile{padding:.15rem .45rem;border-radius:4px;color:#fff;font-size:.8rem;overflow-wrap:anywhere}",
    ".ok{background:#1a7f37}.warn{background:#9a6700}.bad{background:#cf222e}.none{background:#6e7781}",
    "@media (max-width:600px){body{padding:.5rem}th,td{padding:.25rem}.grid{grid-template-columns:1fr}}",
);

/// The page's `<head>` and opening `<body>`; `refresh` adds the meta
/// refresh.
pub fn head(title: &str, refresh: Option<u32>) -> String {
    let mut h = String::with_capacity(4096);
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content='width=device-width,initial-scale=1'>"
    );
    if let Some(r) = refresh {
        let _ = write!(h, "<meta http-equiv=refresh content={r}>");
    }
    let _ = write!(
        h,
        "<title>{}</title><style>{CSS}</style></head><body>",
        esc(title)
    );
    h
}

/// Renders the page at `now_ms`; `eval` is `None` when the evaluation is
/// not running.
pub fn render(live: &Live, eval: Option<Evaluation<'_>>, now_ms: i64) -> String {
    render_with_rehearsals(live, eval, None, now_ms)
}

/// As [`render`], with the "Restore rehearsals" section from the JSON of
/// `/api/v1/rehearsals` (`rehearsal::http::list_json`).
pub fn render_with_rehearsals(
    live: &Live,
    eval: Option<Evaluation<'_>>,
    rehearsals: Option<&serde_json::Value>,
    now_ms: i64,
) -> String {
    let mut h = head("Outpost status", Some(REFRESH_SECONDS));
    let _ = write!(
        h,
        "<h1>Outpost status</h1><p class=muted>As of {} · reloads every {REFRESH_SECONDS} s</p>",
        esc(&crate::notify::rfc3339(now_ms))
    );
    match &eval {
        Some(e) => {
            sections::objectives(&mut h, e.slo);
            sections::incidents(&mut h, e.incidents, now_ms);
        }
        None => h.push_str(
            "<h2>Objectives</h2><p class=muted>The evaluation is not running: no objectives.</p>",
        ),
    }
    if let Some(r) = rehearsals {
        rehearsals::section(&mut h, r);
    }
    sections::agents(&mut h, live, now_ms);
    sections::check_grid(&mut h, live);
    h.push_str(
        "<p class=muted><a href=/metrics>/metrics</a> · <a href=/api/v1/slo>/api/v1/slo</a> · \
         <a href=/api/v1/incidents>/api/v1/incidents</a> · <a href=/api/v1/agents>/api/v1/agents</a></p>\
         </body></html>",
    );
    h
}

/// "3 h 12 min"-style age of `ms` milliseconds.
pub fn age(ms: i64) -> String {
    let s = (ms.max(0) / 1000) as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Milliseconds of an RFC 3339 time as the API writes it.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as i64)
}

/// A fraction as a percentage with enough digits for SLO targets.
pub fn pct(v: Option<f64>) -> String {
    match v.filter(|x| x.is_finite()) {
        Some(x) => format!("{:.3}%", x * 100.0),
        None => "–".to_string(),
    }
}

/// A short percentage for gauges: one decimal, or none past ±1000%.
pub fn pct_short(v: Option<f64>) -> String {
    match v.filter(|x| x.is_finite()) {
        Some(x) if (x * 100.0).abs() >= 1000.0 => format!("{:.0}%", x * 100.0),
        Some(x) => format!("{:.1}%", x * 100.0),
        None => "–".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_percentages() {
        assert_eq!(age(-5), "0 s");
        assert_eq!(age(59_000), "59 s");
        assert_eq!(age(3_720_000), "1 h 2 min");
        assert_eq!(age(90_000_000), "1 d 1 h");
        assert_eq!(pct(Some(0.999)), "99.900%");
        assert_eq!(pct(Some(f64::NAN)), "–");
        assert_eq!(pct(None), "–");
        assert_eq!(pct_short(Some(0.995)), "99.5%");
        assert_eq!(pct_short(Some(-99.0)), "-9900%");
    }

    #[test]
    fn empty_page_is_well_formed_and_script_free() {
        let page = render(&Live::default(), None, 1_700_000_000_000);
        assert!(page.starts_with("<!doctype html>") && page.ends_with("</html>"));
        assert!(page.contains("name=viewport") && page.contains("http-equiv=refresh"));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn hostile_names_are_escaped() {
        let slo = serde_json::json!({"objectives": [{"name": "<img src=x>", "target": 0.99,
            "description": "\"quoted\"", "firing": null,
            "windows": [{"window": "30d", "sli": 0.5, "error_budget_remaining": 1.5, "burn_rate": 50.0, "completeness": 1.0}]}]});
        let inc = vec![
            serde_json::json!({"id": 1, "rule": "<b>", "scope": "s", "severity": "page",
            "state": "open", "summary": "x</td>", "opened": "2024-01-01T00:00:00Z", "rto": "pending"}),
        ];
        let page = render(
            &Live::default(),
            Some(Evaluation {
                slo: &slo,
                incidents: &inc,
            }),
            1_700_000_000_000,
        );
        assert!(!page.contains("<img") && !page.contains("<b>") && !page.contains("x</td>"));
        assert!(page.contains("&lt;img src=x&gt;"));
        assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
    }
}
