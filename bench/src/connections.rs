//! `outpost-bench connections`: memory per connected idle agent.
//!
//! A fresh release collector on 127.0.0.1; its RSS settles and is taken
//! as the baseline; then simulated agents connect one stream each (own
//! connection, the agent's HTTP/2 keepalive of 10 s, hello answered, a
//! heartbeat every [`HEARTBEAT`]), cumulatively to 10, 100, 1,000 and
//! 5,000. At each level, once the collector shows every stream connected
//! and a few heartbeats have passed, its RSS is sampled: per agent =
//! (RSS − baseline) / agents. Goal (issue #9): ≤ 64 KiB per agent at
//! 1,000 and 5,000. RLIMIT_NOFILE is raised to its hard limit for this
//! process and the collector it starts.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use outpost_agent::transport::codec;
use outpost_proto::v1 as pb;

use crate::ingest::{load, server};
use crate::procs::{http_get, mib};
use crate::report::{Figure, Part, Stats};

/// Heartbeat period of the simulated agents (the agent's default is 15 s;
/// shorter here so every agent sends some while it is measured).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// Idle time at each level before sampling (quick: half).
const IDLE: Duration = Duration::from_secs(5);
/// Goal: bytes per idle agent.
pub const GOAL_BYTES: f64 = 64.0 * 1024.0;

/// `outpost-bench connections` options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Small and fast (CI): up to 1,000 agents, one run.
    #[arg(long)]
    quick: bool,
    /// Where `outpost-collector` is (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Write the report part (`connections.json`) into this directory.
    #[arg(long)]
    parts: Option<PathBuf>,
    /// Runs per figure (default 3, quick 1).
    #[arg(long)]
    runs: Option<usize>,
    /// Agent counts, ascending (default 10,100,1000,5000; quick 10,100,1000).
    #[arg(long, value_delimiter = ',')]
    agents: Option<Vec<usize>>,
    /// Keep the working directory (store, log) here.
    #[arg(long)]
    keep: Option<PathBuf>,
}

/// RSS sampled 5 times over half a second: the median.
async fn settled_rss(s: &server::Server) -> u64 {
    let mut v = Vec::new();
    for _ in 0..5 {
        v.push(s.rss());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// Agents of `prefix` the collector shows connected.
async fn connected(http: &str, prefix: &str) -> usize {
    let Ok(text) = http_get(http, "/metrics").await else {
        return 0;
    };
    let head = format!("outpost_agent_up{{agent=\"{prefix}");
    text.lines()
        .filter(|l| l.starts_with(&head) && l.trim_end().ends_with(" 1"))
        .count()
}

/// Keeps a stream open, sending heartbeats, until aborted.
async fn idle(stream: load::Stream) {
    let load::Stream {
        tx, mut inbound, ..
    } = stream;
    let mut every = tokio::time::interval(HEARTBEAT);
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {
                let hb = pb::Heartbeat { footprint: Some(load::footprint()) };
                if tx.send(codec::message(pb::agent_message::Msg::Heartbeat(hb))).await.is_err() {
                    return;
                }
            }
            m = inbound.message() => if !matches!(m, Ok(Some(_))) { return },
        }
    }
}

/// One run: (agents, collector RSS, bytes per agent) per level, and the
/// baseline.
async fn one_run(
    bin: &std::path::Path,
    dir: &std::path::Path,
    levels: &[usize],
    prefix: &str,
    idle_for: Duration,
) -> Result<(u64, Vec<(usize, u64, f64)>)> {
    let max = levels.iter().copied().max().unwrap_or(0);
    let ids: Vec<String> = (0..max).map(|i| format!("{prefix}{i}")).collect();
    let coll = server::collector(bin, dir, &ids).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = settled_rss(&coll).await;
    let mut held = tokio::task::JoinSet::new();
    let mut open = 0usize;
    let mut out = Vec::new();
    for &level in levels {
        if level > open {
            let streams = load::open_many(&coll.grpc, prefix, open, level - open)
                .await
                .with_context(|| format!("open streams {open}..{level}"))?;
            for s in streams {
                held.spawn(idle(s));
            }
            open = level;
        }
        let t = Instant::now();
        while connected(&coll.http, prefix).await < level {
            if t.elapsed() > Duration::from_secs(60) {
                bail!("the collector does not show {level} agents connected within 60s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(idle_for).await;
        if held.len() != open {
            bail!("{} of {open} streams ended while idle", open - held.len());
        }
        let rss = settled_rss(&coll).await;
        let per = (rss as f64 - base as f64) / level as f64;
        eprintln!(
            "connections: {level} idle agents: collector RSS {:.1} MiB (baseline {:.1}), {:.1} KiB each",
            mib(rss),
            mib(base),
            per / 1024.0
        );
        out.push((level, rss, per));
    }
    held.abort_all();
    drop(held);
    coll.stop().await?;
    Ok((base, out))
}

/// Runs the benchmark, prints the table, writes the part.
pub async fn run(opts: Options) -> Result<()> {
    let nofile = server::raise_nofile();
    let bin = server::collector_bin(opts.bin_dir.as_deref())?;
    let runs = opts.runs.unwrap_or(if opts.quick { 1 } else { 3 }).max(1);
    let mut levels = opts.agents.clone().unwrap_or_else(|| {
        if opts.quick {
            vec![10, 100, 1000]
        } else {
            vec![10, 100, 1000, 5000]
        }
    });
    levels.sort_unstable();
    levels.dedup();
    if let Some(&max) = levels.last() {
        if (max as u64) * 2 + 256 > nofile {
            bail!("{max} agents need more open files than RLIMIT_NOFILE {nofile}; raise it (ulimit -n)");
        }
    }
    let tmp = tempfile::tempdir()?;
    let mut bases = Vec::new();
    let mut per_level: Vec<Vec<(u64, f64)>> = vec![Vec::new(); levels.len()];
    for r in 0..runs {
        eprintln!("connections: run {}/{runs} ...", r + 1);
        let dir = opts
            .keep
            .clone()
            .unwrap_or_else(|| tmp.path().to_path_buf())
            .join(format!("conn-{r}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let idle_for = if opts.quick { IDLE / 2 } else { IDLE };
        let (base, got) = one_run(&bin, &dir, &levels, &format!("conn{r}-"), idle_for)
            .await
            .with_context(|| format!("see {}", dir.join("collector.log").display()))?;
        bases.push(mib(base));
        for (i, (_, rss, per)) in got.into_iter().enumerate() {
            per_level[i].push((rss, per));
        }
    }
    let part = render(&levels, &bases, &per_level, runs, nofile, opts.quick);
    println!("\n## {}\n\n{}", part.title, part.markdown);
    if let Some(dir) = &opts.parts {
        let path = part.write(dir)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn render(
    levels: &[usize],
    bases: &[f64],
    per_level: &[Vec<(u64, f64)>],
    runs: usize,
    nofile: u64,
    quick: bool,
) -> Part {
    let mut md = String::new();
    let mut figures = Vec::new();
    let base = Stats::of(bases);
    let _ = writeln!(
        md,
        "Idle agents connected to the release collector (each its own TCP connection and stream: hello, a heartbeat every {} s, HTTP/2 keepalive 10 s), added cumulatively; per agent = (collector RSS − RSS before any agent) / agents. {runs} run(s): median (min–max). Collector RSS before any agent: {} MiB.\n",
        HEARTBEAT.as_secs(),
        base.map_or("?".into(), |b| b.show(1))
    );
    let _ = writeln!(
        md,
        "| agents | collector RSS MiB | KiB per idle agent | goal | met |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---|---|");
    for (level, samples) in levels.iter().zip(per_level) {
        let rss: Vec<f64> = samples.iter().map(|(r, _)| mib(*r)).collect();
        let per: Vec<f64> = samples.iter().map(|(_, p)| p / 1024.0).collect();
        let (Some(rss), Some(per)) = (Stats::of(&rss), Stats::of(&per)) else {
            continue;
        };
        let goal = *level >= 1000;
        let met = per.median * 1024.0 <= GOAL_BYTES;
        let _ = writeln!(
            md,
            "| {level} | {} | {} | {} | {} |",
            rss.show(1),
            per.show(1),
            if goal { "≤ 64 KiB" } else { "—" },
            if !goal {
                ""
            } else if met {
                "met"
            } else {
                "**missed**"
            }
        );
        figures.push(Figure {
            name: format!("connections.kib_per_idle_agent.agents_{level}"),
            unit: "KiB".into(),
            stats: per,
            goal: goal.then(|| "<= 64".to_string()),
            met: goal.then_some(met),
        });
        figures.push(Figure {
            name: format!("connections.collector_rss_mib.agents_{level}"),
            unit: "MiB".into(),
            stats: rss,
            goal: None,
            met: None,
        });
    }
    let _ = writeln!(
        md,
        "\nEach agent costs the collector one file descriptor: the bench raised RLIMIT_NOFILE to {nofile} for itself and the collector. The packaged systemd unit sets `LimitNOFILE=65536` (systemd's default soft limit of 1,024 would refuse connections beyond about 1,000 agents, and the unit's system-call filter keeps the collector from raising it itself)."
    );
    Part {
        section: "connections".into(),
        title: "Collector connections".into(),
        markdown: md,
        figures,
        quick,
    }
}
