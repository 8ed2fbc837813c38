//! The shipped Prometheus rules and Grafana dashboard stay true to what the
//! collector exports: `outpost-collector rules` passes `promtool check
//! rules` and the unit tests in `tests/promtool/slo_burn_test.yml` (a real
//! outage pages, one transient failure does not), and every metric the
//! dashboard queries is a family in the collector's live `/metrics`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Result};
use outpost_tests::harness::{run_bin, TestCollector};

async fn promtool(args: &[&str]) -> Result<(Option<i32>, String)> {
    let out = tokio::process::Command::new("promtool")
        .args(args)
        .output()
        .await?;
    Ok((
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[tokio::test]
async fn generated_rules_pass_promtool_check_and_unit_tests() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = run_bin("outpost-collector", &["rules"]).await?;
    if out.code != Some(0) {
        bail!("outpost-collector rules failed: {}", out.stderr);
    }
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, &out.stdout)?;
    let (code, text) = promtool(&["check", "rules", &rules.to_string_lossy()]).await?;
    assert_eq!(code, Some(0), "promtool check rules:\n{text}");
    assert!(text.contains("SUCCESS"), "{text}");

    let test_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("promtool/slo_burn_test.yml");
    let test = dir.path().join("slo_burn_test.yml");
    std::fs::copy(&test_src, &test)?;
    let (code, text) = promtool(&["test", "rules", &test.to_string_lossy()]).await?;
    assert_eq!(code, Some(0), "promtool test rules:\n{text}");
    Ok(())
}

fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("outpost_") {
        let start = i + pos;
        let before_ok = start == 0
            || !(bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b':');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if before_ok {
            out.insert(expr[start..end].to_string());
        }
        i = end;
    }
    out
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k == "expr" {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_string());
                    }
                } else {
                    exprs(v, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_exported() -> Result<()> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/grafana/outpost-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    let used: BTreeSet<String> = all.iter().flat_map(|e| metric_names(e)).collect();
    assert!(used.len() >= 20, "the dashboard queries only {used:?}");

    let dir = tempfile::tempdir()?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let metrics = collector.metrics().await?;
    collector.stop().await?;
    let families: BTreeSet<(String, String)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(n, t)| (n.to_string(), t.to_string()))
        })
        .collect();
    let missing: Vec<&String> = used
        .iter()
        .filter(|m| {
            !families.iter().any(|(name, kind)| {
                *name == **m
                    || (kind == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| m.strip_suffix(s) == Some(name.as_str())))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the collector does not export: {missing:?}"
    );
    Ok(())
}

#[test]
fn metric_names_are_extracted_from_promql() {
    let names = metric_names("histogram_quantile(0.9, sum by (le) (rate(outpost_x_bucket[5m]))) / outpost:rec_rule + outpost_y");
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec!["outpost_x_bucket".to_string(), "outpost_y".to_string()]
    );
}
