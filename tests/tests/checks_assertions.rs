//! JSON assertions on a page check against the simulated portal's alert
//! queue API: within limits → ok with the depth as the value; over the
//! limit → failed naming the assertion; malformed JSON, a missing field and
//! a string where a number is expected → failed with a clear error.

use anyhow::Result;
use outpost_tests::portal::Portal;
use outpost_tests::probe::{config, probe};

fn queue_check(portal: &Portal, pointer: &str) -> String {
    format!(
        r#"
[[check]]
name = "alert-queue"
interval = "30s"
module = "alerts"
[check.page]
url = "{}"
value_pointer = "/depth"
assert = [
  {{ pointer = "{pointer}", op = "<=", value = 500 }},
  {{ pointer = "/oldest_age_seconds", op = "<=", value = 300 }},
]
"#,
        portal.url("/api/alerts/queue")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_queue_assertions_classify_and_export_the_depth() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let cfg = config(dir.path(), &queue_check(&portal, "/depth"));

    portal.faults().set_alert_queue(12, 30);
    let run = probe(dir.path(), &cfg, "alert-queue", &[]).await?;
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.last("alert-queue").outcome, "ok");
    assert_eq!(run.last("alert-queue").value, Some(12.0));

    portal.faults().set_alert_queue(812, 30);
    let run = probe(dir.path(), &cfg, "alert-queue", &[]).await?;
    assert_eq!(run.code, Some(1));
    let r = run.last("alert-queue");
    assert_eq!(r.outcome, "failed");
    assert_eq!(r.error, "assertion /depth <= 500 failed: got 812");

    portal.faults().set_alert_queue(3, 900);
    let r = probe(dir.path(), &cfg, "alert-queue", &[]).await?;
    assert!(
        r.last("alert-queue")
            .error
            .starts_with("assertion /oldest_age_seconds <= 300 failed"),
        "{}",
        r.stdout
    );

    // A pointer to a field that is not there.
    let missing = config(dir.path(), &queue_check(&portal, "/queue_depth"));
    portal.faults().set_alert_queue(3, 30);
    let r = probe(dir.path(), &missing, "alert-queue", &[]).await?;
    assert_eq!(r.last("alert-queue").outcome, "failed");
    assert!(
        r.last("alert-queue")
            .error
            .contains("/queue_depth is missing"),
        "{}",
        r.stdout
    );

    // A string where a number is expected (the job name of the backup API).
    let mistyped = format!(
        "\n[[check]]\nname = \"backup\"\ninterval = \"30s\"\n[check.page]\nurl = \"{}\"\nassert = [ {{ pointer = \"/job\", op = \">\", value = 1 }} ]\n",
        portal.url("/api/backup/status")
    );
    let r = probe(dir.path(), &config(dir.path(), &mistyped), "backup", &[]).await?;
    assert_eq!(r.last("backup").outcome, "failed");
    assert!(
        r.last("backup")
            .error
            .contains("expected a number, got a string"),
        "{}",
        r.stdout
    );

    // Malformed JSON.
    portal.faults().set_invalid_json("/api/alerts/queue", true);
    let r = probe(dir.path(), &cfg, "alert-queue", &[]).await?;
    assert_eq!(r.last("alert-queue").outcome, "failed");
    assert!(
        r.last("alert-queue").error.contains("invalid JSON"),
        "{}",
        r.stdout
    );
    assert!(!r.stderr.contains("panicked"));

    portal.shutdown().await;
    Ok(())
}
