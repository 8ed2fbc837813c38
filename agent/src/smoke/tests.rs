use std::path::Path;

use super::*;
use crate::result::Phases;

const CFG: &str = r#"
[agent]
id = "a1"
[collector]
endpoints = ["http://127.0.0.1:9"]

[[check]]
name = "home"
interval = "30s"
module = "portal"
[check.page]
url = "http://127.0.0.1:9/"

[[check]]
name = "devices"
interval = "30s"
module = "telemetry"
[check.page]
url = "http://127.0.0.1:9/d"
"#;

fn cfg() -> Config {
    config::parse(Path::new("a.toml"), CFG).unwrap()
}

fn opts() -> Options {
    Options {
        select: vec![],
        checks: vec![],
        labels: vec![],
        scenario: None,
        until_green: false,
        every: Duration::from_secs(30),
        timeout: Duration::from_secs(3600),
        send: true,
    }
}

fn kv(k: &str, v: &str) -> (String, String) {
    (k.into(), v.into())
}

#[test]
fn selection_by_label_and_name() {
    let c = cfg();
    let all = plan(&c, &opts()).unwrap();
    assert_eq!(all.checks.len(), 2);
    assert_eq!(all.name, "smoke");
    assert_eq!(
        all.labels.get("rehearsal").map(String::as_str),
        Some("smoke")
    );

    let by_label = plan(
        &c,
        &Options {
            select: vec![kv("module", "telemetry")],
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(by_label.checks.len(), 1);
    assert_eq!(by_label.checks[0].name, "devices");
    assert_eq!(
        by_label.selector.get("module").map(String::as_str),
        Some("telemetry")
    );

    let by_name = plan(
        &c,
        &Options {
            checks: vec!["home".into()],
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(by_name.checks[0].name, "home");

    let e = plan(
        &c,
        &Options {
            checks: vec!["nope".into()],
            ..opts()
        },
    )
    .unwrap_err();
    assert!(e.fix.contains("home, devices"), "{e}");
    let e = plan(
        &c,
        &Options {
            select: vec![kv("module", "reports")],
            ..opts()
        },
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("module=portal, module=telemetry"),
        "{e}"
    );
}

#[test]
fn labels_name_the_rehearsal_and_are_checked() {
    let c = cfg();
    let p = plan(
        &c,
        &Options {
            labels: vec![kv("rehearsal", "dr-2026-q4"), kv("site", "b")],
            scenario: Some("full_platform".into()),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(p.name, "dr-2026-q4");
    assert_eq!(p.labels.len(), 2);
    assert_eq!(p.scenario, "full_platform");
    for bad in [
        vec![kv("9x", "v")],
        vec![kv("module", "x")],
        vec![kv("a", "1"), kv("a", "2")],
        vec![kv("a", "")],
        (0..9).map(|i| kv(&format!("l{i}"), "v")).collect(),
    ] {
        assert!(
            plan(
                &c,
                &Options {
                    labels: bad.clone(),
                    ..opts()
                }
            )
            .is_err(),
            "{bad:?}"
        );
    }
    assert!(plan(
        &c,
        &Options {
            scenario: Some("two words".into()),
            ..opts()
        }
    )
    .is_err());
    assert_eq!(key_value("a=b=c").unwrap(), kv("a", "b=c"));
    assert!(key_value("=b").is_err());
    assert!(key_value("ab").is_err());
}

fn result(check: &str, outcome: Outcome, error: &str) -> CheckResult {
    CheckResult {
        check: check.into(),
        kind: "page",
        labels: BTreeMap::new(),
        started: SystemTime::now(),
        duration: Duration::from_millis(3),
        phases: Phases::default(),
        outcome,
        http_status: None,
        error: error.into(),
        value: None,
        confirmation: false,
        tls_cert_days_left: None,
    }
}

fn summary(end: End, delivery: Delivery) -> Summary {
    Summary {
        name: "smoke".into(),
        rehearsal_id: "00ff".into(),
        scenario: String::new(),
        rounds: 3,
        end,
        green_after: (end == End::Green).then_some(Duration::from_millis(2100)),
        elapsed: Duration::from_millis(2200),
        timeout: Some(Duration::from_secs(60)),
        failed_on_the_way: vec![Failure {
            check: "home".into(),
            rounds: 2,
            last_outcome: Outcome::Failed,
            last_error: "unexpected status 503".into(),
        }],
        still_failing: vec![],
        delivery,
    }
}

#[test]
fn exit_codes_follow_green_and_delivery() {
    let receipt = Receipt {
        rto: Duration::from_secs(4 * 3600),
        scenario: "full_platform".into(),
    };
    let refused = Delivery::NotRecorded {
        reason: "refused".into(),
        recorded: 0,
        reports: 3,
    };
    assert_eq!(summary(End::Green, Delivery::NotSent).exit_code(), 0);
    assert_eq!(
        summary(End::Green, Delivery::Recorded(receipt.clone())).exit_code(),
        0
    );
    assert_eq!(summary(End::Green, refused.clone()).exit_code(), 3);
    for end in [End::NotGreen, End::TimedOut, End::Interrupted] {
        assert_eq!(summary(end, Delivery::NotSent).exit_code(), 1);
        assert_eq!(summary(end, refused.clone()).exit_code(), 1);
    }
    let text = render_summary(&summary(End::Green, Delivery::Recorded(receipt)));
    assert!(text.contains("GREEN after 2.1 s (round 3)"), "{text}");
    assert!(
        text.contains("failed on the way: home (failed in 2 rounds: unexpected status 503)"),
        "{text}"
    );
    assert!(text.contains("RTO 4h: met (2.1 s of 4h)"), "{text}");
    let text = render_summary(&summary(End::Green, refused));
    assert!(
        text.contains("the collector did not record this rehearsal: refused (0 of 3"),
        "{text}"
    );
    let text = render_summary(&summary(End::TimedOut, Delivery::NotSent));
    assert!(
        text.contains("NOT GREEN: timed out after 2.2 s (--timeout 1m)"),
        "{text}"
    );
    assert!(text.contains("not sent (--no-send)"), "{text}");
}

#[test]
fn a_round_is_green_only_when_every_check_is_ok() {
    let mut r = Round {
        number: 1,
        offset: Duration::ZERO,
        took: Duration::from_millis(5),
        results: vec![
            result("home", Outcome::Ok, ""),
            result("devices", Outcome::Degraded, "took 3 s"),
        ],
        abandoned: vec![],
    };
    assert!(!r.green());
    let text = render_round(&r, true, Duration::from_secs(30));
    assert!(
        text.contains("not green (1 of 2 not ok); next round 30s"),
        "{text}"
    );
    assert!(text.contains("degraded"), "{text}");
    r.results[1].outcome = Outcome::Ok;
    assert!(r.green());
    r.abandoned.push("slow".into());
    assert!(!r.green());
}

#[tokio::test]
async fn an_unreachable_collector_is_retried_then_reported_undelivered() {
    let mut c = cfg();
    c.collector.backoff_initial = Duration::from_millis(10);
    c.collector.backoff_max = Duration::from_millis(20);
    let reporter = Reporter::new("a1".into(), c.collector.clone());
    let (tx, rx) = mpsc::channel(2);
    let task = tokio::spawn(deliver(reporter, rx));
    for round in 1..=2 {
        tx.send(RoundReport {
            rehearsal_id: "x".into(),
            name: "smoke".into(),
            scenario: String::new(),
            selector: BTreeMap::new(),
            started_unix_ms: 0,
            round,
            results: vec![],
            green_unix_ms: Some(1),
            finished: round == 2,
        })
        .await
        .unwrap();
    }
    drop(tx);
    match task.await.unwrap() {
        Delivery::NotRecorded {
            reason,
            recorded,
            reports,
        } => {
            assert_eq!((recorded, reports), (0, 2));
            assert!(
                reason.contains("not delivered after 5 attempts"),
                "{reason}"
            );
            assert!(reason.contains("Connection refused"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
