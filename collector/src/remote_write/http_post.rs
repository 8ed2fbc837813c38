//! A minimal HTTP/1.1 POST for remote write: a fresh connection per
//! request (requests are large and infrequent), rustls for https with the
//! built-in Mozilla roots, a deadline on the whole exchange, and the
//! response body read to at most 4 KiB (only for the log).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const MAX_ERROR_BODY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("bad url {0}")]
    Url(String),
    #[error("connect: {0}")]
    Connect(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("http: {0}")]
    Http(String),
    #[error("timed out")]
    Timeout,
}

pub struct Client {
    tls: tokio_rustls::TlsConnector,
}

impl Client {
    pub fn new() -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.with_root_certificates(roots.clone())
                    .with_no_client_auth()
            })
            .unwrap_or_else(|_| {
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth()
            });
        Client {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }

    /// POSTs a remote-write body; returns the status and a short body.
    pub async fn post(
        &self,
        url: &Uri,
        body: Vec<u8>,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<(StatusCode, String), PostError> {
        tokio::time::timeout(timeout, self.post_inner(url, body, bearer))
            .await
            .map_err(|_| PostError::Timeout)?
    }

    async fn post_inner(
        &self,
        url: &Uri,
        body: Vec<u8>,
        bearer: Option<&str>,
    ) -> Result<(StatusCode, String), PostError> {
        let https = url.scheme_str() == Some("https");
        let host = url
            .host()
            .ok_or_else(|| PostError::Url(url.to_string()))?
            .to_string();
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
            .await
            .map_err(|e| PostError::Connect(e.to_string()))?;
        let path = url.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let mut req = Request::post(path)
            .header(header::HOST, format!("{host}:{port}"))
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::CONTENT_ENCODING, "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header(
                header::USER_AGENT,
                concat!("outpost-collector/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(token) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| PostError::Http(e.to_string()))?;
        if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| PostError::Url(e.to_string()))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| PostError::Tls(e.to_string()))?;
            exchange(TokioIo::new(tls), req).await
        } else {
            exchange(TokioIo::new(tcp), req).await
        }
    }
}

async fn exchange<T>(
    io: TokioIo<T>,
    req: Request<Full<Bytes>>,
) -> Result<(StatusCode, String), PostError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| PostError::Http(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| PostError::Http(e.to_string()))?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut text = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            let room = MAX_ERROR_BODY.saturating_sub(text.len());
            text.extend_from_slice(&data[..data.len().min(room)]);
            if text.len() >= MAX_ERROR_BODY {
                break;
            }
        }
    }
    drop(sender);
    driver.abort();
    Ok((status, String::from_utf8_lossy(&text).trim().to_string()))
}
