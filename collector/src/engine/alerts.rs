//! The alert set the receivers should show: one alert per active incident
//! (labels identify it, so a new incident — or a re-notification at a
//! higher escalation level — is a new alert) and one per active warning.
//! Resolved incidents and cleared warnings are simply absent; the
//! notifiers turn absence into `endsAt`.

use std::collections::BTreeMap;

use crate::engine::Engine;
use crate::incidents::State;

/// Longest annotation value sent.
const MAX_ANNOTATION: usize = 1_024;

/// One alert as a receiver sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    /// The incident it stands for (none for warnings).
    pub incident: Option<u64>,
}

impl Alert {
    /// Identity: the label set, rendered.
    pub fn fingerprint(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.labels {
            s.push_str(k);
            s.push('=');
            s.push_str(v);
            s.push('\u{1f}');
        }
        s
    }
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_ANNOTATION {
        let mut cut = MAX_ANNOTATION;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

impl Engine {
    /// The alerts that should be firing now.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut out = Vec::new();
        for inc in self.incidents.active() {
            let mut labels = BTreeMap::new();
            for (k, v) in &inc.labels {
                labels.insert(k.clone(), v.clone());
            }
            labels.insert("alertname".into(), inc.rule.clone());
            labels.insert("severity".into(), inc.severity.as_str().into());
            labels.insert("scope".into(), inc.scope.clone());
            labels.insert("incident".into(), inc.id.to_string());
            labels.insert("escalation_level".into(), inc.escalation_level.to_string());
            labels.insert("source".into(), "outpost".into());
            let mut annotations = BTreeMap::new();
            annotations.insert("summary".into(), clip(inc.summary.clone()));
            annotations.insert(
                "state".into(),
                match inc.state {
                    State::Acknowledged => format!(
                        "acknowledged{}",
                        inc.acked_by
                            .as_ref()
                            .map_or(String::new(), |b| format!(" by {b}"))
                    ),
                    s => s.as_str().to_string(),
                },
            );
            annotations.insert("scenario".into(), inc.scenario.clone());
            annotations.insert("rto_minutes".into(), (inc.rto_ms / 60_000).to_string());
            let contacts = self.contacts_of(inc);
            if !contacts.is_empty() {
                annotations.insert(
                    "contacts".into(),
                    clip(crate::contacts::annotation(&contacts)),
                );
            }
            if let Some(e) = inc.timeline.last() {
                annotations.insert("description".into(), clip(e.text.clone()));
            }
            out.push(Alert {
                labels,
                annotations,
                starts_at_ms: inc.opened_ms,
                incident: Some(inc.id),
            });
        }
        for w in self.warnings() {
            let s = &w.signal;
            let mut labels = s.labels.clone();
            labels.insert("alertname".into(), s.rule.to_string());
            labels.insert("severity".into(), "warning".into());
            labels.insert("scope".into(), s.scope.clone());
            labels.insert("source".into(), "outpost".into());
            let annotations = BTreeMap::from([("summary".to_string(), clip(s.summary.clone()))]);
            out.push(Alert {
                labels,
                annotations,
                starts_at_ms: w.since_ms,
                incident: None,
            });
        }
        out.sort_by_key(Alert::fingerprint);
        out
    }
}
