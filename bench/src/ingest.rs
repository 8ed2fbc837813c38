//! `outpost-bench ingest`: how many results per second the real collector
//! makes durable, against the floors of the same machine in the same run.
//!
//! For each stream count (10, 100, 1,000 simulated agents; each its own
//! connection) and each run: a fresh release collector on 127.0.0.1
//! (plaintext loopback, an allow-list of the bench's ids), the load
//! generator (`load`) sending real encoded results as agents drain a
//! backlog for a fixed time, then the accounting check (the collector's
//! stored count equals what was acknowledged, per agent and in total;
//! no gap, loss or duplicate) — a mismatch fails the benchmark. Then the
//! two floors with the same load: the tonic echo server (`echo`, its own
//! process) and sled alone (`sled_floor`). The ratio is the collector's
//! durable results/s over the slower floor of the same run.
//!
//! Goals (issue #9): ≥ 100,000 results/s acknowledged durably, and ≥ 50 %
//! of the slower floor. Collector CPU counts from the start signal to the
//! last ack (connection set-up excluded); RSS is sampled every 50 ms.

mod echo;
pub mod load;
pub mod payload;
pub mod server;
mod sled_floor;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

use crate::procs::{http_get, mib};
use crate::report::{Figure, Part, Stats};
use load::{Outcome, Plan};
use payload::Templates;
use server::Server;

/// The goal for durable results per second.
pub const GOAL_RESULTS_PER_S: f64 = 100_000.0;
/// The goal for the ratio to the slower floor.
pub const GOAL_RATIO: f64 = 0.5;
/// The agent's default `batch_max`.
const AGENT_BATCH_MAX: u64 = 2000;

/// `outpost-bench ingest` options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Small and fast (CI): one short run per stream count.
    #[arg(long)]
    quick: bool,
    /// Where `outpost-collector` is (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Write the report part (`ingest.json`) into this directory.
    #[arg(long)]
    parts: Option<PathBuf>,
    /// Runs per figure (default 3, quick 1).
    #[arg(long)]
    runs: Option<usize>,
    /// Stream counts (default 10,100,1000).
    #[arg(long, value_delimiter = ',')]
    streams: Option<Vec<usize>>,
    /// Seconds of load per run (default 6, quick 1).
    #[arg(long)]
    seconds: Option<f64>,
    /// Keep working directories (stores, logs) here.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Serve the tonic echo floor instead (used by the benchmark itself).
    #[arg(long, hide = true)]
    echo_server: bool,
}

/// Results per batch for `streams` agents: the agent's default batch
/// while a few agents drain, smaller batches for a large fleet (so that
/// 4 batches in flight per stream stay near 400,000 results in all).
pub fn batch_for(streams: usize) -> u64 {
    (100_000 / streams.max(1) as u64).clamp(10, AGENT_BATCH_MAX)
}

/// One run against one server.
#[derive(Debug, Clone)]
struct Measured {
    outcome: Outcome,
    cpu_s: f64,
    peak_rss: u64,
}

impl Measured {
    /// CPU milliseconds per 1,000 results.
    fn cpu_per_1000(&self) -> f64 {
        self.cpu_s * 1000.0 / (self.outcome.results.max(1) as f64) * 1000.0
    }
}

/// Runs the load against `server`, measuring its CPU and peak RSS.
async fn measure(server: &Server, plan: &Plan, templates: Arc<Templates>) -> Result<Measured> {
    let prepared = load::prepare(plan, templates).await?;
    let peak = Arc::new(AtomicU64::new(server.rss()));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done, pid) = (peak.clone(), done.clone(), server.pid);
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(rss) = crate::procfs::status_bytes(pid, "VmRSS") {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let cpu0 = server.cpu_seconds();
    let outcome = prepared.go().await;
    let cpu_s = server.cpu_seconds() - cpu0;
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    Ok(Measured {
        outcome: outcome?,
        cpu_s,
        peak_rss: peak.load(Ordering::Relaxed),
    })
}

/// Sum of `name{agent="<prefix>…"}` over the bench's agents, and each.
fn per_agent(text: &str, name: &str, prefix: &str) -> Vec<(String, f64)> {
    let head = format!("{name}{{agent=\"{prefix}");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&head)?;
            let (id, value) = rest.split_once("\"}")?;
            Some((format!("{prefix}{id}"), value.trim().parse().ok()?))
        })
        .collect()
}

/// The collector holds exactly what was acknowledged: per agent, in total,
/// with no gap, loss or duplicate.
async fn check_accounting(http: &str, prefix: &str, outcome: &Outcome) -> Result<()> {
    let text = http_get(http, "/metrics").await?;
    let stored = per_agent(&text, "outpost_agent_results_stored_total", prefix);
    let stored_map: std::collections::HashMap<&str, f64> =
        stored.iter().map(|(a, v)| (a.as_str(), *v)).collect();
    for (agent, acked) in &outcome.per_agent {
        let got = stored_map.get(agent.as_str()).copied().unwrap_or(-1.0);
        if got as u64 != *acked {
            bail!(
                "accounting is off for {agent}: the collector stored {got}, acknowledged {acked}"
            );
        }
    }
    let total: f64 = stored.iter().map(|(_, v)| v).sum();
    if total as u64 != outcome.results {
        bail!(
            "accounting is off: the collector stored {total} results, {} were acknowledged",
            outcome.results
        );
    }
    for bad in [
        "outpost_agent_gap_results_total",
        "outpost_agent_lost_results_total",
        "outpost_agent_duplicates_total",
    ] {
        let n: f64 = per_agent(&text, bad, prefix).iter().map(|(_, v)| v).sum();
        if n != 0.0 {
            bail!("accounting is off: {bad} = {n} (want 0)");
        }
    }
    Ok(())
}

/// One stream count's runs.
#[derive(Default)]
struct Row {
    streams: usize,
    batch: u64,
    collector: Vec<Measured>,
    echo: Vec<Measured>,
    sled: Vec<f64>,
}

impl Row {
    fn stat(&self, f: impl Fn(&Measured) -> f64, of: &[Measured]) -> Option<Stats> {
        Stats::of(&of.iter().map(f).collect::<Vec<_>>())
    }

    fn ratios(&self) -> Vec<f64> {
        self.collector
            .iter()
            .zip(&self.echo)
            .zip(&self.sled)
            .map(|((c, e), s)| c.outcome.per_second() / e.outcome.per_second().min(*s))
            .collect()
    }
}

fn work_dir(keep: Option<&Path>, tmp: &Path, name: &str) -> Result<PathBuf> {
    let d = keep.unwrap_or(tmp).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Runs the benchmark, prints the tables, writes the part.
pub async fn run(opts: Options) -> Result<()> {
    if opts.echo_server {
        return echo::serve().await;
    }
    let nofile = server::raise_nofile();
    let bin = server::collector_bin(opts.bin_dir.as_deref())?;
    let runs = opts.runs.unwrap_or(if opts.quick { 1 } else { 3 }).max(1);
    let counts = opts.streams.clone().unwrap_or_else(|| vec![10, 100, 1000]);
    let secs = opts.seconds.unwrap_or(if opts.quick { 1.0 } else { 6.0 });
    let duration = Duration::from_secs_f64(secs.max(0.1));
    if let Some(&max) = counts.iter().max() {
        if (max as u64) * 2 + 256 > nofile {
            bail!("{max} streams need more open files than RLIMIT_NOFILE {nofile}; raise it (ulimit -n)");
        }
    }
    let tmp = tempfile::tempdir()?;
    let templates = Arc::new(Templates::new(SystemTime::now()));
    let mut rows = Vec::new();
    for &n in &counts {
        let batch = batch_for(n);
        let mut row = Row {
            streams: n,
            batch,
            ..Row::default()
        };
        for r in 0..runs {
            eprintln!(
                "ingest: {n} streams, batch {batch}, run {}/{runs} ...",
                r + 1
            );
            // The real collector.
            let prefix = format!("ing{r}-");
            let dir = work_dir(opts.keep.as_deref(), tmp.path(), &format!("c-{n}-{r}"))?;
            let ids: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
            let coll = server::collector(&bin, &dir, &ids).await?;
            let plan = Plan {
                addr: coll.grpc.clone(),
                streams: n,
                batch,
                duration,
                prefix: prefix.clone(),
            };
            let m = measure(&coll, &plan, templates.clone())
                .await
                .with_context(|| format!("collector, {n} streams (log: {})", dir.display()))?;
            check_accounting(&coll.http, &prefix, &m.outcome).await?;
            coll.stop().await?;
            // The tonic floor.
            let edir = work_dir(opts.keep.as_deref(), tmp.path(), &format!("e-{n}-{r}"))?;
            let echo = server::echo(&edir).await?;
            let plan = Plan {
                addr: echo.grpc.clone(),
                ..plan
            };
            let e = measure(&echo, &plan, templates.clone())
                .await
                .context("echo floor")?;
            echo.stop().await?;
            // The sled floor.
            let sdir = work_dir(opts.keep.as_deref(), tmp.path(), &format!("s-{n}-{r}"))?;
            let t = templates.clone();
            let (done, took) = tokio::task::spawn_blocking(move || {
                sled_floor::run(&sdir.join("db"), n, batch, duration, t)
            })
            .await??;
            let s = done as f64 / took.as_secs_f64().max(1e-9);
            eprintln!(
                "  collector {:.0}/s (p99 {:.1} ms), tonic floor {:.0}/s, sled floor {s:.0}/s",
                m.outcome.per_second(),
                m.outcome.latency_ms(0.99),
                e.outcome.per_second()
            );
            row.collector.push(m);
            row.echo.push(e);
            row.sled.push(s);
        }
        rows.push(row);
    }
    let part = render(&rows, runs, secs, opts.quick);
    println!("\n## {}\n\n{}", part.title, part.markdown);
    if let Some(dir) = &opts.parts {
        let path = part.write(dir)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn fig(name: String, unit: &str, stats: Stats, goal: Option<(String, bool)>) -> Figure {
    Figure {
        name,
        unit: unit.into(),
        stats,
        met: goal.as_ref().map(|g| g.1),
        goal: goal.map(|g| g.0),
    }
}

fn mark(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

fn render(rows: &[Row], runs: usize, secs: f64, quick: bool) -> Part {
    let mut md = String::new();
    let mut figures = Vec::new();
    let _ = writeln!(
        md,
        "N simulated agents (each its own connection and stream, real protocol, ≤ 4 batches in flight like the agent) against the release collector on 127.0.0.1; {secs} s of load per run, {runs} run(s) per figure: median (min–max). Durable = acknowledged, and the collector acknowledges only after its store flushed; the collector's stored count was checked equal to the acknowledged count after every run (no gap, loss or duplicate).\n"
    );
    let _ = writeln!(
        md,
        "| agents | batch | collector durable results/s | p50 ack ms | p99 ack ms | tonic floor results/s | sled floor results/s | ratio to slower floor | goal | met |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
    for row in rows {
        let n = row.streams;
        let (Some(rate), Some(p50), Some(p99), Some(echo), Some(sled), Some(ratio)) = (
            row.stat(|m| m.outcome.per_second(), &row.collector),
            row.stat(|m| m.outcome.latency_ms(0.5), &row.collector),
            row.stat(|m| m.outcome.latency_ms(0.99), &row.collector),
            row.stat(|m| m.outcome.per_second(), &row.echo),
            Stats::of(&row.sled),
            Stats::of(&row.ratios()),
        ) else {
            continue;
        };
        let rate_met = rate.median >= GOAL_RESULTS_PER_S;
        let ratio_met = ratio.median >= GOAL_RATIO;
        let _ = writeln!(
            md,
            "| {n} | {} | {} | {} | {} | {} | {} | {} | ≥ 100,000/s; ≥ 0.50 | {} / {} |",
            row.batch,
            rate.show(0),
            p50.show(1),
            p99.show(1),
            echo.show(0),
            sled.show(0),
            ratio.show(2),
            mark(rate_met),
            mark(ratio_met)
        );
        let k = format!("streams_{n}");
        figures.push(fig(
            format!("ingest.durable_results_per_s.{k}"),
            "results/s",
            rate,
            Some((">= 100000".into(), rate_met)),
        ));
        figures.push(fig(
            format!("ingest.ratio_to_slower_floor.{k}"),
            "ratio",
            ratio,
            Some((">= 0.5".into(), ratio_met)),
        ));
        figures.push(fig(format!("ingest.p50_ack_ms.{k}"), "ms", p50, None));
        figures.push(fig(format!("ingest.p99_ack_ms.{k}"), "ms", p99, None));
        figures.push(fig(
            format!("ingest.floor_tonic_results_per_s.{k}"),
            "results/s",
            echo,
            None,
        ));
        figures.push(fig(
            format!("ingest.floor_sled_results_per_s.{k}"),
            "results/s",
            sled,
            None,
        ));
    }
    let _ = writeln!(
        md,
        "\nGrowth (sizing a collector): cost as agents grow, same runs.\n"
    );
    let _ = writeln!(
        md,
        "| agents | durable results/s | p99 ack ms | collector CPU ms per 1,000 results | collector peak RSS MiB | tonic floor CPU ms per 1,000 results |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let n = row.streams;
        let (Some(rate), Some(p99), Some(cpu), Some(rss), Some(ecpu)) = (
            row.stat(|m| m.outcome.per_second(), &row.collector),
            row.stat(|m| m.outcome.latency_ms(0.99), &row.collector),
            row.stat(Measured::cpu_per_1000, &row.collector),
            row.stat(|m| mib(m.peak_rss), &row.collector),
            row.stat(Measured::cpu_per_1000, &row.echo),
        ) else {
            continue;
        };
        let _ = writeln!(
            md,
            "| {n} | {} | {} | {} | {} | {} |",
            rate.show(0),
            p99.show(1),
            cpu.show(2),
            rss.show(1),
            ecpu.show(2)
        );
        let k = format!("streams_{n}");
        figures.push(fig(
            format!("ingest.collector_cpu_ms_per_1000.{k}"),
            "ms",
            cpu,
            None,
        ));
        figures.push(fig(
            format!("ingest.collector_peak_rss_mib.{k}"),
            "MiB",
            rss,
            None,
        ));
    }
    let _ = writeln!(
        md,
        "\nBatch: the agent's default `batch_max` (2,000) for small fleets, 100,000 / agents for large ones (a fleet of 1,000 sends batches of 100). Floors: *tonic* is an `Ingest` server in the bench crate (the generated trait, prost decoding, the collector's message bounds) that acknowledges each batch at once and stores nothing; *sled* is sled alone with the collector's settings and layout writing, per group of min(agents, 256) batches, each batch's encoded results in values of 32 (the store's chunk) and one agent record per batch, then flushing — no network (`bench/src/ingest/sled_floor.rs`). The load generator shares the 2 cores with the server it measures; it is the same for the collector and the tonic floor. Ack latency is measured at saturation: every stream keeps 4 batches in flight, so it is about the results in flight divided by the throughput (Little's law), not the cost of one group commit. Idle-connection memory is in the connections part."
    );
    Part {
        section: "ingest".into(),
        title: "Collector ingest".into(),
        markdown: md,
        figures,
        quick,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_agent_metrics_are_read_for_the_bench_ids_only() {
        let text = "outpost_agent_results_stored_total{agent=\"ing0-1\"} 20\noutpost_agent_results_stored_total{agent=\"other\"} 5\noutpost_agent_results_stored_total{agent=\"ing0-12\"} 7\n";
        let got = per_agent(text, "outpost_agent_results_stored_total", "ing0-");
        assert_eq!(
            got,
            vec![("ing0-1".to_string(), 20.0), ("ing0-12".to_string(), 7.0)]
        );
    }

    #[test]
    fn batches_follow_the_agent_default_and_shrink_for_large_fleets() {
        assert_eq!(batch_for(10), 2000);
        assert_eq!(batch_for(100), 1000);
        assert_eq!(batch_for(1000), 100);
        assert_eq!(batch_for(100_000), 10);
    }
}
