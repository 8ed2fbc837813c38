//! Starting and stopping the real binaries for the benchmarks, and reading
//! the collector's metrics.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// The agent id every benchmark uses.
pub const AGENT_ID: &str = "bench-agent";

/// A child process, stopped by SIGTERM (killed if dropped).
pub struct Proc {
    child: Child,
    pub pid: u32,
}

impl Proc {
    pub fn spawn(mut cmd: Command, log: &Path) -> Result<Proc> {
        let log = std::fs::File::create(log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or_else(|| anyhow!("no pid"))?;
        Ok(Proc { child, pid })
    }

    /// The first line the process prints on stdout (spawned with
    /// `Stdio::piped()` stdout), within `within`.
    pub async fn first_line(&mut self, within: Duration) -> Result<String> {
        let stdout = self
            .child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("stdout is not piped"))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(within, lines.next_line())
            .await
            .context("no output in time")??
            .ok_or_else(|| anyhow!("exited before printing (see its log)"))?;
        // Keep reading (and dropping) so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(line)
    }

    pub async fn stop(mut self) -> Result<()> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        // A collector under load makes its final flush first.
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .context("did not stop within 60s")??;
        Ok(())
    }
}

/// An agent config with no checks (it only drains), pointed at `endpoint`
/// (`HOST:PORT`).
pub fn agent_config(buffer: &Path, endpoint: &str, batch_max: Option<u32>) -> String {
    let batch = batch_max.map_or(String::new(), |b| format!("batch_max = {b}\n"));
    format!(
        "[agent]\nid = \"{AGENT_ID}\"\n\n[buffer]\npath = \"{}\"\n\n[collector]\nendpoints = [\"http://{endpoint}\"]\nheartbeat = \"1s\"\nbackoff_initial = \"100ms\"\nbackoff_max = \"200ms\"\n{batch}",
        buffer.display()
    )
}

/// Starts `outpost-agent -c CONFIG` (log in `dir/agent.log`).
pub fn start_agent(bins: &Path, config: &Path, dir: &Path) -> Result<Proc> {
    let mut cmd = Command::new(bins.join("outpost-agent"));
    cmd.arg("-c")
        .arg(config)
        .env("OUTPOST_LOG", "warn")
        .stdout(Stdio::null());
    Proc::spawn(cmd, &dir.join("agent.log"))
}

/// Waits until the agent on `buffer` has opened it (its status file).
pub async fn wait_status(buffer: &Path, within: Duration) -> Result<()> {
    let status = outpost_agent::buffer::status_path(buffer);
    let t = Instant::now();
    while !status.exists() {
        if t.elapsed() > within {
            bail!("the agent did not open its buffer within {within:?} (see agent.log)");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Starts `outpost-collector` with gRPC on 127.0.0.1:`port` and its store
/// in `dir/store`; returns it and its HTTP address.
pub async fn start_collector(bins: &Path, port: u16, dir: &Path) -> Result<(Proc, String)> {
    let mut cmd = Command::new(bins.join("outpost-collector"));
    cmd.args([
        "--grpc-listen",
        &format!("127.0.0.1:{port}"),
        "--http-listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(dir.join("store"))
    .env("OUTPOST_LOG", "warn")
    .stdout(Stdio::piped());
    let mut collector = Proc::spawn(cmd, &dir.join("collector.log"))?;
    let stdout = collector
        .child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no collector stdout"))?;
    let line = BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .ok_or_else(|| anyhow!("collector exited (see collector.log)"))?;
    let http = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .ok_or_else(|| anyhow!("no http= in {line:?}"))?
        .to_string();
    Ok((collector, http))
}

/// A minimal HTTP/1.1 GET over loopback (the body).
pub async fn http_get(addr: &str, path: &str) -> Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    (&mut s).take(64 << 20).read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no header end"))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        return Ok(out);
    }
    Ok(body.to_string())
}

/// The value of `name{agent="bench-agent"}` in a metrics text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let prefix = format!("{name}{{agent=\"{AGENT_ID}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// Results the collector has stored for the bench agent (0 if unknown).
pub async fn stored(http: &str) -> u64 {
    match http_get(http, "/metrics").await {
        Ok(t) => metric(&t, "outpost_agent_results_stored_total").unwrap_or(0.0) as u64,
        Err(_) => 0,
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Where the binaries are: `dir`, or next to this one.
pub fn bin_dir(dir: Option<&Path>) -> Result<PathBuf> {
    bin_dir_with(dir, &["outpost-agent", "outpost-collector"])
}

/// As [`bin_dir`], needing only the binaries `names`.
pub fn bin_dir_with(dir: Option<&Path>, names: &[&str]) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let exe = std::env::current_exe()?;
            exe.parent()
                .map(Path::to_path_buf)
                .ok_or_else(|| anyhow!("cannot tell where {} is", exe.display()))?
        }
    };
    for b in names {
        if !dir.join(b).exists() {
            bail!(
                "{b} not found in {}; build it: cargo build --release -p {b}",
                dir.display()
            );
        }
    }
    Ok(dir)
}

/// A free port on 127.0.0.1 (free when asked; the collector binds it soon).
pub async fn free_port() -> Result<u16> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(l.local_addr()?.port())
}
