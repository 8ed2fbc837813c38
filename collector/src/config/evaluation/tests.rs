//! The evaluation sections: defaults, overrides, and errors that point at
//! the value with a fix.

use std::path::Path;

use crate::config::{parse, ConfigError};
use crate::escalation::Severity;
use crate::model::Outcome;
use crate::slo::objective::{Class, Source};

fn err(text: &str) -> (usize, usize, String, String) {
    match parse(Path::new("c.toml"), text) {
        Err(ConfigError::Invalid {
            line,
            column,
            message,
            fix,
            ..
        }) => (line, column, message, fix),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn no_sections_give_the_seeds_objectives_and_no_receivers() {
    let c = parse(Path::new("c.toml"), "").unwrap().evaluation;
    let names: Vec<&str> = c
        .engine
        .objectives
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "portal_availability",
            "authentication",
            "report_completion",
            "incident_acknowledgement"
        ]
    );
    assert!(c.alertmanagers.is_empty() && c.webhooks.is_empty() && c.api_token.is_none());
    assert_eq!(c.engine.retention_ms, 35 * 86_400_000);
    assert_eq!(c.engine.rules.auth.min_share, 0.5);
}

#[test]
fn objectives_rules_scenarios_and_windows_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let secret = dir.path().join("hook");
    std::fs::write(&secret, "hooksecret").unwrap();
    let text = format!(
        r#"
[slo]
evaluate_every = "5s"
late_after = "5m"

[[objective]]
name = "portal"
target = 99.5
match = {{ module = "home", kind = "page" }}
excluded = ["access_denied", "pending", "degraded"]
min_bad_events = 5
scenario = "full_platform"

[[objective]]
name = "acks"
target = 90
acknowledge_within = "10m"
severity = "major"

[escalation]
resolve_after = 5
[escalation.auth]
match = [{{ kind = "login" }}]
min_share = 0.3
consecutive = 3
[escalation.persistent]
duration = "20m"

[scenario.edge]
rto = "30m"
rpo = "5m"

[[maintenance]]
name = "weekly"
start = "2025-01-05T02:00:00Z"
duration = "2h"
every = "7d"
match = {{ site = "a" }}

[api]
token_file = "{}"

[[alertmanager]]
url = "http://127.0.0.1:9093"
resend = "30s"

[[webhook]]
name = "ops"
url = "http://127.0.0.1:8080/hook"
secret_file = "{}"
"#,
        token.display(),
        secret.display()
    );
    let c = parse(Path::new("c.toml"), &text).unwrap().evaluation;
    let o = &c.engine.objectives[0];
    assert_eq!(
        (o.name.as_str(), o.target, o.guard.min_bad_events),
        ("portal", 0.995, 5)
    );
    assert_eq!(o.class(Outcome::Degraded), Some(Class::Excluded));
    match &o.source {
        Source::Results { selector, .. } => {
            assert_eq!(selector.kinds, vec!["page".to_string()]);
            assert_eq!(selector.labels["module"], "home");
        }
        s => panic!("{s:?}"),
    }
    assert!(matches!(
        &c.engine.objectives[1].source,
        Source::Acknowledgement { within_ms: 600_000, severity } if severity == "major"
    ));
    assert_eq!(c.engine.late_after_ms, 300_000);
    assert_eq!(c.engine.rules.resolve_after, 5);
    assert_eq!(c.engine.rules.auth.consecutive, 3);
    assert_eq!(c.engine.rules.persistent.duration_ms, 1_200_000);
    assert_eq!(c.engine.rules.scenarios["edge"].rpo_ms, 300_000);
    assert_eq!(c.engine.maintenance[0].start_ms, 1_736_042_400_000);
    assert_eq!(c.engine.maintenance[0].every_ms, Some(7 * 86_400_000));
    assert_eq!(c.api_token.as_ref().unwrap().expose(), "s3cret");
    assert_eq!(format!("{:?}", c.api_token), "Some(Secret(***))");
    assert_eq!(c.alertmanagers[0].resend.as_secs(), 30);
    assert_eq!(c.webhooks[0].name, "ops");
    assert_eq!(c.webhooks[0].secret.expose(), "hooksecret");
    let _ = Severity::Critical;
}

#[test]
fn bad_values_name_line_column_and_fix() {
    let (l, c, m, f) = err("[[objective]]\nname = \"x\"\ntarget = 0.995\n");
    assert_eq!((l, c), (3, 10));
    assert!(m.contains("percentage") && f.contains("99.5"), "{m} / {f}");

    let (l, _, m, f) = err("[[objective]]\nname = \"x\"\ntarget = 99\nbad = [\"broken\"]\n");
    assert_eq!(l, 4);
    assert!(m.contains("broken") && f.contains("access_denied"));

    let (l, _, m, _) =
        err("[[objective]]\nname = \"x\"\ntarget = 99\ngood = [\"ok\"]\nbad = [\"ok\"]\n");
    assert_eq!(l, 5);
    assert!(m.contains("both"));

    let (l, _, m, f) = err("[escalation.auth]\nscenario = \"moon\"\n");
    assert_eq!(l, 2);
    assert!(m.contains("moon") && f.contains("full_platform"));

    let (l, _, m, f) = err("[api]\ntoken_file = \"/nonexistent/token\"\n");
    assert_eq!(l, 2);
    assert!(m.contains("/nonexistent/token") && f.contains("create the file"));

    let (l, _, m, f) = err("[[alertmanager]]\nurl = \"https://am:9093\"\n");
    assert_eq!(l, 2);
    assert!(m.contains("http://") || f.contains("http://"));

    let (l, _, m, _) =
        err("[[maintenance]]\nname = \"w\"\nstart = \"tomorrow\"\nduration = \"1h\"\n");
    assert_eq!(l, 3);
    assert!(m.contains("tomorrow"));

    let (l, _, m, _) = err("[[maintenance]]\nname = \"w\"\nstart = \"2025-01-01T00:00:00Z\"\nduration = \"2h\"\nevery = \"1h\"\n");
    assert_eq!(l, 2);
    assert!(m.contains("every"));

    let (l, _, m, _) = err("[escalation]\nfailling = []\n");
    assert_eq!(l, 2);
    assert!(m.contains("failling"));
}
