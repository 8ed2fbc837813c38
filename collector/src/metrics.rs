//! Every Prometheus metric name the collector exports, and the text
//! exposition (format 0.0.4) of the live view. Names follow Prometheus
//! conventions: base units (`_seconds`, `_bytes`), `_total` counters,
//! bounded label sets (agent, check, kind, module, objective, outcome,
//! phase, reason — no free-form labels).

use std::fmt::Write as _;

use crate::live::{Live, Series};
use crate::model::Outcome;

/// Content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Builds one exposition, a family at a time.
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_into(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }
}

fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn series_labels<'a>(
    agent: &'a str,
    check: &'a str,
    s: &'a Series,
) -> [(&'static str, &'a str); 5] {
    [
        ("agent", agent),
        ("check", check),
        ("kind", s.kind.as_str()),
        ("module", s.module.as_str()),
        ("objective", s.objective.as_str()),
    ]
}

/// (name, help, value of one agent) for per-agent families.
type AgentMetric = (
    &'static str,
    &'static str,
    fn(&crate::live::AgentView) -> f64,
);

/// Renders the whole exposition.
pub fn render(live: &Live) -> String {
    let mut e = Exposition {
        out: String::with_capacity(4096 + live.series.len() * 1024),
    };

    e.family(
        "outpost_collector_build_info",
        "gauge",
        "Collector version; always 1.",
    );
    e.sample(
        "outpost_collector_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );

    // ---- probes
    e.family(
        "outpost_probe_success",
        "gauge",
        "1 if the check's latest run was ok, else 0.",
    );
    for ((agent, check), s) in &live.series {
        e.sample(
            "outpost_probe_success",
            &series_labels(agent, check, s),
            f64::from(u8::from(s.last.outcome == Outcome::Ok)),
        );
    }
    e.family(
        "outpost_probe_duration_seconds",
        "gauge",
        "Duration of the check's latest run.",
    );
    for ((agent, check), s) in &live.series {
        e.sample(
            "outpost_probe_duration_seconds",
            &series_labels(agent, check, s),
            s.last.duration_us as f64 / 1e6,
        );
    }
    e.family(
        "outpost_probe_phase_duration_seconds",
        "gauge",
        "Per-phase duration of the check's latest run (dns, connect, tls, first_byte, total).",
    );
    for ((agent, check), s) in &live.series {
        let p = s.last.phases;
        for (phase, v) in [
            ("dns", p.dns_us),
            ("connect", p.connect_us),
            ("tls", p.tls_us),
            ("first_byte", p.first_byte_us),
            ("total", p.total_us),
        ] {
            if let Some(us) = v {
                let l = series_labels(agent, check, s);
                e.sample(
                    "outpost_probe_phase_duration_seconds",
                    &[l[0], l[1], l[2], l[3], l[4], ("phase", phase)],
                    us as f64 / 1e6,
                );
            }
        }
    }
    e.family(
        "outpost_probe_http_status_code",
        "gauge",
        "HTTP status of the check's latest run (0: no response).",
    );
    for ((agent, check), s) in &live.series {
        e.sample(
            "outpost_probe_http_status_code",
            &series_labels(agent, check, s),
            f64::from(s.last.http_status.unwrap_or(0)),
        );
    }
    e.family(
        "outpost_probe_value",
        "gauge",
        "Kind-specific value of the latest run (staleness seconds, time to ready, ...).",
    );
    for ((agent, check), s) in &live.series {
        if let Some(v) = s.last.value {
            e.sample("outpost_probe_value", &series_labels(agent, check, s), v);
        }
    }
    e.family(
        "outpost_probe_tls_cert_expiry_timestamp_seconds",
        "gauge",
        "When the leaf TLS certificate seen by the latest run expires.",
    );
    for ((agent, check), s) in &live.series {
        if let Some(days) = s.last.tls_cert_days_left {
            let ts = s.last.started_unix_ms as f64 / 1000.0 + days * 86_400.0;
            e.sample(
                "outpost_probe_tls_cert_expiry_timestamp_seconds",
                &series_labels(agent, check, s),
                ts.round(),
            );
        }
    }
    e.family(
        "outpost_probe_last_run_timestamp_seconds",
        "gauge",
        "Start time of the check's latest run.",
    );
    for ((agent, check), s) in &live.series {
        e.sample(
            "outpost_probe_last_run_timestamp_seconds",
            &series_labels(agent, check, s),
            s.last.started_unix_ms as f64 / 1000.0,
        );
    }
    e.family(
        "outpost_probe_results_total",
        "counter",
        "Check results stored, by outcome.",
    );
    for ((agent, check), s) in &live.series {
        for o in Outcome::ALL {
            let l = series_labels(agent, check, s);
            e.sample(
                "outpost_probe_results_total",
                &[l[0], l[1], l[2], l[3], l[4], ("outcome", o.as_str())],
                s.counts[o.index()] as f64,
            );
        }
    }

    // ---- agents
    let agent_gauges: [AgentMetric; 9] = [
        (
            "outpost_agent_up",
            "1 while the agent has a stream open to this collector.",
            |a| f64::from(u8::from(a.connected_streams > 0)),
        ),
        (
            "outpost_agent_last_seen_timestamp_seconds",
            "Last hello, heartbeat or batch from the agent.",
            |a| a.state.last_seen_unix_ms as f64 / 1000.0,
        ),
        (
            "outpost_agent_buffer_depth",
            "Results waiting in the agent's buffer (agent-reported).",
            |a| a.state.footprint.buffer_entries as f64,
        ),
        (
            "outpost_agent_buffer_bytes",
            "Logical bytes in the agent's buffer (agent-reported).",
            |a| a.state.footprint.buffer_bytes as f64,
        ),
        (
            "outpost_agent_buffer_oldest_unsent_age_seconds",
            "Age of the oldest unacknowledged result in the agent's buffer.",
            |a| a.state.footprint.oldest_unsent_age_seconds,
        ),
        (
            "outpost_agent_resident_memory_bytes",
            "Agent RSS (agent-reported).",
            |a| a.state.footprint.rss_bytes as f64,
        ),
        (
            "outpost_agent_clock_offset_seconds",
            "Collector clock minus agent clock at the last message (includes transit time).",
            |a| a.state.clock_offset_ms as f64 / 1000.0,
        ),
        (
            "outpost_agent_high_water_mark",
            "Highest sequence stored or announced dropped for the agent.",
            |a| a.state.hwm as f64,
        ),
        (
            "outpost_agent_first_seen_timestamp_seconds",
            "When the collector first heard from the agent.",
            |a| a.state.first_seen_unix_ms as f64 / 1000.0,
        ),
    ];
    for (name, help, f) in agent_gauges {
        e.family(name, "gauge", help);
        for (id, a) in &live.agents {
            e.sample(name, &[("agent", id)], f(a));
        }
    }
    let agent_counters: [AgentMetric; 6] = [
        (
            "outpost_agent_cpu_seconds_total",
            "Agent CPU time (agent-reported).",
            |a| a.state.footprint.cpu_seconds_total,
        ),
        (
            "outpost_agent_lost_results_total",
            "Results missing at the collector that the agent did not announce as dropped (should stay 0).",
            |a| a.state.lost_results as f64,
        ),
        (
            "outpost_agent_gap_results_total",
            "Results the collector never received because the agent announced them dropped.",
            |a| a.state.gap_results as f64,
        ),
        (
            "outpost_agent_buffer_resets_total",
            "Times the agent's buffer was recreated (results it held are lost).",
            |a| a.state.buffer_resets as f64,
        ),
        (
            "outpost_agent_results_stored_total",
            "Results stored for the agent.",
            |a| a.state.stored as f64,
        ),
        (
            "outpost_agent_duplicates_total",
            "Duplicate results received from the agent and dropped.",
            |a| a.state.duplicates as f64,
        ),
    ];
    for (name, help, f) in agent_counters {
        e.family(name, "counter", help);
        for (id, a) in &live.agents {
            e.sample(name, &[("agent", id)], f(a));
        }
    }
    // delivery (#4): the agent's dropped counter, by reason.
    e.family(
        "outpost_agent_dropped_total",
        "counter",
        "Results the agent dropped, agent-reported, by reason (buffer_full, write_error, corrupt; other: an agent that reports only the total).",
    );
    for (id, a) in &live.agents {
        let f = &a.state.footprint;
        let by_reason = f.dropped_buffer_full + f.dropped_write_error + f.dropped_corrupt;
        for (reason, n) in [
            ("buffer_full", f.dropped_buffer_full),
            ("write_error", f.dropped_write_error),
            ("corrupt", f.dropped_corrupt),
            ("other", f.dropped_total.saturating_sub(by_reason)),
        ] {
            e.sample(
                "outpost_agent_dropped_total",
                &[("agent", id), ("reason", reason)],
                n as f64,
            );
        }
    }
    e.family("outpost_agent_info", "gauge", "Agent version; always 1.");
    for (id, a) in &live.agents {
        e.sample(
            "outpost_agent_info",
            &[("agent", id), ("version", &a.state.version)],
            1.0,
        );
    }

    // ---- ingest
    let i = &live.ingest;
    for (name, help, v) in [
        (
            "outpost_ingest_streams_total",
            "Agent streams accepted.",
            i.streams_total,
        ),
        (
            "outpost_ingest_batches_total",
            "Batches stored.",
            i.batches_total,
        ),
        (
            "outpost_ingest_results_total",
            "Results stored (durably, before acknowledgement).",
            i.results_stored_total,
        ),
        (
            "outpost_ingest_duplicates_total",
            "Duplicate results dropped by (agent, sequence).",
            i.duplicates_total,
        ),
        (
            "outpost_collector_series_overflow_total",
            "Results not exported because their agent has too many distinct checks.",
            live.series_overflow_total,
        ),
    ] {
        e.family(name, "counter", help);
        e.sample(name, &[], v as f64);
    }
    e.family(
        "outpost_ingest_throttled_seconds_total",
        "counter",
        "Time agent streams were slowed by the per-agent rate bound.",
    );
    e.sample(
        "outpost_ingest_throttled_seconds_total",
        &[],
        i.throttled_seconds_total,
    );
    e.family(
        "outpost_ingest_rejected_total",
        "counter",
        "Streams or messages refused, by reason.",
    );
    for (reason, n) in &i.rejected_total {
        e.sample(
            "outpost_ingest_rejected_total",
            &[("reason", reason)],
            *n as f64,
        );
    }
    render_remote_write(&mut e, live);
    e.out
}

fn render_remote_write(e: &mut Exposition, live: &Live) {
    e.family(
        "outpost_remote_write_samples_sent_total",
        "counter",
        "Samples accepted by a remote-write receiver.",
    );
    for (name, s) in &live.remote_write {
        e.sample(
            "outpost_remote_write_samples_sent_total",
            &[("receiver", name)],
            s.samples_sent as f64,
        );
    }
    e.family("outpost_remote_write_samples_dropped_total", "counter", "Samples not delivered to a receiver, by reason (queue_full, rejected, retries_exhausted, shutdown, encode_error).");
    for (name, s) in &live.remote_write {
        for (reason, n) in &s.samples_dropped {
            e.sample(
                "outpost_remote_write_samples_dropped_total",
                &[("receiver", name), ("reason", reason)],
                *n as f64,
            );
        }
    }
    e.family(
        "outpost_remote_write_requests_total",
        "counter",
        "Remote-write requests by HTTP status (or error).",
    );
    for (name, s) in &live.remote_write {
        for (code, n) in &s.requests {
            e.sample(
                "outpost_remote_write_requests_total",
                &[("receiver", name), ("code", code)],
                *n as f64,
            );
        }
    }
    e.family(
        "outpost_remote_write_retries_total",
        "counter",
        "Remote-write requests retried after 5xx, 429 or a connection error.",
    );
    for (name, s) in &live.remote_write {
        e.sample(
            "outpost_remote_write_retries_total",
            &[("receiver", name)],
            s.retries as f64,
        );
    }
}

// ---- evaluation: SLOs, incidents, warnings, receivers (issue #5) ----------
mod evaluation;
pub use evaluation::render_evaluation;
mod rehearsal;
pub use rehearsal::render_rehearsals;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_values_formatted() {
        let mut e = Exposition { out: String::new() };
        e.sample("m", &[("a", "x\"y\\z\nw")], 1.5);
        e.sample("m", &[], 3.0);
        e.sample("m", &[], f64::NAN);
        assert_eq!(e.out, "m{a=\"x\\\"y\\\\z\\nw\"} 1.5\nm 3\nm NaN\n");
    }

    #[test]
    fn evaluation_families_have_help_and_type_and_histograms_end_in_inf() {
        use crate::escalation::Severity;
        let mut snap = crate::evaluator::Snapshot::default();
        let mut h = crate::incidents::TtaHistogram::default();
        h.observe(120.0);
        snap.tta.insert(Severity::Critical, h);
        let text = render_evaluation(&snap, &std::collections::BTreeMap::new());
        let types = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP")).count();
        assert_eq!(types, helps);
        assert!(text.contains(
            "outpost_incident_time_to_acknowledge_seconds_bucket{severity=\"critical\",le=\"60\"} 0\n"
        ));
        assert!(text.contains(
            "outpost_incident_time_to_acknowledge_seconds_bucket{severity=\"critical\",le=\"+Inf\"} 1\n"
        ));
    }

    /// Samples of a family follow its TYPE line and are not interleaved
    /// with another family (the exposition format requires it).
    fn assert_grouped(text: &str) {
        let mut seen = std::collections::BTreeSet::new();
        let mut current = String::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or_default().to_string();
                assert!(seen.insert(name.clone()), "family {name} twice");
                current = name;
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap_or_default();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suf| name.strip_suffix(suf).filter(|b| *b == current))
                    .unwrap_or(name);
                assert_eq!(base, current, "sample {l:?} outside its family");
            }
        }
    }

    #[test]
    fn evaluation_samples_are_grouped_by_family() {
        use crate::engine::{Engine, EngineConfig};
        use crate::model::{Phases, ResultRecord};
        let mut e = Engine::new(EngineConfig::default());
        let now = 1_700_000_000_000;
        let rs: Vec<ResultRecord> = (0..30)
            .map(|i| ResultRecord {
                seq: i + 1,
                check: "login".into(),
                kind: "login".into(),
                labels: [("objective".to_string(), "authentication".to_string())].into(),
                started_unix_ms: now - 1_800_000 + i as i64 * 60_000,
                duration_us: 1,
                phases: Phases::default(),
                outcome: if i > 25 { Outcome::Failed } else { Outcome::Ok },
                http_status: None,
                error: String::new(),
                value: None,
                confirmation: false,
                tls_cert_days_left: None,
                received_unix_ms: now - 1_800_000 + i as i64 * 60_000 + 10,
            })
            .collect();
        for site in ["a", "b"] {
            let labels = [("site".to_string(), site.to_string())].into();
            e.fold(&format!("agent-{site}"), &labels, &rs, now);
        }
        let ev = e.evaluate(now);
        assert!(!e.incidents.is_empty());
        let snap = crate::evaluator::Snapshot {
            objectives: e.objectives().to_vec(),
            reports: ev.reports,
            active: e.incidents.active().cloned().collect(),
            warnings: e.warnings().cloned().collect(),
            ..Default::default()
        };
        let notify = std::collections::BTreeMap::from([(
            "am".to_string(),
            crate::notify::ReceiverStats::default(),
        )]);
        let text = render_evaluation(&snap, &notify);
        assert_grouped(&text);
        assert_grouped(&render(&Live::default()));
        assert!(
            text.contains("outpost_slo_burn_alert{objective=\"authentication\",level=\"page\"} 1")
        );
    }

    #[test]
    fn empty_live_view_renders_every_family_once() {
        let text = render(&Live::default());
        let types = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP")).count();
        assert_eq!(types, helps);
        assert!(text.contains("# TYPE outpost_ingest_results_total counter"));
    }
}
