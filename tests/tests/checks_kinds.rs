//! The `report`, `freshness` and `command` kinds against the simulated
//! portal via `outpost-agent probe`: `ok`, `degraded`, `pending`,
//! `timeout`, `stale` and `failed`, with the value each result carries.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use outpost_tests::portal::{CommandOutcome, Portal};
use outpost_tests::probe::{config, probe};

fn report(portal: &Portal, extra: &str) -> String {
    format!(
        r#"
[[check]]
name = "report"
interval = "60s"
timeout = "20s"
module = "reports"
[check.report]
url = "{}"
body = '{{"type": "monthly"}}'
poll_interval = "200ms"
pending_marker = '"pending"'
ready_marker = '"ready"'
{extra}
"#,
        portal.url("/api/reports")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_ready_in_time_is_ok_with_time_to_ready() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    portal
        .faults()
        .set_report_pending_for(Duration::from_millis(800));
    let run = probe(
        dir.path(),
        &config(dir.path(), &report(&portal, "")),
        "report",
        &[],
    )
    .await?;
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let r = run.last("report");
    assert_eq!(r.outcome, "ok");
    let v = r.value.unwrap_or(0.0);
    assert!((0.8..5.0).contains(&v), "time to ready {v}");
    assert!(portal.hits("/api/reports/r1") >= 2, "it polled");
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_report_records_pending_results_then_degraded() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    portal
        .faults()
        .set_report_pending_for(Duration::from_millis(2600));
    let extra = "latency_bound = \"1s\"\npending_every = \"1s\"";
    let run = probe(
        dir.path(),
        &config(dir.path(), &report(&portal, extra)),
        "report",
        &[],
    )
    .await?;
    let all = run.of("report");
    let outcomes: Vec<&str> = all.iter().map(|r| r.outcome.as_str()).collect();
    // One pending result per second of waiting (two, unless a slow machine
    // skipped every poll between 2.0 s and the ready time at 2.6 s), then
    // the final one, in order, with growing values.
    let (last, pending) = all.split_last().expect("report results");
    assert_eq!(last.outcome, "degraded", "{}", run.stdout);
    assert!((1..=2).contains(&pending.len()), "{outcomes:?}");
    assert!(
        pending.iter().all(|r| r.outcome == "pending"),
        "{outcomes:?}"
    );
    for (i, p) in pending.iter().enumerate() {
        assert!(p.value.unwrap_or(0.0) >= (i + 1) as f64, "{}", run.stdout);
    }
    assert!(last.value.unwrap_or(0.0) >= 2.6, "{}", run.stdout);
    assert!(last.error.contains("bound"), "{}", run.stdout);
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_never_ready_times_out_at_the_window() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    portal.faults().set_report_pending_forever();
    let run = probe(
        dir.path(),
        &config(dir.path(), &report(&portal, "window = \"2s\"")),
        "report",
        &[],
    )
    .await?;
    assert_eq!(run.code, Some(1));
    let r = run.last("report");
    assert_eq!(r.outcome, "timeout", "{}", run.stdout);
    assert!(r.error.contains("still pending"), "{}", run.stdout);
    assert!(
        run.elapsed < Duration::from_secs(10),
        "bounded by the window"
    );
    // A report endpoint failing is `failed`.
    portal.faults().set_status("/api/reports/*", Some(500));
    portal
        .faults()
        .set_report_pending_for(Duration::from_millis(100));
    let run = probe(
        dir.path(),
        &config(dir.path(), &report(&portal, "")),
        "report",
        &[],
    )
    .await?;
    assert_eq!(run.last("report").outcome, "failed", "{}", run.stdout);
    portal.shutdown().await;
    Ok(())
}

fn telemetry(portal: &Portal, extra: &str) -> String {
    format!(
        r#"
[[check]]
name = "telemetry"
interval = "60s"
module = "devices"
[check.freshness]
url = "{}"
array = "/devices"
element = "/last_seen"
max_age = "60s"
{extra}

[[check]]
name = "telemetry-ms"
interval = "60s"
[check.freshness]
url = "{0}"
array = "/devices"
element = "/last_seen_ms"
format = "epoch_ms"
max_age = "60s"
value = "stale_count"

[[check]]
name = "backup"
interval = "60s"
module = "backup"
[check.freshness]
url = "{1}"
pointer = "/last_success_epoch"
max_age = "30m"
"#,
        portal.url("/api/telemetry/devices"),
        portal.url("/api/backup/status"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_and_backup_freshness_ok_then_stale() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let cfg = config(dir.path(), &telemetry(&portal, ""));
    let run = probe(dir.path(), &cfg, "telemetry", &[]).await?;
    assert_eq!(run.last("telemetry").outcome, "ok", "{}", run.stdout);
    // Oldest of 5 devices: 5 s + 4 s.
    let oldest = run.last("telemetry").value.unwrap_or(-1.0);
    assert!((8.0..15.0).contains(&oldest), "{oldest}");
    let run = probe(dir.path(), &cfg, "backup", &[]).await?;
    assert_eq!(run.last("backup").outcome, "ok", "{}", run.stdout);
    let age = run.last("backup").value.unwrap_or(-1.0);
    assert!((299.0..320.0).contains(&age), "backup age {age}");

    // Two of five devices an hour old; the backup older than its RPO.
    portal
        .faults()
        .set_stale_devices(2, Duration::from_secs(3600));
    portal.faults().set_backup_age(Duration::from_secs(45 * 60));
    let run = probe(dir.path(), &cfg, "telemetry", &[]).await?;
    let t = run.last("telemetry");
    assert_eq!(t.outcome, "stale", "{}", run.stdout);
    assert!(t.error.contains("2 of 5 (40%)"), "{}", t.error);
    let run = probe(dir.path(), &cfg, "telemetry-ms", &[]).await?;
    assert_eq!(run.last("telemetry-ms").outcome, "stale");
    assert_eq!(run.last("telemetry-ms").value, Some(2.0), "stale count");
    let run = probe(dir.path(), &cfg, "backup", &[]).await?;
    assert_eq!(run.last("backup").outcome, "stale", "{}", run.stdout);
    assert!(run.last("backup").value.unwrap_or(0.0) >= 2700.0);

    // A tolerated share of stale devices passes.
    let cfg = config(dir.path(), &telemetry(&portal, "max_stale_share = 0.5"));
    let run = probe(dir.path(), &cfg, "telemetry", &[]).await?;
    assert_eq!(run.last("telemetry").outcome, "ok", "{}", run.stdout);
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_marker_file_mtime() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let marker = dir.path().join("last-backup-ok");
    std::fs::write(&marker, "")?;
    let checks = format!(
        r#"
[[check]]
name = "backup-marker"
interval = "60s"
[check.freshness]
file = "{}"
max_age = "1h"
"#,
        marker.display()
    );
    let cfg = config(dir.path(), &checks);
    let run = probe(dir.path(), &cfg, "backup-marker", &[]).await?;
    assert_eq!(run.last("backup-marker").outcome, "ok", "{}", run.stdout);
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&marker)?
        .set_modified(two_hours_ago)?;
    let run = probe(dir.path(), &cfg, "backup-marker", &[]).await?;
    let r = run.last("backup-marker");
    assert_eq!(r.outcome, "stale", "{}", run.stdout);
    assert!((7190.0..7300.0).contains(&r.value.unwrap_or(0.0)));
    std::fs::remove_file(&marker)?;
    let run = probe(dir.path(), &cfg, "backup-marker", &[]).await?;
    assert_eq!(
        run.last("backup-marker").outcome,
        "failed",
        "{}",
        run.stdout
    );
    Ok(())
}

fn command(portal: &Portal) -> String {
    format!(
        r#"
[[check]]
name = "reboot"
interval = "60s"
timeout = "10s"
module = "devices"
[check.command]
url = "{}"
body = '{{"command": "reboot"}}'
status_url = "{}"
poll_interval = "200ms"
window = "4s"
"#,
        portal.url("/api/devices/dev-3/commands"),
        portal.url("/api/commands/{id}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_round_trip_ok_failed_and_timeout() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    portal
        .faults()
        .set_command_delay(Duration::from_millis(600));
    let cfg = config(dir.path(), &command(&portal));
    let run = probe(dir.path(), &cfg, "reboot", &[]).await?;
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let rtt = run.last("reboot").value.unwrap_or(0.0);
    assert!((0.6..4.0).contains(&rtt), "round trip {rtt}");

    portal.faults().set_command_outcome(CommandOutcome::Failed);
    let run = probe(dir.path(), &cfg, "reboot", &[]).await?;
    assert_eq!(run.last("reboot").outcome, "failed");
    assert!(
        run.last("reboot").error.contains("\"failed\""),
        "{}",
        run.stdout
    );

    portal.faults().set_command_outcome(CommandOutcome::Never);
    let run = probe(dir.path(), &cfg, "reboot", &[]).await?;
    assert_eq!(run.last("reboot").outcome, "timeout", "{}", run.stdout);
    assert!(
        run.last("reboot").error.contains("running"),
        "{}",
        run.stdout
    );

    // Without status_url, the Location of the answer is polled.
    portal
        .faults()
        .set_command_outcome(CommandOutcome::Executed);
    let cfg = config(
        dir.path(),
        &command(&portal).replace(
            &format!("status_url = \"{}\"\n", portal.url("/api/commands/{id}")),
            "",
        ),
    );
    let run = probe(dir.path(), &cfg, "reboot", &[]).await?;
    assert_eq!(run.last("reboot").outcome, "ok", "{}", run.stdout);
    portal.shutdown().await;
    Ok(())
}
