//! Bad configuration files: every one exits with status 2 and names the
//! file, line and column and a fix; none panics.

use anyhow::Result;
use outpost_tests::harness::run_bin;

const GOOD: &str = r#"[agent]
id = "a1"

[buffer]
path = "/tmp/outpost-bad-config-never-opened"

[collector]
endpoints = ["http://127.0.0.1:7400"]

[[check]]
name = "home"
interval = "30s"
timeout = "5s"
[check.page]
url = "http://127.0.0.1:8080/"
"#;

/// (description, replace this, with this, expected line, text the message must contain)
const CASES: &[(&str, &str, &str, usize, &str)] = &[
    (
        "syntax error",
        "interval = \"30s\"",
        "interval = \"30s",
        12,
        "fix:",
    ),
    (
        "unknown field",
        "timeout = \"5s\"",
        "timout = \"5s\"",
        13,
        "timout",
    ),
    (
        "missing field",
        "interval = \"30s\"\n",
        "",
        10,
        "missing field `interval`",
    ),
    (
        "zero interval",
        "interval = \"30s\"",
        "interval = \"0s\"",
        12,
        "at least",
    ),
    (
        "timeout > interval",
        "timeout = \"5s\"",
        "timeout = \"1m\"",
        13,
        "never overlaps",
    ),
    (
        "bad url",
        "url = \"http://127.0.0.1:8080/\"",
        "url = \"ftp//x\"",
        15,
        "absolute",
    ),
    (
        "wrong type",
        "interval = \"30s\"",
        "interval = 30",
        12,
        "invalid type",
    ),
    (
        "empty endpoints",
        "endpoints = [\"http://127.0.0.1:7400\"]",
        "endpoints = []",
        8,
        "at least one collector",
    ),
];

#[tokio::test]
async fn every_bad_agent_config_exits_2_with_file_line_column_and_fix() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for (what, from, to, line, needle) in CASES {
        assert!(GOOD.contains(from), "{what}: case does not apply");
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, GOOD.replacen(from, to, 1))?;
        let p = path.to_string_lossy().into_owned();
        let out = run_bin("outpost-agent", &["check-config", "-c", &p]).await?;
        assert_eq!(
            out.code,
            Some(2),
            "{what}: exit status; stderr: {}",
            out.stderr
        );
        let prefix = format!("{p}:{line}:");
        assert!(
            out.stderr.contains(&prefix),
            "{what}: expected {prefix:?} in {:?}",
            out.stderr
        );
        assert!(
            out.stderr.contains("fix: "),
            "{what}: no fix in {:?}",
            out.stderr
        );
        assert!(
            out.stderr.contains(needle),
            "{what}: expected {needle:?} in {:?}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("panicked"),
            "{what}: panicked: {}",
            out.stderr
        );
    }
    // The good one passes.
    let path = dir.path().join("good.toml");
    std::fs::write(&path, GOOD)?;
    let out = run_bin(
        "outpost-agent",
        &["check-config", "-c", &path.to_string_lossy()],
    )
    .await?;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    Ok(())
}

#[tokio::test]
async fn missing_or_binary_config_files_exit_2() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = run_bin(
        "outpost-agent",
        &["check-config", "-c", "/nonexistent/agent.toml"],
    )
    .await?;
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("cannot read config file"),
        "{}",
        out.stderr
    );

    let garbage = dir.path().join("garbage.toml");
    std::fs::write(&garbage, [0xffu8, 0xfe, 0x00, 0x01, 0x80])?;
    let out = run_bin(
        "outpost-agent",
        &["check-config", "-c", &garbage.to_string_lossy()],
    )
    .await?;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"));
    Ok(())
}

#[tokio::test]
async fn bad_collector_config_exits_2_with_position() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("collector.toml");
    std::fs::write(
        &path,
        "[grpc]\nlisten = \"127.0.0.1:7400\"\n\n[store]\nretention = \"two weeks\"\n",
    )?;
    let p = path.to_string_lossy().into_owned();
    let out = run_bin("outpost-collector", &["check-config", "-c", &p]).await?;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("{p}:5:13")), "{}", out.stderr);
    assert!(out.stderr.contains("fix: "), "{}", out.stderr);
    Ok(())
}

#[tokio::test]
async fn bad_rehearsal_and_contact_config_exits_2_with_position() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for (text, at, says) in [
        (
            "[rehearsal]\ndefault_scenario = \"moon\"\n",
            ":2:20",
            "define [scenario.moon]",
        ),
        (
            "[[contact]]\nname = \"desk\"\nrole = \"boss\"\nemail = \"a@b\"\n",
            ":3:8",
            "role = \"operations\"",
        ),
        (
            "[[contact]]\nname = \"desk\"\nrole = \"operations\"\nemail = \"a@b\"\nobjectives = [\"nope\"]\n",
            ":5:14",
            "authentication",
        ),
    ] {
        let path = dir.path().join("collector.toml");
        std::fs::write(&path, text)?;
        let p = path.to_string_lossy().into_owned();
        let out = run_bin("outpost-collector", &["check-config", "-c", &p]).await?;
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert!(out.stderr.contains(&format!("{p}{at}")), "{text}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{text}: {}", out.stderr);
    }
    Ok(())
}
