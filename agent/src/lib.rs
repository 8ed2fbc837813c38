//! `outpost-agent`: the edge probe agent.
//!
//! Data path inside the agent:
//!
//! ```text
//! config ──► schedule (one task per check) ──► recorder ──► buffer (sled)
//!                 │ checks::Check::run                        │
//!                 └─ http::Client (hyper + rustls)            ▼
//!                                              transport ──► collector (gRPC)
//! ```
//!
//! * [`config`] validates everything before anything starts.
//! * [`schedule`] runs checks; [`checks`] holds one module per kind;
//!   [`session`] shares each login's session with the checks naming it.
//! * [`recorder`] is the only writer of the [`buffer`], which is the only
//!   code that touches sled. A result is *produced* once it is flushed.
//! * [`transport`] streams the buffer to the collector and deletes what the
//!   collector acknowledged; it is the only module naming tonic/prost.
//!
//! Shutdown is a parameter: [`run`] takes a future; when it completes, the
//! checks stop, the recorder flushes what it holds, the transport closes,
//! and `run` returns once every task has ended.
//!
//! Reload ([`run_with`], SIGHUP in the binary): the config file is read and
//! validated again; an invalid one is logged and the running config kept;
//! a valid one replaces the check schedule (and the `[targets]` CAs) only —
//! the buffer, the recorder
//! and the transport (with its collector connection) keep running, so a
//! reload loses nothing. `[agent]`, `[buffer]` and `[collector]` changes
//! need a restart and are logged as such. systemd hears `READY=1` once the
//! tasks run, `WATCHDOG=1` from the main loop, `STOPPING=1` at shutdown.

#![forbid(unsafe_code)]

pub mod buffer;
pub mod checks;
pub mod cli;
pub mod config;
pub mod footprint;
pub mod http;
pub mod recorder;
pub mod result;
pub mod schedule;
pub mod seal;
pub mod session;
pub mod signal;
pub mod smoke;
pub mod tls_cert;
pub mod transport;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use outpost_sd_notify::Notifier;

use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::buffer::{Buffer, BufferError, Limits};
use crate::config::Config;

/// How long the agent waits for a buffer another process holds (an
/// `outpost-agent buffer` inspecting it, an old agent still stopping).
pub const BUFFER_LOCK_WAIT: Duration = Duration::from_secs(30);

/// Opens the buffer configured in `config`, moving a corrupt one aside
/// with a loud log. A buffer locked by another process is waited for (up
/// to [`BUFFER_LOCK_WAIT`]), never moved aside.
pub async fn open_buffer(config: &Config) -> Result<Buffer, BufferError> {
    let limits = Limits {
        max_bytes: config.buffer.max_bytes,
        max_entries: config.buffer.max_entries,
    };
    let deadline = tokio::time::Instant::now() + BUFFER_LOCK_WAIT;
    let mut warned = false;
    let (buffer, report) = loop {
        // The key is read for every attempt (it is moved into the buffer).
        let sealer = match &config.buffer.encryption_key_file {
            None => seal::Sealer::none(),
            Some(path) => seal::Sealer::from_key_file(path).map_err(|e| BufferError::Seal {
                path: config.buffer.path.clone(),
                reason: e.to_string(),
            })?,
        };
        match Buffer::open_sealed(&config.buffer.path, limits, sealer) {
            Err(BufferError::Locked { .. }) if tokio::time::Instant::now() < deadline => {
                if !warned {
                    warned = true;
                    tracing::warn!(path = %config.buffer.path.display(),
                        "buffer is locked by another process; waiting for it");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => break other?,
        }
    };
    if let Some(aside) = report.moved_aside {
        tracing::error!(
            path = %config.buffer.path.display(),
            moved_to = %aside.display(),
            reason = report.reason.as_deref().unwrap_or(""),
            "BUFFER WAS UNREADABLE: moved it aside and started a fresh one; results in it were not delivered"
        );
    }
    Ok(buffer)
}

/// Runs the agent until `shutdown` completes, then drains for at most
/// `grace`. No reloads, no service-manager notifications.
pub async fn run(
    config: Config,
    buffer: Buffer,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let options = RunOptions {
        grace,
        reload: None,
        notifier: Notifier::disabled(),
    };
    run_with(config, buffer, shutdown, options).await;
}

/// How [`run_with`] runs besides its config: drain bound, reload source,
/// and the line to systemd.
pub struct RunOptions {
    /// Longest drain after shutdown.
    pub grace: Duration,
    /// Where reload requests come from; `None`: never reload.
    pub reload: Option<Reload>,
    /// `READY=1` / `WATCHDOG=1` / `STOPPING=1` go here.
    pub notifier: Notifier,
}

/// A reload source: each request re-reads `path`.
pub struct Reload {
    pub path: PathBuf,
    pub requests: signal::Hangups,
}

/// Longest wait for the old check tasks to stop on a reload. They stop at
/// once on cancellation; this only bounds a pathological case.
const RELOAD_STOP_BOUND: Duration = Duration::from_secs(10);

/// [`run`] with reloads and systemd notifications (see the module doc).
pub async fn run_with(
    config: Config,
    buffer: Buffer,
    shutdown: impl Future<Output = ()>,
    options: RunOptions,
) {
    let RunOptions {
        grace,
        mut reload,
        notifier,
    } = options;
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let produced = Arc::new(Notify::new());
    let (tx, rx) = mpsc::channel(recorder::CHANNEL_CAPACITY);

    let recorder_stats = Arc::new(recorder::RecorderStats::default());
    let recorder = tokio::spawn(recorder::run(
        buffer.clone(),
        rx,
        produced.clone(),
        recorder_stats,
    ));
    let mut client = http::Client::for_targets(&config.targets);
    let mut checks = Schedule::start(&config, &client, &tx, &token);
    // delivery (#4): buffer recovery after write failures + status file.
    tracker.spawn(buffer::maintain(buffer.clone(), token.clone()));
    let progress = Arc::new(transport::Progress::default());
    tracker.spawn(transport::run(
        config.agent.clone(),
        config.collector.clone(),
        buffer,
        produced,
        progress,
        token.clone(),
    ));
    tracker.close();
    tracing::info!(agent = %config.agent.id, checks = config.checks.len(), "agent running");
    notify(
        &notifier,
        notifier.ready(&format!("probing {} checks", config.checks.len())),
    );

    let mut current = config;
    let mut watchdog = notifier.watchdog_interval().map(tokio::time::interval);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            path = next_reload(&mut reload) => {
                if let Some(next) = reload_config(&path, &current, &notifier) {
                    checks.stop().await;
                    if next.targets != current.targets {
                        client = http::Client::for_targets(&next.targets);
                    }
                    checks = Schedule::start(&next, &client, &tx, &token);
                    tracing::info!(path = %path.display(), checks = next.checks.len(), "config reloaded; check schedule restarted, buffer and transport kept");
                    notify(&notifier, notifier.status(&format!("probing {} checks (reloaded)", next.checks.len())));
                    current.checks = next.checks;
                    current.targets = next.targets;
                }
            }
            _ = tick(&mut watchdog) => notify(&notifier, notifier.watchdog()),
        }
    }
    tracing::info!("shutting down");
    notify(&notifier, notifier.stopping());
    token.cancel();
    drop(tx);
    let drained = tokio::time::timeout(grace, async {
        checks.tracker.wait().await;
        tracker.wait().await;
        let _ = recorder.await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "tasks did not stop within the grace period"
        );
    }
}

/// The running check tasks of one config generation.
struct Schedule {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Schedule {
    fn start(
        config: &Config,
        client: &http::Client,
        tx: &mpsc::Sender<result::CheckResult>,
        parent: &CancellationToken,
    ) -> Schedule {
        let token = parent.child_token();
        let tracker = TaskTracker::new();
        schedule::spawn(
            config.checks.clone(),
            client.clone(),
            tx.clone(),
            token.clone(),
            &tracker,
        );
        tracker.close();
        Schedule { token, tracker }
    }

    /// Cancels the checks and waits (bounded) until their tasks ended.
    async fn stop(&self) {
        self.token.cancel();
        if tokio::time::timeout(RELOAD_STOP_BOUND, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                bound_s = RELOAD_STOP_BOUND.as_secs(),
                "old checks did not stop in time; they end on their own"
            );
        }
    }
}

/// Next reload request's path; pending forever without a reload source.
async fn next_reload(reload: &mut Option<Reload>) -> PathBuf {
    match reload {
        Some(r) => {
            r.requests.recv().await;
            r.path.clone()
        }
        None => std::future::pending().await,
    }
}

/// Next watchdog tick; pending forever when no watchdog is armed.
async fn tick(watchdog: &mut Option<tokio::time::Interval>) {
    match watchdog {
        Some(iv) => {
            iv.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Reads and validates the config again. `None` (logged) when invalid.
fn reload_config(path: &std::path::Path, current: &Config, notifier: &Notifier) -> Option<Config> {
    tracing::info!(path = %path.display(), "SIGHUP: reloading the config");
    let next = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reload refused: the new config is invalid; still running the previous one");
            notify(
                notifier,
                notifier.status(
                    "reload refused: invalid config (see the log); running the previous one",
                ),
            );
            return None;
        }
    };
    // Debug text stands in for equality: these settings hold plain data.
    let sections = [
        (
            "agent",
            format!("{:?}", current.agent) != format!("{:?}", next.agent),
        ),
        (
            "buffer",
            format!("{:?}", current.buffer) != format!("{:?}", next.buffer),
        ),
        (
            "collector",
            format!("{:?}", current.collector) != format!("{:?}", next.collector),
        ),
    ];
    for (section, changed) in sections {
        if changed {
            tracing::warn!(
                section,
                "[{section}] changed: it applies after a restart, not on reload"
            );
        }
    }
    Some(next)
}

/// Logs a failed notification; systemd notices the consequences itself.
fn notify(notifier: &Notifier, sent: Result<(), outpost_sd_notify::NotifyError>) {
    if let Err(e) = sent {
        tracing::warn!(error = %e, enabled = notifier.is_enabled(), "cannot notify the service manager");
    }
}
