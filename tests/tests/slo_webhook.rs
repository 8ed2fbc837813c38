//! Signed JSON webhooks: incident events arrive with a valid HMAC-SHA256
//! signature over `timestamp.body`, a failed delivery is retried, and a
//! receiver that is down never blocks ingest (its losses are counted).

mod slo_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use outpost_tests::harness::{eventually, sample, TestAgent, TestCollector};
use outpost_tests::portal::Portal;
use slo_support::{agent_config, free_port, login_check, write};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request the receiver got: lower-case headers and body.
#[derive(Debug, Clone)]
struct Got {
    headers: Vec<(String, String)>,
    body: String,
}

impl Got {
    fn header(&self, k: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == k)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A loopback HTTP receiver answering `fail_first` requests with 503,
/// then 200. Stops with the test's runtime.
async fn receiver(
    fail_first: usize,
) -> Result<(String, Arc<Mutex<Vec<Got>>>, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let seen = got.clone();
    let task = tokio::spawn(async move {
        let mut n = 0usize;
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let (head, mut body) = loop {
                let Ok(k) = s.read(&mut chunk).await else {
                    break (String::new(), Vec::new());
                };
                if k == 0 {
                    break (String::new(), Vec::new());
                }
                buf.extend_from_slice(&chunk[..k]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break (
                        String::from_utf8_lossy(&buf[..i]).into_owned(),
                        buf[i + 4..].to_vec(),
                    );
                }
                if buf.len() > 1 << 20 {
                    break (String::new(), Vec::new());
                }
            };
            let headers: Vec<(String, String)> = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0)
                .min(1 << 20);
            while body.len() < len {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => body.extend_from_slice(&chunk[..k]),
                }
            }
            n += 1;
            let status = if n <= fail_first {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            if n > fail_first {
                seen.lock().unwrap_or_else(|p| p.into_inner()).push(Got {
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
            }
            let _ = s
                .write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
        }
    });
    Ok((url, got, task))
}

fn verify(secret: &str, g: &Got) -> bool {
    let Some(hex) = g.header("x-outpost-signature").strip_prefix("sha256=") else {
        return false;
    };
    let Ok(tag) = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let msg = format!("{}.{}", g.header("x-outpost-timestamp"), g.body);
    ring::hmac::verify(&key, msg.as_bytes(), &tag).is_ok()
}

async fn agents(
    dir: &std::path::Path,
    c: &TestCollector,
    portal: &Portal,
) -> Result<Vec<TestAgent>> {
    let mut out = Vec::new();
    for site in ["site-a", "site-b"] {
        let d = dir.join(site);
        std::fs::create_dir_all(&d)?;
        let cfg = agent_config(
            &format!("{site}-agent"),
            site,
            &d.join("buffer"),
            &c.endpoint(),
            &login_check(&portal.url("/portal/home")),
        );
        out.push(TestAgent::start(&d, &cfg).await?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_events_are_signed_and_retried() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let (url, got, server) = receiver(1).await?;
    let secret = write(dir.path(), "hook.secret", "webhook-secret-xyz\n")?;
    let config = write(
        dir.path(),
        "collector.toml",
        &format!(
            "[slo]\nevaluate_every = \"200ms\"\n\n[[webhook]]\nname = \"ops\"\nurl = \"{url}\"\nsecret_file = \"{}\"\n\n[[contact]]\nname = \"Identity desk\"\nrole = \"operations\"\nemail = \"idp-ops@example.org\"\nobjectives = [\"authentication\"]\n",
            secret.display()
        ),
    )?;
    let c = TestCollector::start_with(
        &dir.path().join("store"),
        &["-c", config.to_str().unwrap_or_default()],
    )
    .await?;
    let agents = agents(dir.path(), &c, &portal).await?;
    portal.faults().set_status("/portal/home", Some(503));
    let opened = eventually(
        Duration::from_secs(30),
        "incident_opened delivered",
        || async {
            let g = got.lock().unwrap_or_else(|p| p.into_inner()).clone();
            g.into_iter().find(|g| {
                let v: serde_json::Value = serde_json::from_str(&g.body).unwrap_or_default();
                v["event"] == "incident_opened" && v["incident"]["rule"] == "auth_failing_broadly"
            })
        },
    )
    .await?;
    assert!(verify("webhook-secret-xyz", &opened), "{opened:?}");
    assert!(!verify("another-secret", &opened));
    let v: serde_json::Value = serde_json::from_str(&opened.body)?;
    assert_eq!(v["incident"]["severity"], "critical");
    assert_eq!(v["incident"]["contacts"][0]["name"], "Identity desk", "{v}");
    assert_eq!(v["incident"]["contacts"][0]["email"], "idp-ops@example.org");
    assert_eq!(opened.header("content-type"), "application/json");
    // The first post was answered 503 and retried.
    let m = eventually(Duration::from_secs(10), "the delivery counted", || async {
        let m = c.metrics().await.ok()?;
        (sample(&m, "outpost_notify_sent_total", &[("receiver", "ops")])? >= 1.0).then_some(m)
    })
    .await?;
    assert!(
        sample(
            &m,
            "outpost_notify_failed_attempts_total",
            &[("receiver", "ops")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(!m.contains("webhook-secret-xyz"));
    for a in agents {
        a.stop().await?;
    }
    c.stop().await?;
    server.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_that_are_down_never_block_ingest() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let secret = write(dir.path(), "hook.secret", "s")?;
    let dead = free_port()?;
    let config = write(
        dir.path(),
        "collector.toml",
        &format!(
            "[slo]\nevaluate_every = \"200ms\"\n\n[[alertmanager]]\nname = \"am-down\"\nurl = \"http://127.0.0.1:{dead}\"\nresend = \"500ms\"\ntimeout = \"200ms\"\n\n[[webhook]]\nname = \"hook-down\"\nurl = \"http://127.0.0.1:{dead}/x\"\nsecret_file = \"{}\"\nmax_attempts = 2\nqueue = 1\ntimeout = \"200ms\"\n",
            secret.display()
        ),
    )?;
    let c = TestCollector::start_with(
        &dir.path().join("store"),
        &["-c", config.to_str().unwrap_or_default()],
    )
    .await?;
    let agents = agents(dir.path(), &c, &portal).await?;
    portal.faults().set_status("/portal/home", Some(503));
    // Escalations happen (events to deliver), receivers fail, and results
    // keep flowing in.
    let m = eventually(
        Duration::from_secs(40),
        "failed posts, dropped events and 20 stored results",
        || async {
            let m = c.metrics().await.ok()?;
            let am_failed = sample(
                &m,
                "outpost_notify_failed_attempts_total",
                &[("receiver", "am-down")],
            )?;
            let hook_dropped = sample(
                &m,
                "outpost_notify_dropped_total",
                &[("receiver", "hook-down")],
            )?;
            let stored = sample(&m, "outpost_ingest_results_total", &[])?;
            (am_failed >= 2.0 && hook_dropped >= 1.0 && stored >= 20.0).then_some(m)
        },
    )
    .await?;
    assert_eq!(
        sample(&m, "outpost_notify_sent_total", &[("receiver", "am-down")]),
        Some(0.0)
    );
    let inc = slo_support::get_json(&c.http_url("/api/v1/incidents?state=open")).await?;
    assert!(inc["incidents"].as_array().is_some_and(|a| !a.is_empty()));
    for a in agents {
        a.stop().await?;
    }
    let status = c.stop().await?;
    assert!(status.success(), "collector exit {status}");
    Ok(())
}
