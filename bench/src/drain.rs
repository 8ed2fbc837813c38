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

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::procs::{
    agent_config, bin_dir, free_port, http_get, metric, mib, start_agent, start_collector,
    wait_status,
};
use crate::report::{Figure, Part, Stats};
use crate::{fill, procfs};

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
    /// Runs (each a fresh fill and drain); figures are their median.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Write the report part (`drain.json`) into this directory.
    #[arg(long)]
    parts: Option<PathBuf>,
}

/// What one drain measured.
struct Measured {
    n: u64,
    secs: f64,
    rss_before: u64,
    rss_peak: u64,
    agent_cpu: f64,
    collector_cpu: f64,
    collector_hwm: u64,
    fill_rate: f64,
}

/// Runs the benchmark `--runs` times, prints each table, and writes the
/// part (median, min, max) when asked.
pub async fn run(opts: Options) -> Result<()> {
    let mut all = Vec::new();
    for i in 0..opts.runs.max(1) {
        if opts.runs > 1 {
            eprintln!("drain run {} of {}", i + 1, opts.runs);
        }
        all.push(run_once(&opts).await?);
    }
    if let Some(dir) = &opts.parts {
        let part = part(&all, opts.quick);
        part.write(dir)?;
    }
    Ok(())
}

/// (figure name, label, unit, stats, decimals, goal and whether it held)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    Option<Stats>,
    usize,
    Option<(String, bool)>,
);

fn part(all: &[Measured], quick: bool) -> Part {
    use std::fmt::Write as _;
    let n = all.first().map_or(0, |m| m.n);
    let st = |f: fn(&Measured) -> f64| Stats::of(&all.iter().map(f).collect::<Vec<_>>());
    let rows: Vec<Row> = vec![
        (
            "drain.seconds",
            "drain: collector start to all stored",
            "s",
            st(|m| m.secs),
            2,
            (!quick)
                .then(|| st(|m| m.secs).map(|s| ("<= 30 s".to_string(), s.median <= 30.0)))
                .flatten(),
        ),
        (
            "drain.results_per_s",
            "results/s (collector start to all stored)",
            "results/s",
            st(|m| m.n as f64 / m.secs.max(1e-9)),
            0,
            None,
        ),
        (
            "drain.agent_rss_peak_mib",
            "agent peak RSS while draining (sampled every 20 ms)",
            "MiB",
            st(|m| mib(m.rss_peak)),
            1,
            (!quick)
                .then(|| st(|m| mib(m.rss_peak)))
                .flatten()
                .map(|s| ("<= 32 MiB".to_string(), s.median <= 32.0)),
        ),
        (
            "drain.agent_rss_before_mib",
            "agent RSS before the drain (buffer open)",
            "MiB",
            st(|m| mib(m.rss_before)),
            1,
            None,
        ),
        (
            "drain.agent_cpu_s",
            "agent CPU during the drain",
            "s",
            st(|m| m.agent_cpu),
            2,
            None,
        ),
        (
            "drain.collector_cpu_s",
            "collector CPU (whole life)",
            "s",
            st(|m| m.collector_cpu),
            2,
            None,
        ),
        (
            "drain.collector_hwm_mib",
            "collector VmHWM",
            "MiB",
            st(|m| mib(m.collector_hwm)),
            1,
            None,
        ),
        (
            "drain.fill_results_per_s",
            "fill through the library API (group commit)",
            "results/s",
            st(|m| m.fill_rate),
            0,
            None,
        ),
    ];
    let mut md = String::new();
    let _ = writeln!(md, "{n} buffered results drained by the real agent into the real collector (`outpost-bench drain`), {} run(s): median (min–max). Accounting checked every run: stored = N, no gap, no loss, buffer empty.\n", all.len());
    let _ = writeln!(md, "| measure | value | goal |");
    let _ = writeln!(md, "|---|---|---|");
    let mut figures = Vec::new();
    for (name, label, unit, stats, digits, goal) in rows {
        let Some(stats) = stats else { continue };
        let _ = writeln!(
            md,
            "| {label} | {} {unit} | {} |",
            stats.show(digits),
            goal.as_ref().map_or(String::new(), |(g, m)| format!(
                "{g} — {}",
                if *m { "met" } else { "**missed**" }
            ))
        );
        figures.push(Figure {
            name: name.into(),
            unit: unit.into(),
            stats,
            goal: goal.as_ref().map(|g| g.0.clone()),
            met: goal.map(|g| g.1),
        });
    }
    if quick {
        let _ = writeln!(
            md,
            "\nThe goals (1,000,000 in ≤ 30 s, agent RSS ≤ 32 MiB) apply to the full (release) run only."
        );
    }
    Part {
        section: "drain".into(),
        title: "Backlog drain".into(),
        markdown: md,
        figures,
        quick,
    }
}

async fn run_once(opts: &Options) -> Result<Measured> {
    let n = opts
        .results
        .unwrap_or(if opts.quick { 50_000 } else { 1_000_000 });
    let bins = bin_dir(opts.bin_dir.as_deref())?;
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
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        agent_config(&buffer, &format!("127.0.0.1:{port}"), opts.batch_max),
    )?;

    let t_agent = Instant::now();
    let agent = start_agent(&bins, &config, &dir)?;
    wait_status(&buffer, Duration::from_secs(120)).await?;
    let agent_open = t_agent.elapsed();
    let rss_before = procfs::status_bytes(agent.pid, "VmRSS").unwrap_or(0);
    let hwm_before = procfs::status_bytes(agent.pid, "VmHWM").unwrap_or(0);
    let agent_cpu_before = procfs::cpu_ticks(agent.pid).unwrap_or(0);

    let t0 = Instant::now();
    let (collector, http) = start_collector(&bins, port, &dir).await?;

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
    let row = |k: &str, v: String| println!("| {k:<48} | {v:>26} |");
    println!();
    println!("## outpost-bench drain ({} results)", n);
    println!();
    println!("| {:<48} | {:>26} |", "measure", "value");
    println!("|{}|{}|", "-".repeat(50), "-".repeat(28));
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
    Ok(Measured {
        n,
        secs,
        rss_before,
        rss_peak,
        agent_cpu,
        collector_cpu,
        collector_hwm,
        fill_rate: n as f64 / filled.elapsed.as_secs_f64().max(1e-9),
    })
}
