//! `[targets] ca_file`: an HTTPS target whose certificate comes from a
//! private CA is `ok` once the agent trusts that CA, `unreachable` (a TLS
//! handshake failure) without it; a bad `ca_file` is a config error that
//! names the line and exits 2.

use anyhow::Result;
use outpost_tests::portal::Portal;
use outpost_tests::probe::{config, probe};

fn page(url: &str) -> String {
    format!(
        "\n[[check]]\nname = \"private\"\ninterval = \"60s\"\ntimeout = \"5s\"\n[check.page]\nurl = \"{url}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_only_with_ca_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start_tls(30).await?;
    let ca = dir.path().join("private-ca.pem");
    std::fs::write(&ca, portal.ca_pem().unwrap_or_default())?;
    let url = portal.url("/portal/home");

    let without = probe(dir.path(), &config(dir.path(), &page(&url)), "private", &[]).await?;
    let r = without.last("private");
    assert_eq!(r.outcome, "unreachable", "{}", without.stdout);
    assert!(r.error.contains("tls handshake"), "{}", r.error);
    assert_eq!(without.code, Some(1));

    let targets = format!("\n[targets]\nca_file = \"{}\"\n", ca.display());
    let with = probe(
        dir.path(),
        &config(dir.path(), &(targets + &page(&url))),
        "private",
        &[],
    )
    .await?;
    let r = with.last("private");
    assert_eq!(r.outcome, "ok", "{}\n{}", with.stdout, with.stderr);
    assert_eq!(r.http_status, Some(200), "{}", with.stdout);
    assert_eq!(with.code, Some(0));
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_without_certificates_is_a_config_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("not-a-ca.pem");
    std::fs::write(&bad, "hello\n")?;
    let targets = format!("\n[targets]\nca_file = \"{}\"\n", bad.display());
    let text = config(dir.path(), &(targets + &page("https://127.0.0.1:9/")));
    let run = probe(dir.path(), &text, "private", &[]).await?;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    // `ca_file` is on line 11 of the generated config, its value at column 11.
    assert!(run.stderr.contains(":11:11"), "{}", run.stderr);
    assert!(
        run.stderr.contains("holds no certificate"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("PEM"), "{}", run.stderr);

    let missing = format!(
        "\n[targets]\nca_file = \"{}\"\n",
        dir.path().join("nope.pem").display()
    );
    let text = config(dir.path(), &(missing + &page("https://127.0.0.1:9/")));
    let run = probe(dir.path(), &text, "private", &[]).await?;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("cannot be read"), "{}", run.stderr);
    Ok(())
}
