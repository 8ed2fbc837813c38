//! A small cookie jar for the login flow and the sessions it produces.
//!
//! Enough of RFC 6265 for identity providers: host-only cookies by host
//! (a `Domain` attribute widens to that domain's subdomains), `Path`
//! prefixes, `Max-Age`/`Expires` removal of a cookie, replacement by
//! (name, domain, path). `Secure` cookies go only over https.
//!
//! Invariants: at most [`MAX_COOKIES`] cookies of at most
//! [`MAX_COOKIE_BYTES`] each; values are [`Secret`]s (never in `Debug`).

use http::{HeaderValue, Uri};

use super::secret::Secret;

/// Most cookies kept; further ones are ignored.
pub const MAX_COOKIES: usize = 64;
/// Longest `name=value` kept.
pub const MAX_COOKIE_BYTES: usize = 4096;

#[derive(Clone, Debug)]
struct Cookie {
    name: String,
    value: Secret,
    /// Lower-case host (host-only) or domain (with `domain_match`).
    domain: String,
    domain_match: bool,
    path: String,
    secure: bool,
}

/// Cookies by domain and path.
#[derive(Clone, Debug, Default)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

impl CookieJar {
    /// Number of cookies held.
    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    /// Whether the jar is empty.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Stores every `Set-Cookie` of a response to `url`.
    pub fn store_all(&mut self, url: &Uri, headers: &http::HeaderMap) {
        for v in headers.get_all(http::header::SET_COOKIE) {
            if let Ok(text) = v.to_str() {
                self.store(url, text);
            }
        }
    }

    /// Stores one `Set-Cookie` value received from `url`.
    pub fn store(&mut self, url: &Uri, set_cookie: &str) {
        let Some(host) = url.host().map(|h| h.to_ascii_lowercase()) else {
            return;
        };
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim().trim_matches('"'));
        if name.is_empty() || name.len() + value.len() + 1 > MAX_COOKIE_BYTES {
            return;
        }
        let mut domain = host.clone();
        let mut domain_match = false;
        let mut path = default_path(url);
        let mut secure = false;
        let mut remove = false;
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "domain" if !v.is_empty() => {
                    let d = v.trim_start_matches('.').to_ascii_lowercase();
                    // Only the host itself or a parent domain of it.
                    if host == d || host.ends_with(&format!(".{d}")) {
                        domain = d;
                        domain_match = true;
                    } else {
                        return;
                    }
                }
                "path" if v.starts_with('/') => path = v.to_string(),
                "secure" => secure = true,
                "max-age" => remove |= v.parse::<i64>().is_ok_and(|n| n <= 0),
                "expires" => remove |= expires_in_past(v),
                _ => {}
            }
        }
        self.cookies
            .retain(|c| !(c.name == name && c.domain == domain && c.path == path));
        if remove || value.is_empty() || self.cookies.len() >= MAX_COOKIES {
            return;
        }
        self.cookies.push(Cookie {
            name: name.to_string(),
            value: Secret::new(value.to_string()),
            domain,
            domain_match,
            path,
            secure,
        });
    }

    /// The `Cookie` header for a request to `url`, if any cookie matches.
    pub fn header_for(&self, url: &Uri) -> Option<HeaderValue> {
        let host = url.host()?.to_ascii_lowercase();
        let https = url.scheme_str() == Some("https");
        let path = if url.path().is_empty() {
            "/"
        } else {
            url.path()
        };
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| {
                let domain_ok = c.domain == host
                    || (c.domain_match && host.ends_with(&format!(".{}", c.domain)));
                let path_ok = path == c.path
                    || (path.starts_with(&c.path)
                        && (c.path.ends_with('/') || path[c.path.len()..].starts_with('/')));
                domain_ok && path_ok && (https || !c.secure)
            })
            .map(|c| format!("{}={}", c.name, c.value.expose()))
            .collect();
        if pairs.is_empty() {
            return None;
        }
        let mut v = HeaderValue::from_str(&pairs.join("; ")).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

/// RFC 6265 5.1.4 default path: the request path up to its last `/`.
fn default_path(url: &Uri) -> String {
    let p = url.path();
    match p.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => p[..i].to_string(),
    }
}

/// Whether an `Expires` date is clearly in the past (year before 2000, the
/// shape servers use to delete a cookie: `Thu, 01 Jan 1970 00:00:00 GMT`).
fn expires_in_past(v: &str) -> bool {
    v.split([' ', '-'])
        .filter_map(|w| w.parse::<u32>().ok())
        .any(|n| (1000..2000).contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn host_path_and_removal() {
        let mut jar = CookieJar::default();
        jar.store(&u("http://id.example/auth/login"), "a=1; Path=/auth");
        jar.store(&u("http://id.example/auth/login"), "b=2");
        jar.store(&u("http://id.example/x"), "c=3; Secure; Path=/");
        fn h_of(jar: &CookieJar, url: &str) -> Option<String> {
            jar.header_for(&u(url))
                .map(|v| v.to_str().unwrap().to_string())
        }
        assert_eq!(
            h_of(&jar, "http://id.example/auth/x").as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(
            h_of(&jar, "https://id.example/other").as_deref(),
            Some("c=3")
        );
        assert_eq!(h_of(&jar, "http://id.example/authz"), None);
        assert_eq!(h_of(&jar, "http://other.example/auth/x"), None);
        jar.store(
            &u("http://id.example/auth/login"),
            "a=; Path=/auth; Max-Age=0",
        );
        jar.store(
            &u("http://id.example/auth/login"),
            "b=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        );
        assert_eq!(h_of(&jar, "http://id.example/auth/x"), None);
    }

    #[test]
    fn domain_cookies_and_bounds() {
        let mut jar = CookieJar::default();
        jar.store(
            &u("http://login.corp.example/"),
            "d=1; Domain=.corp.example",
        );
        jar.store(&u("http://login.corp.example/"), "e=1; Domain=evil.example");
        assert!(jar.header_for(&u("http://portal.corp.example/")).is_some());
        assert_eq!(jar.len(), 1);
        for i in 0..200 {
            jar.store(&u("http://h/"), &format!("k{i}=v"));
        }
        assert_eq!(jar.len(), MAX_COOKIES);
        jar.store(&u("http://h/"), &format!("big={}", "x".repeat(5000)));
        assert!(!format!("{jar:?}").contains("v\""));
    }
}
