//! The sizes part: the stripped static binaries (`packaging/build`'s
//! output, `target/x86_64-unknown-linux-musl/release`), each package in
//! `target/packages`, and Debian's blackbox_exporter binary for
//! comparison. Files that are missing are listed as missing; `--quick`
//! (CI, no musl build) reports the host binaries it was given instead,
//! marked as such.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::report::{Figure, Part, Stats};

/// The agent's size goal (packaging/test enforces it on the static build).
const AGENT_GOAL: u64 = 6 * 1024 * 1024;

/// `outpost-bench sizes` options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Workspace root (default: the current directory).
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Where to write the report part.
    #[arg(long)]
    parts: Option<PathBuf>,
    /// Report the binaries in --host-bin-dir (debug/host builds) in place of
    /// the static ones when those are missing; marks the part quick.
    #[arg(long)]
    quick: bool,
    /// Host binaries for --quick.
    #[arg(long)]
    host_bin_dir: Option<PathBuf>,
    /// blackbox_exporter binary.
    #[arg(long, default_value = "/usr/bin/prometheus-blackbox-exporter")]
    blackbox: PathBuf,
}

fn size(p: &Path) -> Option<u64> {
    std::fs::metadata(p)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

pub fn run(opts: Options) -> Result<()> {
    let static_dir = opts.root.join("target/x86_64-unknown-linux-musl/release");
    let mut rows: Vec<(String, Option<u64>, String)> = Vec::new();
    let mut figures = Vec::new();
    let mut host_used = false;
    for bin in ["outpost-agent", "outpost-collector"] {
        let (label, path) = match size(&static_dir.join(bin)) {
            Some(_) => (
                format!("`{bin}` (static musl, stripped, x86_64)"),
                static_dir.join(bin),
            ),
            None if opts.quick => {
                let dir = opts
                    .host_bin_dir
                    .clone()
                    .unwrap_or_else(|| opts.root.join("target/debug"));
                host_used = true;
                (
                    format!(
                        "`{bin}` (**host build in {}, not the shipped binary**)",
                        dir.display()
                    ),
                    dir.join(bin),
                )
            }
            None => (
                format!("`{bin}` (static musl): **missing, run packaging/build**"),
                static_dir.join(bin),
            ),
        };
        let bytes = size(&path);
        let goal = (bin == "outpost-agent" && !host_used).then_some(());
        let mut note = String::new();
        if let (Some(b), Some(())) = (bytes, goal) {
            let met = b <= AGENT_GOAL;
            note = format!("≤ 6 MiB — {}", if met { "met" } else { "**missed**" });
            figures.push(Figure {
                name: format!("sizes.{bin}"),
                unit: "bytes".into(),
                stats: Stats {
                    median: b as f64,
                    min: b as f64,
                    max: b as f64,
                    runs: 1,
                },
                goal: Some("<= 6 MiB".into()),
                met: Some(met),
            });
        } else if let Some(b) = bytes {
            figures.push(Figure {
                name: format!("sizes.{bin}{}", if host_used { ".host_build" } else { "" }),
                unit: "bytes".into(),
                stats: Stats {
                    median: b as f64,
                    min: b as f64,
                    max: b as f64,
                    runs: 1,
                },
                goal: None,
                met: None,
            });
        }
        rows.push((label, bytes, note));
    }
    let packages = opts.root.join("target/packages");
    let mut pkgs: Vec<PathBuf> = std::fs::read_dir(&packages)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.to_string_lossy();
                    n.ends_with(".deb") || n.ends_with(".rpm") || n.ends_with(".tar.gz")
                })
                .collect()
        })
        .unwrap_or_default();
    pkgs.sort();
    for p in &pkgs {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = size(p);
        if let Some(b) = bytes {
            let key: String = name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            figures.push(Figure {
                name: format!("sizes.package.{key}"),
                unit: "bytes".into(),
                stats: Stats {
                    median: b as f64,
                    min: b as f64,
                    max: b as f64,
                    runs: 1,
                },
                goal: None,
                met: None,
            });
        }
        rows.push((format!("package `{name}`"), bytes, String::new()));
    }
    if pkgs.is_empty() {
        rows.push((
            "packages (.deb, .rpm)".into(),
            None,
            "not built: run packaging/build".into(),
        ));
    }
    let bb = size(&opts.blackbox);
    if let Some(b) = bb {
        figures.push(Figure {
            name: "sizes.blackbox_exporter".into(),
            unit: "bytes".into(),
            stats: Stats {
                median: b as f64,
                min: b as f64,
                max: b as f64,
                runs: 1,
            },
            goal: None,
            met: None,
        });
    }
    rows.push((
        format!(
            "`{}` (Debian's package, for comparison)",
            opts.blackbox.display()
        ),
        bb,
        String::new(),
    ));
    if figures.is_empty() {
        bail!("no binary found to measure");
    }
    let mut md = String::new();
    let _ = writeln!(md, "| file | bytes | MiB | goal |");
    let _ = writeln!(md, "|---|---|---|---|");
    for (label, bytes, note) in rows {
        let (b, m) = bytes.map_or(("missing".to_string(), "—".to_string()), |b| {
            (b.to_string(), format!("{:.2}", b as f64 / 1048576.0))
        });
        let _ = writeln!(md, "| {label} | {b} | {m} | {note} |");
    }
    let part = Part {
        section: "sizes".into(),
        title: "Sizes".into(),
        markdown: md,
        figures,
        quick: opts.quick,
    };
    println!("{}", part.markdown);
    if let Some(dir) = &opts.parts {
        part.write(dir)?;
    }
    Ok(())
}
