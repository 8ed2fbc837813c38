//! Runs each check on its interval, spread with jitter, never overlapping
//! itself, until shutdown.
//!
//! One task per check. The first run starts after a random offset within
//! `jitter × interval` so that many checks (and many agents) do not fire
//! together; after that runs are `interval` apart, start to start. A run
//! that overruns is not doubled up: the next one starts when it ends. Each
//! run is bounded by the check's timeout (the check itself honours the
//! deadline; the scheduler cuts it off 1 s later regardless and records a
//! `timeout`). A failed run is re-run once at once when
//! `confirm_failures` is set; both results are kept.

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::checks::{Check, Observation, RunContext};
use crate::config::CheckSpec;
use crate::http;
use crate::result::{CheckResult, Outcome};

/// Grace the scheduler gives a check past its own deadline.
const HARD_CUTOFF_GRACE: Duration = Duration::from_secs(1);

/// Spawns one task per check on `tracker`.
pub fn spawn(
    checks: Vec<CheckSpec>,
    client: http::Client,
    sink: mpsc::Sender<CheckResult>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    for spec in checks {
        let (client, sink, shutdown) = (client.clone(), sink.clone(), shutdown.clone());
        tracker.spawn(async move {
            let check = spec.kind.build();
            let spread = spec.interval.mul_f64(spec.jitter * rand::random::<f64>());
            tokio::select! {
                _ = tokio::time::sleep(spread) => {}
                _ = shutdown.cancelled() => return,
            }
            let mut next = Instant::now();
            loop {
                next += spec.interval;
                for result in run_with_confirmation(&spec, check.as_ref(), &client, &shutdown).await
                {
                    if sink.send(result).await.is_err() {
                        return;
                    }
                }
                let now = Instant::now();
                if next < now {
                    next = now;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        });
    }
}

/// One run, plus a confirmation run if it failed and the check asks for
/// it. Empty if shutdown interrupted the run.
pub async fn run_with_confirmation(
    spec: &CheckSpec,
    check: &dyn Check,
    client: &http::Client,
    shutdown: &CancellationToken,
) -> Vec<CheckResult> {
    let mut out = Vec::with_capacity(2);
    let Some(first) = run_once(spec, check, client, shutdown, false).await else {
        return out;
    };
    let confirm = spec.confirm_failures
        && matches!(
            first.outcome,
            Outcome::Failed | Outcome::Timeout | Outcome::Unreachable
        );
    out.push(first);
    if confirm {
        if let Some(second) = run_once(spec, check, client, shutdown, true).await {
            out.push(second);
        }
    }
    out
}

/// Runs `check` once under its timeout. `None` when shutdown came first.
pub async fn run_once(
    spec: &CheckSpec,
    check: &dyn Check,
    client: &http::Client,
    shutdown: &CancellationToken,
    confirmation: bool,
) -> Option<CheckResult> {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let ctx = RunContext {
        http: client.clone(),
        deadline: t0 + spec.timeout,
    };
    let observed = tokio::select! {
        o = tokio::time::timeout_at(ctx.deadline + HARD_CUTOFF_GRACE, check.run(&ctx)) => o,
        _ = shutdown.cancelled() => return None,
    };
    let obs = observed.unwrap_or_else(|_| {
        Observation::bare(
            Outcome::Timeout,
            format!("no answer within {} ms", spec.timeout.as_millis()),
        )
    });
    let duration = t0.elapsed();
    tracing::debug!(check = %spec.name, outcome = %obs.outcome, ms = duration.as_millis() as u64, "check ran");
    Some(CheckResult {
        check: spec.name.clone(),
        kind: check.kind(),
        labels: spec.labels.clone(),
        started,
        duration,
        phases: obs.phases,
        outcome: obs.outcome,
        http_status: obs.http_status,
        error: obs.error,
        value: obs.value,
        confirmation,
        tls_cert_days_left: obs.tls_cert_days_left,
    })
}
