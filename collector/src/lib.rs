//! `outpost-collector`: receives agents' results over gRPC, stores them
//! durably and exactly once, and serves them to people and Prometheus.
//!
//! ```text
//! agents ──gRPC──► ingest (thin: validate, convert) ──mpsc──► store task (sled)
//!                                                               │ flush, then ack
//!                                                               ▼
//!                               live view ◄── after each durable group
//!                                  │
//!                    http: /metrics, /api/v1/*, status page
//! ```
//!
//! * [`ingest`] authenticates the stream's hello and converts messages
//!   (`ingest::convert` is the only place naming prost types besides
//!   `ingest` itself);
//! * [`store`] owns sled and is driven by one task;
//! * [`live`] is the in-memory view the outputs read; [`metrics`] owns
//!   every metric name; [`http`] serves.
//!
//! Shutdown is a parameter of [`run`].

#![forbid(unsafe_code)]

pub mod codec;
pub mod config;
pub mod http;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod model;
pub mod signal;
pub mod status_page;
pub mod store;

// ---- evaluation: SLOs, escalation rules, incidents, receivers (issue #5)
pub mod api;
pub mod cli;
pub mod clock;
pub mod engine;
pub mod escalation;
pub mod evaluator;
pub mod incidents;
pub mod maintenance;
pub mod notify;
pub mod slo;
pub mod store_slo;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::live::Live;

/// A failure that stops the collector.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("grpc server: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// How often retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Runs the collector on the given (already bound) listeners until
/// `shutdown` completes; then stops accepting, ends streams, and flushes.
pub async fn run(
    config: Config,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    run_with_clock(config, grpc, http, shutdown, Arc::new(clock::SystemClock)).await
}

/// As [`run`], with the evaluation's clock injected (tests).
pub async fn run_with_clock(
    config: Config,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()>,
    clock: clock::SharedClock,
) -> Result<(), RunError> {
    let store = store::Store::open(&config.store_path)?;
    let live = Arc::new(Mutex::new(Live::new(config.max_series_per_agent)));
    // ---- evaluation (issue #5): restore, then observe the store task.
    let eval_cfg = config.evaluation.clone();
    let slo_store = store_slo::SloStore::open(&store)?;
    let mut engine = engine::Engine::new(eval_cfg.engine.clone());
    evaluator::restore(&mut engine, &store, &slo_store, clock.now_ms())?;
    let (results_tx, results_rx) = tokio::sync::mpsc::channel(evaluator::RESULTS_CAPACITY);
    let (handle, store_task) = store::spawn_observed(store, live.clone(), Some(results_tx));
    let token = CancellationToken::new();
    let tasks = TaskTracker::new();
    let sessions = TaskTracker::new();
    let external_url = eval_cfg.external_url.clone().unwrap_or_else(|| {
        http.local_addr().map_or_else(
            |_| "http://localhost".to_string(),
            |a| format!("http://{a}"),
        )
    });
    let notify_stats = notify::NotifyStats::default();
    let (alerts_tx, alerts_rx) = tokio::sync::watch::channel(Arc::new(notify::AlertSet::default()));
    for am in eval_cfg.alertmanagers.clone() {
        tasks.spawn(notify::alertmanager::run(
            am,
            alerts_rx.clone(),
            clock.clone(),
            external_url.clone(),
            notify_stats.clone(),
            token.clone(),
        ));
    }
    let mut webhooks = Vec::new();
    for w in eval_cfg.webhooks.clone() {
        let (hook, task) =
            notify::webhook::spawn_parts(w, clock.clone(), notify_stats.clone(), token.clone());
        tasks.spawn(task);
        webhooks.push(hook);
    }
    drop(alerts_rx);
    let (evaluator, evaluator_task) = evaluator::spawn(
        engine,
        evaluator::Parts {
            slo: slo_store,
            results: results_rx,
            clock: clock.clone(),
            evaluate_every: eval_cfg.evaluate_every,
            alerts: alerts_tx,
            webhooks,
            shutdown: token.clone(),
        },
    );

    let service = ingest::IngestService::new(
        handle.clone(),
        live.clone(),
        sessions.clone(),
        token.clone(),
    );
    let grpc_token = token.clone();
    let grpc_server = tokio::spawn(
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(service.into_server())
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(grpc),
                grpc_token.cancelled_owned(),
            ),
    );
    tasks.spawn(http::serve(
        http,
        http::HttpState {
            live: live.clone(),
            store: handle.clone(),
            api: Some(api::ApiState {
                evaluator,
                token: eval_cfg.api_token.clone(),
            }),
            notify: notify_stats,
        },
        token.clone(),
    ));
    let retention = config.retention;
    let prune_handle = handle.clone();
    let prune_token = token.clone();
    tasks.spawn(async move {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        loop {
            tokio::select! {
                _ = prune_token.cancelled() => break,
                _ = every.tick() => {
                    let cutoff = store::now_unix_ms() - retention.as_millis() as i64;
                    prune_handle.prune(cutoff).await;
                }
            }
        }
    });
    tasks.close();

    shutdown.await;
    tracing::info!("shutting down");
    token.cancel();
    sessions.close();
    sessions.wait().await;
    let grpc_result = grpc_server.await;
    tasks.wait().await;
    drop(handle);
    let _ = store_task.await;
    // The store task closed the evaluator's input; it makes a final flush.
    let _ = evaluator_task.await;
    match grpc_result {
        Ok(r) => r.map_err(RunError::from),
        Err(e) => {
            tracing::error!(error = %e, "grpc server task failed");
            Ok(())
        }
    }
}
