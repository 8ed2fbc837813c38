//! The `login` kind and shared sessions against the simulated portal, via
//! `outpost-agent probe` (the real binary): every grant, the OIDC form
//! login (with consent), refresh, sessions used by pages, and the
//! outcomes `ok`, `access_denied`, `failed` and `unreachable`.

use anyhow::Result;
use outpost_tests::portal::{Portal, CLIENT_ID};
use outpost_tests::probe::{config, probe};

const SECRETS: &[(&str, &str)] = &[
    ("OUTPOST_T_SECRET", "outpost-secret"),
    ("OUTPOST_T_ALICE", "alice-password"),
    ("OUTPOST_T_BOB", "bob-password"),
];

fn login(name: &str, flow: &str, portal: &Portal, user: &str, extra: &str) -> String {
    let pw = if user == "bob" {
        "OUTPOST_T_BOB"
    } else {
        "OUTPOST_T_ALICE"
    };
    format!(
        r#"
[[check]]
name = "{name}"
interval = "60s"
timeout = "10s"
module = "identity"
[check.login]
flow = "{flow}"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_env = "OUTPOST_T_SECRET"
username = "{user}"
password_env = "{pw}"
redirect_uri = "http://127.0.0.1/outpost/callback"
{extra}
"#,
        issuer = portal.base_url(),
    )
}

fn app_page(name: &str, login: &str, portal: &Portal, module: &str) -> String {
    format!(
        r#"
[[check]]
name = "{name}"
interval = "60s"
timeout = "10s"
module = "{module}"
login = "{login}"
[check.page]
url = "{url}"
body_contains = ["Signed in as"]
login_url_marker = "/login"
"#,
        url = portal.url(&format!("/app/{module}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_form_login_with_consent_then_refresh_then_pages_use_the_session() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    portal.faults().set_consent_required(true);
    let checks = login(
        "portal-login",
        "authorization_code",
        &portal,
        "alice",
        "scope = \"openid profile\"",
    ) + &app_page("app-devices", "portal-login", &portal, "devices");
    let cfg = config(dir.path(), &checks);

    let run = probe(dir.path(), &cfg, "app-devices", SECRETS).await?;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.last("portal-login").outcome, "ok", "{}", run.stdout);
    assert_eq!(
        run.last("portal-login.refresh").outcome,
        "ok",
        "{}",
        run.stdout
    );
    assert_eq!(run.last("app-devices").outcome, "ok", "{}", run.stdout);
    assert!(run.stdout.contains("live session held"), "{}", run.stdout);
    // The form was really used: the login page, the consent page and the
    // token endpoint (code exchange + refresh) were hit.
    assert!(portal.hits("/login") >= 2, "GET and POST /login");
    assert!(portal.hits("/consent") >= 2, "GET and POST /consent");
    assert_eq!(portal.hits("/oauth/token"), 2, "code exchange and refresh");
    // Secrets never reach the output.
    for (_, secret) in SECRETS {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    }
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_client_credentials_grants() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let checks = login("pw-login", "password", &portal, "alice", "")
        + &login("cc-login", "client_credentials", &portal, "alice", "").replace(
            "username = \"alice\"\npassword_env = \"OUTPOST_T_ALICE\"\n",
            "",
        )
        + &app_page("app-home", "cc-login", &portal, "home");
    let cfg = config(dir.path(), &checks);

    let pw = probe(dir.path(), &cfg, "pw-login", SECRETS).await?;
    assert_eq!(pw.code, Some(0), "{}", pw.stdout);
    assert_eq!(pw.results.len(), 2, "login and refresh: {}", pw.stdout);
    assert_eq!(pw.last("pw-login.refresh").outcome, "ok");

    // Client credentials: no refresh result; the service account's token
    // opens the page.
    let cc = probe(dir.path(), &cfg, "app-home", SECRETS).await?;
    assert_eq!(cc.code, Some(0), "{}", cc.stdout);
    assert!(cc.of("cc-login.refresh").is_empty(), "{}", cc.stdout);
    assert_eq!(cc.last("app-home").outcome, "ok");
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_user_is_access_denied_not_failed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    portal.faults().set_forbidden_user("bob");
    let checks = login("bob-login", "password", &portal, "bob", "")
        + &app_page("app-alerts", "bob-login", &portal, "alerts");
    let run = probe(
        dir.path(),
        &config(dir.path(), &checks),
        "app-alerts",
        SECRETS,
    )
    .await?;
    assert_eq!(run.code, Some(1));
    assert_eq!(run.last("bob-login").outcome, "ok", "{}", run.stdout);
    let page = run.last("app-alerts");
    assert_eq!(page.outcome, "access_denied", "{}", run.stdout);
    assert_eq!(page.http_status, Some(403));
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_failed_for_both_password_and_form_login() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    portal.faults().set_wrong_password_always(true);
    let checks = login("pw-login", "password", &portal, "alice", "").replace(
        "module = \"identity\"",
        "module = \"identity\"\nconfirm_failures = true",
    ) + &login("form-login", "authorization_code", &portal, "alice", "")
        + &app_page("app-home", "form-login", &portal, "home");
    let cfg = config(dir.path(), &checks);

    let pw = probe(dir.path(), &cfg, "pw-login", SECRETS).await?;
    assert_eq!(pw.code, Some(1));
    // Confirmed: the failed login ran once more at once; both are kept.
    let runs = pw.of("pw-login");
    assert_eq!(runs.len(), 2, "{}", pw.stdout);
    assert!(runs.iter().all(|r| r.outcome == "failed"));
    assert!(
        pw.stdout.contains("failed (confirmation run)"),
        "{}",
        pw.stdout
    );
    assert!(
        pw.last("pw-login").error.contains("invalid_grant"),
        "{}",
        pw.stdout
    );
    assert!(
        pw.of("pw-login.refresh").is_empty(),
        "no refresh after a failed login"
    );

    // A page whose login fails reports the login's failure.
    let form = probe(dir.path(), &cfg, "app-home", SECRETS).await?;
    assert_eq!(form.code, Some(1));
    assert_eq!(form.last("form-login").outcome, "failed");
    assert!(
        form.last("form-login").error.contains("login form again"),
        "{}",
        form.stdout
    );
    let page = form.last("app-home");
    assert_eq!(page.outcome, "failed");
    assert!(page.error.contains("form-login"), "{}", form.stdout);
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_provider_and_missing_secret() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // A port that was free a moment ago: nothing listens there.
    let free = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let checks = format!(
        r#"
[[check]]
name = "down"
interval = "60s"
timeout = "5s"
[check.login]
flow = "password"
token_url = "http://{free}/oauth/token"
client_id = "outpost"
username = "alice"
password_env = "OUTPOST_T_ALICE"

[[check]]
name = "nosecret"
interval = "60s"
[check.login]
flow = "password"
token_url = "http://{free}/oauth/token"
client_id = "outpost"
username = "alice"
password_file = "{}"
"#,
        dir.path().join("no-such-file").display()
    );
    let cfg = config(dir.path(), &checks);
    let run = probe(dir.path(), &cfg, "down", SECRETS).await?;
    assert_eq!(run.code, Some(1));
    assert_eq!(run.last("down").outcome, "unreachable", "{}", run.stdout);
    let run = probe(dir.path(), &cfg, "nosecret", SECRETS).await?;
    assert_eq!(run.last("nosecret").outcome, "failed");
    assert!(
        run.last("nosecret")
            .error
            .contains("cannot read secret file"),
        "{}",
        run.stdout
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_systemd_credentials_too() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let creds = dir.path().join("creds");
    std::fs::create_dir_all(&creds)?;
    std::fs::write(creds.join("portal-password"), "alice-password\n")?;
    std::fs::write(creds.join("portal-client"), "outpost-secret")?;
    let checks = format!(
        r#"
[[check]]
name = "cred-login"
interval = "60s"
[check.login]
flow = "password"
token_url = "{}"
client_id = "outpost"
client_secret_credential = "portal-client"
client_auth = "post"
username = "alice"
password_credential = "portal-password"
"#,
        portal.url("/oauth/token")
    );
    let creds_dir = creds.to_string_lossy().into_owned();
    let run = probe(
        dir.path(),
        &config(dir.path(), &checks),
        "cred-login",
        &[("CREDENTIALS_DIRECTORY", creds_dir.as_str())],
    )
    .await?;
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.last("cred-login.refresh").outcome, "ok");
    portal.shutdown().await;
    Ok(())
}
