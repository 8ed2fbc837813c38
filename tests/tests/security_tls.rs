//! Mutual TLS between agent and collector with the agent's identity bound
//! to its certificate; bearer tokens as the no-PKI alternative; revocation
//! by reload; certificate rotation without losing the buffer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use outpost_tests::harness::{eventually, run_bin, sample, TestAgent, TestCollector};

async fn pki(args: &[&str]) -> Result<()> {
    let out = run_bin("outpost-collector", args).await?;
    if out.code != Some(0) {
        bail!("pki {args:?} failed: {}", out.stderr);
    }
    Ok(())
}

fn collector_config(pki: &Path, extra: &str) -> String {
    format!(
        "[grpc]\ntls_cert = \"{p}/collector.pem\"\ntls_key = \"{p}/collector-key.pem\"\nclient_ca = \"{p}/ca.pem\"\n{extra}",
        p = pki.display()
    )
}

struct Site {
    dir: PathBuf,
}

impl Site {
    fn new(root: &Path, name: &str) -> Result<Site> {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(Site { dir })
    }

    /// An agent config with `id`, trusting `ca`, presenting cert/key (or a token file).
    fn config(
        &self,
        id: &str,
        endpoint: &str,
        ca: &Path,
        identity: Option<(&Path, &Path)>,
        token_file: Option<&Path>,
        health: &str,
    ) -> String {
        let mut tls = format!("ca = \"{}\"\n", ca.display());
        if let Some((cert, key)) = identity {
            tls.push_str(&format!(
                "cert = \"{}\"\nkey = \"{}\"\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some(t) = token_file {
            tls.push_str(&format!("token_file = \"{}\"\n", t.display()));
        }
        format!(
            "[agent]\nid = \"{id}\"\n[buffer]\npath = \"{}\"\n[collector]\nendpoints = [\"{endpoint}\"]\nbackoff_initial = \"100ms\"\nbackoff_max = \"500ms\"\n{tls}\n\
             [[check]]\nname = \"health\"\ninterval = \"1s\"\njitter = 0.0\n[check.page]\nurl = \"{health}\"\n",
            self.dir.join("buffer").display()
        )
    }
}

async fn stored(c: &TestCollector, id: &str) -> usize {
    c.stored_seqs(id).await.map(|s| s.len()).unwrap_or(0)
}

async fn rejected(c: &TestCollector, reason: &str) -> f64 {
    let m = c.metrics().await.unwrap_or_default();
    sample(&m, "outpost_ingest_rejected_total", &[("reason", reason)]).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_binds_identity_and_refuses_strangers() -> Result<()> {
    let root = tempfile::tempdir()?;
    let pki_dir = root.path().join("pki");
    let other_dir = root.path().join("other-pki");
    let p = |d: &Path| d.to_string_lossy().into_owned();
    pki(&["pki", "init", "--dir", &p(&pki_dir)]).await?;
    pki(&["pki", "issue-agent", "agent-a", "--dir", &p(&pki_dir)]).await?;
    pki(&[
        "pki",
        "issue-agent",
        "agent-old",
        "--dir",
        &p(&pki_dir),
        "--days",
        "-1",
    ])
    .await?;
    pki(&["pki", "init", "--dir", &p(&other_dir)]).await?;
    pki(&["pki", "issue-agent", "agent-x", "--dir", &p(&other_dir)]).await?;

    let cfg_path = root.path().join("collector.toml");
    std::fs::write(&cfg_path, collector_config(&pki_dir, ""))?;
    let collector =
        TestCollector::start_with(&root.path().join("store"), &["-c", &p(&cfg_path)]).await?;
    let endpoint = format!("https://{}", collector.grpc);
    let ca = pki_dir.join("ca.pem");
    let health = collector.http_url("/healthz");
    let cert = |dir: &Path, id: &str| {
        (
            dir.join(format!("agent-{id}.pem")),
            dir.join(format!("agent-{id}-key.pem")),
        )
    };

    // The right certificate for the right id: results arrive.
    let (a_cert, a_key) = cert(&pki_dir, "agent-a");
    let good = Site::new(root.path(), "good")?;
    let a = TestAgent::start(
        &good.dir,
        &good.config(
            "agent-a",
            &endpoint,
            &ca,
            Some((&a_cert, &a_key)),
            None,
            &health,
        ),
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "agent-a's results over mTLS",
        || async { (stored(&collector, "agent-a").await >= 2).then_some(()) },
    )
    .await?;

    // agent-a's certificate claiming to be agent-b: PERMISSION_DENIED, nothing stored.
    let liar = Site::new(root.path(), "liar")?;
    let b = TestAgent::start(
        &liar.dir,
        &liar.config(
            "agent-b",
            &endpoint,
            &ca,
            Some((&a_cert, &a_key)),
            None,
            &health,
        ),
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "identity mismatch refusal",
        || async { (rejected(&collector, "identity_mismatch").await >= 1.0).then_some(()) },
    )
    .await?;

    // A certificate from another CA: the handshake fails.
    let (x_cert, x_key) = cert(&other_dir, "agent-x");
    let stranger = Site::new(root.path(), "stranger")?;
    let x = TestAgent::start(
        &stranger.dir,
        &stranger.config(
            "agent-x",
            &endpoint,
            &ca,
            Some((&x_cert, &x_key)),
            None,
            &health,
        ),
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "foreign-CA handshake refusal",
        || async { (rejected(&collector, "tls_handshake").await >= 1.0).then_some(()) },
    )
    .await?;

    // An expired certificate: the handshake fails too.
    let before = rejected(&collector, "tls_handshake").await;
    let (o_cert, o_key) = cert(&pki_dir, "agent-old");
    let old = Site::new(root.path(), "old")?;
    let o = TestAgent::start(
        &old.dir,
        &old.config(
            "agent-old",
            &endpoint,
            &ca,
            Some((&o_cert, &o_key)),
            None,
            &health,
        ),
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "expired-certificate refusal",
        || async { (rejected(&collector, "tls_handshake").await > before + 1.0).then_some(()) },
    )
    .await?;

    // No certificate at all: refused.
    let anon = Site::new(root.path(), "anon")?;
    let n = TestAgent::start(
        &anon.dir,
        &anon.config("agent-n", &endpoint, &ca, None, None, &health),
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "certificate-less refusal",
        || async { (rejected(&collector, "tls_handshake").await > before + 2.0).then_some(()) },
    )
    .await?;

    for id in ["agent-b", "agent-x", "agent-old", "agent-n"] {
        assert_eq!(
            stored(&collector, id).await,
            0,
            "{id} must not get anything stored"
        );
    }
    for agent in [b, x, o, n] {
        agent.stop().await?;
    }

    // Rotation: a new CA and a new certificate for agent-a, the collector
    // reloads (SIGHUP) to trust only the new CA; the running agent re-reads
    // its files when it reconnects and keeps delivering, buffer intact.
    let new_dir = root.path().join("pki-2");
    pki(&["pki", "init", "--dir", &p(&new_dir)]).await?;
    pki(&["pki", "issue-agent", "agent-a", "--dir", &p(&new_dir)]).await?;
    std::fs::copy(new_dir.join("agent-agent-a.pem"), &a_cert)?;
    std::fs::copy(new_dir.join("agent-agent-a-key.pem"), &a_key)?;
    std::fs::copy(new_dir.join("collector.pem"), pki_dir.join("collector.pem"))?;
    std::fs::copy(
        new_dir.join("collector-key.pem"),
        pki_dir.join("collector-key.pem"),
    )?;
    // The agent must trust the new server certificate too.
    std::fs::copy(new_dir.join("ca.pem"), &ca)?;
    std::fs::write(&cfg_path, collector_config(&pki_dir, ""))?;
    collector.reload()?;
    // Existing connection keeps its session; force a reconnect by restarting
    // the collector on the same port (same store).
    let grpc = collector.grpc.clone();
    let store = collector.data_dir.clone();
    collector.stop().await?;
    let collector = TestCollector::start_on(&store, &grpc, &["-c", &p(&cfg_path)]).await?;
    let n0 = stored(&collector, "agent-a").await;
    eventually(
        Duration::from_secs(30),
        "agent-a delivering with its rotated certificate",
        || async { (stored(&collector, "agent-a").await >= n0 + 2).then_some(()) },
    )
    .await?;
    let metrics = collector.metrics().await?;
    assert_eq!(
        sample(
            &metrics,
            "outpost_agent_buffer_resets_total",
            &[("agent", "agent-a")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "outpost_agent_gap_results_total",
            &[("agent", "agent-a")]
        ),
        Some(0.0)
    );
    a.stop().await?;
    collector.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_revocation_by_reload() -> Result<()> {
    let root = tempfile::tempdir()?;
    let pki_dir = root.path().join("pki");
    let p = |d: &Path| d.to_string_lossy().into_owned();
    pki(&["pki", "init", "--dir", &p(&pki_dir)]).await?;
    // Server-side TLS only, tokens for identity.
    let token_c = root.path().join("token-c");
    let token_d = root.path().join("token-d");
    std::fs::write(&token_c, "s3cret-token-for-c\n")?;
    std::fs::write(&token_d, "s3cret-token-for-d\n")?;
    let hash = |t: &str| outpost_collector_hash(t);
    let auth = |allowed: &str| {
        format!(
            "[grpc]\ntls_cert = \"{p}/collector.pem\"\ntls_key = \"{p}/collector-key.pem\"\n[auth]\nallowed_agents = [{allowed}]\n\
             [[auth.tokens]]\nagent = \"agent-c\"\nsha256 = \"{}\"\n[[auth.tokens]]\nagent = \"agent-d\"\nsha256 = \"{}\"\n",
            hash("s3cret-token-for-c"),
            hash("s3cret-token-for-d"),
            p = pki_dir.display()
        )
    };
    let cfg_path = root.path().join("collector.toml");
    std::fs::write(&cfg_path, auth("\"agent-c\", \"agent-d\""))?;
    let collector =
        TestCollector::start_with(&root.path().join("store"), &["-c", &p(&cfg_path)]).await?;
    let endpoint = format!("https://{}", collector.grpc);
    let ca = pki_dir.join("ca.pem");
    let health = collector.http_url("/healthz");

    let c_site = Site::new(root.path(), "c")?;
    let c = TestAgent::start(
        &c_site.dir,
        &c_site.config("agent-c", &endpoint, &ca, None, Some(&token_c), &health),
    )
    .await?;
    let d_site = Site::new(root.path(), "d")?;
    let d = TestAgent::start(
        &d_site.dir,
        &d_site.config("agent-d", &endpoint, &ca, None, Some(&token_d), &health),
    )
    .await?;
    // agent-e presents agent-c's token: refused.
    let e_site = Site::new(root.path(), "e")?;
    let e = TestAgent::start(
        &e_site.dir,
        &e_site.config("agent-e", &endpoint, &ca, None, Some(&token_c), &health),
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "c and d delivering, e refused",
        || async {
            (stored(&collector, "agent-c").await >= 2
                && stored(&collector, "agent-d").await >= 2
                && rejected(&collector, "bad_token").await >= 1.0)
                .then_some(())
        },
    )
    .await?;
    assert_eq!(stored(&collector, "agent-e").await, 0);

    // Revoke agent-d by removing it from the allow-list and reloading.
    std::fs::write(&cfg_path, auth("\"agent-c\""))?;
    collector.reload()?;
    eventually(
        Duration::from_secs(30),
        "agent-d cut off after reload",
        || async {
            let m = collector.metrics().await.ok()?;
            let revoked = sample(
                &m,
                "outpost_ingest_rejected_total",
                &[("reason", "agent_revoked")],
            )
            .unwrap_or(0.0)
                + sample(
                    &m,
                    "outpost_ingest_rejected_total",
                    &[("reason", "agent_not_allowed")],
                )
                .unwrap_or(0.0);
            (revoked >= 1.0).then_some(())
        },
    )
    .await?;
    // From now on agent-d's count stays put while agent-c's grows.
    let d_frozen = stored(&collector, "agent-d").await;
    let c_now = stored(&collector, "agent-c").await;
    eventually(
        Duration::from_secs(30),
        "agent-c still delivering",
        || async { (stored(&collector, "agent-c").await >= c_now + 3).then_some(()) },
    )
    .await?;
    assert_eq!(
        stored(&collector, "agent-d").await,
        d_frozen,
        "a revoked agent got results stored"
    );

    // An invalid config on reload keeps the old one in force.
    std::fs::write(&cfg_path, "[auth]\nallowed_agents = [\"bad id!\"]\n")?;
    collector.reload()?;
    let c_now = stored(&collector, "agent-c").await;
    eventually(
        Duration::from_secs(30),
        "agent-c still delivering after a bad reload",
        || async { (stored(&collector, "agent-c").await >= c_now + 2).then_some(()) },
    )
    .await?;

    for a in [c, d, e] {
        a.stop().await?;
    }
    collector.stop().await?;
    Ok(())
}

/// SHA-256 hex of a token, as `outpost-collector hash-token` prints it
/// (computed here independently of the collector's code).
fn outpost_collector_hash(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn plaintext_collector_off_loopback_is_refused_unless_allowed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[grpc]\nlisten = \"0.0.0.0:7400\"\n")?;
    let out = run_bin(
        "outpost-collector",
        &["check-config", "-c", &cfg.to_string_lossy()],
    )
    .await?;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("allow_insecure"), "{}", out.stderr);
    std::fs::write(
        &cfg,
        "[grpc]\nlisten = \"0.0.0.0:7400\"\nallow_insecure = true\n",
    )?;
    let out = run_bin(
        "outpost-collector",
        &["check-config", "-c", &cfg.to_string_lossy()],
    )
    .await?;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    Ok(())
}
