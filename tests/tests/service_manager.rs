//! The binaries as systemd runs them (issue #8), with the real binaries:
//!
//! * `Type=notify`: each tells a `$NOTIFY_SOCKET` listener `READY=1` only
//!   once its buffer or store is open, pings `WATCHDOG=1` at half of
//!   `$WATCHDOG_USEC`, and says `STOPPING=1` on SIGTERM.
//! * `ExecReload=` (SIGHUP): the agent re-reads its config; a valid one
//!   replaces the checks while the buffer (sequence numbers continue) and
//!   the collector stream (one stream in total) are kept; an invalid one is
//!   logged with file:line:column and the previous checks keep running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use outpost_tests::harness::{bin, eventually, metric_value, TestCollector};
use outpost_tests::portal::Portal;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixDatagram;
use tokio::process::{Child, Command};

/// A process started with a notify socket, its stderr captured.
struct Service {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Service {
    fn spawn(mut cmd: Command, notify: &Path, watchdog_usec: &str) -> Result<Service> {
        let mut child = cmd
            .env("NOTIFY_SOCKET", notify)
            .env("WATCHDOG_USEC", watchdog_usec)
            .env("OUTPOST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("spawn")?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        tokio::spawn(async move {
            let mut reader = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let mut l = lines.lock().unwrap_or_else(|p| p.into_inner());
                if l.len() < 10_000 {
                    l.push(line);
                }
            }
        });
        Ok(Service { child, stderr })
    }

    fn signal(&self, sig: &str) -> Result<()> {
        let pid = self.child.id().ok_or_else(|| anyhow!("already exited"))?;
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()?
            .success();
        if !ok {
            bail!("kill -{sig} {pid} failed");
        }
        Ok(())
    }

    fn log_contains(&self, needle: &str) -> bool {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|l| l.contains(needle))
    }

    fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    async fn stop(mut self) -> Result<std::process::ExitStatus> {
        self.signal("TERM")?;
        Ok(tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await??)
    }
}

/// The next datagram on the notify socket, within 10 s.
async fn next_message(sock: &UnixDatagram) -> Result<String> {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
        .await
        .context("no notification within 10s")??;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Reads messages until one satisfies `pred` (at most 200 messages).
async fn wait_message(sock: &UnixDatagram, pred: impl Fn(&str) -> bool) -> Result<String> {
    for _ in 0..200 {
        let m = next_message(sock).await?;
        if pred(&m) {
            return Ok(m);
        }
    }
    bail!("no matching notification in 200 messages")
}

fn agent_config(buffer: &Path, endpoint: &str, checks: &str) -> String {
    format!(
        r#"
[agent]
id = "sm-agent"

[buffer]
path = "{}"

[collector]
endpoints = ["{endpoint}"]
heartbeat = "1s"
backoff_initial = "100ms"
backoff_max = "1s"
{checks}
"#,
        buffer.display()
    )
}

fn check(name: &str, url: &str) -> String {
    format!(
        r#"
[[check]]
name = "{name}"
interval = "1s"
jitter = 0.0
[check.page]
url = "{url}"
"#
    )
}

fn agent_command(config: &Path) -> Result<Command> {
    let mut cmd = Command::new(bin("outpost-agent")?);
    cmd.arg("run").arg("-c").arg(config);
    Ok(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_is_ready_after_its_buffer_opened_pings_the_watchdog_and_says_stopping() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let notify_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path)?;
    let buffer = dir.path().join("buffer");
    let config = dir.path().join("agent.toml");
    // No collector listens there: readiness must not wait for the network.
    std::fs::write(
        &config,
        agent_config(
            &buffer,
            "http://127.0.0.1:9",
            &check("c", "http://127.0.0.1:9/"),
        ),
    )?;

    // 200 ms watchdog: pings every 100 ms.
    let agent = Service::spawn(agent_command(&config)?, &notify_path, "200000")?;
    let first = next_message(&sock).await?;
    assert!(
        first.starts_with("READY=1\n"),
        "first message must be READY=1, got {first:?}"
    );
    assert!(first.contains("STATUS=probing 1 checks"), "{first:?}");
    assert!(
        buffer.exists(),
        "READY=1 came before the buffer at {} was opened",
        buffer.display()
    );

    let t0 = tokio::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(
            wait_message(&sock, |m| m == "WATCHDOG=1").await?,
            "WATCHDOG=1"
        );
    }
    // Three pings at 100 ms need ~200-300 ms; a loose upper bound shows
    // they are periodic and not a one-off.
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    agent.signal("TERM")?;
    let stopping = wait_message(&sock, |m| m.starts_with("STOPPING=1")).await?;
    assert!(stopping.contains("STATUS=stopping"), "{stopping:?}");
    let status = agent.stop_after_signal().await?;
    assert!(status.success(), "agent exited with {status}");
    Ok(())
}

impl Service {
    /// Waits for exit after a signal was already sent.
    async fn stop_after_signal(mut self) -> Result<std::process::ExitStatus> {
        Ok(tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await??)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_is_ready_after_its_store_opened_and_says_stopping() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let notify_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path)?;
    let store = dir.path().join("store");
    let mut cmd = Command::new(bin("outpost-collector")?);
    cmd.args([
        "--grpc-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(&store);
    let collector = Service::spawn(cmd, &notify_path, "400000")?;
    let first = next_message(&sock).await?;
    assert!(first.starts_with("READY=1\n"), "{first:?}");
    assert!(store.exists(), "READY=1 before the store was opened");
    wait_message(&sock, |m| m == "WATCHDOG=1").await?;
    collector.signal("TERM")?;
    wait_message(&sock, |m| m.starts_with("STOPPING=1")).await?;
    let status = collector.stop_after_signal().await?;
    assert!(status.success(), "collector exited with {status}");
    Ok(())
}

/// Stored results of `agent` as (seq, check) pairs.
async fn stored(collector: &TestCollector, agent: &str) -> Result<Vec<(u64, String)>> {
    Ok(collector
        .stored(agent)
        .await?
        .iter()
        .filter_map(|r| Some((r["seq"].as_u64()?, r["check"].as_str()?.to_string())))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_checks_keeps_buffer_and_stream_and_refuses_a_bad_config() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let buffer: PathBuf = dir.path().join("buffer");
    let config = dir.path().join("agent.toml");
    let endpoint = collector.endpoint();
    std::fs::write(
        &config,
        agent_config(
            &buffer,
            &endpoint,
            &check("alpha", &portal.url("/portal/home")),
        ),
    )?;
    let notify_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path)?;
    let agent = Service::spawn(agent_command(&config)?, &notify_path, "")?;
    next_message(&sock).await?; // READY=1

    let has = |rs: &[(u64, String)], name: &str, n: usize| {
        rs.iter().filter(|(_, c)| c == name).count() >= n
    };
    eventually(Duration::from_secs(20), "alpha results stored", || async {
        let rs = stored(&collector, "sm-agent").await.ok()?;
        has(&rs, "alpha", 2).then_some(())
    })
    .await?;

    // Valid new config: beta replaces alpha.
    std::fs::write(
        &config,
        agent_config(
            &buffer,
            &endpoint,
            &check("beta", &portal.url("/portal/home")),
        ),
    )?;
    agent.signal("HUP")?;
    let rs = eventually(Duration::from_secs(20), "beta results stored", || async {
        let rs = stored(&collector, "sm-agent").await.ok()?;
        has(&rs, "beta", 3).then_some(rs)
    })
    .await?;
    let last_alpha = rs
        .iter()
        .filter(|(_, c)| c == "alpha")
        .map(|(s, _)| *s)
        .max();
    let first_beta = rs
        .iter()
        .filter(|(_, c)| c == "beta")
        .map(|(s, _)| *s)
        .min();
    assert!(
        last_alpha < first_beta,
        "alpha ran after beta started: {rs:?}"
    );
    assert!(
        agent.log_contains("config reloaded"),
        "no reload log:\n{}",
        agent.log()
    );

    // Invalid config: refused with file:line:column, beta keeps running.
    std::fs::write(&config, "[agent]\nid = \"sm-agent\"\nbogus = 1\n")?;
    agent.signal("HUP")?;
    eventually(
        Duration::from_secs(10),
        "the refused reload in the log",
        || async { agent.log_contains("reload refused").then_some(()) },
    )
    .await?;
    let line = agent.log();
    let where_ = format!("{}:", config.display());
    assert!(line.contains(&where_), "error must name the file:\n{line}");
    let beta_before = rs.iter().filter(|(_, c)| c == "beta").count();
    eventually(
        Duration::from_secs(20),
        "beta still running after the bad reload",
        || async {
            let rs = stored(&collector, "sm-agent").await.ok()?;
            has(&rs, "beta", beta_before + 3).then_some(())
        },
    )
    .await?;

    // Buffer kept: one contiguous run of sequence numbers, no reset, no
    // gap. Stream kept: the collector accepted exactly one stream.
    let rs = stored(&collector, "sm-agent").await?;
    let seqs: Vec<u64> = rs.iter().map(|(s, _)| *s).collect();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0] + 1, "gap or reset in sequences: {seqs:?}");
    }
    let metrics = collector.metrics().await?;
    assert_eq!(
        metric_value(&metrics, "outpost_ingest_streams_total"),
        Some(1.0),
        "the reload reconnected:\n{metrics}"
    );

    let status = agent.stop().await?;
    assert!(status.success(), "agent exited with {status}");
    collector.stop().await?;
    Ok(())
}
