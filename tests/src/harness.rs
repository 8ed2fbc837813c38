//! Process harness for integration tests and the demo: starts the real
//! `outpost-collector` and `outpost-agent` binaries on 127.0.0.1 with
//! throwaway directories, reads where they listen, stops them by signal
//! (or kill -9), and waits on conditions with deadlines — never a bare
//! sleep.
//!
//! Binaries come from `OUTPOST_BIN_DIR`, else from the workspace's
//! `target/debug` (or `target/release` for the demo). `scripts/test`
//! builds them before the tests run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// Where the binaries under test are.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("OUTPOST_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // Next to the running test executable: target/<profile>/deps/.. .
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            if dir.join("outpost-agent").exists() && dir.join("outpost-collector").exists() {
                return dir.to_path_buf();
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug")
}

/// Path of one binary; fails with the command that builds it.
pub fn bin(name: &str) -> Result<PathBuf> {
    let p = bin_dir().join(name);
    if !p.exists() {
        bail!(
            "{} not found; build it first: cargo build --workspace --bins (scripts/test does this)",
            p.display()
        );
    }
    Ok(p)
}

/// Polls `probe` every 50 ms until it yields `Some`, or fails after
/// `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One HTTP/1.1 request over loopback with a method, headers and a body:
/// (status, body). Bounded to 16 MiB and 10 s.
pub async fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// urls: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(authority),
    )
    .await
    .context("connect timed out")??;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        (&mut stream).take(16 << 20).read_to_end(&mut buf),
    )
    .await
    .context("read timed out")??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no header end"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A minimal HTTP/1.1 GET over loopback: (status, body).
pub async fn http_get(url: &str) -> Result<(u16, String)> {
    http_request("GET", url, &[], "").await
}

/// Sends `signal` (e.g. "TERM", "KILL") to a child.
fn signal(child: &Child, sig: &str) -> Result<()> {
    let pid = child
        .id()
        .ok_or_else(|| anyhow!("process already reaped"))?;
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()?;
    if !status.success() {
        bail!("kill -{sig} {pid} failed");
    }
    Ok(())
}

/// Waits for a child to exit after a signal, bounded.
async fn wait_exit(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus> {
    tokio::time::timeout(timeout, child.wait())
        .await
        .map_err(|_| anyhow!("process did not exit within {timeout:?}"))?
        .map_err(Into::into)
}

/// A running collector.
pub struct TestCollector {
    child: Child,
    pub grpc: String,
    pub http: String,
    pub data_dir: PathBuf,
    /// Everything the collector wrote to stderr.
    pub logs: Logs,
    _stderr: tokio::task::JoinHandle<()>,
}

impl TestCollector {
    /// Starts a collector on free loopback ports with its store in `data_dir`.
    pub async fn start(data_dir: &Path) -> Result<TestCollector> {
        Self::start_with(data_dir, &[]).await
    }

    /// As [`TestCollector::start`], with extra arguments.
    pub async fn start_with(data_dir: &Path, extra: &[&str]) -> Result<TestCollector> {
        Self::start_on(data_dir, "127.0.0.1:0", extra).await
    }

    /// Starts on a given gRPC address (to restart on the same port).
    pub async fn start_on(data_dir: &Path, grpc: &str, extra: &[&str]) -> Result<TestCollector> {
        Self::spawn(data_dir, grpc, "127.0.0.1:0", extra).await
    }

    /// Starts on given gRPC and HTTP addresses.
    pub async fn spawn(
        data_dir: &Path,
        grpc: &str,
        http: &str,
        extra: &[&str],
    ) -> Result<TestCollector> {
        let mut child = Command::new(bin("outpost-collector")?)
            .args(["--grpc-listen", grpc, "--http-listen", http, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env(
                "OUTPOST_LOG",
                std::env::var("OUTPOST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("spawn outpost-collector")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let logs = Logs::default();
        let stderr_task = tokio::spawn(forward("collector", stderr, logs.clone()));
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .context("collector did not report its addresses within 20s")??
            .ok_or_else(|| anyhow!("collector exited before listening"))?;
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(str::to_string)
                .ok_or_else(|| anyhow!("no {key} in {line:?}"))
        };
        let (grpc, http) = (field("grpc=")?, field("http=")?);
        Ok(TestCollector {
            child,
            grpc,
            http,
            data_dir: data_dir.to_path_buf(),
            logs,
            _stderr: stderr_task,
        })
    }

    /// `http://ADDR` of the HTTP side.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// The gRPC endpoint for an agent config.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Stored sequence numbers of `agent`, all pages.
    pub async fn stored_seqs(&self, agent: &str) -> Result<Vec<u64>> {
        Ok(self
            .stored(agent)
            .await?
            .iter()
            .filter_map(|r| r["seq"].as_u64())
            .collect())
    }

    /// Stored results of `agent` as JSON, all pages.
    pub async fn stored(&self, agent: &str) -> Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        let mut after = 0u64;
        loop {
            let (status, body) = http_get(&self.http_url(&format!(
                "/api/v1/results?agent={agent}&after={after}&limit=10000"
            )))
            .await?;
            if status != 200 {
                bail!("results API answered {status}: {body}");
            }
            let v: serde_json::Value = serde_json::from_str(&body)?;
            let page = v["results"].as_array().cloned().unwrap_or_default();
            let Some(last) = page.last().and_then(|r| r["seq"].as_u64()) else {
                break;
            };
            after = last;
            out.extend(page);
        }
        Ok(out)
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        let (status, body) = http_get(&self.http_url("/metrics")).await?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        Ok(body)
    }

    /// SIGTERM and wait (graceful).
    pub async fn stop(mut self) -> Result<std::process::ExitStatus> {
        signal(&self.child, "TERM")?;
        wait_exit(&mut self.child, Duration::from_secs(20)).await
    }

    /// kill -9 and reap.
    pub async fn kill9(mut self) -> Result<()> {
        signal(&self.child, "KILL")?;
        wait_exit(&mut self.child, Duration::from_secs(10)).await?;
        Ok(())
    }

    /// SIGHUP: reload the configuration.
    pub fn reload(&self) -> Result<()> {
        signal(&self.child, "HUP")
    }
}

/// Value of the sample whose line starts with `prefix` (name and labels).
pub fn metric_value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Value of the first sample of `name` whose labels include every pair
/// in `labels`.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Captured stderr of a child (the last 8 MiB at most).
pub type Logs = std::sync::Arc<std::sync::Mutex<String>>;
const MAX_LOG_BYTES: usize = 8 << 20;

async fn forward(name: &'static str, stream: impl tokio::io::AsyncRead + Unpin, logs: Logs) {
    let mut lines = BufReader::new(stream).lines();
    let verbose = std::env::var_os("OUTPOST_TEST_LOGS").is_some();
    while let Ok(Some(line)) = lines.next_line().await {
        if verbose {
            eprintln!("[{name}] {line}");
        }
        let mut l = logs.lock().unwrap_or_else(|p| p.into_inner());
        if l.len() + line.len() < MAX_LOG_BYTES {
            l.push_str(&line);
            l.push('\n');
        }
    }
}

/// A running agent with its own config file and buffer directory.
pub struct TestAgent {
    child: Child,
    pub config: PathBuf,
    /// Everything the agent wrote to stderr.
    pub logs: Logs,
    _stderr: tokio::task::JoinHandle<()>,
}

impl TestAgent {
    /// Writes `config_text` to `dir/agent.toml` and starts the agent.
    pub async fn start(dir: &Path, config_text: &str) -> Result<TestAgent> {
        let config = dir.join("agent.toml");
        tokio::fs::write(&config, config_text).await?;
        Self::start_with_config(&config).await
    }

    /// Starts the agent on an existing config file.
    pub async fn start_with_config(config: &Path) -> Result<TestAgent> {
        let mut child = Command::new(bin("outpost-agent")?)
            .arg("-c")
            .arg(config)
            .env(
                "OUTPOST_LOG",
                std::env::var("OUTPOST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("spawn outpost-agent")?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let logs = Logs::default();
        Ok(TestAgent {
            child,
            config: config.to_path_buf(),
            logs: logs.clone(),
            _stderr: tokio::spawn(forward("agent", stderr, logs)),
        })
    }

    /// SIGTERM and wait (graceful).
    pub async fn stop(mut self) -> Result<std::process::ExitStatus> {
        signal(&self.child, "TERM")?;
        wait_exit(&mut self.child, Duration::from_secs(20)).await
    }

    /// kill -9 and reap.
    pub async fn kill9(mut self) -> Result<()> {
        signal(&self.child, "KILL")?;
        wait_exit(&mut self.child, Duration::from_secs(10)).await?;
        Ok(())
    }
}

/// Output of a finished command.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs one of the binaries to completion (bounded to 60 s).
pub async fn run_bin(name: &str, args: &[&str]) -> Result<Output> {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(bin(name)?)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("command did not finish within 60s")??;
    Ok(Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Buffer figures printed by `outpost-agent buffer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferReport {
    pub entries: u64,
    pub next_seq: u64,
    pub origin_seq: u64,
    pub dropped_buffer_full: u64,
}

/// Runs `outpost-agent buffer -c CONFIG` and parses it.
pub async fn buffer_report(config: &Path) -> Result<BufferReport> {
    let cfg = config.to_string_lossy().into_owned();
    let out = run_bin("outpost-agent", &["buffer", "-c", &cfg]).await?;
    if out.code != Some(0) {
        bail!("outpost-agent buffer failed: {}", out.stderr);
    }
    let num = |key: &str| -> Result<u64> {
        out.stdout
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l[key.len()..].split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("no {key:?} in: {}", out.stdout))
    };
    Ok(BufferReport {
        entries: num("entries:")?,
        next_seq: num("next seq:")?,
        origin_seq: num("origin seq:")?,
        dropped_buffer_full: num("dropped buffer_full")?,
    })
}

/// The UTC calendar month of `ms` (unix milliseconds) as `YYYY-MM`, and
/// the unix milliseconds of its first instant (civil-from-days).
pub fn utc_month(ms: i64) -> (String, i64) {
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (format!("{y:04}-{m:02}"), (days - (d - 1)) * 86_400_000)
}
