//! Turns SIGTERM / SIGINT into the collector's one shutdown future, and
//! SIGHUP into reload requests.

/// Completes on the first SIGTERM or SIGINT.
pub async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
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

/// Sends one message per SIGHUP until the receiver is gone. Requests that
/// arrive while one is pending are merged.
pub async fn reloads(tx: tokio::sync::mpsc::Sender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload needs a restart");
        return;
    };
    while hup.recv().await.is_some() {
        if tx.is_closed() {
            break;
        }
        let _ = tx.try_send(());
    }
}
