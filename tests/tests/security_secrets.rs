//! Secrets never leak, and the buffer is encrypted at rest.
//!
//! Planted secrets (a bearer token, a wrong token, the buffer key) must not
//! appear in any output: agent and collector logs at debug level, /metrics,
//! the status page, the JSON API, `outpost-agent probe` and `buffer`
//! output, or the buffer's files on disk. A buffer sealed with one key and
//! read with another yields counted drops, never plaintext or garbage.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use outpost_tests::harness::{
    buffer_report, eventually, http_get, run_bin, sample, TestAgent, TestCollector,
};

const TOKEN: &str = "PLANTED-token-7f3a9c1e2b";
const WRONG_TOKEN: &str = "PLANTED-wrong-0d9e8c7b6a";
const KEY_HEX: &str = "5b1e0c7a9d2f4e6a8c0b1d3f5a7c9e0b2d4f6a8c0e1b3d5f7a9c0e2b4d6f8a0c";
const MARKER: &str = "PLAINTEXT-MARKER-in-check-labels";
/// The simulated portal's real credentials (a working login) and a wrong,
/// planted password (a failing one): neither may appear anywhere.
const PORTAL_PASSWORD: &str = "alice-password";
const PORTAL_CLIENT_SECRET: &str = "outpost-secret";
const WRONG_PASSWORD: &str = "PLANTED-password-5e1d2c";

fn hash(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn files_contain(dir: &Path, needle: &[u8]) -> Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if files_contain(&path, needle)? {
                return Ok(true);
            }
        } else if std::fs::read(&path)?
            .windows(needle.len())
            .any(|w| w == needle)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_appear_in_no_output_and_the_buffer_is_sealed() -> Result<()> {
    std::env::set_var("OUTPOST_LOG", "debug");
    let root = tempfile::tempdir()?;
    let p = |d: &Path| d.to_string_lossy().into_owned();
    let pki_dir = root.path().join("pki");
    let out = run_bin("outpost-collector", &["pki", "init", "--dir", &p(&pki_dir)]).await?;
    if out.code != Some(0) {
        bail!("pki init: {}", out.stderr);
    }
    let cfg = root.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[grpc]\ntls_cert = \"{d}/collector.pem\"\ntls_key = \"{d}/collector-key.pem\"\n[[auth.tokens]]\nagent = \"sealed\"\nsha256 = \"{}\"\n[[auth.tokens]]\nagent = \"wrong\"\nsha256 = \"{}\"\n",
            hash(TOKEN),
            hash("the-right-one-for-wrong"),
            d = pki_dir.display()
        ),
    )?;
    let collector =
        TestCollector::start_with(&root.path().join("store"), &["-c", &p(&cfg)]).await?;

    let key_file = root.path().join("buffer.key");
    std::fs::write(&key_file, KEY_HEX)?;
    let portal = outpost_tests::portal::Portal::start().await?;
    let secret_file = |name: &str, value: &str| -> Result<String> {
        let path = root.path().join(name);
        std::fs::write(&path, value)?;
        Ok(path.to_string_lossy().into_owned())
    };
    let (good_pw, wrong_pw, client_secret) = (
        secret_file("pw-good", PORTAL_PASSWORD)?,
        secret_file("pw-wrong", WRONG_PASSWORD)?,
        secret_file("client-secret", PORTAL_CLIENT_SECRET)?,
    );
    let login = |name: &str, pw: &str| {
        format!(
            "\n[[check]]\nname = \"{name}\"\ninterval = \"1s\"\njitter = 0.0\n[check.login]\nflow = \"password\"\ntoken_url = \"{}\"\nclient_id = \"outpost\"\nclient_secret_file = \"{client_secret}\"\nusername = \"alice\"\npassword_file = \"{pw}\"\n",
            portal.url("/oauth/token")
        )
    };
    let logins = format!(
        "{}{}\n[[check]]\nname = \"app-home\"\ninterval = \"1s\"\njitter = 0.0\nlogin = \"portal-login\"\n[check.page]\nurl = \"{}\"\n",
        login("portal-login", &good_pw),
        login("wrong-login", &wrong_pw),
        portal.url("/app/home")
    );
    let (grpc_addr, health) = (collector.grpc.clone(), collector.http_url("/healthz"));
    let agent_cfg = |id: &str, token_file: &Path, key: &Path, buffer: &Path| {
        format!(
            "[agent]\nid = \"{id}\"\n[buffer]\npath = \"{}\"\nencryption_key_file = \"{}\"\n[collector]\nendpoints = [\"https://{}\"]\nca = \"{}\"\ntoken_file = \"{}\"\nbackoff_initial = \"100ms\"\nbackoff_max = \"500ms\"\nheartbeat = \"1s\"\n\
             [[check]]\nname = \"health\"\ninterval = \"1s\"\njitter = 0.0\nlabels = {{ note = \"{MARKER}\" }}\n[check.page]\nurl = \"{}\"\n{logins}",
            buffer.display(),
            key.display(),
            grpc_addr,
            pki_dir.join("ca.pem").display(),
            token_file.display(),
            health
        )
    };

    // A good agent with an encrypted buffer and a token.
    let good_dir = root.path().join("good");
    std::fs::create_dir_all(&good_dir)?;
    let token_file = root.path().join("token");
    std::fs::write(&token_file, TOKEN)?;
    let good = TestAgent::start(
        &good_dir,
        &agent_cfg("sealed", &token_file, &key_file, &good_dir.join("buffer")),
    )
    .await?;
    // An agent presenting a wrong token: refused, and its token is not logged.
    let wrong_dir = root.path().join("wrong");
    std::fs::create_dir_all(&wrong_dir)?;
    let wrong_token = root.path().join("wrong-token");
    std::fs::write(&wrong_token, WRONG_TOKEN)?;
    let wrong = TestAgent::start(
        &wrong_dir,
        &agent_cfg("wrong", &wrong_token, &key_file, &wrong_dir.join("buffer")),
    )
    .await?;

    eventually(
        Duration::from_secs(30),
        "sealed agent delivering and wrong token refused",
        || async {
            let m = collector.metrics().await.ok()?;
            let stored = collector.stored_seqs("sealed").await.ok()?.len();
            (stored >= 3
                && sample(
                    &m,
                    "outpost_ingest_rejected_total",
                    &[("reason", "bad_token")],
                )
                .unwrap_or(0.0)
                    >= 1.0)
                .then_some(())
        },
    )
    .await?;
    wrong.stop().await?;

    // Stop the collector so results pile up in the sealed buffer.
    let grpc = collector.grpc.clone();
    let store = collector.data_dir.clone();
    let collector_logs = collector.logs.clone();
    let mut outputs = vec![
        collector.metrics().await?,
        http_get(&collector.http_url("/")).await?.1,
        http_get(&collector.http_url("/api/v1/agents")).await?.1,
        http_get(&collector.http_url("/api/v1/results?agent=sealed"))
            .await?
            .1,
        http_get(&collector.http_url("/api/v1/results?agent=wrong"))
            .await?
            .1,
    ];
    let runs = |logs: &outpost_tests::harness::Logs| {
        logs.lock()
            .map(|l| l.matches("check ran").count())
            .unwrap_or(0)
    };
    let ran_before = runs(&good.logs);
    collector.stop().await?;
    let good_cfg = good.config.clone();
    eventually(
        Duration::from_secs(30),
        "3 more runs while the collector is away",
        || async { (runs(&good.logs) >= ran_before + 3).then_some(()) },
    )
    .await?;
    let good_logs = good.logs.clone();
    good.stop().await?;

    // The buffer's files hold no plaintext of the results.
    assert!(
        !files_contain(&good_dir.join("buffer"), MARKER.as_bytes())?,
        "a result label is readable in the sealed buffer"
    );
    assert!(
        !files_contain(&good_dir.join("buffer"), b"/healthz")?,
        "the check URL is readable in the sealed buffer"
    );

    // Reading it with the wrong key: nothing is delivered, every entry is counted as dropped.
    let pending = buffer_report(&good_cfg).await?.entries;
    assert!(pending >= 3);
    let bad_key = root.path().join("bad.key");
    std::fs::write(&bad_key, "00".repeat(32))?;
    let collector = TestCollector::start_on(&store, &grpc, &["-c", &p(&cfg)]).await?;
    let before = collector.stored_seqs("sealed").await?.len();
    let rekeyed_dir = root.path().join("rekeyed");
    std::fs::create_dir_all(&rekeyed_dir)?;
    let rekeyed_cfg = agent_cfg("sealed", &token_file, &bad_key, &good_dir.join("buffer"))
        .replace("[[check]]", "[[nocheck]]");
    let rekeyed_cfg = rekeyed_cfg
        .split("[[nocheck]]")
        .next()
        .unwrap_or_default()
        .to_string();
    let rekeyed = TestAgent::start(&rekeyed_dir, &rekeyed_cfg).await?;
    eventually(
        Duration::from_secs(30),
        "undecryptable entries counted as dropped at the collector",
        || async {
            let m = collector.metrics().await.ok()?;
            let dropped = sample(
                &m,
                "outpost_agent_dropped_total",
                &[("agent", "sealed"), ("reason", "corrupt")],
            )?;
            (dropped >= pending as f64).then_some(())
        },
    )
    .await?;
    assert_eq!(
        collector.stored_seqs("sealed").await?.len(),
        before,
        "a record opened with the wrong key was delivered"
    );
    let rekeyed_logs = rekeyed.logs.clone();
    rekeyed.stop().await?;

    // `probe` and `buffer` outputs.
    let probe = run_bin("outpost-agent", &["probe", "health", "-c", &p(&good_cfg)]).await?;
    outputs.push(probe.stdout + &probe.stderr);
    let buf = run_bin("outpost-agent", &["buffer", "-c", &p(&good_cfg)]).await?;
    outputs.push(buf.stdout + &buf.stderr);
    outputs.push(collector.metrics().await?);
    collector.stop().await?;

    for (name, text) in [
        (
            "collector log",
            collector_logs.lock().map(|l| l.clone()).unwrap_or_default(),
        ),
        (
            "agent log",
            good_logs.lock().map(|l| l.clone()).unwrap_or_default(),
        ),
        (
            "rekeyed agent log",
            rekeyed_logs.lock().map(|l| l.clone()).unwrap_or_default(),
        ),
    ]
    .into_iter()
    .chain(outputs.into_iter().enumerate().map(|(i, t)| {
        (
            [
                "metrics",
                "status page",
                "agents api",
                "results api",
                "results api (wrong)",
                "probe",
                "buffer",
                "metrics after",
            ][i.min(7)],
            t,
        )
    })) {
        assert!(
            !text.is_empty() || name.contains("api (wrong)"),
            "{name} is empty: the test would prove nothing"
        );
        for secret in [
            TOKEN,
            WRONG_TOKEN,
            KEY_HEX,
            &hash(TOKEN),
            PORTAL_PASSWORD,
            PORTAL_CLIENT_SECRET,
            WRONG_PASSWORD,
        ] {
            assert!(!text.contains(secret), "{name} contains a planted secret");
        }
    }
    Ok(())
}
