//! `outpost-collector report --month YYYY-MM`: the monthly evidence
//! report (HTML or Markdown) — SLO attainment against each target,
//! incidents with time to acknowledge and RTO met/missed, backup freshness
//! evidence, and the agent fleet with data completeness.
//!
//! It reads a **running** collector's JSON API (`--url`), the same
//! `/api/v1/slo`, `/api/v1/incidents`, `/api/v1/agents` and
//! `/api/v1/results` everyone else reads, so it never competes for the
//! sled store (one process at a time) and needs no downtime. The SLO
//! numbers are the evaluator's own calendar-month window (`month` in
//! `/api/v1/slo`), which exists only for the *current* month: run the
//! report on a month's last day (e.g. a timer at 23:50 UTC) to keep it;
//! for other months the report says attainment is unavailable rather than
//! recomputing it. Bounds: at most [`MAX_PAGES`] result pages per agent.

use std::collections::BTreeMap;
use std::time::Duration;

use http::Method;

use crate::notify::client::{self, HttpUrl};
use crate::slo::window::{civil_from_days, days_from_civil};

mod rehearsals;
mod render;
pub use render::{html, markdown};

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Results per page asked for.
const PAGE: usize = 500;
/// Most result pages read per agent.
pub const MAX_PAGES: usize = 5000;
/// Most incidents read.
const MAX_INCIDENTS: usize = 800;

/// A failed report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("--month {0:?}: write YYYY-MM, e.g. 2026-11")]
    BadMonth(String),
    #[error("cannot reach the collector at {0}: {1}\n  fix: check --url (or [http] listen) and that the collector runs")]
    Unreachable(String, client::ClientError),
    #[error("the collector answered {path} with {status}: {body}")]
    Refused {
        path: String,
        status: u16,
        body: String,
    },
    #[error("unexpected answer from the collector for {0}: {1}")]
    Garbled(String, String),
}

/// A calendar month, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub year: i64,
    pub month: u32,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Month {
    pub fn parse(s: &str) -> Result<Month, ReportError> {
        let bad = || ReportError::BadMonth(s.to_string());
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        let year: i64 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || m.len() != 2 {
            return Err(bad());
        }
        let (ny, nm) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        Ok(Month {
            year,
            month,
            start_ms: days_from_civil(year, month, 1) * 86_400_000,
            end_ms: days_from_civil(ny, nm, 1) * 86_400_000,
        })
    }

    /// The month holding `ms`.
    pub fn of(ms: i64) -> Month {
        let (y, m, _) = civil_from_days(ms.div_euclid(86_400_000));
        Month::parse(&format!("{y:04}-{m:02}")).unwrap_or(Month {
            year: y,
            month: m,
            start_ms: ms,
            end_ms: ms,
        })
    }

    pub fn contains(&self, ms: i64) -> bool {
        (self.start_ms..self.end_ms).contains(&ms)
    }

    pub fn label(&self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
}

/// One objective's month.
#[derive(Debug, Clone, Default)]
pub struct ObjectiveRow {
    pub name: String,
    pub description: String,
    pub target: f64,
    /// The month's SLI; `None` when no data or not the current month.
    pub attainment: Option<f64>,
    pub budget_remaining: Option<f64>,
    pub completeness: Option<f64>,
    pub good: u64,
    pub bad: u64,
}

impl ObjectiveRow {
    pub fn met(&self) -> Option<bool> {
        self.attainment.map(|a| a >= self.target)
    }
}

/// Backup freshness evidence of one (agent, check).
#[derive(Debug, Clone, Default)]
pub struct FreshnessRow {
    pub agent: String,
    pub check: String,
    pub module: String,
    pub runs: u64,
    pub ok: u64,
    pub last_ok_ms: Option<i64>,
    /// The last run's measured value (the age the check saw), if any.
    pub last_value: Option<f64>,
}

/// One agent's month.
#[derive(Debug, Clone, Default)]
pub struct AgentRow {
    pub agent: String,
    pub version: String,
    pub connected: bool,
    pub last_seen_ms: i64,
    pub results: u64,
    /// Sequence numbers missing between the month's stored results.
    pub seq_gaps: u64,
    pub gap_results: u64,
    pub dropped_total: u64,
    pub buffer_entries: u64,
    /// The page bound stopped the read: counts are a lower bound.
    pub truncated: bool,
}

/// The report's data.
#[derive(Debug, Clone)]
pub struct Report {
    pub month: Month,
    pub source: String,
    pub generated_ms: i64,
    pub evaluated_at: Option<String>,
    /// The collector's calendar-month window is this month.
    pub slo_available: bool,
    pub objectives: Vec<ObjectiveRow>,
    pub incidents: Vec<serde_json::Value>,
    /// The incident listing hit its bound before reaching the month's
    /// start: older incidents of the month may be missing (said so).
    pub incidents_truncated: bool,
    pub freshness: Vec<FreshnessRow>,
    pub agents: Vec<AgentRow>,
    /// Rehearsals started this month (`/api/v1/rehearsals`), oldest first.
    pub rehearsals: Vec<serde_json::Value>,
    /// Named contact points (`/api/v1/contacts`).
    pub contacts: Vec<serde_json::Value>,
}

async fn get(url: &HttpUrl, path: &str) -> Result<serde_json::Value, ReportError> {
    let r = client::send(url, Method::GET, path, &[], Vec::new(), TIMEOUT)
        .await
        .map_err(|e| ReportError::Unreachable(url.to_string(), e))?;
    if r.status != 200 {
        return Err(ReportError::Refused {
            path: path.to_string(),
            status: r.status,
            body: String::from_utf8_lossy(&r.body[..r.body.len().min(300)]).into_owned(),
        });
    }
    serde_json::from_slice(&r.body)
        .map_err(|e| ReportError::Garbled(path.to_string(), e.to_string()))
}

fn list(v: &serde_json::Value) -> &[serde_json::Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// Backup evidence: freshness checks, or any check in a module or for an
/// objective whose name mentions backup.
fn is_backup(r: &serde_json::Value) -> bool {
    let l = |k: &str| r["labels"][k].as_str().unwrap_or("").to_ascii_lowercase();
    r["kind"] == "freshness" || l("module").contains("backup") || l("objective").contains("backup")
}

/// Builds the report for `month` from the collector at `url`.
pub async fn collect(url: &HttpUrl, month: Month, now_ms: i64) -> Result<Report, ReportError> {
    let slo = get(url, "/api/v1/slo").await?;
    let evaluated_at = slo["evaluated_at"].as_str().map(str::to_string);
    let evaluated_ms = evaluated_at
        .as_deref()
        .and_then(crate::status_page::parse_time_ms);
    let slo_available = evaluated_ms.is_some_and(|t| month.contains(t));
    let objectives = list(&slo["objectives"])
        .iter()
        .map(|o| {
            let w = list(&o["windows"]).iter().find(|w| w["window"] == "month");
            let f = |k: &str| w.filter(|_| slo_available).and_then(|w| w[k].as_f64());
            let n = |k: &str| {
                w.filter(|_| slo_available)
                    .and_then(|w| w[k].as_u64())
                    .unwrap_or(0)
            };
            ObjectiveRow {
                name: o["name"].as_str().unwrap_or("").to_string(),
                description: o["description"].as_str().unwrap_or("").to_string(),
                target: o["target"].as_f64().unwrap_or(0.0),
                attainment: f("sli"),
                budget_remaining: f("error_budget_remaining"),
                completeness: f("completeness"),
                good: n("good"),
                bad: n("bad"),
            }
        })
        .collect();
    let inc = get(
        url,
        &format!("/api/v1/incidents?state=all&limit={MAX_INCIDENTS}"),
    )
    .await?;
    let all = list(&inc["incidents"]);
    let opened = |i: &serde_json::Value| {
        crate::status_page::parse_time_ms(i["opened"].as_str().unwrap_or(""))
    };
    let incidents_truncated = all.len() >= MAX_INCIDENTS
        && all
            .iter()
            .filter_map(opened)
            .min()
            .is_some_and(|t| t > month.start_ms);
    let mut incidents: Vec<serde_json::Value> = all
        .iter()
        .filter(|i| {
            crate::status_page::parse_time_ms(i["opened"].as_str().unwrap_or(""))
                .is_some_and(|t| month.contains(t))
        })
        .cloned()
        .collect();
    incidents.sort_by_key(|i| i["id"].as_u64());
    let agents_v = get(url, "/api/v1/agents").await?;
    let mut agents = Vec::new();
    let mut freshness: BTreeMap<(String, String), FreshnessRow> = BTreeMap::new();
    for a in list(&agents_v["agents"]) {
        let id = a["agent"].as_str().unwrap_or("").to_string();
        let mut row = AgentRow {
            agent: id.clone(),
            version: a["version"].as_str().unwrap_or("").to_string(),
            connected: a["connected"].as_bool().unwrap_or(false),
            last_seen_ms: a["last_seen_unix_ms"].as_i64().unwrap_or(0),
            gap_results: a["gap_results"].as_u64().unwrap_or(0),
            dropped_total: a["footprint"]["dropped_total"].as_u64().unwrap_or(0),
            buffer_entries: a["footprint"]["buffer_entries"].as_u64().unwrap_or(0),
            ..AgentRow::default()
        };
        let (mut after, mut prev) = (0u64, None::<u64>);
        let mut pages = 0;
        loop {
            if pages >= MAX_PAGES {
                row.truncated = true;
                break;
            }
            pages += 1;
            let page = get(
                url,
                &format!("/api/v1/results?agent={id}&after={after}&limit={PAGE}"),
            )
            .await?;
            let rs = list(&page["results"]);
            for r in rs {
                let seq = r["seq"].as_u64().unwrap_or(0);
                after = after.max(seq);
                if !month.contains(r["started_unix_ms"].as_i64().unwrap_or(0)) {
                    continue;
                }
                row.results += 1;
                if let Some(p) = prev {
                    row.seq_gaps += seq.saturating_sub(p + 1);
                }
                prev = Some(seq);
                if is_backup(r) {
                    let check = r["check"].as_str().unwrap_or("").to_string();
                    let f = freshness
                        .entry((id.clone(), check.clone()))
                        .or_insert_with(|| FreshnessRow {
                            agent: id.clone(),
                            check,
                            module: r["labels"]["module"].as_str().unwrap_or("").to_string(),
                            ..FreshnessRow::default()
                        });
                    f.runs += 1;
                    f.last_value = r["value"].as_f64();
                    if r["outcome"] == "ok" {
                        f.ok += 1;
                        f.last_ok_ms = r["started_unix_ms"].as_i64();
                    }
                }
            }
            if rs.len() < PAGE {
                break;
            }
        }
        agents.push(row);
    }
    // Collectors that predate rehearsals and contacts answer 404: none.
    let optional = |r: Result<serde_json::Value, ReportError>| match r {
        Err(ReportError::Refused { status: 404, .. }) => Ok(serde_json::Value::Null),
        r => r,
    };
    let reh = optional(get(url, "/api/v1/rehearsals?limit=1000").await)?;
    let mut rehearsals: Vec<serde_json::Value> = list(&reh["rehearsals"])
        .iter()
        .filter(|r| {
            crate::status_page::parse_time_ms(r["started"].as_str().unwrap_or(""))
                .is_some_and(|t| month.contains(t))
        })
        .cloned()
        .collect();
    rehearsals.reverse();
    let contacts = list(&optional(get(url, "/api/v1/contacts").await)?["contacts"]).to_vec();
    Ok(Report {
        rehearsals,
        contacts,
        month,
        source: url.to_string(),
        generated_ms: now_ms,
        evaluated_at,
        slo_available,
        objectives,
        incidents,
        incidents_truncated,
        freshness: freshness.into_values().collect(),
        agents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_and_bound() {
        let m = Month::parse("2024-02").unwrap();
        assert_eq!(m.end_ms - m.start_ms, 29 * 86_400_000, "leap February");
        let d = Month::parse("2025-12").unwrap();
        assert_eq!(d.end_ms, Month::parse("2026-01").unwrap().start_ms);
        assert!(d.contains(d.start_ms) && !d.contains(d.end_ms));
        for bad in ["2025-13", "2025-1", "25-01", "2025", "x-01", "2025-00"] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Month::of(d.start_ms + 5), d);
        assert_eq!(Month::of(d.end_ms - 1).label(), "2025-12");
    }

    #[test]
    fn attainment_meets_target() {
        let mut o = ObjectiveRow {
            target: 0.99,
            attainment: Some(0.995),
            ..Default::default()
        };
        assert_eq!(o.met(), Some(true));
        o.attainment = Some(0.98);
        assert_eq!(o.met(), Some(false));
        o.attainment = None;
        assert_eq!(o.met(), None);
    }
}
