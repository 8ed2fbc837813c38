//! The benchmark suite's output format: every measurement writes one
//! [`Part`] (its own Markdown tables plus machine-readable figures) into a
//! parts directory; `bench/run` assembles the parts into BENCHMARKS.md
//! (between the generated-block markers) and `bench/results/latest.json`.
//!
//! Invariants: a figure is the median of its runs with min and max kept
//! beside it (never a single run presented as the result); a goal is stated
//! next to the figure and `met` says whether it held — a missed goal stays
//! in the table, marked, with its reason in the part's notes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Median, min and max of repeated runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Stats {
    /// None when there are no finite samples.
    pub fn of(samples: &[f64]) -> Option<Stats> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stats {
            median,
            min: v[0],
            max: v[n - 1],
            runs: n,
        })
    }

    /// `median (min–max)` with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        if self.runs <= 1 {
            format!("{:.*}", digits, self.median)
        } else {
            format!(
                "{:.*} ({:.*}–{:.*})",
                digits, self.median, digits, self.min, digits, self.max
            )
        }
    }
}

/// One named figure for `latest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Dotted, stable name, e.g. `ingest.durable_results_per_s.streams_1000`.
    pub name: String,
    pub unit: String,
    #[serde(flatten)]
    pub stats: Stats,
    /// The goal as text (`<= 0.5x blackbox_exporter`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// Whether the goal held in this run (None: no goal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
}

/// One section of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Stable key; also the file name (`<section>.json`) and the order key.
    pub section: String,
    pub title: String,
    /// Rendered Markdown for BENCHMARKS.md (tables, goals, notes), without
    /// the section heading.
    pub markdown: String,
    pub figures: Vec<Figure>,
    /// True when produced by `--quick` (smaller counts; not comparable).
    pub quick: bool,
}

/// Errors writing or reading parts.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}; check the directory is writable")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a benchmark part: {source}; rerun the benchmark that wrote it")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl Part {
    /// Writes `<dir>/<section>.json` (creating `dir`).
    pub fn write(&self, dir: &Path) -> Result<PathBuf, ReportError> {
        let path = dir.join(format!("{}.json", self.section));
        let werr = |source| ReportError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(werr)?;
        let body = serde_json::to_vec_pretty(self).map_err(|e| ReportError::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&path, body).map_err(werr)?;
        Ok(path)
    }

    /// Reads one part file.
    pub fn read(path: &Path) -> Result<Part, ReportError> {
        let body = std::fs::read(path).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&body).map_err(|source| ReportError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_runs_with_min_and_max() {
        let s = Stats::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, 3));
        let s = Stats::of(&[4.0, 1.0, 2.0, 3.0, f64::NAN]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (2.5, 1.0, 4.0, 4));
        assert!(Stats::of(&[]).is_none());
        assert_eq!(s.show(1), "2.5 (1.0–4.0)");
    }

    #[test]
    fn a_part_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let part = Part {
            section: "ingest".into(),
            title: "Collector ingest".into(),
            markdown: "| a |\n".into(),
            figures: vec![Figure {
                name: "ingest.x".into(),
                unit: "results/s".into(),
                stats: Stats::of(&[1.0, 2.0, 3.0]).unwrap(),
                goal: Some(">= 2".into()),
                met: Some(true),
            }],
            quick: true,
        };
        let path = part.write(dir.path()).unwrap();
        assert_eq!(Part::read(&path).unwrap(), part);
    }
}
