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
//! * [`schedule`] runs checks; [`checks`] holds one module per kind.
//! * [`recorder`] is the only writer of the [`buffer`], which is the only
//!   code that touches sled. A result is *produced* once it is flushed.
//! * [`transport`] streams the buffer to the collector and deletes what the
//!   collector acknowledged; it is the only module naming tonic/prost.
//!
//! Shutdown is a parameter: [`run`] takes a future; when it completes, the
//! checks stop, the recorder flushes what it holds, the transport closes,
//! and `run` returns once every task has ended.

#![forbid(unsafe_code)]

pub mod buffer;
pub mod checks;
pub mod config;
pub mod footprint;
pub mod http;
pub mod recorder;
pub mod result;
pub mod schedule;
pub mod signal;
pub mod tls_cert;
pub mod transport;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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
        match Buffer::open(&config.buffer.path, limits) {
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
/// `grace`.
pub async fn run(
    config: Config,
    buffer: Buffer,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
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
    schedule::spawn(
        config.checks.clone(),
        http::Client::new(),
        tx,
        token.clone(),
        &tracker,
    );
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

    shutdown.await;
    tracing::info!("shutting down");
    token.cancel();
    let drained = tokio::time::timeout(grace, async {
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
