//! Shared pieces of the evaluation's integration tests (`slo_*`,
//! `incidents_*`): a real Alertmanager on free loopback ports, agent and
//! collector configs, and a small HTTP client with methods and headers.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use outpost_tests::harness::eventually;
use tokio::process::{Child, Command};

pub use outpost_tests::harness::http_request as http;
pub use outpost_tests::prom::free_port;

/// GET returning JSON.
pub async fn get_json(url: &str) -> Result<serde_json::Value> {
    let (status, body) = http("GET", url, &[], "").await?;
    if status != 200 {
        bail!("GET {url}: {status} {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

/// The Alertmanager binary: Debian's name, else upstream's.
pub fn alertmanager_bin() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["prometheus-alertmanager", "alertmanager"] {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!("Alertmanager not found; install Debian's prometheus-alertmanager (scripts/test does)")
}

/// A real Alertmanager with a throwaway config and storage, stopped (by
/// PID) when dropped.
pub struct Alertmanager {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub async fn start() -> Result<Alertmanager> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: 'null'\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: 'null'\n",
        )?;
        let port = free_port()?;
        let child = Command::new(alertmanager_bin()?)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("spawn alertmanager")?;
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        eventually(Duration::from_secs(30), "alertmanager ready", || async {
            matches!(http("GET", &ready, &[], "").await, Ok((200, _))).then_some(())
        })
        .await?;
        Ok(Alertmanager {
            child,
            url,
            _dir: dir,
        })
    }

    /// Active alerts (`GET /api/v2/alerts`).
    pub async fn alerts(&self) -> Result<Vec<serde_json::Value>> {
        let v = get_json(&format!("{}/api/v2/alerts", self.url)).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Stops it by PID and reaps it.
    pub async fn stop(mut self) -> Result<()> {
        self.child.start_kill()?;
        tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await??;
        Ok(())
    }
}

/// An agent config: one site, `checks` appended.
pub fn agent_config(id: &str, site: &str, buffer: &Path, endpoint: &str, checks: &str) -> String {
    format!(
        r#"
[agent]
id = "{id}"
labels = {{ site = "{site}" }}

[buffer]
path = "{}"

[collector]
endpoints = ["{endpoint}"]
heartbeat = "1s"
backoff_initial = "100ms"
backoff_max = "1s"
{checks}
"#,
        buffer.display()
    )
}

/// A 1-second page check counted by the authentication objective (and so
/// by the login rule).
pub fn login_check(url: &str) -> String {
    format!(
        r#"
[[check]]
name = "login"
interval = "1s"
jitter = 0.0
objective = "authentication"
[check.page]
url = "{url}"
"#
    )
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, text)?;
    Ok(p)
}

/// The alert of `alertname` in Alertmanager's list, if any.
pub fn find_alert<'a>(
    alerts: &'a [serde_json::Value],
    alertname: &str,
) -> Option<&'a serde_json::Value> {
    alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == alertname)
}

/// Unix seconds as an RFC 3339 UTC time (`2025-01-05T02:00:00Z`).
pub fn rfc3339(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Now as unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
