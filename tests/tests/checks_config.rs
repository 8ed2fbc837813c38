//! Check configuration: the shipped ECTS example stays valid, and bad
//! check settings (a login that does not exist, inline secrets, ...) exit 2
//! with file:line:column and a fix.

use std::path::PathBuf;

use anyhow::Result;
use outpost_tests::harness::run_bin;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../packaging/examples/ects-agent.toml")
}

#[tokio::test]
async fn the_ects_example_config_is_valid() -> Result<()> {
    let path = example();
    let out = run_bin(
        "outpost-agent",
        &["check-config", "-c", &path.to_string_lossy()],
    )
    .await?;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("ok (12 checks)"), "{}", out.stdout);
    // It covers every kind the issue asks for.
    let text = std::fs::read_to_string(&path)?;
    for kind in [
        "[check.login]",
        "[check.page]",
        "[check.report]",
        "[check.freshness]",
        "[check.command]",
        "[check.consistency]",
    ] {
        assert!(text.contains(kind), "{kind} missing from the example");
    }
    Ok(())
}

const BASE: &str = r#"[agent]
id = "a1"

[buffer]
path = "/tmp/outpost-checks-config-never-opened"

[collector]
endpoints = ["http://127.0.0.1:7400"]

[[check]]
name = "idp"
interval = "60s"
[check.login]
flow = "password"
token_url = "http://127.0.0.1:8080/oauth/token"
client_id = "outpost"
username = "alice"
password_env = "PW"

[[check]]
name = "home"
interval = "60s"
login = "idp"
[check.page]
url = "http://127.0.0.1:8080/app/home"
"#;

/// (description, replace this, with this, expected line:column, text the message must contain)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    (usize, usize),
    &'static str,
);
const CASES: &[Case] = &[
    ("unknown login", "login = \"idp\"", "login = \"ipd\"", (23, 9), "no login check has that name"),
    ("inline password", "password_env = \"PW\"", "password = \"hunter2\"", (18, 1), "unknown field `password`"),
    ("two password sources", "password_env = \"PW\"", "password_env = \"PW\"\npassword_file = \"/x\"", (13, 1), "more than once"),
    ("unknown flow", "flow = \"password\"", "flow = \"implicit\"", (14, 8), "unknown login flow"),
    ("refresh with client credentials", "flow = \"password\"", "flow = \"client_credentials\"\nclient_secret_env = \"S\"\nrefresh = true", (16, 11), "RFC 6749"),
    ("login on a login", "[[check]]\nname = \"home\"", "[[check]]\nname = \"marker\"\ninterval = \"60s\"\nlogin = \"idp\"\n[check.freshness]\nfile = \"/x\"\nmax_age = \"1h\"\n\n[[check]]\nname = \"home\"", (23, 9), "cannot use a login"),
    ("auth code without redirect", "flow = \"password\"", "flow = \"authorization_code\"\nissuer = \"http://127.0.0.1:8080\"", (13, 1), "redirect_uri"),
];

#[tokio::test]
async fn bad_check_settings_name_file_line_column() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, BASE)?;
    let p = path.to_string_lossy().into_owned();
    let ok = run_bin("outpost-agent", &["check-config", "-c", &p]).await?;
    assert_eq!(ok.code, Some(0), "the base is valid: {}", ok.stderr);
    for (what, from, to, (line, column), needle) in CASES {
        assert!(BASE.contains(from), "{what}: {from:?} not in BASE");
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
        assert!(!out.stderr.contains("hunter2"), "{what}: secret echoed");
    }
    Ok(())
}
