//! `outpost-bench floor`: the physical floor of probing — a minimal
//! hyper and rustls client doing the footprint benchmark's GETs at a fixed
//! rate, a new TCP connection (and a full TLS handshake, no resumption) each time,
//! the body read and dropped. Nothing is recorded or sent anywhere: its
//! CPU per probe is what the network work itself costs on this machine.
//! Same runtime shape as the agent (tokio, two worker threads).
//!
//! Runs until killed (or `--seconds`); prints `ok N failed M` on stderr
//! when it ends by itself.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpStream;

/// `outpost-bench floor` options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// `http://127.0.0.1:PORT/` or `https://127.0.0.1:PORT/`.
    #[arg(long)]
    url: String,
    /// Probes per second.
    #[arg(long)]
    rate: u32,
    /// PEM CA to trust for https (the target's).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long)]
    seconds: Option<u64>,
}

pub async fn run(opts: Options) -> Result<()> {
    let url: http::Uri = opts.url.parse().context("--url")?;
    let https = url.scheme_str() == Some("https");
    let host = url
        .host()
        .ok_or_else(|| anyhow!("--url has no host"))?
        .to_string();
    let port = url
        .port_u16()
        .ok_or_else(|| anyhow!("--url needs a port"))?;
    let addr: std::net::SocketAddr = format!("{host}:{port}").parse()?;
    let tls = if https {
        let ca = opts
            .ca
            .as_ref()
            .ok_or_else(|| anyhow!("https needs --ca"))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca)? {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.resumption = rustls::client::Resumption::disabled();
        Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
    } else {
        None
    };
    if opts.rate == 0 {
        bail!("--rate must be above 0");
    }
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_secs(1) / opts.rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if opts
            .seconds
            .is_some_and(|s| start.elapsed() >= Duration::from_secs(s))
        {
            break;
        }
        let (tls, ok, failed, host) = (tls.clone(), ok.clone(), failed.clone(), host.clone());
        tokio::spawn(async move {
            let done = tokio::time::timeout(Duration::from_secs(5), get(addr, &host, tls)).await;
            match done {
                Ok(Ok(())) => ok.fetch_add(1, Ordering::Relaxed),
                _ => failed.fetch_add(1, Ordering::Relaxed),
            };
        });
    }
    eprintln!(
        "ok {} failed {}",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    Ok(())
}

/// One GET of `/` on a new connection; Ok when the answer was a 200 and
/// its body was read.
async fn get(
    addr: std::net::SocketAddr,
    host: &str,
    tls: Option<tokio_rustls::TlsConnector>,
) -> Result<()> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let req = http::Request::get("/")
        .header(http::header::HOST, host)
        .body(Empty::<Bytes>::new())?;
    let resp = match tls {
        Some(tls) => {
            let name = rustls::pki_types::ServerName::try_from(host.to_string())?;
            let stream = tls.connect(name, tcp).await?;
            send(TokioIo::new(stream), req).await?
        }
        None => send(TokioIo::new(tcp), req).await?,
    };
    if resp != http::StatusCode::OK {
        bail!("status {resp}");
    }
    Ok(())
}

async fn send<T>(io: TokioIo<T>, req: http::Request<Empty<Bytes>>) -> Result<http::StatusCode>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let conn = tokio::spawn(conn);
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    resp.into_body().collect().await?;
    drop(sender);
    let _ = conn.await;
    Ok(status)
}
