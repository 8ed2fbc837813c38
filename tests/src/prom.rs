//! Real Prometheus for tests: Debian's `prometheus` (and `promtool`)
//! started on a free 127.0.0.1 port with a throwaway data directory,
//! scraping what the test names, stopped by PID. `scripts/test` installs
//! the package when missing.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::process::{Child, Command};

use crate::harness::{eventually, http_get};

/// A free loopback port (bound and released; good enough for tests that
/// start the program right away).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn binary(name: &str) -> Result<std::path::PathBuf> {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!("{name} not found: install Debian's prometheus package (scripts/test does)")
}

/// `promtool check metrics` on `text`: (exit code, stdout + stderr).
pub async fn promtool_check_metrics(text: &str) -> Result<(Option<i32>, String)> {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(binary("promtool")?)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
    stdin.write_all(text.as_bytes()).await?;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await??;
    Ok((
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (host:port) every second, with
    /// extra command-line flags (e.g. `--web.enable-remote-write-receiver`)
    /// and extra YAML appended to the config (e.g. a `storage:` block).
    pub async fn start(targets: &[String], flags: &[&str], extra_yaml: &str) -> Result<Prometheus> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: outpost\n    static_configs:\n      - targets: [{}]\n{extra_yaml}",
            targets.join(", ")
        );
        let cfg_path = dir.path().join("prometheus.yml");
        std::fs::write(&cfg_path, config)?;
        let child = Command::new(binary("prometheus")?)
            .arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start prometheus")?;
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        eventually(Duration::from_secs(60), "prometheus ready", || async {
            matches!(http_get(&ready).await, Ok((200, _))).then_some(())
        })
        .await?;
        Ok(Prometheus {
            child,
            url,
            _dir: dir,
        })
    }

    /// Runs an instant PromQL query; returns `data.result`.
    pub async fn query(&self, promql: &str) -> Result<Vec<serde_json::Value>> {
        let q: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
        let (status, body) = http_get(&format!("{}/api/v1/query?query={q}", self.url)).await?;
        if status != 200 {
            bail!("query {promql:?} answered {status}: {body}");
        }
        let v: serde_json::Value = serde_json::from_str(&body)?;
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// Stops it by PID (SIGTERM) and waits.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
        Ok(())
    }
}
