//! The slow-collector benchmark: a backlog drained through a link that
//! first stalls (nothing passes, nothing is refused) and then crawls
//! (throttled), via the test harness's fault proxy
//! (`outpost_tests::chaos`). The agent keeps at most a window of batches
//! in flight, so its RSS must stay flat whatever the collector does; the
//! table shows it per phase, then checks the accounting after the link
//! recovers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use outpost_tests::chaos::{ChaosProxy, Mode};

use crate::procs::{
    agent_config, bin_dir, free_port, http_get, metric, mib, start_agent, start_collector, stored,
    wait_status,
};
use crate::{fill, procfs};

/// `outpost-bench slow` options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Results in the backlog.
    #[arg(long, default_value_t = 200_000)]
    results: u64,
    /// Length of the stalled and of the throttled phase, seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The throttled link's rate, bytes per second per direction.
    #[arg(long, default_value_t = 64 * 1024)]
    bytes_per_sec: u64,
    /// Where outpost-agent and outpost-collector are (default: next to
    /// this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

/// Samples the agent's RSS every 20 ms for `d` (or until `done`); returns
/// the peak.
async fn sample(pid: u32, d: Duration, mut peak: u64) -> u64 {
    let t = Instant::now();
    while t.elapsed() < d {
        if let Some(rss) = procfs::status_bytes(pid, "VmRSS") {
            peak = peak.max(rss);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    peak
}

pub async fn run(opts: Options) -> Result<()> {
    let n = opts.results;
    let bins = bin_dir(opts.bin_dir.as_deref())?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let buffer = dir.join("buffer");
    let limits = outpost_agent::buffer::Limits {
        max_bytes: outpost_agent::config::DEFAULT_BUFFER_MAX_BYTES,
        max_entries: outpost_agent::config::DEFAULT_BUFFER_MAX_ENTRIES,
    };
    eprintln!("filling {n} results ...");
    fill::fill(&buffer, n, limits, fill::GROUP).await?;
    let port = free_port().await?;
    let (collector, http) = start_collector(&bins, port, dir).await?;
    let proxy = ChaosProxy::start(format!("127.0.0.1:{port}").parse()?).await?;
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        agent_config(&buffer, &proxy.addr().to_string(), None),
    )?;
    let agent = start_agent(&bins, &config, dir)?;
    wait_status(&buffer, Duration::from_secs(60)).await?;

    let mut rows: Vec<(String, f64, u64, u64)> = Vec::new();
    // Normal until the first results are stored.
    let t = Instant::now();
    let mut peak = 0;
    while stored(&http).await == 0 {
        if t.elapsed() > Duration::from_secs(60) {
            bail!("nothing stored within 60s");
        }
        peak = sample(agent.pid, Duration::from_millis(100), peak).await;
    }
    let phase = Duration::from_secs(opts.seconds);
    let mut at = stored(&http).await;
    rows.push((
        "link up (until the first ack)".into(),
        t.elapsed().as_secs_f64(),
        at,
        peak,
    ));
    for (name, mode) in [
        ("link stalled (no byte passes)".to_string(), Mode::Stall),
        (
            format!("link throttled to {} KiB/s", opts.bytes_per_sec / 1024),
            Mode::Throttle {
                bytes_per_sec: opts.bytes_per_sec,
            },
        ),
    ] {
        proxy.set_mode(mode);
        let peak = sample(agent.pid, phase, 0).await;
        let now = stored(&http).await;
        rows.push((name, phase.as_secs_f64(), now - at, peak));
        at = now;
    }
    proxy.set_mode(Mode::Pass);
    let t = Instant::now();
    let mut peak = 0;
    loop {
        peak = sample(agent.pid, Duration::from_millis(100), peak).await;
        if stored(&http).await >= n {
            break;
        }
        if t.elapsed() > Duration::from_secs(300) {
            bail!("not drained within 300s after the link recovered");
        }
    }
    rows.push((
        "link back (until all stored)".into(),
        t.elapsed().as_secs_f64(),
        n - at,
        peak,
    ));
    let metrics = http_get(&http, "/metrics").await?;
    let m = |name| metric(&metrics, name).unwrap_or(-1.0);
    let (total, gap, lost) = (
        m("outpost_agent_results_stored_total"),
        m("outpost_agent_gap_results_total"),
        m("outpost_agent_lost_results_total"),
    );
    if total as u64 != n || gap != 0.0 || lost != 0.0 {
        bail!("accounting is off: stored {total} of {n}, gap {gap}, lost {lost}");
    }
    let hwm = procfs::status_bytes(agent.pid, "VmHWM").unwrap_or(0);
    agent.stop().await?;
    collector.stop().await?;

    println!();
    println!("## outpost-bench slow ({n} results)");
    println!();
    println!(
        "| {:<36} | {:>10} | {:>16} | {:>16} |",
        "phase", "seconds", "results stored", "agent peak RSS"
    );
    println!(
        "|{}|{}|{}|{}|",
        "-".repeat(38),
        "-".repeat(12),
        "-".repeat(18),
        "-".repeat(18)
    );
    for (name, secs, stored, peak) in rows {
        println!(
            "| {name:<36} | {secs:>10.1} | {stored:>16} | {:>12.1} MiB |",
            mib(peak)
        );
    }
    println!();
    println!(
        "agent VmHWM {:.1} MiB; stored {total} / gap {gap} / lost {lost}; proxy {:?}",
        mib(hwm),
        proxy.stats()
    );
    Ok(())
}
