//! The one HTTP(S) client every check uses: hyper 1 over tokio, rustls for
//! TLS, a fresh connection and a full TLS handshake per request (as a
//! user's first visit, and as blackbox_exporter does), per-phase timings,
//! and hard bounds. HTTPS targets are verified against the Mozilla roots
//! plus the CAs of `[targets] ca_file` ([`Client::for_targets`]).
//!
//! Invariants:
//! * every request has a deadline; each phase (dns, connect, tls, first
//!   byte, body) is cut off at it and reported as a timeout in that phase;
//! * a response body is read up to `max_body_bytes` and no further; a
//!   larger body is an error, never an allocation;
//! * redirects are followed up to `max_redirects`, then it is an error;
//! * error texts name the failing phase and never include request headers
//!   or bodies (which may carry credentials).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::result::Phases;

/// Longest accepted response header block is hyper's default (~400 KiB);
/// the body bound is per request.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default number of redirects followed.
pub const DEFAULT_MAX_REDIRECTS: usize = 5;

/// Why an exchange did not produce a complete response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("dns lookup of {host} failed: {reason}")]
    Dns { host: String, reason: String },
    #[error("connect to {addr} failed: {reason}")]
    Connect { addr: String, reason: String },
    #[error("tls handshake with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("timed out during {phase}")]
    Timeout { phase: &'static str },
    #[error("http error: {0}")]
    Protocol(String),
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("more than {limit} redirects")]
    TooManyRedirects { limit: usize },
    #[error("bad url: {0}")]
    BadUrl(String),
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub max_body_bytes: usize,
    pub max_redirects: usize,
    /// `false`: a 3xx answer is returned as the response (with its
    /// `Location`), for callers that follow redirects themselves (the
    /// login flow, which keeps a cookie jar between hops).
    pub follow_redirects: bool,
}

impl Request {
    /// A GET of `url` with default bounds.
    pub fn get(url: Uri) -> Self {
        Request {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            follow_redirects: true,
        }
    }

    /// A POST of `body` with `content_type` to `url`, default bounds.
    pub fn post(url: Uri, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        let mut req = Request::get(url);
        req.method = Method::POST;
        req.body = body.into();
        req.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        req
    }

    /// A form POST (`application/x-www-form-urlencoded`) of `pairs`.
    pub fn post_form<'a>(url: Uri, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Request::post(url, "application/x-www-form-urlencoded", encode_form(pairs))
    }
}

/// Encodes pairs as `application/x-www-form-urlencoded`.
pub fn encode_form<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        percent_encode_into(&mut out, k);
        out.push('=');
        percent_encode_into(&mut out, v);
    }
    out
}

fn percent_encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// Decodes `a=b&c=d` (a query or form body); `+` is a space; invalid
/// escapes are kept as they are. Pairs beyond `max` are ignored.
pub fn decode_form(input: &str, max: usize) -> Vec<(String, String)> {
    input
        .split('&')
        .filter(|p| !p.is_empty())
        .take(max)
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A complete response after redirects.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The URL that produced this response (after redirects).
    pub final_url: Uri,
    pub redirects: usize,
    /// Days until the leaf certificate of the last TLS hop expires.
    pub tls_cert_days_left: Option<f64>,
}

/// The outcome of [`Client::send`]: timings are kept even on error.
#[derive(Debug)]
pub struct Exchange {
    pub phases: Phases,
    pub result: Result<Response, HttpError>,
}

/// Shared client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    tls: tokio_rustls::TlsConnector,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// A client trusting the Mozilla root set shipped in the binary (no
    /// dependency on the host's CA store: the agent is one static file).
    pub fn new() -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Self::with_roots(roots)
    }

    /// A client for the probe targets of `targets`: the Mozilla roots plus
    /// the CAs of `[targets] ca_file`. A certificate the verifier cannot
    /// use is skipped (logged); its targets then fail their handshake.
    pub fn for_targets(targets: &crate::config::TargetSettings) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let (added, ignored) = roots.add_parsable_certificates(targets.extra_roots.iter().cloned());
        if ignored > 0 {
            tracing::warn!(
                added,
                ignored,
                "[targets] ca_file: some certificates are not usable as trust anchors"
            );
        }
        Self::with_roots(roots)
    }

    /// A client trusting exactly `roots`.
    pub fn with_roots(roots: rustls::RootCertStore) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth());
        let mut config = match config {
            Ok(c) => c,
            // ring supports the safe default versions; this cannot fail, but
            // never panic: fall back to an empty-root client that fails
            // every handshake loudly.
            Err(_) => rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Every probe is a first visit: a full handshake, so it sees (and
        // verifies) the certificate the server serves now, as
        // blackbox_exporter does; no session resumption.
        config.resumption = rustls::client::Resumption::disabled();
        Client {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            user_agent: HeaderValue::from_static(concat!(
                "outpost-agent/",
                env!("CARGO_PKG_VERSION")
            )),
        }
    }

    /// Sends `req`, following redirects, all before `deadline`.
    pub async fn send(&self, req: &Request, deadline: Instant) -> Exchange {
        let mut phases = Phases::default();
        let start = Instant::now();
        let mut url = req.url.clone();
        let mut method = req.method.clone();
        let mut body = req.body.clone();
        let mut redirects = 0;
        let result = loop {
            let hop = self
                .send_once(
                    &method,
                    &url,
                    &req.headers,
                    &body,
                    req.max_body_bytes,
                    deadline,
                    &mut phases,
                )
                .await;
            match hop {
                Err(e) => break Err(e),
                Ok(resp) if resp.status.is_redirection() && req.follow_redirects => {
                    let Some(location) = resp.headers.get(http::header::LOCATION) else {
                        break Ok(finish(resp, url, redirects));
                    };
                    if redirects >= req.max_redirects {
                        break Err(HttpError::TooManyRedirects {
                            limit: req.max_redirects,
                        });
                    }
                    match resolve_location(&url, location) {
                        Ok(next) => url = next,
                        Err(e) => break Err(e),
                    }
                    redirects += 1;
                    if resp.status == StatusCode::SEE_OTHER
                        || ((resp.status == StatusCode::FOUND
                            || resp.status == StatusCode::MOVED_PERMANENTLY)
                            && method == Method::POST)
                    {
                        method = Method::GET;
                        body = Bytes::new();
                    }
                }
                Ok(resp) => break Ok(finish(resp, url, redirects)),
            }
        };
        phases.total = Some(start.elapsed());
        Exchange { phases, result }
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_once(
        &self,
        method: &Method,
        url: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
        max_body: usize,
        deadline: Instant,
        phases: &mut Phases,
    ) -> Result<Hop, HttpError> {
        let https = match url.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(HttpError::BadUrl(format!("{url} is not http(s)"))),
        };
        let host = url
            .host()
            .ok_or_else(|| HttpError::BadUrl(format!("{url} has no host")))?
            .to_string();
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });

        // dns
        let t = Instant::now();
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let addrs: Vec<SocketAddr> = match timeout_at(
            deadline,
            tokio::net::lookup_host((bare_host.as_str(), port)),
        )
        .await
        {
            Err(_) => return Err(HttpError::Timeout { phase: "dns" }),
            Ok(Err(e)) => {
                return Err(HttpError::Dns {
                    host,
                    reason: e.to_string(),
                })
            }
            Ok(Ok(a)) => a.collect(),
        };
        add(&mut phases.dns, t.elapsed());
        if addrs.is_empty() {
            return Err(HttpError::Dns {
                host,
                reason: "no addresses".into(),
            });
        }

        // connect: try each address in turn
        let t = Instant::now();
        let mut last_err = String::new();
        let mut stream = None;
        for addr in &addrs {
            match timeout_at(deadline, TcpStream::connect(addr)).await {
                Err(_) => return Err(HttpError::Timeout { phase: "connect" }),
                Ok(Ok(s)) => {
                    stream = Some(s);
                    break;
                }
                Ok(Err(e)) => last_err = e.to_string(),
            }
        }
        add(&mut phases.connect, t.elapsed());
        let Some(tcp) = stream else {
            return Err(HttpError::Connect {
                addr: format!("{host}:{port}"),
                reason: last_err,
            });
        };
        let _ = tcp.set_nodelay(true);

        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(path_and_query(url));
        if let Some(h) = request.headers_mut() {
            h.extend(headers.clone());
            h.insert(http::header::HOST, host_header(&host, port, https)?);
            h.entry(http::header::USER_AGENT)
                .or_insert(self.user_agent.clone());
        }
        let request = request
            .body(Full::new(body.clone()))
            .map_err(|e| HttpError::BadUrl(e.to_string()))?;

        let mut cert_days = None;
        let t = Instant::now();
        let response = if https {
            let name = rustls::pki_types::ServerName::try_from(bare_host.clone())
                .map_err(|e| HttpError::BadUrl(format!("{host}: {e}")))?;
            let tls = match timeout_at(deadline, self.tls.connect(name, tcp)).await {
                Err(_) => return Err(HttpError::Timeout { phase: "tls" }),
                Ok(Err(e)) => {
                    return Err(HttpError::Tls {
                        host,
                        reason: e.to_string(),
                    })
                }
                Ok(Ok(s)) => s,
            };
            add(&mut phases.tls, t.elapsed());
            cert_days = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|leaf| crate::tls_cert::days_left(leaf.as_ref()));
            exchange(TokioIo::new(tls), request, deadline, phases).await?
        } else {
            exchange(TokioIo::new(tcp), request, deadline, phases).await?
        };

        let (parts, incoming) = response.into_parts();
        let body = read_bounded(incoming, max_body, deadline).await?;
        Ok(Hop {
            status: parts.status,
            headers: parts.headers,
            body,
            cert_days,
        })
    }
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

struct Hop {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    cert_days: Option<f64>,
}

fn finish(hop: Hop, final_url: Uri, redirects: usize) -> Response {
    Response {
        status: hop.status,
        headers: hop.headers,
        body: hop.body,
        final_url,
        redirects,
        tls_cert_days_left: hop.cert_days,
    }
}

async fn exchange<T>(
    io: TokioIo<T>,
    request: http::Request<Full<Bytes>>,
    deadline: Instant,
    phases: &mut Phases,
) -> Result<http::Response<hyper::body::Incoming>, HttpError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let t = Instant::now();
    let (mut sender, conn) =
        match timeout_at(deadline, hyper::client::conn::http1::handshake(io)).await {
            Err(_) => return Err(HttpError::Timeout { phase: "handshake" }),
            Ok(Err(e)) => return Err(HttpError::Protocol(e.to_string())),
            Ok(Ok(pair)) => pair,
        };
    // The connection task ends when the response is read and `sender` is
    // dropped, or at the deadline: it never outlives the request by more.
    tokio::spawn(async move {
        let _ = timeout_at(deadline, conn).await;
    });
    let response = match timeout_at(deadline, sender.send_request(request)).await {
        Err(_) => {
            return Err(HttpError::Timeout {
                phase: "first byte",
            })
        }
        // The connection task is cut at the same deadline: a connection
        // closed at (or after) the deadline is the deadline's doing.
        Ok(Err(_)) if Instant::now() >= deadline => {
            return Err(HttpError::Timeout {
                phase: "first byte",
            })
        }
        Ok(Err(e)) => return Err(HttpError::Protocol(e.to_string())),
        Ok(Ok(r)) => r,
    };
    add(&mut phases.first_byte, t.elapsed());
    Ok(response)
}

/// Reads at most `limit` bytes of body before `deadline`.
async fn read_bounded(
    mut body: hyper::body::Incoming,
    limit: usize,
    deadline: Instant,
) -> Result<Bytes, HttpError> {
    let mut buf = Vec::new();
    loop {
        let frame = match timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(HttpError::Timeout { phase: "body" }),
            Ok(None) => break,
            Ok(Some(Err(_))) if Instant::now() >= deadline => {
                return Err(HttpError::Timeout { phase: "body" })
            }
            Ok(Some(Err(e))) => return Err(HttpError::Protocol(e.to_string())),
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(HttpError::BodyTooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

fn add(slot: &mut Option<Duration>, d: Duration) {
    *slot = Some(slot.unwrap_or_default() + d);
}

fn path_and_query(url: &Uri) -> Uri {
    url.path_and_query()
        .map(|pq| Uri::from(pq.clone()))
        .unwrap_or_else(|| Uri::from_static("/"))
}

fn host_header(host: &str, port: u16, https: bool) -> Result<HeaderValue, HttpError> {
    let default_port = if https { 443 } else { 80 };
    let value = if port == default_port {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    HeaderValue::from_str(&value).map_err(|e| HttpError::BadUrl(e.to_string()))
}

/// Resolves a `Location` header against the URL that returned it.
pub fn resolve_location(base: &Uri, location: &HeaderValue) -> Result<Uri, HttpError> {
    let loc = location
        .to_str()
        .map_err(|_| HttpError::Protocol("redirect location is not text".into()))?;
    let parsed: Uri = loc.parse().map_err(|_| {
        HttpError::Protocol(format!(
            "redirect to an invalid location ({} bytes)",
            loc.len()
        ))
    })?;
    if parsed.scheme().is_some() {
        return Ok(parsed);
    }
    let mut parts = base.clone().into_parts();
    let path = if loc.starts_with('/') {
        loc.to_string()
    } else {
        let base_path = base.path();
        let dir = base_path.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{loc}")
    };
    parts.path_and_query = Some(
        path.parse()
            .map_err(|_| HttpError::Protocol("redirect to an invalid path".into()))?,
    );
    Uri::from_parts(parts).map_err(|e| HttpError::Protocol(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_locations_resolve_against_the_base() {
        let base: Uri = "https://a.example:8443/x/y?q=1".parse().unwrap();
        let abs = resolve_location(&base, &HeaderValue::from_static("/login?next=%2F")).unwrap();
        assert_eq!(abs.to_string(), "https://a.example:8443/login?next=%2F");
        let rel = resolve_location(&base, &HeaderValue::from_static("z")).unwrap();
        assert_eq!(rel.to_string(), "https://a.example:8443/x/z");
        let other =
            resolve_location(&base, &HeaderValue::from_static("http://b.example/")).unwrap();
        assert_eq!(other.host(), Some("b.example"));
    }

    #[test]
    fn form_encoding_round_trips() {
        let enc = encode_form([("a b", "c&d=é"), ("x", "")]);
        assert_eq!(enc, "a+b=c%26d%3D%C3%A9&x=");
        let dec = decode_form(&enc, 10);
        assert_eq!(
            dec,
            vec![("a b".into(), "c&d=é".into()), ("x".into(), String::new())]
        );
        assert_eq!(
            decode_form("a=%zz%4", 10),
            vec![("a".into(), "%zz%4".into())]
        );
        assert_eq!(decode_form("a=1&b=2&c=3", 2).len(), 2);
    }

    #[test]
    fn host_header_omits_default_ports() {
        assert_eq!(host_header("a", 443, true).unwrap(), "a");
        assert_eq!(host_header("a", 8080, false).unwrap(), "a:8080");
    }
}
