//! The `consistency` check kind through the real agent binary (`probe`)
//! against the simulated portal's device registry and telemetry store:
//! numbers within and beyond tolerance, sets with ids missing on each side,
//! malformed JSON, a missing pointer, a string where a number is expected,
//! a non-array where a set is expected, a failing source; and bad
//! `[check.consistency]` tables exit 2 with file:line:column and a fix.

use anyhow::Result;
use outpost_tests::harness::run_bin;
use outpost_tests::portal::Portal;
use outpost_tests::probe::{config, probe, ProbeRun};

/// A number comparison: the registry's `/count` against the telemetry
/// store's `/devices_reporting`.
fn count_check(portal: &Portal, left_pointer: &str, tolerance: &str) -> String {
    format!(
        r#"
[[check]]
name = "device-count"
interval = "60s"
module = "telemetry"
[check.consistency]
{tolerance}
left = {{ name = "registry", url = "{}", pointer = "{left_pointer}" }}
right = {{ name = "telemetry", url = "{}", pointer = "/devices_reporting" }}
"#,
        portal.url("/api/registry/devices"),
        portal.url("/api/telemetry/summary"),
    )
}

/// A set comparison: registry devices (objects with `id`) against the
/// telemetry store's devices.
fn set_check(portal: &Portal, left: &str, right_pointer: &str, max_missing: u32) -> String {
    format!(
        r#"
[[check]]
name = "device-ids"
interval = "60s"
[check.consistency]
mode = "set"
max_missing = {max_missing}
left = {{ name = "registry", url = "{}", {left} }}
right = {{ name = "telemetry", url = "{}", pointer = "{right_pointer}", id = "/id" }}
"#,
        portal.url("/api/registry/devices"),
        portal.url("/api/telemetry/devices"),
    )
}

/// The probe failed with `outcome` and an error containing `needle`.
fn expect(r: &ProbeRun, check: &str, outcome: &str, needle: &str) {
    let res = r.last(check);
    assert_eq!(res.outcome, outcome, "{needle}: {}", r.stdout);
    assert!(res.error.contains(needle), "{needle}: {}", r.stdout);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
}

async fn run(dir: &std::path::Path, checks: &str, name: &str) -> Result<ProbeRun> {
    let r = probe(dir, &config(dir, checks), name, &[]).await?;
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    Ok(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_within_tolerance_pass_and_beyond_it_fail_with_both_values() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let checks = count_check(&portal, "/count", "abs_tolerance = 2");

    // Registry and telemetry agree: 5 and 5.
    let r = run(dir.path(), &checks, "device-count").await?;
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    let res = r.last("device-count");
    assert_eq!(
        (res.kind.as_str(), res.outcome.as_str()),
        ("consistency", "ok")
    );
    assert_eq!(res.value, Some(0.0));

    // One registered device never reports: 6 against 5, within 2.
    portal.faults().set_registry_drift(0, 1);
    let r = run(dir.path(), &checks, "device-count").await?;
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    assert_eq!(r.last("device-count").outcome, "ok");
    assert_eq!(r.last("device-count").value, Some(-1.0));

    // Three: 8 against 5, beyond 2. Both values and the difference.
    portal.faults().set_registry_drift(0, 3);
    let r = run(dir.path(), &checks, "device-count").await?;
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    let res = r.last("device-count");
    assert_eq!(res.outcome, "failed");
    assert_eq!(res.value, Some(-3.0));
    assert!(
        res.error.contains("left (registry) /count = 8"),
        "{}",
        res.error
    );
    assert!(
        res.error
            .contains("right (telemetry) /devices_reporting = 5"),
        "{}",
        res.error
    );
    assert!(res.error.contains("beyond tolerance"), "{}", res.error);

    // A relative tolerance of 50% of the larger value (8) allows 3.
    let relative = count_check(&portal, "/count", "rel_tolerance = 0.5");
    let r = run(dir.path(), &relative, "device-count").await?;
    assert_eq!(r.last("device-count").outcome, "ok", "{}", r.stdout);

    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets_report_the_ids_missing_on_each_side() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let objects = set_check(
        &portal,
        "pointer = \"/devices\", id = \"/id\"",
        "/devices",
        0,
    );
    let bare_ids = set_check(&portal, "pointer = \"/ids\"", "/devices", 0);

    for checks in [&objects, &bare_ids] {
        let r = run(dir.path(), checks, "device-ids").await?;
        assert_eq!(r.code, Some(0), "{}", r.stdout);
        assert_eq!(r.last("device-ids").outcome, "ok");
        assert_eq!(r.last("device-ids").value, Some(0.0));
    }

    // dev-4 and dev-5 report but are not registered; dev-6 is registered
    // but never reports.
    portal.faults().set_registry_drift(2, 1);
    for checks in [&objects, &bare_ids] {
        let r = run(dir.path(), checks, "device-ids").await?;
        assert_eq!(r.code, Some(1), "{}", r.stdout);
        let res = r.last("device-ids");
        assert_eq!(res.outcome, "failed");
        assert_eq!(res.value, Some(3.0));
        assert!(
            res.error
                .contains("missing_left 2 (only in right (telemetry): dev-4, dev-5)"),
            "{}",
            res.error
        );
        assert!(
            res.error
                .contains("missing_right 1 (only in left (registry): dev-6)"),
            "{}",
            res.error
        );
        assert!(
            res.error.contains("left 4 ids, right 5 ids"),
            "{}",
            res.error
        );
    }

    // Within max_missing.
    let tolerant = set_check(&portal, "pointer = \"/ids\"", "/devices", 3);
    let r = run(dir.path(), &tolerant, "device-ids").await?;
    assert_eq!(r.last("device-ids").outcome, "ok", "{}", r.stdout);
    assert_eq!(r.last("device-ids").value, Some(3.0));

    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_and_failing_sources_fail_clearly_naming_the_side() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    // A pointer to a field that is not there.
    let r = run(
        dir.path(),
        &count_check(&portal, "/total", ""),
        "device-count",
    )
    .await?;
    expect(
        &r,
        "device-count",
        "failed",
        "left (registry): nothing at /total",
    );

    // A string where a number is expected.
    let r = run(
        dir.path(),
        &count_check(&portal, "/updated_by", ""),
        "device-count",
    )
    .await?;
    expect(
        &r,
        "device-count",
        "failed",
        "left (registry): /updated_by is a string \"cmdb-sync\", not a number",
    );

    // A number where a set is expected.
    let checks = set_check(&portal, "pointer = \"/ids\"", "/generated_at", 0);
    let r = run(dir.path(), &checks, "device-ids").await?;
    expect(
        &r,
        "device-ids",
        "failed",
        "right (telemetry): /generated_at is a string, not an array of ids",
    );

    // Malformed JSON.
    let checks = count_check(&portal, "/count", "");
    portal
        .faults()
        .set_invalid_json("/api/registry/devices", true);
    let r = run(dir.path(), &checks, "device-count").await?;
    expect(
        &r,
        "device-count",
        "failed",
        "left (registry): invalid JSON",
    );
    portal.faults().clear_path("/api/registry/devices");

    // A source that answers 503, or 403, is classified like a page.
    portal
        .faults()
        .set_status("/api/telemetry/summary", Some(503));
    let r = run(dir.path(), &checks, "device-count").await?;
    expect(
        &r,
        "device-count",
        "failed",
        "right (telemetry): unexpected status 503",
    );
    portal
        .faults()
        .set_status("/api/telemetry/summary", Some(403));
    let r = run(dir.path(), &checks, "device-count").await?;
    expect(
        &r,
        "device-count",
        "access_denied",
        "right (telemetry): unexpected status 403",
    );
    portal.faults().clear_path("/api/telemetry/summary");

    // A source nobody listens on.
    let dead = checks.replace(
        &portal.url("/api/telemetry/summary"),
        "http://127.0.0.1:9/x",
    );
    let r = run(dir.path(), &dead, "device-count").await?;
    expect(&r, "device-count", "unreachable", "right (telemetry):");

    portal.shutdown().await;
    Ok(())
}

const BASE: &str = r#"[agent]
id = "a1"

[buffer]
path = "/tmp/outpost-consistency-config-never-opened"

[collector]
endpoints = ["http://127.0.0.1:7400"]

[[check]]
name = "device-count"
interval = "60s"
[check.consistency]
abs_tolerance = 2
left = { url = "http://127.0.0.1:8080/api/registry/devices", pointer = "/count" }
right = { url = "http://127.0.0.1:8080/api/telemetry/summary", pointer = "/devices_reporting" }
"#;

#[tokio::test]
async fn bad_consistency_tables_exit_2_with_position_and_fix() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("agent.toml");
    let p = path.to_string_lossy().into_owned();
    std::fs::write(&path, BASE)?;
    let ok = run_bin("outpost-agent", &["check-config", "-c", &p]).await?;
    assert_eq!(ok.code, Some(0), "the base is valid: {}", ok.stderr);
    for (what, from, to, (line, column), needle) in [
        (
            "unknown mode",
            "abs_tolerance = 2",
            "mode = \"sum\"",
            (14, 8),
            "unknown consistency mode",
        ),
        (
            "negative tolerance",
            "abs_tolerance = 2",
            "abs_tolerance = -2",
            (14, 17),
            "at least 0",
        ),
        (
            "missing pointer",
            ", pointer = \"/count\"",
            "",
            (15, 8),
            "missing field `pointer`",
        ),
        (
            "bad pointer",
            "\"/count\"",
            "\"count\"",
            (15, 72),
            "not a JSON pointer",
        ),
        (
            "tolerance in set mode",
            "abs_tolerance = 2",
            "mode = \"set\"\nabs_tolerance = 2",
            (15, 17),
            "for mode = \"number\"",
        ),
    ] {
        std::fs::write(&path, BASE.replacen(from, to, 1))?;
        let out = run_bin("outpost-agent", &["check-config", "-c", &p]).await?;
        assert_eq!(out.code, Some(2), "{what}: {}", out.stderr);
        let at = format!("{p}:{line}:{column}:");
        assert!(
            out.stderr.contains(&at),
            "{what}: expected {at} in {}",
            out.stderr
        );
        assert!(out.stderr.contains(needle), "{what}: {}", out.stderr);
        assert!(out.stderr.contains("fix:"), "{what}: {}", out.stderr);
    }
    Ok(())
}
