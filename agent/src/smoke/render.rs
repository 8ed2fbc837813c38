//! The text a rehearsal prints: one table per round, and the summary.
//! Pure functions of the round and summary values.

use std::fmt::Write;
use std::time::Duration;

use super::{Delivery, End, Failure, Round, Summary};

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One round: a header, a row per check, and the verdict.
pub fn render_round(r: &Round, more: bool, every: Duration) -> String {
    let mut out = String::new();
    let width = r
        .results
        .iter()
        .map(|x| x.check.len())
        .chain(r.abandoned.iter().map(String::len))
        .chain(std::iter::once(5))
        .max()
        .unwrap_or(5);
    let _ = writeln!(
        out,
        "\nround {} ({} after start, took {})",
        r.number,
        secs(r.offset),
        secs(r.took)
    );
    let _ = writeln!(
        out,
        "  {:<width$}  {:<12} {:<14} {:>10}  ERROR",
        "CHECK", "KIND", "OUTCOME", "DURATION"
    );
    for x in &r.results {
        let _ = writeln!(
            out,
            "  {:<width$}  {:<12} {:<14} {:>10}  {}",
            x.check,
            x.kind,
            x.outcome.as_str(),
            ms(x.duration),
            x.error
        );
    }
    for name in &r.abandoned {
        let _ = writeln!(
            out,
            "  {:<width$}  {:<12} {:<14} {:>10}  interrupted before it finished",
            name, "-", "-", "-"
        );
    }
    let not_ok = r.results.iter().filter(|x| !x.outcome.is_ok()).count() + r.abandoned.len();
    let total = r.results.len() + r.abandoned.len();
    if r.green() {
        let _ = writeln!(out, "round {}: green ({total} of {total} ok)", r.number);
    } else {
        let _ = writeln!(
            out,
            "round {}: not green ({not_ok} of {total} not ok){}",
            r.number,
            if more {
                format!(
                    "; next round {} after this one started",
                    humantime::format_duration(every)
                )
            } else {
                String::new()
            }
        );
    }
    out
}

fn failures(list: &[Failure]) -> String {
    list.iter()
        .map(|f| {
            let mut s = format!("{} ({}", f.check, f.last_outcome.as_str());
            if f.rounds > 1 {
                let _ = write!(s, " in {} rounds", f.rounds);
            }
            if !f.last_error.is_empty() {
                let _ = write!(s, ": {}", f.last_error);
            }
            s.push(')');
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The summary after the last round.
pub fn render_summary(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nrehearsal {} (id {}, scenario {})",
        s.name,
        s.rehearsal_id,
        if s.scenario.is_empty() {
            "default"
        } else {
            &s.scenario
        }
    );
    let _ = writeln!(out, "  rounds:            {}", s.rounds);
    let result = match (s.end, s.green_after) {
        (End::Green, Some(after)) => format!("GREEN after {} (round {})", secs(after), s.rounds),
        (End::Green, None) => "GREEN".to_string(),
        (End::NotGreen, _) => format!("NOT GREEN after the single round ({})", secs(s.elapsed)),
        (End::TimedOut, _) => format!(
            "NOT GREEN: timed out after {}{}",
            secs(s.elapsed),
            s.timeout
                .map(|t| format!(" (--timeout {})", humantime::format_duration(t)))
                .unwrap_or_default()
        ),
        (End::Interrupted, _) => format!("NOT GREEN: interrupted after {}", secs(s.elapsed)),
    };
    let _ = writeln!(out, "  result:            {result}");
    let _ = writeln!(
        out,
        "  failed on the way: {}",
        if s.failed_on_the_way.is_empty() {
            "none".to_string()
        } else {
            failures(&s.failed_on_the_way)
        }
    );
    if s.end != End::Green {
        let _ = writeln!(out, "  still failing:     {}", failures(&s.still_failing));
    }
    let collector = match &s.delivery {
        Delivery::NotSent => "not sent (--no-send)".to_string(),
        Delivery::Recorded(r) => {
            let rto = humantime::format_duration(r.rto);
            let verdict = match s.green_after {
                Some(after) if after <= r.rto => format!("met ({} of {rto})", secs(after)),
                Some(after) => format!("MISSED ({} over {rto})", secs(after)),
                None => "not met (never green)".to_string(),
            };
            format!(
                "recorded; scenario {}, RTO {rto}: {verdict}",
                if r.scenario.is_empty() {
                    "default"
                } else {
                    &r.scenario
                }
            )
        }
        Delivery::NotRecorded {
            reason,
            recorded,
            reports,
        } => format!(
            "the collector did not record this rehearsal: {reason} ({recorded} of {reports} round reports recorded)"
        ),
    };
    let _ = writeln!(out, "  collector:         {collector}");
    out
}
