//! An incident's life through the real binaries: agents at two sites see
//! login fail, the collector opens one critical incident, the operator
//! lists, acknowledges and closes it with `outpost-collector incidents`
//! (write calls need the bearer token from a file), and a recurrence is a
//! new incident that needs a new acknowledgement. Maintenance windows go
//! through the same API.

mod slo_support;

use std::time::Duration;

use anyhow::Result;
use outpost_tests::harness::{eventually, run_bin, sample, TestAgent, TestCollector};
use outpost_tests::portal::Portal;
use slo_support::{agent_config, get_json, http, login_check, rfc3339, unix_now, write};

struct Setup {
    _dir: tempfile::TempDir,
    collector: TestCollector,
    agents: Vec<TestAgent>,
    portal: Portal,
    token_file: String,
}

async fn setup() -> Result<Setup> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let token = write(dir.path(), "token", "test-token-123\n")?;
    let config = write(
        dir.path(),
        "collector.toml",
        &format!(
            "[slo]\nevaluate_every = \"200ms\"\n\n[api]\ntoken_file = \"{}\"\n",
            token.display()
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
    Ok(Setup {
        token_file: token.display().to_string(),
        _dir: dir,
        collector,
        agents,
        portal,
    })
}

async fn cli(collector: &TestCollector, args: &[&str]) -> Result<(Option<i32>, String, String)> {
    let url = collector.http_url("");
    let mut all = vec!["incidents", "--url", url.as_str()];
    all.extend_from_slice(args);
    let out = run_bin("outpost-collector", &all).await?;
    Ok((out.code, out.stdout, out.stderr))
}

async fn open_incident(c: &TestCollector, not: Option<u64>) -> Result<u64> {
    eventually(
        Duration::from_secs(30),
        "an open auth_failing_broadly incident",
        || async {
            let (code, out, _) = cli(c, &["list", "--state", "open", "--json"]).await.ok()?;
            if code != Some(0) {
                return None;
            }
            let v: serde_json::Value = serde_json::from_str(&out).ok()?;
            v["incidents"]
                .as_array()?
                .iter()
                .filter(|i| i["rule"] == "auth_failing_broadly")
                .filter_map(|i| i["id"].as_u64())
                .find(|id| Some(*id) != not)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_ack_and_close_through_the_cli() -> Result<()> {
    let s = setup().await?;
    let c = &s.collector;
    s.portal.faults().set_status("/portal/home", Some(503));
    let id = open_incident(c, None).await?;
    let ids = id.to_string();

    // The table names it.
    let (code, out, _) = cli(c, &["list"]).await?;
    assert_eq!(code, Some(0));
    assert!(
        out.contains("auth_failing_broadly") && out.contains("critical"),
        "{out}"
    );

    // Write calls without the token are refused.
    let (code, _, err) = cli(c, &["ack", &ids]).await?;
    assert_eq!(code, Some(1));
    assert!(err.contains("401") && err.contains("bearer token"), "{err}");
    let wrong = write(s._dir.path(), "wrong", "nope")?;
    let (code, _, _) = cli(
        c,
        &[
            "--token-file",
            wrong.to_str().unwrap_or_default(),
            "ack",
            &ids,
        ],
    )
    .await?;
    assert_eq!(code, Some(1));
    // Closing before acknowledging is refused.
    let tf = s.token_file.as_str();
    let (code, _, err) = cli(c, &["--token-file", tf, "close", &ids, "--root-cause", "x"]).await?;
    assert_eq!(code, Some(1));
    assert!(err.contains("acknowledge it before closing"), "{err}");

    let (code, out, err) = cli(c, &["--token-file", tf, "ack", &ids, "--by", "alice"]).await?;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!("incident {id} acknowledged")),
        "{out}"
    );
    let (code, _, err) = cli(c, &["--token-file", tf, "ack", &ids]).await?;
    assert_eq!(code, Some(1));
    assert!(err.contains("already acknowledged"), "{err}");
    // A root cause is required (usage error: exit 2).
    let (code, _, _) = cli(c, &["--token-file", tf, "close", &ids]).await?;
    assert_eq!(code, Some(2));
    let (code, out, err) = cli(
        c,
        &[
            "--token-file",
            tf,
            "close",
            &ids,
            "--root-cause",
            "IdP certificate expired",
        ],
    )
    .await?;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("incident {id} closed")), "{out}");

    let inc = get_json(&c.http_url(&format!("/api/v1/incidents/{id}"))).await?;
    assert_eq!(inc["state"], "closed");
    assert_eq!(inc["root_cause"], "IdP certificate expired");
    assert_eq!(inc["acknowledged_by"], "alice");
    assert!(inc["time_to_acknowledge_seconds"].as_f64().unwrap_or(-1.0) >= 0.0);
    let kinds: Vec<&str> = inc["timeline"]
        .as_array()
        .map(|t| t.iter().filter_map(|e| e["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, vec!["opened", "acknowledged", "closed"]);
    let m = c.metrics().await?;
    assert_eq!(
        sample(
            &m,
            "outpost_incident_time_to_acknowledge_seconds_count",
            &[("severity", "critical")]
        ),
        Some(1.0)
    );

    // Login still fails: a new incident, which needs its own ack.
    let again = open_incident(c, Some(id)).await?;
    assert_ne!(again, id);
    let inc = get_json(&c.http_url(&format!("/api/v1/incidents/{again}"))).await?;
    assert_eq!(inc["state"], "open");
    assert!(inc["acknowledged"].is_null());

    // Everything survives a restart: incidents, timelines, buckets.
    for a in s.agents {
        a.stop().await?;
    }
    let slo_before = get_json(&c.http_url("/api/v1/slo")).await?;
    let bad_before = slo_before["objectives"][1]["windows"][2]["bad"]
        .as_u64()
        .unwrap_or(0);
    assert!(bad_before > 0, "{slo_before}");
    let data_dir = c.data_dir.clone();
    s.collector.stop().await?;
    let config = s._dir.path().join("collector.toml");
    let c =
        TestCollector::start_with(&data_dir, &["-c", config.to_str().unwrap_or_default()]).await?;
    let inc = get_json(&c.http_url(&format!("/api/v1/incidents/{id}"))).await?;
    assert_eq!(inc["state"], "closed");
    assert_eq!(inc["root_cause"], "IdP certificate expired");
    assert_eq!(inc["timeline"].as_array().map(Vec::len), Some(3));
    let again_state = get_json(&c.http_url(&format!("/api/v1/incidents/{again}"))).await?;
    assert!(
        again_state["state"] == "open" || again_state["state"] == "resolved",
        "{again_state}"
    );
    let slo_after = eventually(
        Duration::from_secs(10),
        "the SLO evaluated after restart",
        || async {
            let v = get_json(&c.http_url("/api/v1/slo")).await.ok()?;
            v["evaluated_at"].is_string().then_some(v)
        },
    )
    .await?;
    assert_eq!(slo_after["objectives"][1]["name"], "authentication");
    assert!(
        slo_after["objectives"][1]["windows"][2]["bad"]
            .as_u64()
            .unwrap_or(0)
            >= bad_before
    );
    c.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_windows_through_the_api_suppress_escalation() -> Result<()> {
    let s = setup().await?;
    let c = &s.collector;
    let url = c.http_url("/api/v1/maintenance");
    let auth = "Bearer test-token-123";
    let start = rfc3339(unix_now() - 5);
    let body = format!(
        r#"{{"name":"idp-upgrade","start":"{start}","duration":"1h","reason":"IdP upgrade"}}"#
    );
    let (status, _) = http("POST", &url, &[], &body).await?;
    assert_eq!(status, 401);
    let (status, out) = http("POST", &url, &[("Authorization", auth)], &body).await?;
    assert_eq!(status, 201, "{out}");
    let (status, out) = http("POST", &url, &[("Authorization", auth)], &body).await?;
    assert_eq!(status, 409, "{out}");
    let (status, out) = http(
        "POST",
        &url,
        &[("Authorization", auth)],
        r#"{"name":"bad","start":"soon","duration":"1h"}"#,
    )
    .await?;
    assert_eq!(status, 400);
    assert!(out.contains("RFC 3339"), "{out}");
    let list = get_json(&url).await?;
    assert_eq!(list["windows"][0]["name"], "idp-upgrade");
    assert_eq!(list["windows"][0]["active"], true);

    // Login fails inside the window: the runs count as maintenance and
    // nothing is escalated.
    s.portal.faults().set_status("/portal/home", Some(503));
    let slo = c.http_url("/api/v1/slo");
    eventually(
        Duration::from_secs(30),
        "maintenance runs counted",
        || async {
            let v = get_json(&slo).await.ok()?;
            let auth = v["objectives"]
                .as_array()?
                .iter()
                .find(|o| o["name"] == "authentication")?;
            (auth["windows"][0]["maintenance"].as_u64()? >= 6).then_some(())
        },
    )
    .await?;
    let v = get_json(&slo).await?;
    let auth_obj = v["objectives"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["name"] == "authentication").cloned())
        .unwrap_or_default();
    assert_eq!(auth_obj["windows"][0]["bad"], 0);
    let incidents = get_json(&c.http_url("/api/v1/incidents")).await?;
    assert_eq!(
        incidents["incidents"].as_array().map(Vec::len),
        Some(0),
        "{incidents}"
    );

    // Window removed: the failure escalates.
    let (status, _) = http(
        "DELETE",
        &format!("{url}/idp-upgrade"),
        &[("Authorization", auth)],
        "",
    )
    .await?;
    assert_eq!(status, 200);
    open_incident(c, None).await?;

    for a in s.agents {
        a.stop().await?;
    }
    s.collector.stop().await?;
    Ok(())
}
