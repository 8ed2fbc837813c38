//! `outpost-bench`: benchmarks of the delivery path, run against the real
//! binaries (never a timed test: it prints figures).
//!
//! * `outpost-bench fill --buffer PATH --results N` writes N synthetic
//!   results into an agent buffer through the agent's own library API
//!   (`Buffer::commit` + `transport::convert::encode_result`), the bytes
//!   the recorder would write. Tests use it to build a backlog fast.
//! * `outpost-bench drain [--quick] [--results N]` fills a buffer while no
//!   collector runs, starts the real agent (no checks) on it, then starts
//!   the real collector and measures how long the backlog takes to drain,
//!   results/s, and the agent's peak RSS while draining. `bench/drain`
//!   builds the release binaries and runs it; BENCHMARKS.md has figures.
//! * `outpost-bench slow` drains through a link that stalls, then crawls
//!   (the test harness's fault proxy): the agent's RSS must stay flat.
//! * `outpost-bench ingest` measures the collector's durable results/s
//!   with N simulated agents against the tonic and sled floors;
//!   `outpost-bench connections` its memory per idle connected agent.
//! * `outpost-bench footprint` measures the agent beside
//!   blackbox_exporter and the floor (`floor`: a bare hyper + rustls
//!   client) against `target` (a local HTTP/HTTPS page); `sled-baseline`
//!   is a process that only opens an empty sled database as the agent's
//!   buffer does (the agent's RSS minus it is Outpost's own share).
//! * `sizes` and `slo` are the sizes and SLO-evaluation parts; `report`
//!   assembles every part into BENCHMARKS.md and bench/results/latest.json
//!   (`bench/run` runs them all; see BENCHMARKS.md).

mod assemble;
mod connections;
mod drain;
mod fill;
mod floor;
mod footprint;
mod ingest;
mod procfs;
mod procs;
pub mod report;
mod sizes;
mod slo;
mod slow;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "outpost-bench", about = "Outpost delivery benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write synthetic results into an agent buffer.
    Fill {
        /// The buffer directory (created if missing).
        #[arg(long)]
        buffer: PathBuf,
        /// How many results.
        #[arg(long)]
        results: u64,
        /// The buffer's entry bound (default: the agent's default).
        #[arg(long, default_value_t = 2_000_000)]
        max_entries: u64,
        /// The buffer's byte bound (default: the agent's default).
        #[arg(long, default_value_t = 256 * 1024 * 1024)]
        max_bytes: u64,
        /// Results per group commit (a running agent commits a few at a
        /// time; large groups fill fastest).
        #[arg(long, default_value_t = fill::GROUP)]
        group: u64,
    },
    /// Fill a buffer, then measure the real agent draining it into the
    /// real collector.
    Drain(drain::Options),
    /// Drain through a stalled, then throttled link (a slow collector):
    /// the agent's memory must not grow.
    Slow(slow::Options),
    /// Collector ingest: durable results/s with N simulated agents,
    /// against the tonic and sled floors.
    Ingest(ingest::Options),
    /// Collector memory per connected idle agent.
    Connections(connections::Options),
    /// The agent's CPU and memory beside blackbox_exporter and the floor.
    Footprint(footprint::Options),
    /// The footprint benchmark's target: a page over HTTP and HTTPS.
    Target(target::Options),
    /// The floor: bare hyper + rustls GETs at a rate, a new connection each.
    Floor(floor::Options),
    /// Open an empty sled database as the agent's buffer does, print
    /// `open`, and wait until killed (the RSS baseline).
    SledBaseline {
        /// Database directory (created).
        #[arg(long)]
        path: PathBuf,
    },
    /// The sizes part: static binaries, packages, blackbox_exporter.
    Sizes(sizes::Options),
    /// The SLO evaluation part (runs collector's slo_bench example).
    Slo(slo::Options),
    /// Assemble the parts into BENCHMARKS.md and latest.json.
    Report(assemble::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // No runtime for these: the baseline must hold nothing but sled.
    let command = match cli.command {
        Command::SledBaseline { path } => return sled_baseline(&path),
        Command::Sizes(opts) => return exit(sizes::run(opts)),
        Command::Slo(opts) => return exit(slo::run(opts)),
        Command::Report(opts) => return exit(assemble::run(opts)),
        other => other,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Fill {
                buffer,
                results,
                max_entries,
                max_bytes,
                group,
            } => {
                let limits = outpost_agent::buffer::Limits {
                    max_bytes,
                    max_entries,
                };
                let r = fill::fill(&buffer, results, limits, group).await?;
                println!(
                    "filled {} results (seq {}..={}) in {:.2}s ({:.0} results/s), {} bytes, peak RSS {:.1} MiB",
                    r.results,
                    r.first_seq,
                    r.last_seq,
                    r.elapsed.as_secs_f64(),
                    r.results as f64 / r.elapsed.as_secs_f64().max(1e-9),
                    r.bytes,
                    procfs::status_bytes(std::process::id(), "VmHWM").unwrap_or(0) as f64
                        / (1024.0 * 1024.0)
                );
                Ok(())
            }
            Command::Drain(opts) => drain::run(opts).await,
            Command::Slow(opts) => slow::run(opts).await,
            Command::Ingest(opts) => ingest::run(opts).await,
            Command::Connections(opts) => connections::run(opts).await,
            Command::Footprint(opts) => footprint::run(opts).await,
            Command::Target(opts) => target::run(opts).await,
            Command::Floor(opts) => floor::run(opts).await,
            Command::SledBaseline { .. }
            | Command::Sizes(_)
            | Command::Slo(_)
            | Command::Report(_) => Ok(()),
        }
    });
    exit(result)
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `sled-baseline`: open, say so, then block until a signal ends the
/// process (the default SIGTERM action; nothing to clean up).
fn sled_baseline(path: &std::path::Path) -> ExitCode {
    match outpost_agent::buffer::open_sled_only(path) {
        Ok(db) => {
            println!("open");
            // Wait on a message that never comes (the sender is held).
            let (_tx, rx) = std::sync::mpsc::channel::<()>();
            let _ = rx.recv();
            drop(db);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
