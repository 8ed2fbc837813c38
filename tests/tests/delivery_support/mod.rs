//! Shared pieces of the delivery tests (`delivery_*.rs`): agent configs,
//! an agent process whose log the test can read (and that may run in a
//! network namespace), the buffer report, and the exact accounting.
//!
//! The accounting trick: after the agent under test stops, its buffer
//! says exactly what was produced (`origin..next_seq`) and what it
//! dropped; an agent with no checks on the same buffer drains the rest
//! straight to the collector; the collector must then hold exactly the
//! produced sequences minus the announced drops.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use outpost_tests::chaos::netns::NetnsPair;
use outpost_tests::harness::{bin, eventually, run_bin, sample, TestCollector};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// An agent config. `collector_extra` lands in `[collector]`,
/// `buffer_extra` in `[buffer]`.
pub fn agent_config(
    id: &str,
    buffer: &Path,
    endpoints: &[String],
    buffer_extra: &str,
    collector_extra: &str,
    checks: &str,
) -> String {
    let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    format!(
        r#"
[agent]
id = "{id}"
labels = {{ site = "delivery-test" }}

[buffer]
path = "{}"
{buffer_extra}

[collector]
endpoints = [{}]
heartbeat = "1s"
backoff_initial = "50ms"
backoff_max = "500ms"
keepalive = "1s"
{collector_extra}
{checks}
"#,
        buffer.display(),
        eps.join(", ")
    )
}

/// `n` page checks every second against `url` (results fast, from real
/// checks).
pub fn checks(n: usize, url: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                r#"
[[check]]
name = "probe-{i}"
interval = "1s"
timeout = "1s"
jitter = 1.0
module = "m{}"
[check.page]
url = "{url}"
"#,
                i % 3
            )
        })
        .collect()
}

/// A running agent whose stderr is kept (last 5000 lines).
pub struct AgentProc {
    child: Child,
    pub pid: u32,
    pub config: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl AgentProc {
    /// Writes `text` to `dir/agent.toml` and starts the agent on it.
    pub async fn start(dir: &Path, text: &str) -> Result<AgentProc> {
        let config = dir.join("agent.toml");
        std::fs::write(&config, text)?;
        Self::spawn(Command::new(bin("outpost-agent")?), &config)
    }

    /// As [`AgentProc::start`], inside a network namespace.
    pub async fn start_in(ns: &NetnsPair, dir: &Path, text: &str) -> Result<AgentProc> {
        let config = dir.join("agent.toml");
        std::fs::write(&config, text)?;
        Self::spawn(ns.command(&bin("outpost-agent")?), &config)
    }

    /// Starts the agent on an existing config.
    pub fn start_with_config(config: &Path) -> Result<AgentProc> {
        Self::spawn(Command::new(bin("outpost-agent")?), config)
    }

    fn spawn(mut cmd: Command, config: &Path) -> Result<AgentProc> {
        let mut child = cmd
            .arg("-c")
            .arg(config)
            .env("OUTPOST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("spawn outpost-agent")?;
        let pid = child.id().ok_or_else(|| anyhow!("no pid"))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let verbose = std::env::var_os("OUTPOST_TEST_LOGS").is_some();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if verbose {
                    eprintln!("[agent {pid}] {line}");
                }
                let mut l = sink.lock().unwrap_or_else(|p| p.into_inner());
                if l.len() >= 5000 {
                    l.remove(0);
                }
                l.push(line);
            }
        });
        Ok(AgentProc {
            child,
            pid,
            config: config.to_path_buf(),
            log,
        })
    }

    /// Whether any log line so far contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|l| l.contains(text))
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn signal(&self, sig: &str) -> Result<()> {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.pid.to_string()])
            .status()?
            .success();
        if !ok {
            bail!("kill -{sig} {} failed", self.pid);
        }
        Ok(())
    }

    /// SIGTERM and wait.
    pub async fn stop(mut self) -> Result<std::process::ExitStatus> {
        self.signal("TERM")?;
        Ok(
            tokio::time::timeout(Duration::from_secs(30), self.child.wait())
                .await
                .context("agent did not stop within 30s")??,
        )
    }

    /// kill -9 and reap.
    pub async fn kill9(mut self) -> Result<()> {
        self.signal("KILL")?;
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .context("agent did not die")??;
        Ok(())
    }
}

/// Everything `outpost-agent buffer` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub entries: u64,
    pub next_seq: u64,
    pub origin_seq: u64,
    pub dropped_through: u64,
    pub buffer_full: u64,
    pub write_error: u64,
    pub corrupt: u64,
    /// The running agent whose status file this is (None: read directly).
    pub status_pid: Option<u32>,
}

impl Report {
    pub fn produced(&self) -> u64 {
        self.next_seq - self.origin_seq
    }

    pub fn dropped(&self) -> u64 {
        self.buffer_full + self.write_error + self.corrupt
    }
}

/// Parses the `outpost-agent buffer` text.
pub fn parse_report(text: &str) -> Result<Report> {
    let num = |key: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("no {key:?} in:\n{text}"))
    };
    Ok(Report {
        entries: num("entries:")?,
        next_seq: num("next seq:")?,
        origin_seq: num("origin seq:")?,
        dropped_through: num("dropped through:")?,
        buffer_full: num("dropped buffer_full")?,
        write_error: num("dropped write_error")?,
        corrupt: num("dropped corrupt")?,
        status_pid: text
            .lines()
            .find_map(|l| l.strip_prefix("source:"))
            .and_then(|l| l.split("(pid ").nth(1))
            .and_then(|l| l.split(')').next())
            .and_then(|p| p.parse().ok()),
    })
}

/// Runs `outpost-agent buffer -c CONFIG`: (report, full stdout).
pub async fn buffer_command(config: &Path) -> Result<(Report, String)> {
    let cfg = config.to_string_lossy().into_owned();
    let out = run_bin("outpost-agent", &["buffer", "-c", &cfg]).await?;
    if out.code != Some(0) {
        bail!("outpost-agent buffer failed: {}", out.stderr);
    }
    Ok((parse_report(&out.stdout)?, out.stdout))
}

/// A per-agent metric at the collector.
pub async fn agent_metric(c: &TestCollector, name: &str, agent: &str) -> Option<f64> {
    sample(&c.metrics().await.ok()?, name, &[("agent", agent)])
}

/// `outpost_agent_dropped_total{agent, reason}` at the collector.
pub async fn dropped_metric(c: &TestCollector, agent: &str, reason: &str) -> Option<f64> {
    sample(
        &c.metrics().await.ok()?,
        "outpost_agent_dropped_total",
        &[("agent", agent), ("reason", reason)],
    )
}

/// How many results the collector holds for `agent` (its counter).
pub async fn stored_count(c: &TestCollector, agent: &str) -> u64 {
    agent_metric(c, "outpost_agent_results_stored_total", agent)
        .await
        .unwrap_or(0.0) as u64
}

/// Waits until the collector holds more than `than` results of `agent`.
pub async fn wait_stored_above(
    c: &TestCollector,
    agent: &str,
    than: u64,
    within: Duration,
) -> Result<u64> {
    eventually(
        within,
        &format!("{agent}: more than {than} results at the collector"),
        || async {
            let n = stored_count(c, agent).await;
            (n > than).then_some(n)
        },
    )
    .await
}

/// The outcome of [`drain_and_account`].
#[derive(Debug)]
pub struct Accounting {
    /// The buffer after the agent under test stopped.
    pub report: Report,
    /// Sequences the collector holds, ascending.
    pub stored: Vec<u64>,
}

/// After the agent under test has stopped: reads its buffer, drains it
/// with a no-checks agent straight to `collector`, and returns what was
/// produced and what the collector holds.
pub async fn drain_and_account(
    collector: &TestCollector,
    id: &str,
    config: &Path,
    buffer: &Path,
    work: &Path,
) -> Result<Accounting> {
    let (report, _) = buffer_command(config).await?;
    let drain_dir = work.join(format!("drain-{id}"));
    std::fs::create_dir_all(&drain_dir)?;
    let cfg = agent_config(
        id,
        buffer,
        &[collector.endpoint()],
        "",
        "allow_insecure = true",
        "",
    );
    let drainer = AgentProc::start(&drain_dir, &cfg).await?;
    let expected = report.produced() - report.dropped();
    let stored = eventually(
        Duration::from_secs(60),
        &format!("{id}: the drain delivers the {expected} results not dropped"),
        || async {
            let seqs = collector.stored_seqs(id).await.ok()?;
            (seqs.len() as u64 >= expected).then_some(seqs)
        },
    )
    .await;
    let drained_report = eventually(
        Duration::from_secs(30),
        "the drained buffer is empty",
        || async {
            let (r, _) = buffer_command(&drain_dir.join("agent.toml")).await.ok()?;
            (r.entries == 0 && r.status_pid == Some(drainer.pid)).then_some(r)
        },
    )
    .await;
    drainer.stop().await?;
    let stored = stored?;
    let drained_report = drained_report?;
    assert_eq!(
        drained_report.next_seq, report.next_seq,
        "the drainer produced nothing"
    );
    Ok(Accounting { report, stored })
}

/// Asserts the collector holds exactly the produced sequences minus the
/// announced drops, and that its counters agree.
pub async fn assert_exact(collector: &TestCollector, id: &str, acc: &Accounting) -> Result<()> {
    let r = &acc.report;
    let expected: Vec<u64> = (r.origin_seq..r.next_seq).collect();
    let stored = &acc.stored;
    assert!(
        stored.windows(2).all(|w| w[0] < w[1]),
        "{id}: stored sequences must be strictly ascending (no duplicates)"
    );
    assert!(
        stored
            .iter()
            .all(|s| (r.origin_seq..r.next_seq).contains(s)),
        "{id}: a stored sequence was never produced"
    );
    let missing = expected.len() - stored.len();
    assert_eq!(
        missing as u64,
        r.dropped(),
        "{id}: produced {} (seq {}..{}), stored {}, agent dropped {} — missing must equal dropped",
        expected.len(),
        r.origin_seq,
        r.next_seq,
        stored.len(),
        r.dropped()
    );
    if r.dropped() == 0 {
        assert_eq!(stored, &expected, "{id}: exactly the produced sequences");
    }
    let m = |name: &'static str| async move {
        agent_metric(collector, name, id)
            .await
            .ok_or_else(|| anyhow!("no {name} for {id}"))
    };
    assert_eq!(
        m("outpost_agent_results_stored_total").await? as u64,
        stored.len() as u64,
        "{id}: the stored counter counts each result once"
    );
    assert_eq!(
        m("outpost_agent_gap_results_total").await? as u64,
        r.dropped(),
        "{id}: the collector's announced gaps equal the agent's drops"
    );
    assert_eq!(
        m("outpost_agent_lost_results_total").await?,
        0.0,
        "{id}: nothing lost"
    );
    Ok(())
}
