//! `outpost-agent smoke`, the restore rehearsal, through the real binary
//! against the simulated portal:
//! * a page that fails and then recovers: `--until-green` exits 0 and
//!   prints the elapsed time and the check that failed on the way;
//! * a page that never recovers: exit 1 at `--timeout`, naming it;
//! * `--no-send` needs no collector; a single round; usage errors exit 2;
//! * the `Ingest/Rehearse` reports really leave the agent (rounds,
//!   `green_unix_ms`, `finished`, results, labels) — caught by a small
//!   capture server implementing the generated `Ingest` service (this
//!   test's own helper), while a service agent with the same config runs
//!   and holds the buffer; a refused first attempt is retried;
//! * SIGTERM ends a run cleanly, reported as finished and not green;
//! * against the real collector: the rehearsal is recorded (exit 0) and
//!   the collector's API shows it met, with the agent's elapsed time.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use outpost_proto::v1 as pb;
use outpost_tests::harness::{bin, eventually, TestAgent, TestCollector};
use outpost_tests::portal::Portal;
use tokio::process::{Child, Command};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// An agent config with a portal page, a page that can be failed, and
/// the collector at `endpoint`.
fn agent_config(dir: &Path, portal: &Portal, endpoint: &str, extra_checks: &str) -> String {
    format!(
        r#"[agent]
id = "smoke-test"

[buffer]
path = "{}"

[collector]
endpoints = ["{endpoint}"]
backoff_initial = "50ms"
backoff_max = "200ms"

[[check]]
name = "home"
interval = "30s"
timeout = "5s"
module = "portal"
[check.page]
url = "{}"
body_contains = ["Home"]

[[check]]
name = "reports"
interval = "30s"
timeout = "5s"
module = "portal"
[check.page]
url = "{}"
{extra_checks}"#,
        dir.join("buffer").display(),
        portal.url("/portal/home"),
        portal.url("/portal/reports"),
    )
}

const NEVER_RECOVERS: &str = r#"
[[check]]
name = "broken"
interval = "30s"
timeout = "5s"
module = "reports"
[check.page]
url = "PORTAL/portal/broken"
"#;

/// A running `outpost-agent smoke`.
fn spawn_smoke(config: &Path, args: &[&str]) -> Result<Child> {
    Command::new(bin("outpost-agent")?)
        .arg("smoke")
        .arg("-c")
        .arg(config)
        .args(args)
        .env("OUTPOST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("spawn outpost-agent smoke")
}

struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn finish(child: Child, bound: Duration) -> Result<Finished> {
    let out = tokio::time::timeout(bound, child.wait_with_output())
        .await
        .context("smoke did not finish in time")??;
    let f = Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!f.stderr.contains("panicked"), "{}", f.stderr);
    Ok(f)
}

/// The restore "finishes" once smoke has run two rounds against the
/// failing reports page; smoke then turns green and exits 0.
async fn recover_after_two_rounds(portal: &Portal, child: Child) -> Result<Finished> {
    eventually(
        Duration::from_secs(30),
        "two rounds against the failing page",
        || async { (portal.hits("/portal/reports") >= 2).then_some(()) },
    )
    .await?;
    portal.faults().clear_path("/portal/reports");
    let out = finish(child, Duration::from_secs(60)).await?;
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    Ok(out)
}

/// The value after `key` on the summary line starting with it.
fn line<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{stdout}"))
}

/// Seconds in "GREEN after 2.3 s (round 3)".
fn green_after(stdout: &str) -> f64 {
    let result = line(stdout, "result:");
    result
        .strip_prefix("GREEN after ")
        .and_then(|r| r.split(" s").next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not green: {result}\n{stdout}"))
}

fn write_config(dir: &Path, text: &str) -> Result<std::path::PathBuf> {
    let path = dir.join("agent.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_recovers_turns_the_rehearsal_green() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let config = write_config(
        dir.path(),
        &agent_config(dir.path(), &portal, "http://127.0.0.1:9", ""),
    )?;
    portal.faults().set_status("/portal/reports", Some(503));
    let child = spawn_smoke(
        &config,
        &[
            "--until-green",
            "--every",
            "1s",
            "--timeout",
            "60s",
            "--no-send",
        ],
    )?;
    let out = recover_after_two_rounds(&portal, child).await?;
    let rounds: u32 = line(&out.stdout, "rounds:").parse()?;
    assert!(rounds >= 3, "{}", out.stdout);
    // At least two rounds one second apart failed before the green one.
    let after = green_after(&out.stdout);
    assert!(after >= 1.0, "green after {after} s: {}", out.stdout);
    let failed = line(&out.stdout, "failed on the way:");
    assert!(
        failed.starts_with("reports (failed in ") && failed.contains("unexpected status 503"),
        "{}",
        out.stdout
    );
    assert!(!failed.contains("home"), "{}", out.stdout);
    assert!(
        out.stdout.contains("round 1: not green (1 of 2 not ok)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("round {rounds}: green (2 of 2 ok)")),
        "{}",
        out.stdout
    );
    assert_eq!(line(&out.stdout, "collector:"), "not sent (--no-send)");
    // The buffer was never opened.
    assert!(!dir.path().join("buffer").exists());
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_never_recovers_fails_at_the_timeout_naming_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let extra = NEVER_RECOVERS.replace("PORTAL", portal.base_url());
    let config = write_config(
        dir.path(),
        &agent_config(dir.path(), &portal, "http://127.0.0.1:9", &extra),
    )?;
    let started = std::time::Instant::now();
    let child = spawn_smoke(
        &config,
        &[
            "--until-green",
            "--every",
            "1s",
            "--timeout",
            "3s",
            "--no-send",
        ],
    )?;
    let out = finish(child, Duration::from_secs(60)).await?;
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    let result = line(&out.stdout, "result:");
    assert!(
        result.starts_with("NOT GREEN: timed out after") && result.ends_with("(--timeout 3s)"),
        "{}",
        out.stdout
    );
    let still = line(&out.stdout, "still failing:");
    assert!(still.starts_with("broken (failed in "), "{}", out.stdout);
    assert!(still.contains("unexpected status 500"), "{}", out.stdout);
    assert!(
        !still.contains("home") && !still.contains("reports"),
        "{}",
        out.stdout
    );
    let rounds: u32 = line(&out.stdout, "rounds:").parse()?;
    assert!((3..=5).contains(&rounds), "{}", out.stdout);
    // Bounded by the timeout plus the last round, not by `--every` sleeps.
    assert!(started.elapsed() < Duration::from_secs(20));
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_selection_and_usage_errors() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let extra = NEVER_RECOVERS.replace("PORTAL", portal.base_url());
    let config = write_config(
        dir.path(),
        &agent_config(dir.path(), &portal, "http://127.0.0.1:9", &extra),
    )?;

    // One round of the portal module: green, no collector needed.
    let out = finish(
        spawn_smoke(&config, &["--select", "module=portal", "--no-send"])?,
        Duration::from_secs(30),
    )
    .await?;
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(line(&out.stdout, "rounds:"), "1");
    assert!(!out.stdout.contains("broken"), "{}", out.stdout);

    // One round of everything: the broken page makes it not green.
    let out = finish(
        spawn_smoke(&config, &["--no-send"])?,
        Duration::from_secs(30),
    )
    .await?;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        line(&out.stdout, "result:").starts_with("NOT GREEN after the single round"),
        "{}",
        out.stdout
    );
    assert!(line(&out.stdout, "still failing:").starts_with("broken"));

    // --check picks by name.
    let out = finish(
        spawn_smoke(&config, &["--check", "home", "--no-send"])?,
        Duration::from_secs(30),
    )
    .await?;
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(!out.stdout.contains("reports "), "{}", out.stdout);

    // Usage errors: exit 2 with a fix.
    for args in [
        &["--check", "nope"][..],
        &["--select", "module=nothing"][..],
        &["--label", "9bad=x"][..],
        &["--every", "soon", "--until-green"][..],
        &["--label", "novalue"][..],
    ] {
        let out = finish(spawn_smoke(&config, args)?, Duration::from_secs(30)).await?;
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
    let out = finish(
        spawn_smoke(&config, &["--check", "nope"])?,
        Duration::from_secs(30),
    )
    .await?;
    assert!(
        out.stderr.contains("use one of: home, reports, broken"),
        "{}",
        out.stderr
    );
    portal.shutdown().await;
    Ok(())
}

// ------------------------------------------------- capture gRPC server ----

/// Implements the generated `Ingest` service and keeps every rehearsal
/// report it accepts. The first `refuse_first` calls are answered
/// `unavailable` (a collector restarting), which the agent must retry.
#[derive(Clone, Default)]
struct Capture {
    reports: Arc<Mutex<Vec<pb::RehearsalReport>>>,
    /// The `authorization` header of every accepted report.
    auth: Arc<Mutex<Vec<String>>>,
    calls: Arc<AtomicU32>,
    refuse_first: u32,
}

impl Capture {
    fn reports(&self) -> Vec<pb::RehearsalReport> {
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[tonic::async_trait]
impl pb::ingest_server::Ingest for Capture {
    type StreamStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::CollectorMessage, Status>>;

    async fn stream(
        &self,
        _request: Request<tonic::Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        Err(Status::unimplemented("capture server: no result stream"))
    }

    async fn rehearse(
        &self,
        request: Request<pb::RehearsalReport>,
    ) -> Result<Response<pb::RehearsalReceipt>, Status> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.refuse_first {
            return Err(Status::unavailable("capture server: starting"));
        }
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        self.auth
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(auth);
        let report = request.into_inner();
        let scenario = report.scenario.clone();
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(report);
        Ok(Response::new(pb::RehearsalReceipt {
            rto_seconds: 3600,
            scenario,
        }))
    }
}

/// Serves `capture` on 127.0.0.1:0 until `stop` is cancelled.
async fn serve(
    capture: Capture,
    stop: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(pb::ingest_server::IngestServer::new(capture))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled_owned())
            .await;
    });
    Ok((addr, task))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehearse_reports_carry_rounds_green_finished_results_and_labels() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let capture = Capture {
        refuse_first: 1,
        ..Capture::default()
    };
    let stop = CancellationToken::new();
    let (addr, server) = serve(capture.clone(), stop.clone()).await?;
    let extra = NEVER_RECOVERS.replace("PORTAL", portal.base_url());
    // The collector settings of the agent apply: here a bearer token.
    let token_file = dir.path().join("collector-token");
    std::fs::write(&token_file, "rehearsal-token-1\n")?;
    let config = write_config(
        dir.path(),
        &agent_config(dir.path(), &portal, &format!("http://{addr}"), &extra).replace(
            "backoff_initial",
            &format!("token_file = \"{}\"\nbackoff_initial", token_file.display()),
        ),
    )?;

    // A service agent with the same config runs and holds the buffer.
    let agent = TestAgent::start_with_config(&config).await?;
    let status_file = dir.path().join("buffer.status");
    eventually(
        Duration::from_secs(30),
        "the service agent's buffer status file",
        || async { status_file.exists().then_some(()) },
    )
    .await?;

    portal.faults().set_status("/portal/reports", Some(503));
    let child = spawn_smoke(
        &config,
        &[
            "--select",
            "module=portal",
            "--label",
            "rehearsal=dr-test",
            "--label",
            "site=b",
            "--scenario",
            "single_service",
            "--until-green",
            "--every",
            "1s",
            "--timeout",
            "60s",
        ],
    )?;
    eventually(Duration::from_secs(30), "two reported rounds", || async {
        (capture.reports().len() >= 2).then_some(())
    })
    .await?;
    portal.faults().clear_path("/portal/reports");
    let out = finish(child, Duration::from_secs(60)).await?;
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        line(&out.stdout, "collector:"),
        format!(
            "recorded; scenario single_service, RTO 1h: met ({:.1} s of 1h)",
            green_after(&out.stdout)
        )
    );

    let reports = capture.reports();
    let rounds: u32 = line(&out.stdout, "rounds:").parse()?;
    // One report per round, in order; the refused first attempt was retried.
    assert_eq!(reports.len() as u32, rounds, "{reports:?}");
    assert_eq!(capture.calls.load(Ordering::SeqCst), rounds + 1);
    let first = &reports[0];
    assert_eq!(first.agent_id, "smoke-test");
    assert_eq!(first.name, "dr-test");
    assert_eq!(first.scenario, "single_service");
    assert_eq!(first.rehearsal_id.len(), 16);
    assert_eq!(
        first.selector.get("module").map(String::as_str),
        Some("portal")
    );
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r.round, i as u32 + 1);
        assert_eq!(r.rehearsal_id, first.rehearsal_id);
        assert_eq!(r.started_unix_ms, first.started_unix_ms);
        let last = i + 1 == reports.len();
        assert_eq!(r.finished, last, "round {}", r.round);
        assert_eq!(r.green_unix_ms.is_some(), last, "round {}", r.round);
        // The selection: the two portal checks, not the broken one.
        let mut names: Vec<&str> = r.results.iter().map(|c| c.check.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["home", "reports"], "round {}", r.round);
        for c in &r.results {
            assert_eq!(c.seq, 0);
            assert_eq!(c.kind, "page");
            assert_eq!(
                c.labels.get("rehearsal").map(String::as_str),
                Some("dr-test")
            );
            assert_eq!(c.labels.get("site").map(String::as_str), Some("b"));
            assert_eq!(c.labels.get("module").map(String::as_str), Some("portal"));
            assert!(c.started_unix_ms >= first.started_unix_ms);
        }
        let reports_check = r.results.iter().find(|c| c.check == "reports").unwrap();
        let ok = reports_check.outcome == pb::Outcome::Ok as i32;
        assert_eq!(ok, last, "round {}: {reports_check:?}", r.round);
        if !last {
            assert_eq!(reports_check.outcome, pb::Outcome::Failed as i32);
            assert_eq!(reports_check.http_status, 503);
            assert_eq!(reports_check.error, "unexpected status 503");
        }
    }
    let auth = capture.auth.lock().unwrap().clone();
    assert_eq!(auth.len(), reports.len());
    assert!(
        auth.iter().all(|a| a == "Bearer rehearsal-token-1"),
        "{auth:?}"
    );
    let green = reports.last().and_then(|r| r.green_unix_ms).unwrap();
    let elapsed_ms = (green - first.started_unix_ms) as f64;
    assert!(
        (elapsed_ms / 1000.0 - green_after(&out.stdout)).abs() < 0.5,
        "green_unix_ms {green} vs printed {}",
        green_after(&out.stdout)
    );

    // The service agent kept its buffer and is still running.
    assert!(!agent.logs.lock().unwrap().contains("panicked"));
    agent.stop().await?;
    stop.cancel();
    server.await?;
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_run_finished_and_not_green() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let capture = Capture::default();
    let stop = CancellationToken::new();
    let (addr, server) = serve(capture.clone(), stop.clone()).await?;
    let extra = NEVER_RECOVERS.replace("PORTAL", portal.base_url());
    let config = write_config(
        dir.path(),
        &agent_config(dir.path(), &portal, &format!("http://{addr}"), &extra),
    )?;
    let child = spawn_smoke(
        &config,
        &["--until-green", "--every", "1s", "--timeout", "60s"],
    )?;
    eventually(Duration::from_secs(30), "a reported round", || async {
        (!capture.reports().is_empty()).then_some(())
    })
    .await?;
    let pid = child.id().context("smoke already exited")?;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    assert!(killed.success());
    let out = finish(child, Duration::from_secs(30)).await?;
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        line(&out.stdout, "result:").starts_with("NOT GREEN: interrupted after"),
        "{}",
        out.stdout
    );
    let reports = capture.reports();
    let last = reports.last().unwrap();
    assert!(last.finished, "{reports:?}");
    assert!(last.green_unix_ms.is_none());
    assert!(reports[..reports.len() - 1].iter().all(|r| !r.finished));
    stop.cancel();
    server.await?;
    portal.shutdown().await;
    Ok(())
}

/// End to end with the real collector: a rehearsal whose page fails and
/// then recovers is recorded (exit 0), and the collector's API shows it
/// met against the scenario's RTO, with the same elapsed time the agent
/// printed and the check that failed on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_records_the_rehearsal_and_judges_its_rto() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let collector = TestCollector::start(&dir.path().join("collector")).await?;
    let config = write_config(
        dir.path(),
        &agent_config(dir.path(), &portal, &collector.endpoint(), ""),
    )?;
    portal.faults().set_status("/portal/reports", Some(503));
    let child = spawn_smoke(
        &config,
        &[
            "--until-green",
            "--every",
            "1s",
            "--timeout",
            "60s",
            "--label",
            "rehearsal=dr-e2e",
            "--scenario",
            "single_service",
        ],
    )?;
    let out = recover_after_two_rounds(&portal, child).await?;
    let said = line(&out.stdout, "collector:");
    assert!(
        said.starts_with("recorded; scenario single_service, RTO 1h: met"),
        "{}",
        out.stdout
    );
    let after = green_after(&out.stdout);
    let rounds: u64 = line(&out.stdout, "rounds:").parse()?;
    let (status, body) =
        outpost_tests::harness::http_get(&collector.http_url("/api/v1/rehearsals")).await?;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body)?;
    let list = v["rehearsals"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "{v}");
    let r = &list[0];
    assert_eq!(r["agent"], "smoke-test");
    assert_eq!(r["name"], "dr-e2e");
    assert_eq!(r["status"], "met", "{r}");
    assert_eq!(r["scenario"], "single_service");
    assert_eq!(r["rto_seconds"], 3_600);
    assert_eq!(r["rounds"].as_u64(), Some(rounds), "{r}");
    assert_eq!(r["finished"], true);
    let elapsed = r["elapsed_seconds"].as_f64().unwrap_or(-1.0);
    assert!(
        (elapsed - after).abs() < 0.1,
        "api {elapsed} s, agent {after} s"
    );
    let failed = r["failed_on_the_way"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(failed.len(), 1, "{r}");
    assert_eq!(failed[0]["check"], "reports");
    assert!(failed[0]["times_failed"].as_u64().unwrap_or(0) >= 2, "{r}");
    assert_eq!(failed[0]["last_outcome"], "ok");
    // The monthly evidence report confirms it, RTO met.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let (month, _) = outpost_tests::harness::utc_month(now_ms);
    let out_md = dir.path().join("report.md");
    let report = outpost_tests::harness::run_bin(
        "outpost-collector",
        &[
            "report",
            "--url",
            &collector.http_url(""),
            "--month",
            &month,
            "--out",
            out_md.to_str().unwrap_or_default(),
            "--format",
            "md",
        ],
    )
    .await?;
    assert_eq!(report.code, Some(0), "report failed: {}", report.stderr);
    let md = std::fs::read_to_string(&out_md)?;
    let row = md
        .lines()
        .find(|l| l.starts_with("| dr-e2e |"))
        .unwrap_or_default();
    assert!(
        md.contains("## Restore rehearsal confirmation (1 rehearsal")
            && row.contains("| RTO met |")
            && row.contains("reports failed"),
        "{md}"
    );
    // Rehearsal results are not the agent's results: nothing was stored.
    let (_, agents) =
        outpost_tests::harness::http_get(&collector.http_url("/api/v1/agents")).await?;
    assert!(!agents.contains("smoke-test"), "{agents}");
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}
