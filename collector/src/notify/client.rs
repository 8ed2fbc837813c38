//! The collector's one outbound HTTP client (receivers, and the CLI
//! talking to a running collector): plain HTTP/1.1 over a fresh TCP
//! connection per request, an overall deadline, a bounded response body.
//!
//! Only `http://` URLs: receivers are reached inside the operator's
//! network (put a TLS-terminating proxy in front of a remote one).

use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;

/// Largest response body read.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A parsed `http://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host:port` as given (default port 80).
    pub authority: String,
    /// Path prefix without a trailing slash ("" for the root).
    pub path: String,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("only http:// URLs are supported (put a TLS-terminating proxy in front of an https receiver)")]
    Scheme,
    #[error("the URL has no host")]
    Host,
    #[error("the URL must not contain a query, fragment or user info")]
    Extra,
}

impl HttpUrl {
    pub fn parse(s: &str) -> Result<HttpUrl, UrlError> {
        let rest = s.strip_prefix("http://").ok_or(UrlError::Scheme)?;
        if rest.contains(['?', '#', '@']) {
            return Err(UrlError::Extra);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.starts_with(':') {
            return Err(UrlError::Host);
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            || authority.ends_with(']')
        {
            authority.to_string()
        } else if authority.contains(':') && !authority.starts_with('[') {
            return Err(UrlError::Host);
        } else {
            format!("{authority}:80")
        };
        Ok(HttpUrl {
            authority,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    /// The URL of `path` under this one.
    pub fn join(&self, path: &str) -> String {
        format!("http://{}{}{}", self.authority, self.path, path)
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("request to {0} timed out after {1:?}")]
    Timeout(String, Duration),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("request: {0}")]
    Build(#[from] http::Error),
    #[error("response body: {0}")]
    Body(String),
}

/// A response: status and (bounded) body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// Sends one request to `url.path + path` with `headers` and `body`.
pub async fn send(
    url: &HttpUrl,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let target = format!("{}{}", url.path, path);
    let fut = async {
        let stream = tokio::net::TcpStream::connect(&url.authority)
            .await
            .map_err(|e| ClientError::Connect(url.authority.clone(), e))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let mut req = Request::builder()
            .method(method)
            .uri(target.as_str())
            .header(header::HOST, url.authority.as_str())
            .header(
                header::USER_AGENT,
                concat!("outpost-collector/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req.body(Full::new(Bytes::from(body)))?;
        let exchange = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| ClientError::Body(e.to_string()))?
                .to_bytes();
            Ok::<_, ClientError>(Response { status, body })
        };
        tokio::pin!(conn);
        tokio::pin!(exchange);
        tokio::select! {
            r = &mut exchange => r,
            // The connection may finish first (the server closed it right
            // after answering): the response is then complete or the
            // exchange fails; either way it ends, bounded by the timeout.
            _ = &mut conn => exchange.await,
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ClientError::Timeout(url.authority.clone(), timeout))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_port_and_prefix() {
        let u = HttpUrl::parse("http://am.internal:9093/").unwrap();
        assert_eq!(u.authority, "am.internal:9093");
        assert_eq!(
            u.join("/api/v2/alerts"),
            "http://am.internal:9093/api/v2/alerts"
        );
        let u = HttpUrl::parse("http://hooks.internal/outpost/").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("hooks.internal:80", "/outpost")
        );
        assert_eq!(
            HttpUrl::parse("http://[::1]:80").unwrap().authority,
            "[::1]:80"
        );
        assert_eq!(HttpUrl::parse("https://x"), Err(UrlError::Scheme));
        assert_eq!(HttpUrl::parse("http:///x"), Err(UrlError::Host));
        assert_eq!(HttpUrl::parse("http://u:p@x"), Err(UrlError::Extra));
        assert_eq!(HttpUrl::parse("http://x:notaport"), Err(UrlError::Host));
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_error_not_a_hang() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let u = HttpUrl::parse(&format!("http://{addr}")).unwrap();
        let r = send(
            &u,
            Method::GET,
            "/",
            &[],
            Vec::new(),
            Duration::from_secs(2),
        )
        .await;
        assert!(matches!(r, Err(ClientError::Connect(..))), "{r:?}");
    }
}
