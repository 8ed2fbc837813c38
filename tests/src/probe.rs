//! Runs `outpost-agent probe NAME -c CONFIG` on a config text and parses
//! what it prints: one block per result (`check:`, `outcome:`, `error:`,
//! `value:`, `duration:` lines), blocks separated by blank lines.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::Command;

use crate::harness::bin;

/// One printed result.
#[derive(Debug, Clone, Default)]
pub struct Printed {
    pub check: String,
    pub kind: String,
    pub outcome: String,
    pub error: String,
    pub value: Option<f64>,
    pub duration_ms: f64,
    pub http_status: Option<u16>,
}

/// What a probe run gave.
#[derive(Debug)]
pub struct ProbeRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub results: Vec<Printed>,
    /// Wall time of the whole process.
    pub elapsed: Duration,
}

impl ProbeRun {
    /// The results of check `name` (exact).
    pub fn of(&self, name: &str) -> Vec<&Printed> {
        self.results.iter().filter(|r| r.check == name).collect()
    }

    /// The last result of check `name`; panics with the output if none.
    pub fn last(&self, name: &str) -> &Printed {
        match self.of(name).last() {
            Some(r) => r,
            None => panic!("no result for {name}:\n{}\n{}", self.stdout, self.stderr),
        }
    }
}

/// Parses the probe's stdout.
pub fn parse(stdout: &str) -> Vec<Printed> {
    let mut out: Vec<Printed> = Vec::new();
    for line in stdout.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "check" => {
                let (name, kind) = value.split_once(' ').unwrap_or((value, ""));
                out.push(Printed {
                    check: name.to_string(),
                    kind: kind.trim_matches(['(', ')']).to_string(),
                    ..Printed::default()
                });
            }
            _ => {
                let Some(r) = out.last_mut() else { continue };
                match key {
                    "outcome" => {
                        r.outcome = value.split_whitespace().next().unwrap_or("").to_string()
                    }
                    "error" => r.error = value.to_string(),
                    "value" => r.value = value.parse().ok(),
                    "http status" => r.http_status = value.parse().ok(),
                    "duration" => {
                        r.duration_ms = value.trim_end_matches(" ms").parse().unwrap_or(f64::NAN)
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// Writes `config` to `dir/agent.toml` and probes `check` with `env` set.
pub async fn probe(
    dir: &Path,
    config: &str,
    check: &str,
    env: &[(&str, &str)],
) -> Result<ProbeRun> {
    let path = dir.join("agent.toml");
    tokio::fs::write(&path, config).await?;
    let started = std::time::Instant::now();
    let mut cmd = Command::new(bin("outpost-agent")?);
    cmd.arg("probe")
        .arg(check)
        .arg("-c")
        .arg(&path)
        .env("OUTPOST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .context("probe did not finish within 120s")??;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok(ProbeRun {
        code: out.status.code(),
        results: parse(&stdout),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    })
}

/// An agent config with `checks` appended (buffer in `dir`, collector on
/// a loopback port nothing needs to listen on for `probe`).
pub fn config(dir: &Path, checks: &str) -> String {
    format!(
        "[agent]\nid = \"probe-test\"\n\n[buffer]\npath = \"{}\"\n\n[collector]\nendpoints = [\"http://127.0.0.1:9\"]\n{checks}",
        dir.join("buffer").display()
    )
}
