//! The servers the ingest and connection benchmarks measure, as child
//! processes: the real collector (with a config that allows the bench's
//! agent ids) and the echo floor. Stopped by SIGTERM, killed if dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tokio::process::Command;

use crate::procfs;
use crate::procs::{bin_dir_with, Proc};

/// A running server process.
pub struct Server {
    proc: Proc,
    pub pid: u32,
    /// gRPC `127.0.0.1:PORT`.
    pub grpc: String,
    /// HTTP `127.0.0.1:PORT` (the collector's; empty for the echo floor).
    pub http: String,
}

impl Server {
    async fn spawn(mut cmd: Command, log: &Path) -> Result<Server> {
        cmd.stdout(Stdio::piped());
        let mut proc = Proc::spawn(cmd, log).context("start the server")?;
        let line = proc
            .first_line(Duration::from_secs(60))
            .await
            .with_context(|| {
                format!(
                    "the server did not say where it listens (see {})",
                    log.display()
                )
            })?;
        let word = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(str::to_string)
        };
        let grpc = word("grpc=").ok_or_else(|| anyhow!("no grpc= in {line:?}"))?;
        let http = word("http=").unwrap_or_default();
        Ok(Server {
            pid: proc.pid,
            proc,
            grpc,
            http,
        })
    }

    /// Resident memory now, bytes.
    pub fn rss(&self) -> u64 {
        procfs::status_bytes(self.pid, "VmRSS").unwrap_or(0)
    }

    /// CPU seconds used so far.
    pub fn cpu_seconds(&self) -> f64 {
        procfs::cpu_ticks(self.pid).unwrap_or(0) as f64 / procfs::ticks_per_second() as f64
    }

    /// SIGTERM, then wait (the collector makes its final flush).
    pub async fn stop(self) -> Result<()> {
        self.proc.stop().await
    }
}

/// Where `outpost-collector` is: `dir`, or next to this binary.
pub fn collector_bin(dir: Option<&Path>) -> Result<PathBuf> {
    Ok(bin_dir_with(dir, &["outpost-collector"])?.join("outpost-collector"))
}

/// Starts the real collector: store in `dir/store`, gRPC and HTTP on free
/// loopback ports, an allow-list of the `agents` ids (the per-batch
/// auth check runs as in production), every other setting its default
/// (the per-stream rate bound of 50,000 results/s included).
pub async fn collector(bin: &Path, dir: &Path, agents: &[String]) -> Result<Server> {
    let config = dir.join("collector.toml");
    let ids: Vec<String> = agents.iter().map(|a| format!("{a:?}")).collect();
    std::fs::write(
        &config,
        format!("[auth]\nallowed_agents = [{}]\n", ids.join(", ")),
    )?;
    let mut cmd = Command::new(bin);
    cmd.arg("-c")
        .arg(&config)
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.join("store"))
        .env("OUTPOST_LOG", "warn");
    Server::spawn(cmd, &dir.join("collector.log")).await
}

/// Starts the echo floor (this binary, `ingest --echo-server`).
pub async fn echo(dir: &Path) -> Result<Server> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["ingest", "--echo-server"]);
    Server::spawn(cmd, &dir.join("echo.log")).await
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit (children
/// inherit it); returns the soft limit now in force.
pub fn raise_nofile() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            eprintln!("warning: cannot raise RLIMIT_NOFILE: {e}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}
