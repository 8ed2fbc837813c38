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
//! `confirm_failures` is set; both results are kept. A run's related
//! results (a login's `.refresh`, a report's `pending` polls) are recorded
//! with it, ordered by when they ended; confirmation looks at the main
//! result only.

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::checks::{self, Check, Observation, RunContext};
use crate::config::CheckSpec;
use crate::http;
use crate::result::{CheckResult, Outcome};
use crate::session::Sessions;

/// Grace the scheduler gives a check past its own deadline.
const HARD_CUTOFF_GRACE: Duration = Duration::from_secs(1);

/// Spawns one task per check on `tracker`. Checks naming a login share
/// that login's session slot (one [`Sessions`] for all of them).
pub fn spawn(
    specs: Vec<CheckSpec>,
    client: http::Client,
    sink: mpsc::Sender<CheckResult>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    let sessions = Sessions::new(&specs);
    for spec in specs {
        let (client, sink, shutdown) = (client.clone(), sink.clone(), shutdown.clone());
        let check = checks::build(&spec, &sessions);
        tracker.spawn(async move {
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
    let Some((outcome, first)) = run_once(spec, check, client, shutdown, false).await else {
        return out;
    };
    let confirm = spec.confirm_failures
        && matches!(
            outcome,
            Outcome::Failed | Outcome::Timeout | Outcome::Unreachable
        );
    out.extend(first);
    if confirm {
        if let Some((_, second)) = run_once(spec, check, client, shutdown, true).await {
            out.extend(second);
        }
    }
    out
}

/// Runs `check` once under its timeout: the main result's outcome and
/// every result of the run in the order they ended. `None` when shutdown
/// came first.
pub async fn run_once(
    spec: &CheckSpec,
    check: &dyn Check,
    client: &http::Client,
    shutdown: &CancellationToken,
    confirmation: bool,
) -> Option<(Outcome, Vec<CheckResult>)> {
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
    let wall = t0.elapsed();
    tracing::debug!(check = %spec.name, outcome = %obs.outcome, ms = wall.as_millis() as u64, "check ran");
    let outcome = obs.outcome;
    let mut related = obs.related.clone();
    related.truncate(checks::MAX_RELATED);
    let stamp = |suffix: &str, offset: Duration, duration: Duration, o: Observation| CheckResult {
        check: format!("{}{suffix}", spec.name),
        kind: check.kind(),
        labels: spec.labels.clone(),
        started: started + offset,
        duration,
        phases: o.phases,
        outcome: o.outcome,
        http_status: o.http_status,
        error: o.error,
        value: o.value,
        confirmation,
        tls_cert_days_left: o.tls_cert_days_left,
    };
    let main_duration = obs.elapsed.unwrap_or(wall);
    let mut timed: Vec<(Duration, CheckResult)> = Vec::with_capacity(1 + related.len());
    timed.push((main_duration, stamp("", Duration::ZERO, main_duration, obs)));
    for r in related {
        timed.push((
            r.offset + r.duration,
            stamp(r.suffix, r.offset, r.duration, r.observation),
        ));
    }
    // Stable: the main result stays first among equal end times.
    timed.sort_by_key(|(end, _)| *end);
    Some((outcome, timed.into_iter().map(|(_, r)| r).collect()))
}
