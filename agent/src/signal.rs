//! Turns signals into what the agent runs with: SIGTERM / SIGINT into the
//! one shutdown future, SIGHUP into reload requests ([`Hangups`]).
//!
//! Install [`Hangups`] before anything slow at startup: until a handler is
//! installed, SIGHUP's default action ends the process.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Completes on the first SIGTERM or SIGINT.
pub async fn shutdown() {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// SIGHUPs, one `recv` per signal (several quick ones may merge into one).
pub struct Hangups(Option<Signal>);

impl Hangups {
    /// Installs the SIGHUP handler (needs a running tokio runtime). If it
    /// cannot be installed, logs it and never yields.
    pub fn install() -> Hangups {
        match signal(SignalKind::hangup()) {
            Ok(s) => Hangups(Some(s)),
            Err(e) => {
                tracing::error!(error = %e, "cannot handle SIGHUP: reload is unavailable");
                Hangups(None)
            }
        }
    }

    /// Waits for the next SIGHUP.
    pub async fn recv(&mut self) {
        match &mut self.0 {
            Some(s) => {
                if s.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }
}
