//! Hostile targets (the portal's fault switches): huge body, slowloris,
//! redirect loop, invalid TLS, invalid JSON, a login page whose form has
//! no password field. Each gives a classified result with a short error,
//! within the check's timeout (bodies are read up to their bound only).

use std::time::Duration;

use anyhow::Result;
use outpost_tests::portal::Portal;
use outpost_tests::probe::{config, probe, ProbeRun};

fn page(name: &str, url: &str, timeout: &str) -> String {
    format!(
        "\n[[check]]\nname = \"{name}\"\ninterval = \"60s\"\ntimeout = \"{timeout}\"\n[check.page]\nurl = \"{url}\"\n"
    )
}

/// The one result of `name`: its outcome, and an error that is short.
fn verdict<'a>(run: &'a ProbeRun, name: &str) -> (&'a str, &'a str) {
    let r = run.last(name);
    assert!(
        !r.error.is_empty() && r.error.len() <= 256,
        "{}",
        run.stdout
    );
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    (r.outcome.as_str(), r.error.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_body_slowloris_and_redirect_loop() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    portal.faults().set_huge_body("/portal/home", true);
    portal.faults().set_slowloris("/portal/devices", true);
    portal.faults().set_redirect_loop("/portal/alerts", true);
    let checks = page("huge", &portal.url("/portal/home"), "10s")
        + &page("slowloris", &portal.url("/portal/devices"), "2s")
        + &page("loop", &portal.url("/portal/alerts"), "10s");
    let cfg = config(dir.path(), &checks);

    let run = probe(dir.path(), &cfg, "huge", &[]).await?;
    let (outcome, error) = verdict(&run, "huge");
    assert_eq!(outcome, "failed");
    assert!(error.contains("larger than 1048576"), "{error}");

    let run = probe(dir.path(), &cfg, "slowloris", &[]).await?;
    let (outcome, error) = verdict(&run, "slowloris");
    assert_eq!(outcome, "timeout", "{error}");
    assert!(error.contains("body"), "{error}");
    assert!(
        run.elapsed < Duration::from_secs(6),
        "cut at the 2 s timeout: {:?}",
        run.elapsed
    );

    let run = probe(dir.path(), &cfg, "loop", &[]).await?;
    let (outcome, error) = verdict(&run, "loop");
    assert_eq!(outcome, "failed");
    assert!(error.contains("more than 5 redirects"), "{error}");
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tls_is_unreachable() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // A certificate from a CA the agent does not trust.
    let portal = Portal::start_tls(30).await?;
    let cfg = config(dir.path(), &page("tls", &portal.url("/portal/home"), "5s"));
    let run = probe(dir.path(), &cfg, "tls", &[]).await?;
    let (outcome, error) = verdict(&run, "tls");
    assert_eq!(outcome, "unreachable");
    assert!(error.contains("tls handshake"), "{error}");
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_is_failed_for_json_kinds() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    portal
        .faults()
        .set_invalid_json("/api/telemetry/devices", true);
    portal.faults().set_invalid_json("/api/devices/*", true);
    let checks = format!(
        r#"
[[check]]
name = "telemetry"
interval = "60s"
[check.freshness]
url = "{}"
array = "/devices"
element = "/last_seen"
max_age = "60s"

[[check]]
name = "cmd"
interval = "60s"
[check.command]
url = "{}"
body = '{{"command": "reboot"}}'
"#,
        portal.url("/api/telemetry/devices"),
        portal.url("/api/devices/dev-1/commands"),
    );
    let cfg = config(dir.path(), &checks);
    for name in ["telemetry", "cmd"] {
        let run = probe(dir.path(), &cfg, name, &[]).await?;
        let (outcome, error) = verdict(&run, name);
        assert_eq!(outcome, "failed");
        assert!(error.contains("invalid JSON"), "{error}");
    }
    portal.shutdown().await;
    Ok(())
}

fn form_login(portal: &Portal, timeout: &str) -> String {
    format!(
        r#"
[[check]]
name = "form-login"
interval = "60s"
timeout = "{timeout}"
[check.login]
flow = "authorization_code"
issuer = "{}"
client_id = "outpost"
client_secret_env = "OUTPOST_T_SECRET"
username = "alice"
password_env = "OUTPOST_T_ALICE"
redirect_uri = "http://127.0.0.1/outpost/callback"
"#,
        portal.base_url()
    )
}

const SECRETS: &[(&str, &str)] = &[
    ("OUTPOST_T_SECRET", "outpost-secret"),
    ("OUTPOST_T_ALICE", "alice-password"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_pages_without_password_field_loops_and_stalls() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let cfg = config(dir.path(), &form_login(&portal, "3s"));

    portal.faults().set_login_without_password(true);
    let run = probe(dir.path(), &cfg, "form-login", SECRETS).await?;
    let (outcome, error) = verdict(&run, "form-login");
    assert_eq!(outcome, "failed");
    assert!(
        error.contains("no login form with a password field"),
        "{error}"
    );
    portal.faults().set_login_without_password(false);

    portal.faults().set_redirect_loop("/authorize", true);
    let run = probe(dir.path(), &cfg, "form-login", SECRETS).await?;
    let (outcome, error) = verdict(&run, "form-login");
    assert_eq!(outcome, "failed");
    assert!(
        error.contains("no redirect to redirect_uri within 12 steps"),
        "{error}"
    );
    portal.faults().clear_path("/authorize");

    // The login page trickles one byte per second: cut at the timeout.
    portal.faults().set_slowloris("/login", true);
    let run = probe(dir.path(), &cfg, "form-login", SECRETS).await?;
    let (outcome, error) = verdict(&run, "form-login");
    assert_eq!(outcome, "timeout", "{error}");
    assert!(run.elapsed < Duration::from_secs(7), "{:?}", run.elapsed);
    portal.faults().clear_path("/login");

    portal
        .faults()
        .set_huge_body("/.well-known/openid-configuration", true);
    let run = probe(dir.path(), &cfg, "form-login", SECRETS).await?;
    let (outcome, error) = verdict(&run, "form-login");
    assert_eq!(outcome, "failed");
    assert!(
        error.contains("discovery") && error.contains("larger than"),
        "{error}"
    );
    portal.shutdown().await;
    Ok(())
}
