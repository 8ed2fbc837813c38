//! `outpost-bench target`: the probe target of the footprint benchmark, in
//! its own process so its CPU is not counted against any prober.
//!
//! Serves HTTP/1.1 on two 127.0.0.1 ports, one plain and one TLS (a
//! throwaway CA made at start, written to `--ca-out` for the probers to
//! trust; ALPN offers http/1.1 only). Every path answers 200 with a small
//! HTML page, except `/__stats`, which answers `requests N connections M`
//! (counted since start, `/__stats` itself excluded): the benchmark counts
//! completed probes here, the same way for every prober, and checks that
//! each probe opened its own connection. Prints `http=ADDR https=ADDR` on
//! stdout once both listen; runs until killed.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The page every probe fetches (~1 KiB, like a small status page).
const PAGE: &str = concat!(
    "<!doctype html><html><head><title>bench target</title></head><body>",
    "<h1>Welcome</h1><p>",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor ",
    "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud ",
    "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure ",
    "dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. ",
    "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt ",
    "mollit anim id est laborum. Lorem ipsum dolor sit amet, consectetur adipiscing elit, ",
    "sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim ",
    "veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo ",
    "consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum.",
    "</p></body></html>\n"
);

/// `outpost-bench target` options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Where to write the CA certificate (PEM) the HTTPS port's
    /// certificate chains to.
    #[arg(long)]
    ca_out: PathBuf,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    connections: AtomicU64,
}

pub async fn run(opts: Options) -> Result<()> {
    let material = outpost_tests::portal::tls::server_config(3650)?;
    let mut config = (*material.config).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    std::fs::write(&opts.ca_out, &material.ca_pem)
        .with_context(|| format!("writing {}", opts.ca_out.display()))?;

    let plain = TcpListener::bind("127.0.0.1:0").await?;
    let tls = TcpListener::bind("127.0.0.1:0").await?;
    println!("http={} https={}", plain.local_addr()?, tls.local_addr()?);
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = plain.accept().await else {
                continue;
            };
            c.connections.fetch_add(1, Ordering::Relaxed);
            let c = c.clone();
            tokio::spawn(async move { serve(TokioIo::new(tcp), c).await });
        }
    });
    loop {
        let Ok((tcp, _)) = tls.accept().await else {
            continue;
        };
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let (c, acceptor) = (counters.clone(), acceptor.clone());
        tokio::spawn(async move {
            if let Ok(Ok(stream)) =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await
            {
                serve(TokioIo::new(stream), c).await;
            }
        });
    }
}

async fn serve<T>(io: TokioIo<T>, counters: Arc<Counters>)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let counters = counters.clone();
        async move {
            let body = if req.uri().path() == "/__stats" {
                counters.connections.fetch_sub(1, Ordering::Relaxed);
                format!(
                    "requests {} connections {}\n",
                    counters.requests.load(Ordering::Relaxed),
                    counters.connections.load(Ordering::Relaxed)
                )
            } else {
                counters.requests.fetch_add(1, Ordering::Relaxed);
                PAGE.to_string()
            };
            let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Ok::<_, Infallible>(resp)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

/// Requests and connections a target has counted (its `/__stats`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub requests: u64,
    pub connections: u64,
}

/// Reads `/__stats` from the target's plain port (`addr`).
pub async fn stats(addr: &str) -> Result<Stats> {
    let text = crate::procs::http_get(addr, "/__stats").await?;
    let mut it = text.split_whitespace();
    let mut out = Stats::default();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        match k {
            "requests" => out.requests = v.parse()?,
            "connections" => out.connections = v.parse()?,
            _ => {}
        }
    }
    Ok(out)
}
