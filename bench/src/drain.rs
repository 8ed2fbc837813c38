//! The drain benchmark: a backlog built while the collector is away, then
//! drained by the real agent into the real collector.
//!
//! Steps: fill N results into a fresh buffer; start `outpost-agent` (no
//! checks) on it, pointed at a port where nothing listens yet; once the
//! agent has opened its buffer (its status file appears), start
//! `outpost-collector` on that port and measure until the collector has
//! stored all N (`outpost_agent_results_stored_total`), sampling the
//! agent's VmRSS every 20 ms. Then check the accounting (stored = N, no
//! gap, no loss, buffer empty) and print one table.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::{fill, procfs};

const AGENT_ID: &str = "bench-agent";
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
const POLL_EVERY: Duration = Duration::from_millis(100);
const DRAIN_DEADLINE: Duration = Duration::from_secs(900);

/// `outpost-bench drain` options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// 50,000 results instead of 1,000,000 (CI; same table).
    #[arg(long)]
    quick: bool,
    /// Number of results (overrides --quick).
    #[arg(long)]
    results: Option<u64>,
    /// Where outpost-agent and outpost-collector are (default: next to
    /// this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The agent's `[collector] batch_max` (default: the agent's default).
    #[arg(long)]
    batch_max: Option<u32>,
    /// Keep the working directory (buffer, store, logs) here instead of a
    /// temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
}

struct Proc {
    child: Child,
    pid: u32,
}

impl Proc {
    fn spawn(mut cmd: Command, log: &Path) -> Result<Proc> {
        let log = std::fs::File::create(log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or_else(|| anyhow!("no pid"))?;
        Ok(Proc { child, pid })
    }

    async fn stop(mut self) -> Result<()> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("did not stop within 30s")??;
        Ok(())
    }
}

/// A minimal HTTP/1.1 GET over loopback (the body).
async fn http_get(addr: &str, path: &str) -> Result<String> {
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

fn metric(text: &str, name: &str) -> Option<f64> {
    let prefix = format!("{name}{{agent=\"{AGENT_ID}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn bin_dir(opts: &Options) -> Result<PathBuf> {
    if let Some(d) = &opts.bin_dir {
        return Ok(d.clone());
    }
    let exe = std::env::current_exe()?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("cannot tell where {} is", exe.display()))
}

async fn free_port() -> Result<u16> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(l.local_addr()?.port())
}

/// Runs the benchmark and prints the table.
pub async fn run(opts: Options) -> Result<()> {
    let n = opts
        .results
        .unwrap_or(if opts.quick { 50_000 } else { 1_000_000 });
    let bins = bin_dir(&opts)?;
    for b in ["outpost-agent", "outpost-collector"] {
        if !bins.join(b).exists() {
            bail!(
                "{} not found in {}; build it (bench/drain does: cargo build --release)",
                b,
                bins.display()
            );
        }
    }
    let tmp = tempfile::tempdir()?;
    let dir = match &opts.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    let buffer = dir.join("buffer");
    let _ = std::fs::remove_dir_all(&buffer);
    let _ = std::fs::remove_dir_all(dir.join("store"));

    eprintln!("filling {n} results into {} ...", buffer.display());
    let limits = outpost_agent::buffer::Limits {
        max_bytes: outpost_agent::config::DEFAULT_BUFFER_MAX_BYTES,
        max_entries: outpost_agent::config::DEFAULT_BUFFER_MAX_ENTRIES,
    };
    let filled = fill::fill(&buffer, n, limits, fill::GROUP).await?;
    // This process wrote the backlog through the agent's buffer code: its
    // peak RSS is what buffering the backlog costs a writer.
    let fill_hwm = procfs::status_bytes(std::process::id(), "VmHWM").unwrap_or(0);

    let port = free_port().await?;
    let batch = opts
        .batch_max
        .map_or(String::new(), |b| format!("batch_max = {b}\n"));
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"{AGENT_ID}\"\n\n[buffer]\npath = \"{}\"\n\n[collector]\nendpoints = [\"http://127.0.0.1:{port}\"]\nheartbeat = \"1s\"\nbackoff_initial = \"100ms\"\nbackoff_max = \"200ms\"\n{batch}",
            buffer.display()
        ),
    )?;

    let t_agent = Instant::now();
    let mut agent_cmd = Command::new(bins.join("outpost-agent"));
    agent_cmd
        .arg("-c")
        .arg(&config)
        .env("OUTPOST_LOG", "warn")
        .stdout(Stdio::null());
    let agent = Proc::spawn(agent_cmd, &dir.join("agent.log"))?;
    let status = outpost_agent::buffer::status_path(&buffer);
    while !status.exists() {
        if t_agent.elapsed() > Duration::from_secs(120) {
            bail!("the agent did not open its buffer within 120s (see agent.log)");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let agent_open = t_agent.elapsed();
    let rss_before = procfs::status_bytes(agent.pid, "VmRSS").unwrap_or(0);
    let hwm_before = procfs::status_bytes(agent.pid, "VmHWM").unwrap_or(0);
    let agent_cpu_before = procfs::cpu_ticks(agent.pid).unwrap_or(0);

    let mut collector_cmd = Command::new(bins.join("outpost-collector"));
    collector_cmd
        .args([
            "--grpc-listen",
            &format!("127.0.0.1:{port}"),
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.join("store"))
        .env("OUTPOST_LOG", "warn")
        .stdout(Stdio::piped());
    let t0 = Instant::now();
    let mut collector = Proc::spawn(collector_cmd, &dir.join("collector.log"))?;
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

    let mut rss_peak = rss_before;
    let mut first_stored: Option<Duration> = None;
    let mut last_poll = Instant::now() - POLL_EVERY;
    let drained = loop {
        if let Some(rss) = procfs::status_bytes(agent.pid, "VmRSS") {
            rss_peak = rss_peak.max(rss);
        }
        if last_poll.elapsed() >= POLL_EVERY {
            last_poll = Instant::now();
            if let Ok(text) = http_get(&http, "/metrics").await {
                let stored = metric(&text, "outpost_agent_results_stored_total").unwrap_or(0.0);
                if stored > 0.0 && first_stored.is_none() {
                    first_stored = Some(t0.elapsed());
                }
                if stored as u64 >= n {
                    break t0.elapsed();
                }
            }
        }
        if t0.elapsed() > DRAIN_DEADLINE {
            bail!("not drained within {DRAIN_DEADLINE:?}");
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    };
    let agent_hwm = procfs::status_bytes(agent.pid, "VmHWM").unwrap_or(0);
    let ticks = procfs::ticks_per_second() as f64;
    let agent_cpu = (procfs::cpu_ticks(agent.pid).unwrap_or(0) - agent_cpu_before) as f64 / ticks;
    let collector_cpu = procfs::cpu_ticks(collector.pid).unwrap_or(0) as f64 / ticks;
    let collector_hwm = procfs::status_bytes(collector.pid, "VmHWM").unwrap_or(0);

    // Accounting: the collector holds exactly N, nothing lost, and the
    // agent's buffer empties once the last ack is processed.
    let metrics = http_get(&http, "/metrics").await?;
    let stored = metric(&metrics, "outpost_agent_results_stored_total").unwrap_or(-1.0);
    let gap = metric(&metrics, "outpost_agent_gap_results_total").unwrap_or(-1.0);
    let lost = metric(&metrics, "outpost_agent_lost_results_total").unwrap_or(-1.0);
    let dups = metric(&metrics, "outpost_agent_duplicates_total").unwrap_or(-1.0);
    if stored as u64 != n || gap != 0.0 || lost != 0.0 {
        bail!("accounting is off: stored {stored} of {n}, gap {gap}, lost {lost}");
    }
    let t_empty = Instant::now();
    loop {
        let text = outpost_agent::buffer::read_status(&buffer)?
            .map(|s| s.text)
            .unwrap_or_default();
        if text
            .lines()
            .any(|l| l.starts_with("entries:") && l.contains(" 0 ("))
        {
            break;
        }
        if t_empty.elapsed() > Duration::from_secs(30) {
            bail!("the agent's buffer did not empty after the drain:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent.stop().await?;
    collector.stop().await?;

    let secs = drained.as_secs_f64();
    let pure = first_stored.map_or(secs, |f| secs - f.as_secs_f64());
    let row = |k: &str, v: String| println!("| {k:<42} | {v:>26} |");
    println!();
    println!("## outpost-bench drain ({} results)", n);
    println!();
    println!("| {:<42} | {:>26} |", "measure", "value");
    println!("|{}|{}|", "-".repeat(44), "-".repeat(28));
    row(
        "fill (library API, group commit)",
        format!(
            "{:.1} s ({:.0}/s)",
            filled.elapsed.as_secs_f64(),
            n as f64 / filled.elapsed.as_secs_f64().max(1e-9)
        ),
    );
    row(
        "buffer logical size",
        format!("{:.1} MiB", mib(filled.bytes)),
    );
    row(
        "filling process peak RSS (writes the backlog)",
        format!("{:.1} MiB", mib(fill_hwm)),
    );
    row(
        "agent start to buffer open",
        format!("{:.2} s", agent_open.as_secs_f64()),
    );
    row(
        "drain: collector start to all stored",
        format!("{secs:.2} s"),
    );
    row("drain: first to last result stored", format!("{pure:.2} s"));
    row(
        "results/s (collector start to all stored)",
        format!("{:.0}", n as f64 / secs.max(1e-9)),
    );
    row(
        "agent RSS before the drain",
        format!("{:.1} MiB", mib(rss_before)),
    );
    row(
        "agent peak RSS while draining (sampled)",
        format!("{:.1} MiB", mib(rss_peak)),
    );
    row(
        "agent VmHWM (whole life / before drain)",
        format!("{:.1} / {:.1} MiB", mib(agent_hwm), mib(hwm_before)),
    );
    row("agent CPU during the drain", format!("{agent_cpu:.2} s"));
    row("collector VmHWM", format!("{:.1} MiB", mib(collector_hwm)));
    row(
        "collector CPU (whole life)",
        format!("{collector_cpu:.2} s"),
    );
    row(
        "stored / gap / lost / duplicates",
        format!("{stored} / {gap} / {lost} / {dups}"),
    );
    println!();
    println!(
        "machine: {} cores, {}, kernel {}, {}",
        procfs::command_line("nproc", &[]),
        procfs::cpu_model(),
        procfs::command_line("uname", &["-r"]),
        procfs::command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    );
    Ok(())
}
