//! The SLO evaluation part: runs the collector's `slo_bench` example
//! (`collector/examples/slo_bench.rs`, built by bench/run) several times
//! and turns its printed lines into figures with goals (full evaluation of
//! 1,000 series × 30 days < 50 ms; incremental update per result < 2 µs).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::report::{Figure, Part, Stats};

/// `outpost-bench slo` options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The built example (target/release/examples/slo_bench).
    #[arg(long)]
    example: PathBuf,
    /// Runs (each a full 30-day fill).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where to write the report part.
    #[arg(long)]
    parts: Option<PathBuf>,
}

/// The number after `key` in `text` (first line containing `key`).
fn after(text: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains(key))?;
    let rest = &line[line.find(key)? + key.len()..];
    rest.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

pub fn run(opts: Options) -> Result<()> {
    // (name, label, unit, key in the output, goal)
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Option<f64>,
    );
    let rows: [Row; 6] = [
        (
            "slo.full_evaluation_ms",
            "one full evaluation (1,000 series × 30 days, every objective and rule), median of 50",
            "ms",
            "full evaluation:           median",
            Some(50.0),
        ),
        (
            "slo.full_evaluation_p90_ms",
            "one full evaluation, p90 of 50",
            "ms",
            "p90",
            None,
        ),
        (
            "slo.incremental_us_per_result",
            "incremental fold per result, in memory",
            "µs",
            "incremental fold (memory):",
            Some(2.0),
        ),
        (
            "slo.incremental_with_sled_1_group_us",
            "fold per result with the sled write (a write per group of 10)",
            "µs",
            "one atomic batch per 1 group",
            None,
        ),
        (
            "slo.bucket_memory_mib",
            "bucket memory (estimate)",
            "MiB",
            "bucket memory (estimate):",
            None,
        ),
        (
            "slo.rss_after_fill_mib",
            "process RSS after the fill",
            "MiB",
            "MiB before,",
            None,
        ),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    for run in 0..opts.runs.max(1) {
        let out = std::process::Command::new(&opts.example)
            .output()
            .with_context(|| format!("running {}", opts.example.display()))?;
        if !out.status.success() {
            bail!(
                "{} failed: {}",
                opts.example.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!("slo run {}:\n{text}", run + 1);
        for (i, row) in rows.iter().enumerate() {
            // "fold + sled: X us/result (groups of 10 results, one atomic batch per 1 group(s)": the number is before the key.
            let v = if row.0 == "slo.incremental_with_sled_1_group_us" {
                text.lines()
                    .find(|l| l.contains(row.3))
                    .and_then(|l| after(l, "incremental fold + sled:"))
            } else {
                after(&text, row.3)
            };
            if let Some(v) = v {
                samples[i].push(v);
            }
        }
    }
    let mut md = String::new();
    let mut figures = Vec::new();
    let _ = writeln!(
        md,
        "`collector/examples/slo_bench.rs`, {} run(s): median (min–max).\n",
        opts.runs.max(1)
    );
    let _ = writeln!(md, "| measure | value | goal |");
    let _ = writeln!(md, "|---|---|---|");
    for (i, (name, label, unit, _, goal)) in rows.iter().enumerate() {
        let Some(stats) = Stats::of(&samples[i]) else {
            let _ = writeln!(md, "| {label} | (not printed) | |");
            continue;
        };
        let met = goal.map(|g| stats.median < g);
        let goal_text = goal.map(|g| format!("< {g} {unit}"));
        let _ = writeln!(
            md,
            "| {label} | {} {unit} | {} |",
            stats.show(if *unit == "µs" { 3 } else { 2 }),
            match (&goal_text, met) {
                (Some(g), Some(m)) => format!("{g} — {}", if m { "met" } else { "**missed**" }),
                _ => String::new(),
            }
        );
        figures.push(Figure {
            name: name.to_string(),
            unit: unit.to_string(),
            stats,
            goal: goal_text,
            met,
        });
    }
    if figures.is_empty() {
        bail!("slo_bench printed no figure");
    }
    let part = Part {
        section: "slo".into(),
        title: "SLO evaluation".into(),
        markdown: md,
        figures,
        quick: false,
    };
    println!("{}", part.markdown);
    if let Some(dir) = &opts.parts {
        part.write(dir)?;
    }
    Ok(())
}
