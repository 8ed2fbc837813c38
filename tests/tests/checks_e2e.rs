//! End to end with sessions: the real agent runs a login, a page that
//! names it and a slow report; the collector stores `<login>`,
//! `<login>.refresh`, the page's results (all `ok` across several token
//! lifetimes: the shared session is re-used, then renewed before it
//! expires) and the report's `pending` results before its final one.

use std::time::Duration;

use anyhow::Result;
use outpost_tests::harness::{eventually, TestAgent, TestCollector};
use outpost_tests::portal::Portal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_session_is_reused_renewed_and_results_reach_the_collector() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    // Access tokens live 3 s: pages running every second must renew.
    portal.faults().set_token_ttl(Duration::from_secs(3));
    portal
        .faults()
        .set_report_pending_for(Duration::from_millis(2500));
    let secret = dir.path().join("client-secret");
    let password = dir.path().join("password");
    std::fs::write(&secret, "outpost-secret\n")?;
    std::fs::write(&password, "alice-password\n")?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let cfg = format!(
        r#"
[agent]
id = "e2e-sessions"

[buffer]
path = "{buffer}"

[collector]
endpoints = ["{endpoint}"]
heartbeat = "1s"
backoff_initial = "100ms"
backoff_max = "1s"

[[check]]
name = "portal-login"
interval = "60s"
jitter = 0.0
module = "identity"
[check.login]
flow = "password"
issuer = "{base}"
client_id = "outpost"
client_secret_file = "{secret}"
username = "alice"
password_file = "{password}"

[[check]]
name = "app-home"
interval = "1s"
jitter = 0.0
module = "home"
login = "portal-login"
[check.page]
url = "{base}/app/home"
body_contains = ["Signed in as alice"]
login_url_marker = "/login"

[[check]]
name = "report"
interval = "30s"
timeout = "10s"
jitter = 0.0
module = "reports"
login = "portal-login"
[check.report]
url = "{base}/api/reports"
poll_interval = "250ms"
pending_every = "1s"
"#,
        buffer = dir.path().join("buffer").display(),
        endpoint = collector.endpoint(),
        base = portal.base_url(),
        secret = secret.display(),
        password = password.display(),
    );
    let agent = TestAgent::start(dir.path(), &cfg).await?;
    let stored = eventually(
        Duration::from_secs(60),
        "8 page results and a finished report at the collector",
        || async {
            let stored = collector.stored("e2e-sessions").await.ok()?;
            let pages = stored.iter().filter(|r| r["check"] == "app-home").count();
            let report_done = stored
                .iter()
                .any(|r| r["check"] == "report" && r["outcome"] != "pending");
            (pages >= 8 && report_done).then_some(stored)
        },
    )
    .await?;
    agent.stop().await?;

    let of = |check: &str| -> Vec<String> {
        stored
            .iter()
            .filter(|r| r["check"] == check)
            .map(|r| r["outcome"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(of("portal-login"), ["ok"]);
    assert_eq!(of("portal-login.refresh"), ["ok"]);
    let pages = of("app-home");
    assert!(pages.iter().all(|o| o == "ok"), "{pages:?}");
    // Re-used: far fewer token requests than page runs; renewed: more than
    // the login check's own two (tokens lived 3 s, the run took longer).
    let tokens = portal.hits("/oauth/token") as usize;
    assert!(
        tokens < pages.len(),
        "{tokens} token requests for {} pages",
        pages.len()
    );
    assert!(
        tokens >= 3,
        "the session was renewed ({tokens} token requests)"
    );
    assert_eq!(portal.hits("/login"), 0, "never sent to the login page");
    // The report: pending results (in sequence order) before the final.
    // (One per second of waiting: two, unless a slow machine skipped the
    // polls between 2.0 s and the ready time at 2.5 s.)
    let report = of("report");
    let (last, pending) = report.split_last().expect("report results");
    assert_eq!(last, "ok", "{report:?}");
    assert!((1..=2).contains(&pending.len()), "{report:?}");
    assert!(pending.iter().all(|o| o == "pending"), "{report:?}");
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}
