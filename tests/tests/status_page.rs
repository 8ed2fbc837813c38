//! What people look at (issue #6): the real collector's status page at
//! `/` and the monthly evidence report (`outpost-collector report`), fed
//! by a real agent probing the simulated portal. Both are checked as HTML
//! (names and numbers present, escaped, balanced SVG, no scripts) and
//! rendered in headless Chromium (Debian's `chromium`, installed by
//! scripts/test): the screenshot must be non-trivial and Chromium's log
//! must show no uncaught error and no CSP refusal.
//!
//! `OUTPOST_SCREENSHOT_DIR=docs` keeps the screenshots (docs/status-page.png,
//! docs/evidence-report.png).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use outpost_tests::harness::{eventually, http_get, run_bin, TestAgent, TestCollector};
use outpost_tests::portal::Portal;

mod slo_support;

fn agent_config(id: &str, buffer: &Path, endpoint: &str, portal: &Portal, marker: &Path) -> String {
    format!(
        r#"
[agent]
id = "{id}"
labels = {{ site = "lab-site" }}

[buffer]
path = "{buffer}"

[collector]
endpoints = ["{endpoint}"]
heartbeat = "1s"
backoff_initial = "100ms"
backoff_max = "1s"

[[check]]
name = "home"
interval = "1s"
jitter = 0.0
module = "home"
objective = "portal_availability"
[check.page]
url = "{home}"
body_contains = ["Home"]

[[check]]
name = "broken"
interval = "1s"
jitter = 0.0
module = "alerts"
objective = "portal_availability"
[check.page]
url = "{broken}"

[[check]]
name = "nightly-backup"
interval = "1s"
jitter = 0.0
module = "backup"
labels = {{ purpose = "backup" }}
[check.freshness]
file = "{marker}"
max_age = "30m"
"#,
        marker = marker.display(),
        buffer = buffer.display(),
        home = portal.url("/portal/home"),
        broken = portal.url("/portal/broken"),
    )
}

fn balanced(html: &str, tag: &str) -> bool {
    html.matches(&format!("<{tag}")).count() == html.matches(&format!("</{tag}>")).count()
}

fn chromium() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!("chromium not found; install Debian's chromium (scripts/test does)")
}

/// Screenshots `url` into `out` with headless Chromium; returns its log
/// (stderr). Bounded to 90 s; the profile is a throwaway directory.
async fn screenshot(url: &str, out: &Path, size: &str) -> Result<String> {
    let profile = tempfile::tempdir()?;
    let child = tokio::process::Command::new(chromium()?)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--window-size={size}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting chromium")?;
    let output = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .context("chromium did not finish within 90 s")??;
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        bail!("chromium exited {}: {log}", output.status);
    }
    Ok(log)
}

/// The PNG is there, is a PNG, and is more than a blank page.
fn assert_screenshot(png: &Path, log: &str, what: &str) -> Result<()> {
    let bytes = std::fs::read(png).with_context(|| format!("{what}: no screenshot"))?;
    assert!(bytes.starts_with(b"\x89PNG"), "{what}: not a PNG");
    assert!(
        bytes.len() > 10 * 1024,
        "{what}: screenshot is only {} bytes",
        bytes.len()
    );
    for bad in ["Uncaught", "Refused to"] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(bad)).collect();
        assert!(lines.is_empty(), "{what}: chromium logged {bad}: {lines:?}");
    }
    if let Some(dir) = std::env::var_os("OUTPOST_SCREENSHOT_DIR") {
        let name = png.file_name().context("screenshot name")?;
        std::fs::copy(png, Path::new(&dir).join(name))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_and_evidence_report_render() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let config = dir.path().join("collector.toml");
    let token = dir.path().join("token");
    std::fs::write(&token, "status-token-1\n")?;
    std::fs::write(
        &config,
        format!(
            "[slo]\nevaluate_every = \"200ms\"\n\n[api]\ntoken_file = \"{}\"\n",
            token.display()
        ),
    )?;
    // The last backup finished two hours ago: past the 30 min RPO.
    let marker = dir.path().join("last-backup");
    std::fs::write(&marker, "")?;
    let touched = std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&marker)
        .status()?;
    assert!(touched.success(), "touch -d");
    let collector = TestCollector::start_with(
        &dir.path().join("store"),
        &["-c", config.to_str().unwrap_or_default()],
    )
    .await?;
    let agent_dir = dir.path().join("agent");
    std::fs::create_dir_all(&agent_dir)?;
    let agent = TestAgent::start(
        &agent_dir,
        &agent_config(
            "lab-agent-1",
            &agent_dir.join("buffer"),
            &collector.endpoint(),
            &portal,
            &marker,
        ),
    )
    .await?;

    // The page shows the agent, both checks with their outcomes, and the
    // objective with its measured SLI once the evaluation has folded them.
    let sli30 = eventually(
        Duration::from_secs(60),
        "portal_availability measured over 30d",
        || async {
            let (_, body) = http_get(&collector.http_url("/api/v1/slo")).await.ok()?;
            let slo: serde_json::Value = serde_json::from_str(&body).ok()?;
            let pa = slo["objectives"]
                .as_array()?
                .iter()
                .find(|o| o["name"] == "portal_availability")?
                .clone();
            let w = pa["windows"]
                .as_array()?
                .iter()
                .find(|w| w["window"] == "30d")?
                .clone();
            let (good, bad) = (w["good"].as_u64()?, w["bad"].as_u64()?);
            (good >= 2 && bad >= 2).then(|| w["sli"].as_f64()).flatten()
        },
    )
    .await?;
    // Half the portal_availability runs fail: far below its 99.5% target.
    assert!(sli30 < 0.9, "half the runs fail: {sli30}");
    // The stale backup opens an incident; an operator acknowledges it.
    let id = eventually(
        Duration::from_secs(60),
        "an open backup_rpo_exceeded incident",
        || async {
            let (_, body) = http_get(&collector.http_url("/api/v1/incidents?state=open"))
                .await
                .ok()?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            v["incidents"]
                .as_array()?
                .iter()
                .find(|i| i["rule"] == "backup_rpo_exceeded")?["id"]
                .as_u64()
        },
    )
    .await?;
    let (code, body) = slo_support::http(
        "POST",
        &collector.http_url(&format!("/api/v1/incidents/{id}/ack")),
        &[
            ("authorization", "Bearer status-token-1"),
            ("content-type", "application/json"),
        ],
        r#"{"by": "night-shift"}"#,
    )
    .await?;
    assert_eq!(code, 200, "ack: {body}");
    let page = eventually(
        Duration::from_secs(30),
        "status page with the checks and the acknowledged incident",
        || async {
            let (code, body) = http_get(&collector.http_url("/")).await.ok()?;
            (code == 200
                && body.contains("lab-agent-1 / home: ok")
                && body.contains("lab-agent-1 / broken: failed")
                && body.contains("lab-agent-1 / nightly-backup: stale")
                && body.contains("by night-shift"))
            .then_some(body)
        },
    )
    .await?;
    // The first gauge (portal_availability's SLI) shows the measured
    // value: about half the runs fail.
    let shown: f64 = page
        .split("aria-label='SLI 30d: ")
        .nth(1)
        .and_then(|rest| rest.split('%').next())
        .and_then(|v| v.parse().ok())
        .context("an SLI gauge with a number")?;
    assert!(
        (20.0..=80.0).contains(&shown),
        "SLI shown: {shown}% (API said {sli30})"
    );
    assert!(page.starts_with("<!doctype html>") && page.trim_end().ends_with("</html>"));
    assert!(page.contains("name=viewport") && page.contains("http-equiv=refresh"));
    assert!(!page.contains("<script"), "no scripts on the page");
    for tag in ["svg", "table", "div", "tr"] {
        assert!(balanced(&page, tag), "unbalanced <{tag}>");
    }
    for name in [
        "portal_availability",
        "authentication",
        "lab-agent-1",
        "alerts",
        "home",
        "14.4×",
        "error budget left",
        "Agents (1)",
        "Checks (3 in 3 modules)",
        "backup_rpo_exceeded",
    ] {
        assert!(page.contains(name), "status page lacks {name:?}");
    }
    // The evidence report for this month, in HTML and Markdown.
    let month = this_month();
    let report = dir.path().join("evidence-report.html");
    let url = collector.http_url("");
    let out = run_bin(
        "outpost-collector",
        &[
            "report",
            "--url",
            &url,
            "--month",
            &month,
            "--out",
            report.to_str().unwrap_or_default(),
        ],
    )
    .await?;
    assert_eq!(out.code, Some(0), "report failed: {}", out.stderr);
    let html = std::fs::read_to_string(&report)?;
    for name in [
        "portal_availability",
        "lab-agent-1",
        "SLO attainment",
        "Backup freshness evidence",
        "Agent fleet and data completeness",
        "missed",
        "backup_rpo_exceeded",
        "Backup freshness evidence (1 checks)",
        "nightly-backup",
        "never this month",
    ] {
        assert!(html.contains(name), "report lacks {name:?}");
    }
    assert!(
        !html.contains("not available"),
        "the current month's SLO is available"
    );
    assert!(balanced(&html, "svg") && balanced(&html, "table") && !html.contains("<script"));
    let md = dir.path().join("evidence-report.md");
    let out = run_bin(
        "outpost-collector",
        &[
            "report",
            "--url",
            &url,
            "--month",
            &month,
            "--out",
            md.to_str().unwrap_or_default(),
            "--format",
            "md",
        ],
    )
    .await?;
    assert_eq!(out.code, Some(0), "md report failed: {}", out.stderr);
    let md_text = std::fs::read_to_string(&md)?;
    assert!(md_text.contains(&format!("# Outpost evidence report {month}")));
    assert!(md_text.contains("| lab-agent-1 |"), "{md_text}");
    let row = md_text
        .lines()
        .find(|l| l.starts_with(&format!("| {id} |")))
        .context("the acknowledged incident's row")?;
    assert!(row.contains("backup_rpo_exceeded"), "{row}");
    assert!(
        !row.contains("not acknowledged") && row.contains(" s |"),
        "time to acknowledge in seconds: {row}"
    );
    // A month without the collector's calendar window says so.
    let old = dir.path().join("old.md");
    let out = run_bin(
        "outpost-collector",
        &[
            "report",
            "--url",
            &url,
            "--month",
            "2001-01",
            "--out",
            old.to_str().unwrap_or_default(),
            "--format",
            "md",
        ],
    )
    .await?;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(std::fs::read_to_string(&old)?.contains("not available"));
    // Bad input: a clear error and exit 2.
    let out = run_bin(
        "outpost-collector",
        &[
            "report",
            "--url",
            &url,
            "--month",
            "2026-13",
            "--out",
            old.to_str().unwrap_or_default(),
        ],
    )
    .await?;
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("YYYY-MM"), "{}", out.stderr);

    // Both rendered by a real browser.
    let shots = dir.path().join("shots");
    std::fs::create_dir_all(&shots)?;
    let png = shots.join("status-page.png");
    let log = screenshot(&collector.http_url("/"), &png, "1280,1600").await?;
    assert_screenshot(&png, &log, "status page")?;
    // A phone's width: the layout reflows (one column), still no errors.
    let png = shots.join("status-page-phone.png");
    let log = screenshot(&collector.http_url("/"), &png, "390,844").await?;
    assert_screenshot(&png, &log, "status page on a phone")?;
    let png = shots.join("evidence-report.png");
    let log = screenshot(&format!("file://{}", report.display()), &png, "1280,1600").await?;
    assert_screenshot(&png, &log, "evidence report")?;

    agent.stop().await?;
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}

/// This month as YYYY-MM (UTC), from the system clock.
fn this_month() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 / 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}")
}
