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
//! Shutdown is a parameter of [`run`] (in [`Options`]), which also tells systemd
//! (`outpost-sd-notify`): `READY=1` once the store is open and the servers
//! run, `WATCHDOG=1` from the main loop, `STOPPING=1` at shutdown.

#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod codec;
pub mod config;
pub mod http;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod model;
pub mod pki;
pub mod remote_write;
pub mod rules;
pub mod signal;
pub mod status_page;
// ---- status page and monthly evidence report (issue #6)
pub mod report;
pub mod store;
pub mod tls;

// ---- evaluation: SLOs, escalation rules, incidents, receivers (issue #5)
pub mod api;
pub mod clock;
pub mod engine;
pub mod escalation;
pub mod evaluator;
pub mod incidents;
pub mod incidents_cli;
pub mod maintenance;
pub mod notify;
pub mod slo;
pub mod store_slo;

// ---- restore rehearsals and contact points (issue #10)
pub mod contacts;
pub mod rehearsal;
pub mod store_rehearsal;

use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use outpost_sd_notify::Notifier;
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
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Re-reads the configuration (for SIGHUP). Returns the new config or the
/// error to log while the old one stays in force.
pub type Reload = Box<dyn Fn() -> Result<Config, config::ConfigError> + Send + Sync>;

/// What `run` needs besides the config and listeners.
pub struct Options<S> {
    /// Completes when the collector should stop.
    pub shutdown: S,
    /// Yields once per reload request (SIGHUP).
    pub reload_requests: Option<tokio::sync::mpsc::Receiver<()>>,
    /// How to re-read the configuration.
    pub reload: Option<Reload>,
    /// Tells systemd (Type=notify) about readiness, watchdog and stopping.
    pub notifier: Notifier,
}

/// How often retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Runs the collector on the given (already bound) listeners until
/// `shutdown` completes; then stops accepting, ends streams, and flushes.
pub async fn run<S: Future<Output = ()>>(
    config: Config,
    grpc: TcpListener,
    http: TcpListener,
    options: Options<S>,
) -> Result<(), RunError> {
    run_with_clock(config, grpc, http, options, Arc::new(clock::SystemClock)).await
}

/// As [`run`], with the evaluation's clock injected (tests).
pub async fn run_with_clock<S: Future<Output = ()>>(
    config: Config,
    grpc: TcpListener,
    http: TcpListener,
    options: Options<S>,
    clock: clock::SharedClock,
) -> Result<(), RunError> {
    let notifier = options.notifier;
    let store = store::Store::open(&config.store_path)?;
    let live = Arc::new(Mutex::new(Live::new(config.max_series_per_agent)));
    // ---- evaluation (issue #5): restore, then observe the store task.
    let eval_cfg = config.evaluation.clone();
    let slo_store = store_slo::SloStore::open(&store)?;
    let rehearsal_store = store_rehearsal::RehearsalStore::open(&store)?;
    let mut engine = engine::Engine::new(eval_cfg.engine.clone());
    evaluator::restore(&mut engine, &store, &slo_store, clock.now_ms())?;
    let token = CancellationToken::new();
    let tasks = TaskTracker::new();
    // ---- restore rehearsals (issue #10): their own task and tree; never
    // the store task or the evaluator.
    let (rehearsals, rehearsal_task) = rehearsal::task::spawn(
        rehearsal_store,
        config.rehearsal.clone(),
        clock.clone(),
        token.clone(),
    )?;
    // Durable results go to the evaluator, and (without waiting) to each
    // remote-write receiver's queue.
    let (stored_tx, stored_rx) = tokio::sync::mpsc::channel(evaluator::RESULTS_CAPACITY);
    let (handle, store_task) = store::spawn_observed(store, live.clone(), Some(stored_tx));
    let receivers: Vec<remote_write::Handle> = config
        .remote_write
        .iter()
        .map(|r| remote_write::spawn(r.clone(), live.clone(), token.clone(), &tasks))
        .collect();
    let (results_rx, tee_task) = remote_write::tee(stored_rx, receivers);
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

    let mtls = config
        .grpc_tls
        .as_ref()
        .is_some_and(|t| t.client_ca.is_some());
    let auth = Arc::new(RwLock::new(auth::AuthState::new(&config.auth, mtls)));
    let acceptor = match &config.grpc_tls {
        Some(files) => Some(Arc::new(RwLock::new(tls::acceptor(files)?))),
        None => None,
    };
    let service = ingest::IngestService::new(
        handle.clone(),
        live.clone(),
        sessions.clone(),
        token.clone(),
        auth.clone(),
    )
    .with_rate(config.max_results_per_second_per_agent)
    .with_rehearsals(rehearsals.clone());
    let builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(service.into_server());
    let grpc_server = match &acceptor {
        Some(acceptor) => {
            let incoming = tls::incoming(grpc, acceptor.clone(), live.clone(), token.clone());
            tokio::spawn(
                builder.serve_with_incoming_shutdown(incoming, token.clone().cancelled_owned()),
            )
        }
        None => tokio::spawn(builder.serve_with_incoming_shutdown(
            TcpListenerStream::new(grpc),
            token.clone().cancelled_owned(),
        )),
    };
    if let (Some(mut requests), Some(reload)) = (options.reload_requests, options.reload) {
        let (auth, acceptor, reload_token) = (auth.clone(), acceptor.clone(), token.clone());
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = reload_token.cancelled() => break,
                    r = requests.recv() => if r.is_none() { break },
                }
                apply_reload(&reload, &auth, acceptor.as_ref());
            }
        });
    }
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
            rehearsals: Some(rehearsals),
            contacts: Arc::new(eval_cfg.engine.contacts.clone()),
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

    // -- systemd: ready now, watchdog from this loop (issue #8) --
    sd_notify(&notifier, notifier.ready("ingesting"));
    let mut watchdog = notifier.watchdog_interval().map(tokio::time::interval);
    let shutdown = options.shutdown;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = watchdog_tick(&mut watchdog) => sd_notify(&notifier, notifier.watchdog()),
        }
    }
    sd_notify(&notifier, notifier.stopping());
    tracing::info!("shutting down");
    token.cancel();
    sessions.close();
    sessions.wait().await;
    let grpc_result = grpc_server.await;
    tasks.wait().await;
    drop(handle);
    let _ = store_task.await;
    let _ = tee_task.await;
    // The store task closed the evaluator's input; it makes a final flush.
    let _ = evaluator_task.await;
    let _ = rehearsal_task.await;
    match grpc_result {
        Ok(r) => r.map_err(RunError::from),
        Err(e) => {
            tracing::error!(error = %e, "grpc server task failed");
            Ok(())
        }
    }
}

/// Applies a reloaded configuration's security settings: the allow-list,
/// tokens and TLS files. Other settings need a restart (logged).
fn apply_reload(
    reload: &Reload,
    auth: &RwLock<auth::AuthState>,
    acceptor: Option<&Arc<RwLock<tokio_rustls::TlsAcceptor>>>,
) {
    let config = match reload() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reload refused: the new configuration is invalid; the old one stays in force");
            return;
        }
    };
    let new_acceptor = match (&config.grpc_tls, acceptor) {
        (Some(files), Some(_)) => match tls::acceptor(files) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::error!(error = %e, "reload refused: TLS files unusable; the old ones stay in force");
                return;
            }
        },
        (None, None) => None,
        _ => {
            tracing::error!("reload refused: turning TLS on or off needs a restart");
            return;
        }
    };
    if let (Some(new), Some(slot)) = (new_acceptor, acceptor) {
        *slot.write().unwrap_or_else(|p| p.into_inner()) = new;
    }
    let mtls = config
        .grpc_tls
        .as_ref()
        .is_some_and(|t| t.client_ca.is_some());
    *auth.write().unwrap_or_else(|p| p.into_inner()) = auth::AuthState::new(&config.auth, mtls);
    tracing::info!("configuration reloaded: allow-list, tokens and TLS files are in force");
}

/// Next watchdog tick; pending forever when no watchdog is armed.
async fn watchdog_tick(watchdog: &mut Option<tokio::time::Interval>) {
    match watchdog {
        Some(iv) => {
            iv.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Logs a failed notification; systemd notices the consequences itself.
fn sd_notify(notifier: &Notifier, sent: Result<(), outpost_sd_notify::NotifyError>) {
    if let Err(e) = sent {
        tracing::warn!(error = %e, enabled = notifier.is_enabled(), "cannot notify the service manager");
    }
}
