//! The collector's escalations reach a real Alertmanager (Debian's
//! prometheus-alertmanager on a free loopback port): login failing at
//! both sites shows up in `GET /api/v2/alerts` with the right labels and
//! severity, and is resolved there when the portal recovers.

mod slo_support;

use std::time::Duration;

use anyhow::Result;
use outpost_tests::harness::{eventually, sample, TestAgent, TestCollector};
use outpost_tests::portal::Portal;
use slo_support::{agent_config, find_alert, get_json, login_check, write, Alertmanager};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failing_broadly_is_raised_and_resolved_in_alertmanager() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let am = Alertmanager::start().await?;
    let portal = Portal::start().await?;
    let config = write(
        dir.path(),
        "collector.toml",
        &format!(
            r#"
[slo]
evaluate_every = "200ms"

[[alertmanager]]
url = "{}"
resend = "1s"

[[contact]]
name = "Identity desk"
role = "operations"
email = "idp-ops@example.org"
objectives = ["authentication"]

[[contact]]
name = "Reports team"
role = "operations"
email = "reports@example.org"
modules = ["reports"]

[[contact]]
name = "Platform owner"
role = "escalation"
phone = "+49 30 1234567"
"#,
            am.url
        ),
    )?;
    let collector = TestCollector::start_with(
        &dir.path().join("store"),
        &["-c", config.to_str().unwrap_or_default()],
    )
    .await?;
    let mut agents = Vec::new();
    for site in ["site-a", "site-b"] {
        let d = dir.path().join(site);
        std::fs::create_dir_all(&d)?;
        let cfg = agent_config(
            &format!("{site}-agent"),
            site,
            &d.join("buffer"),
            &collector.endpoint(),
            &login_check(&portal.url("/portal/home")),
        );
        agents.push(TestAgent::start(&d, &cfg).await?);
    }
    // Healthy first: both sites report good logins, nothing is raised.
    let slo_url = collector.http_url("/api/v1/slo");
    eventually(
        Duration::from_secs(30),
        "both sites reporting good logins",
        || async {
            let v = get_json(&slo_url).await.ok()?;
            let auth = v["objectives"]
                .as_array()?
                .iter()
                .find(|o| o["name"] == "authentication")?;
            let sites = auth["sites"].as_array()?;
            (sites.len() == 2
                && sites
                    .iter()
                    .all(|s| s["windows"][0]["good"].as_u64().unwrap_or(0) >= 2))
            .then_some(())
        },
    )
    .await?;
    assert!(find_alert(&am.alerts().await?, "auth_failing_broadly").is_none());

    // The identity path fails for everyone.
    portal.faults().set_status("/portal/home", Some(503));
    let alert = eventually(
        Duration::from_secs(30),
        "auth_failing_broadly in Alertmanager",
        || async {
            let alerts = am.alerts().await.ok()?;
            find_alert(&alerts, "auth_failing_broadly").cloned()
        },
    )
    .await?;
    let labels = &alert["labels"];
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["scope"], "platform");
    assert_eq!(labels["source"], "outpost");
    assert_eq!(labels["escalation_level"], "0");
    assert_eq!(alert["status"]["state"], "active");
    let id = labels["incident"].as_str().unwrap_or_default().to_string();
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!("/api/v1/incidents/{id}")),
        "{alert}"
    );
    assert!(alert["annotations"]["summary"]
        .as_str()
        .unwrap_or_default()
        .contains("login failing at 2 of 2"));
    // Named contact points of the objective (and the general one) ride
    // along; the reports team's does not.
    assert_eq!(
        alert["annotations"]["contacts"],
        "Identity desk (operations): idp-ops@example.org; Platform owner (escalation): +49 30 1234567",
        "{alert}"
    );
    // The collector's own view agrees, and counts the post.
    let inc = get_json(&collector.http_url(&format!("/api/v1/incidents/{id}"))).await?;
    assert_eq!(inc["state"], "open");
    let names: Vec<&str> = inc["contacts"]
        .as_array()
        .map(|c| c.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["Identity desk", "Platform owner"], "{inc}");
    assert_eq!(inc["scenario"], "full_platform");
    let m = collector.metrics().await?;
    assert!(
        sample(&m, "outpost_notify_sent_total", &[("kind", "alertmanager")]).unwrap_or(0.0) >= 1.0
    );
    assert_eq!(
        sample(
            &m,
            "outpost_incident_active",
            &[("rule", "auth_failing_broadly"), ("severity", "critical")]
        ),
        Some(1.0)
    );

    // Recovery: after 3 consecutive good runs per site the incident
    // resolves and Alertmanager gets endsAt.
    portal.faults().set_status("/portal/home", None);
    eventually(
        Duration::from_secs(30),
        "auth_failing_broadly resolved in Alertmanager",
        || async {
            let alerts = am.alerts().await.ok()?;
            find_alert(&alerts, "auth_failing_broadly")
                .is_none()
                .then_some(())
        },
    )
    .await?;
    let inc = get_json(&collector.http_url(&format!("/api/v1/incidents/{id}"))).await?;
    assert_eq!(inc["state"], "resolved");
    assert_eq!(inc["rto"], "met");
    let kinds: Vec<&str> = inc["timeline"]
        .as_array()
        .map(|t| t.iter().filter_map(|e| e["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds.first(), Some(&"opened"));
    assert_eq!(kinds.last(), Some(&"resolved"));

    for a in agents {
        a.stop().await?;
    }
    collector.stop().await?;
    am.stop().await?;
    Ok(())
}
