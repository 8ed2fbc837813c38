//! `outpost-agent smoke`: a restore rehearsal. After a restore, run every
//! check (or a selection) once — or round after round until all are
//! green — print what each round found, and report the rounds to the
//! collector, which keeps them as the rehearsal's record.
//!
//! A round runs every selected check once, concurrently (at most
//! [`CONCURRENCY`] at a time), each under its own timeout; it is *green*
//! when every check's result is `ok` (`degraded` is not green). With
//! `until_green`, rounds start `every` apart (start to start; a longer
//! round is followed at once) until one is green or the next would start
//! after `timeout`; the round running then completes (bounded by the
//! checks' own timeouts). Cancelling the token (SIGINT/SIGTERM in the
//! binary) ends the run at once: checks in flight are abandoned, and the
//! run is finished, not green.
//!
//! Invariants:
//! * **The buffer is never touched**: a service agent with the same config
//!   may be running and hold its lock; results go to the terminal and, as
//!   rehearsal reports, to `Ingest/Rehearse` — never into the result
//!   stream, so they count in no SLO and page no one.
//! * One report per round, one result per check (the main one: a login's
//!   `.refresh` and a report's `pending` polls are left out), each result
//!   labelled with the rehearsal's labels (`rehearsal=NAME` always; a
//!   check's own labels win on a clash). The last report says `finished`;
//!   `green_unix_ms` is set from the first green round on.
//! * Reports go through one task ([`deliver`]) over a bounded channel
//!   ([`REPORT_QUEUE`]; when full, the next round waits), each retried a
//!   bounded number of times (one attempt each after an undelivered one,
//!   until one gets through); after a refusal nothing more is sent, and
//!   every report not recorded is counted in the summary.
//!
//! Exit statuses (the binary): 0 green (and recorded, or `--no-send`);
//! 1 not green (a check still failing at the timeout, after the single
//! round, or interrupted); 2 usage or config error; 3 green but the
//! collector did not record the rehearsal.

mod render;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::checks::{self, Check};
use crate::config::{self, CheckSpec, Config};
use crate::http;
use crate::result::{CheckResult, Outcome};
use crate::schedule;
use crate::session::Sessions;
use crate::transport::rehearse::{Receipt, RehearseError, Reporter, RoundReport};

pub use render::{render_round, render_summary};

/// Checks of one round running at the same time.
pub const CONCURRENCY: usize = 16;
/// Rehearsal labels one run may add (`--label`).
pub const MAX_LABELS: usize = 8;
/// Round reports waiting for the delivery task.
pub const REPORT_QUEUE: usize = 4;
/// Attempts per round report; the last report after an interruption gets
/// fewer, so that Ctrl-C does not hang.
const ATTEMPTS: u32 = 5;
const ATTEMPTS_INTERRUPTED: u32 = 2;
/// The rehearsal's name when `--label rehearsal=NAME` is not given.
pub const DEFAULT_NAME: &str = "smoke";

/// The command line, parsed.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--select KEY=VALUE`: a check runs when it has every one of these.
    pub select: Vec<(String, String)>,
    /// `--check NAME`: only these checks (and only those matching `select`).
    pub checks: Vec<String>,
    /// `--label KEY=VALUE`; `rehearsal` is the name.
    pub labels: Vec<(String, String)>,
    pub scenario: Option<String>,
    pub until_green: bool,
    pub every: Duration,
    pub timeout: Duration,
    /// `false` with `--no-send`.
    pub send: bool,
}

/// A bad command line (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{message}\n  fix: {fix}")]
pub struct UsageError {
    pub message: String,
    pub fix: String,
}

fn usage(message: impl Into<String>, fix: impl Into<String>) -> UsageError {
    UsageError {
        message: message.into(),
        fix: fix.into(),
    }
}

/// Parses `KEY=VALUE` (for clap).
pub fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// What a run does, checked against the config.
#[derive(Debug, Clone)]
pub struct Plan {
    pub checks: Vec<CheckSpec>,
    pub name: String,
    /// Every rehearsal label, `rehearsal=NAME` included.
    pub labels: BTreeMap<String, String>,
    pub selector: BTreeMap<String, String>,
    /// Empty: the collector's default.
    pub scenario: String,
    pub until_green: bool,
    pub every: Duration,
    pub timeout: Duration,
    pub send: bool,
}

fn valid_label_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= config::MAX_LABEL_LEN
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && !k.starts_with("__")
}

/// Checks the options against `cfg`: which checks run, the labels.
pub fn plan(cfg: &Config, opts: &Options) -> Result<Plan, UsageError> {
    let names: Vec<&str> = cfg.checks.iter().map(|c| c.name.as_str()).collect();
    for n in &opts.checks {
        if !names.contains(&n.as_str()) {
            return Err(usage(
                format!("--check {n}: no check of that name in the config"),
                format!("use one of: {}", names.join(", ")),
            ));
        }
    }
    let selector: BTreeMap<String, String> = opts.select.iter().cloned().collect();
    let checks: Vec<CheckSpec> = cfg
        .checks
        .iter()
        .filter(|c| opts.checks.is_empty() || opts.checks.contains(&c.name))
        .filter(|c| selector.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
        .cloned()
        .collect();
    if checks.is_empty() {
        let mut seen: Vec<String> = cfg
            .checks
            .iter()
            .flat_map(|c| c.labels.iter().map(|(k, v)| format!("{k}={v}")))
            .collect();
        seen.sort();
        seen.dedup();
        return Err(usage(
            "no check matches the selection",
            if seen.is_empty() {
                "the checks have no labels; select with --check NAME".to_string()
            } else {
                format!("labels in this config: {}", seen.join(", "))
            },
        ));
    }
    if opts.labels.len() > MAX_LABELS {
        return Err(usage(
            format!(
                "{} --label options, more than {MAX_LABELS}",
                opts.labels.len()
            ),
            "keep the labels you will look the rehearsal up by",
        ));
    }
    let mut labels = BTreeMap::new();
    for (k, v) in &opts.labels {
        if !valid_label_key(k) || v.is_empty() || v.len() > config::MAX_LABEL_LEN {
            return Err(usage(
                format!("--label {k}={v} is not a valid label"),
                format!("label names use a-z A-Z 0-9 _ (not starting with a digit or __); values are 1 to {} bytes", config::MAX_LABEL_LEN),
            ));
        }
        if k == "module" || k == "objective" {
            return Err(usage(
                format!("--label {k}=... would relabel the checks' own {k}"),
                "choose another label name, e.g. --label site=dr-1",
            ));
        }
        if labels.insert(k.clone(), v.clone()).is_some() {
            return Err(usage(
                format!("--label {k} given twice"),
                "give each label once",
            ));
        }
    }
    let name = labels
        .entry("rehearsal".to_string())
        .or_insert_with(|| DEFAULT_NAME.to_string())
        .clone();
    let scenario = opts.scenario.clone().unwrap_or_default();
    if opts.scenario.is_some() && !config::valid_id(&scenario) {
        return Err(usage(
            format!("--scenario {scenario:?} is not a valid scenario name"),
            "use full_platform, single_service, report_subsystem or a scenario named in the collector config",
        ));
    }
    if opts.until_green && (opts.every.is_zero() || opts.timeout.is_zero()) {
        return Err(usage(
            "--every and --timeout must be longer than 0",
            "write e.g. --every 30s --timeout 4h",
        ));
    }
    Ok(Plan {
        checks,
        name,
        labels,
        selector,
        scenario,
        until_green: opts.until_green,
        every: opts.every,
        timeout: opts.timeout,
        send: opts.send,
    })
}

/// One round's outcome per check (in config order).
#[derive(Debug, Clone)]
pub struct Round {
    pub number: u32,
    /// Since the run started.
    pub offset: Duration,
    pub took: Duration,
    /// The main result of each check that finished.
    pub results: Vec<CheckResult>,
    /// Checks abandoned by an interruption.
    pub abandoned: Vec<String>,
}

impl Round {
    /// Every check finished with `ok`.
    pub fn green(&self) -> bool {
        self.abandoned.is_empty() && self.results.iter().all(|r| r.outcome.is_ok())
    }
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Green,
    /// The single round (without `until_green`) was not green.
    NotGreen,
    TimedOut,
    Interrupted,
}

/// A check that was not ok in some round.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub check: String,
    /// Rounds in which it was not ok.
    pub rounds: u32,
    pub last_outcome: Outcome,
    pub last_error: String,
}

/// Whether the collector recorded the rehearsal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// `--no-send`.
    NotSent,
    /// Every round report was recorded; the last receipt.
    Recorded(Receipt),
    /// At least one report was not recorded: why (the first reason), and
    /// how many of how many reports were recorded.
    NotRecorded {
        reason: String,
        recorded: u32,
        reports: u32,
    },
}

/// What the run found, for the summary and the exit status.
#[derive(Debug, Clone)]
pub struct Summary {
    pub name: String,
    pub rehearsal_id: String,
    pub scenario: String,
    pub rounds: u32,
    pub end: End,
    /// From the start to the end of the first green round.
    pub green_after: Option<Duration>,
    pub elapsed: Duration,
    pub timeout: Option<Duration>,
    /// Checks not ok in some round, in config order.
    pub failed_on_the_way: Vec<Failure>,
    /// Checks not ok (or abandoned) in the last round.
    pub still_failing: Vec<Failure>,
    pub delivery: Delivery,
}

impl Summary {
    /// 0 green (and recorded or not sent), 1 not green, 3 green but not
    /// recorded.
    pub fn exit_code(&self) -> u8 {
        match (&self.end, &self.delivery) {
            (End::Green, Delivery::NotRecorded { .. }) => 3,
            (End::Green, _) => 0,
            _ => 1,
        }
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A random rehearsal id: 16 hex digits.
fn rehearsal_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Runs one round: every check once, at most [`CONCURRENCY`] at a time.
async fn round(
    number: u32,
    t0: Instant,
    checks: &[(CheckSpec, Box<dyn Check>)],
    client: &http::Client,
    token: &CancellationToken,
) -> Round {
    let start = Instant::now();
    let mut runs =
        futures_util::stream::iter(checks.iter().enumerate().map(|(i, (spec, check))| {
            async move {
                let ran = schedule::run_once(spec, check.as_ref(), client, token, false).await;
                // The main result is the last of the run with the check's own
                // name: a report's pending polls end before it.
                let main = ran.and_then(|(_, results)| {
                    results.into_iter().rev().find(|r| r.check == spec.name)
                });
                (i, main)
            }
        }))
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    runs.sort_by_key(|(i, _)| *i);
    let mut results = Vec::with_capacity(runs.len());
    let mut abandoned = Vec::new();
    for (i, main) in runs {
        match main {
            Some(r) => results.push(r),
            None => abandoned.push(checks[i].0.name.clone()),
        }
    }
    Round {
        number,
        offset: start.duration_since(t0),
        took: start.elapsed(),
        results,
        abandoned,
    }
}

/// Sends every report it receives, in order; after a refusal it stops
/// sending (and counts what it did not send).
pub async fn deliver(reporter: Reporter, mut rx: mpsc::Receiver<RoundReport>) -> Delivery {
    let mut reports = 0u32;
    let mut recorded = 0u32;
    let mut receipt = None;
    let mut reason: Option<String> = None;
    let mut refused = false;
    let mut undelivered = false;
    while let Some(report) = rx.recv().await {
        reports += 1;
        if refused {
            // Refused before: this one would be refused too.
            continue;
        }
        // After a report that could not be delivered, one attempt each
        // until one gets through: an unreachable collector costs each
        // later round one connect, not a full retry series.
        let attempts = if undelivered {
            1
        } else if report.finished && report.green_unix_ms.is_none() {
            ATTEMPTS_INTERRUPTED
        } else {
            ATTEMPTS
        };
        match reporter.send(&report, attempts).await {
            Ok(r) => {
                recorded += 1;
                receipt = Some(r);
                undelivered = false;
            }
            Err(e) => {
                tracing::warn!(round = report.round, error = %e, "the collector did not record a rehearsal round");
                refused = matches!(e, RehearseError::Refused { .. });
                undelivered = true;
                reason.get_or_insert_with(|| e.to_string());
            }
        }
    }
    match (reason, receipt) {
        (None, Some(r)) => Delivery::Recorded(r),
        (None, None) => Delivery::NotRecorded {
            reason: "no report was sent".into(),
            recorded,
            reports,
        },
        (Some(reason), _) => Delivery::NotRecorded {
            reason,
            recorded,
            reports,
        },
    }
}

/// Runs the rehearsal of `plan` with `cfg`'s collector settings, writing
/// each round's table and the summary to `out`, until green, timeout or
/// `token` is cancelled.
pub async fn run(
    cfg: &Config,
    plan: Plan,
    out: &mut (dyn std::io::Write + Send),
    token: CancellationToken,
) -> Summary {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let deadline = t0 + plan.timeout;
    let id = rehearsal_id();
    // Every login check has a slot, so a selected check finds its login's
    // session whether or not the login itself was selected.
    let sessions = Sessions::new(&cfg.checks);
    let checks: Vec<(CheckSpec, Box<dyn Check>)> = plan
        .checks
        .iter()
        .map(|s| (s.clone(), checks::build(s, &sessions)))
        .collect();
    let client = http::Client::new();

    let (tx, rx) = mpsc::channel(REPORT_QUEUE);
    let delivery = plan.send.then(|| {
        tokio::spawn(deliver(
            Reporter::new(cfg.agent.id.clone(), cfg.collector.clone()),
            rx,
        ))
    });
    let _ = writeln!(
        out,
        "rehearsal {} (id {id}): {} checks{}",
        plan.name,
        checks.len(),
        if plan.until_green {
            format!(
                ", rounds every {} until green or {}",
                humantime::format_duration(plan.every),
                humantime::format_duration(plan.timeout)
            )
        } else {
            String::new()
        }
    );

    let report = |round: &Round, green_unix_ms: Option<i64>, finished: bool| RoundReport {
        rehearsal_id: id.clone(),
        name: plan.name.clone(),
        scenario: plan.scenario.clone(),
        selector: plan.selector.clone(),
        started_unix_ms: unix_ms(started),
        round: round.number,
        results: round
            .results
            .iter()
            .map(|r| {
                let mut r = r.clone();
                for (k, v) in &plan.labels {
                    r.labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                r
            })
            .collect(),
        green_unix_ms,
        finished,
    };

    let mut failures: Vec<Failure> = Vec::new();
    let mut green_unix_ms = None;
    let mut green_after = None;
    let mut number = 0u32;
    let (end, last) = loop {
        number += 1;
        let round_start = Instant::now();
        let r = round(number, t0, &checks, &client, &token).await;
        let interrupted = token.is_cancelled();
        for res in r.results.iter().filter(|res| !res.outcome.is_ok()) {
            match failures.iter_mut().find(|f| f.check == res.check) {
                Some(f) => {
                    f.rounds += 1;
                    f.last_outcome = res.outcome;
                    f.last_error = res.error.clone();
                }
                None => failures.push(Failure {
                    check: res.check.clone(),
                    rounds: 1,
                    last_outcome: res.outcome,
                    last_error: res.error.clone(),
                }),
            }
        }
        let green = r.green();
        if green {
            green_unix_ms = Some(unix_ms(SystemTime::now()));
            green_after = Some(t0.elapsed());
        }
        let next = round_start + plan.every;
        let end = if green {
            Some(End::Green)
        } else if interrupted {
            Some(End::Interrupted)
        } else if !plan.until_green {
            Some(End::NotGreen)
        } else if next > deadline {
            Some(End::TimedOut)
        } else {
            None
        };
        let _ = write!(
            out,
            "{}",
            render_round(&r, plan.until_green && end.is_none(), plan.every)
        );
        let _ = out.flush();
        if plan.send
            && tx
                .send(report(&r, green_unix_ms, end.is_some()))
                .await
                .is_err()
        {
            tracing::error!("the rehearsal report task ended early");
        }
        if let Some(end) = end {
            break (end, r);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = token.cancelled() => {
                // The last report again, now marked finished (the
                // collector replaces the round's earlier copy).
                if plan.send && tx.send(report(&r, green_unix_ms, true)).await.is_err() {
                    tracing::error!("the rehearsal report task ended early");
                }
                break (End::Interrupted, r);
            }
        }
    };
    drop(tx);
    let delivery = match delivery {
        None => Delivery::NotSent,
        Some(task) => task.await.unwrap_or_else(|e| Delivery::NotRecorded {
            reason: format!("the report task failed: {e}"),
            recorded: 0,
            reports: number,
        }),
    };
    // Order failures like the config, and name what the last round left.
    let order = |name: &str| plan.checks.iter().position(|c| c.name == name);
    failures.sort_by_key(|f| order(&f.check));
    let mut still_failing: Vec<Failure> = last
        .results
        .iter()
        .filter(|r| !r.outcome.is_ok())
        .map(|r| Failure {
            check: r.check.clone(),
            rounds: failures
                .iter()
                .find(|f| f.check == r.check)
                .map_or(1, |f| f.rounds),
            last_outcome: r.outcome,
            last_error: r.error.clone(),
        })
        .collect();
    for name in &last.abandoned {
        still_failing.push(Failure {
            check: name.clone(),
            rounds: 0,
            last_outcome: Outcome::Pending,
            last_error: "interrupted before it finished".into(),
        });
    }
    let summary = Summary {
        name: plan.name.clone(),
        rehearsal_id: id,
        scenario: plan.scenario.clone(),
        rounds: number,
        end,
        green_after,
        elapsed: t0.elapsed(),
        timeout: plan.until_green.then_some(plan.timeout),
        failed_on_the_way: failures,
        still_failing,
        delivery,
    };
    let _ = write!(out, "{}", render_summary(&summary));
    let _ = out.flush();
    summary
}

#[cfg(test)]
mod tests;
