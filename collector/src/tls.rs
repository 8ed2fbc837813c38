//! The gRPC listener's TLS: builds a rustls acceptor from the configured
//! PEM files (server identity, client CA, CRLs), and runs the accept loop
//! that hands finished handshakes to tonic.
//!
//! The acceptor sits behind a lock and is replaced on SIGHUP, so
//! certificates, CA bundles and CRLs rotate without a restart; streams
//! already open keep their session. A failed handshake (unknown CA,
//! expired or revoked certificate, plaintext client) is logged and
//! counted as `tls_handshake`; it costs the collector one bounded task
//! (at most [`MAX_HANDSHAKES`] at once, each cut off after 10 s).

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::TlsFiles;
use crate::live::Live;

/// Handshakes in progress at once.
pub const MAX_HANDSHAKES: usize = 256;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}; fix: point the [grpc] setting at a readable PEM file")]
    File { path: String, reason: String },
    #[error("TLS setup: {0}")]
    Rustls(String),
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no certificate in file"));
    }
    Ok(certs)
}

/// Builds the acceptor from the files (read now).
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_err(&files.key, e))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca)? {
                roots.add(c).map_err(|e| file_err(ca, e))?;
            }
            let mut verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            if let Some(crl) = &files.crl {
                let crls = CertificateRevocationListDer::pem_file_iter(crl)
                    .map_err(|e| file_err(crl, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| file_err(crl, e))?;
                verifier = verifier.with_crls(crls);
            }
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TCP connections, runs handshakes with the current acceptor,
/// and yields finished TLS streams until `shutdown`.
pub fn incoming(
    listener: TcpListener,
    acceptor: Arc<RwLock<TlsAcceptor>>,
    live: Arc<Mutex<Live>>,
    shutdown: CancellationToken,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let limit = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let (tcp, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "grpc accept failed");
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let current = acceptor.read().unwrap_or_else(|p| p.into_inner()).clone();
            let (tx, live) = (tx.clone(), live.clone());
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, current.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(peer = %peer, error = %e, "TLS handshake refused");
                        live.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .reject("tls_handshake");
                    }
                    Err(_) => {
                        tracing::warn!(peer = %peer, "TLS handshake timed out");
                        live.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .reject("tls_handshake");
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
