//! The login check against a real OpenID provider (node-oidc-provider
//! from npm, `tests/oidc/provider.mjs`) on 127.0.0.1, through
//! `outpost-agent probe`: discovery, authorization code + PKCE through the
//! provider's own login and consent pages, code exchange, RS256 ID token
//! verified against its JWKS, refresh, and the session used on its
//! userinfo endpoint. A wrong password is `failed`.

use anyhow::Result;
use outpost_tests::oidc::{OidcProvider, REDIRECT_URI};
use outpost_tests::portal::Portal;
use outpost_tests::probe::{config, probe};

const SECRETS: &[(&str, &str)] = &[
    ("OUTPOST_T_SECRET", "outpost-secret"),
    ("OUTPOST_T_PASSWORD", "alice-password"),
    ("OUTPOST_T_WRONG", "not-the-password"),
];

fn checks(issuer: &str, password_env: &str, extra: &str) -> String {
    format!(
        r#"
[[check]]
name = "idp-login"
interval = "60s"
timeout = "15s"
module = "identity"
[check.login]
flow = "authorization_code"
issuer = "{issuer}"
client_id = "outpost"
client_secret_env = "OUTPOST_T_SECRET"
username = "alice"
password_env = "{password_env}"
scope = "openid profile"
redirect_uri = "{REDIRECT_URI}"
{extra}

[[check]]
name = "idp-userinfo"
interval = "60s"
login = "idp-login"
[check.page]
url = "{issuer}/me"
body_contains = ['"sub":"alice"']
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_logs_in_refreshes_and_uses_the_session_at_a_real_provider() -> Result<()> {
    let provider = OidcProvider::start().await?;
    let dir = tempfile::tempdir()?;
    let cfg = config(
        dir.path(),
        &checks(&provider.issuer, "OUTPOST_T_PASSWORD", ""),
    );

    let run = probe(dir.path(), &cfg, "idp-userinfo", SECRETS).await?;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let login = run.last("idp-login");
    assert_eq!(login.outcome, "ok", "{}", run.stdout);
    assert_eq!(login.kind, "login");
    assert_eq!(
        run.last("idp-login.refresh").outcome,
        "ok",
        "{}",
        run.stdout
    );
    assert_eq!(run.last("idp-userinfo").outcome, "ok", "{}", run.stdout);
    assert!(run
        .stdout
        .contains("session:      login idp-login (live session held"));
    for (_, secret) in SECRETS {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    }

    // The login check alone: two results, exit 0.
    let run = probe(dir.path(), &cfg, "idp-login", SECRETS).await?;
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.results.len(), 2, "{}", run.stdout);
    provider.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_at_a_real_provider_is_failed() -> Result<()> {
    let provider = OidcProvider::start().await?;
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), &checks(&provider.issuer, "OUTPOST_T_WRONG", ""));
    let run = probe(dir.path(), &cfg, "idp-login", SECRETS).await?;
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let login = run.last("idp-login");
    assert_eq!(login.outcome, "failed", "{}", run.stdout);
    assert!(login.error.contains("login form again"), "{}", login.error);
    assert!(run.of("idp-login.refresh").is_empty());
    // The page that needs the login fails with the login's reason.
    let run = probe(dir.path(), &cfg, "idp-userinfo", SECRETS).await?;
    assert_eq!(run.last("idp-userinfo").outcome, "failed");
    provider.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_token_signature_is_checked_against_the_jwks() -> Result<()> {
    let provider = OidcProvider::start().await?;
    let portal = Portal::start().await?;
    let dir = tempfile::tempdir()?;
    // A JWKS without the provider's key: the RS256 signature cannot verify.
    let extra = format!("jwks_url = \"{}\"", portal.url("/jwks"));
    let cfg = config(
        dir.path(),
        &checks(&provider.issuer, "OUTPOST_T_PASSWORD", &extra),
    );
    let run = probe(dir.path(), &cfg, "idp-login", SECRETS).await?;
    let login = run.last("idp-login");
    assert_eq!(login.outcome, "failed", "{}", run.stdout);
    assert!(login.error.contains("no RSA key"), "{}", login.error);
    assert_eq!(portal.hits("/jwks"), 1);
    // With verification off the same login passes.
    let cfg = cfg.replace(&extra, &format!("{extra}\nverify_signature = false"));
    let run = probe(dir.path(), &cfg, "idp-login", SECRETS).await?;
    assert_eq!(run.last("idp-login").outcome, "ok", "{}", run.stdout);
    portal.shutdown().await;
    provider.stop().await?;
    Ok(())
}
