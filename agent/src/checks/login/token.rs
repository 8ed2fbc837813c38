//! Talking to the token endpoint (and discovery): the grants, the refresh,
//! and the shared plumbing every login request goes through ([`Trail`]).
//!
//! Classification of token endpoint answers (RFC 6749 5.2):
//! `invalid_grant` (wrong password, bad code or refresh token) and
//! `invalid_client` are `failed` with the error code in the text; other
//! 4xx/5xx are `failed` with the status; transport errors keep their own
//! outcome (`unreachable`, `timeout`).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http::Uri;
use tokio::time::Instant;

use super::cookies::CookieJar;
use super::secret::Secret;
use super::{ClientAuth, Flow, LoginSpec};
use crate::checks::{add_phases, json, Observation, RunContext};
use crate::http::{encode_form, Request, Response};
use crate::result::{Outcome, Phases};
use crate::session::{Credentials, Session, DEFAULT_LIFETIME};

/// What a login or refresh produced, with the timings of its requests.
#[derive(Debug)]
pub struct Obtained {
    pub session: Session,
    pub phases: Phases,
    pub http_status: Option<u16>,
    pub tls_cert_days_left: Option<f64>,
}

/// The requests of one flow: sums their phases, keeps the last status and
/// certificate, and turns transport errors into observations.
#[derive(Debug, Default)]
pub struct Trail {
    pub phases: Phases,
    pub http_status: Option<u16>,
    pub tls_cert_days_left: Option<f64>,
}

impl Trail {
    /// Sends `req`; `Err` is the classified transport failure, naming `what`.
    pub async fn send(
        &mut self,
        ctx: &RunContext,
        req: &Request,
        what: &str,
    ) -> Result<Response, Observation> {
        let exchange = ctx.http.send(req, ctx.deadline).await;
        add_phases(&mut self.phases, &exchange.phases);
        match exchange.result {
            Ok(resp) => {
                self.http_status = Some(resp.status.as_u16());
                if resp.tls_cert_days_left.is_some() {
                    self.tls_cert_days_left = resp.tls_cert_days_left;
                }
                Ok(resp)
            }
            Err(e) => Err(self.fail_with(
                crate::checks::http_error_outcome(&e),
                format!("{what}: {e}"),
            )),
        }
    }

    /// An observation of a failure at this point of the flow.
    pub fn fail_with(&self, outcome: Outcome, error: impl Into<String>) -> Observation {
        Observation {
            phases: self.phases,
            http_status: self.http_status,
            tls_cert_days_left: self.tls_cert_days_left,
            ..Observation::bare(outcome, error)
        }
    }

    /// `failed` at this point.
    pub fn fail(&self, error: impl Into<String>) -> Observation {
        self.fail_with(Outcome::Failed, error)
    }
}

/// The endpoints a login uses (from discovery or the config).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub issuer: Option<String>,
    pub authorization: Option<Uri>,
    pub token: Uri,
    pub jwks: Option<Uri>,
}

/// Fetches discovery when the login has an issuer; config URLs win.
pub async fn endpoints(
    spec: &LoginSpec,
    ctx: &RunContext,
    trail: &mut Trail,
) -> Result<Endpoints, Observation> {
    let mut found = Endpoints {
        issuer: spec.issuer.clone(),
        authorization: spec.authorization_url.clone(),
        token: Uri::from_static("http://invalid/"),
        jwks: spec.jwks_url.clone(),
    };
    let mut token = spec.token_url.clone();
    let need_discovery = spec.issuer.is_some()
        && (token.is_none()
            || (spec.flow == Flow::AuthorizationCode
                && (found.authorization.is_none() || found.jwks.is_none())));
    if let (true, Some(issuer)) = (need_discovery, &spec.issuer) {
        let url: Uri = format!("{issuer}/.well-known/openid-configuration")
            .parse()
            .map_err(|_| trail.fail("the issuer does not make a valid discovery URL"))?;
        let mut req = Request::get(url);
        req.max_body_bytes = spec.max_body_bytes;
        let resp = trail.send(ctx, &req, "discovery").await?;
        if !resp.status.is_success() {
            return Err(trail.fail(format!("discovery answered {}", resp.status.as_u16())));
        }
        let doc = json::parse(&resp.body).map_err(|e| trail.fail(format!("discovery: {e}")))?;
        let advertised = doc["issuer"].as_str().unwrap_or("");
        if advertised.trim_end_matches('/') != issuer {
            return Err(trail.fail(format!(
                "discovery names issuer {advertised:?}, not the configured {issuer:?}"
            )));
        }
        found.issuer = Some(advertised.to_string());
        let uri = |key: &str| doc[key].as_str().and_then(|s| s.parse::<Uri>().ok());
        token = token.or_else(|| uri("token_endpoint"));
        found.authorization = found
            .authorization
            .or_else(|| uri("authorization_endpoint"));
        found.jwks = found.jwks.or_else(|| uri("jwks_uri"));
    }
    found.token = token.ok_or_else(|| trail.fail("no token endpoint (discovery has none)"))?;
    Ok(found)
}

/// Reads the client secret and password the flow needs.
pub async fn read_secrets(
    spec: &LoginSpec,
) -> Result<(Option<Secret>, Option<Secret>), Observation> {
    let mut out = [None, None];
    for (slot, (src, what)) in out.iter_mut().zip([
        (spec.client_secret.as_ref(), "client secret"),
        (spec.password.as_ref(), "password"),
    ]) {
        if let Some(s) = src {
            *slot = Some(
                s.read()
                    .await
                    .map_err(|e| Observation::bare(Outcome::Failed, format!("{what}: {e}")))?,
            );
        }
    }
    let [secret, password] = out;
    Ok((secret, password))
}

/// A token request with the client's authentication.
pub fn token_request(
    spec: &LoginSpec,
    url: &Uri,
    secret: Option<&Secret>,
    params: &[(&str, &str)],
) -> Request {
    let mut pairs: Vec<(&str, &str)> = params.to_vec();
    let basic = match (spec.client_auth, secret) {
        (ClientAuth::Basic, Some(s)) => Some(format!(
            "Basic {}",
            STANDARD.encode(format!(
                "{}:{}",
                encode_form([("", spec.client_id.as_str())]).trim_start_matches('='),
                encode_form([("", s.expose())]).trim_start_matches('=')
            ))
        )),
        (ClientAuth::Post, Some(s)) => {
            pairs.push(("client_id", &spec.client_id));
            pairs.push(("client_secret", s.expose()));
            None
        }
        (_, None) => {
            pairs.push(("client_id", &spec.client_id));
            None
        }
    };
    let mut req = Request::post_form(url.clone(), pairs);
    req.max_body_bytes = spec.max_body_bytes;
    req.max_redirects = 0;
    req.headers.insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/json"),
    );
    if let Some(b) = basic.and_then(|b| http::HeaderValue::from_str(&b).ok()) {
        let mut b = b;
        b.set_sensitive(true);
        req.headers.insert(http::header::AUTHORIZATION, b);
    }
    req
}

/// A successful token answer.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<String>,
    pub expires_in: Option<u64>,
}

/// Posts a token request and reads the answer.
pub async fn exchange(
    ctx: &RunContext,
    trail: &mut Trail,
    req: &Request,
    what: &str,
) -> Result<Tokens, Observation> {
    let resp = trail.send(ctx, req, what).await?;
    let body = json::parse(&resp.body);
    if !resp.status.is_success() {
        let code = body
            .as_ref()
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string));
        let text = match code.as_deref() {
            Some("invalid_grant") => format!("{what}: credentials rejected (invalid_grant)"),
            Some("invalid_client") => format!("{what}: client rejected (invalid_client)"),
            Some(c) => format!(
                "{what}: the token endpoint answered {} {c}",
                resp.status.as_u16()
            ),
            None => format!(
                "{what}: the token endpoint answered {}",
                resp.status.as_u16()
            ),
        };
        return Err(trail.fail(text));
    }
    let v = body.map_err(|e| trail.fail(format!("{what}: {e}")))?;
    let access = v["access_token"].as_str().unwrap_or("");
    if access.is_empty() {
        return Err(trail.fail(format!("{what}: the answer has no access_token")));
    }
    if let Some(tt) = v["token_type"].as_str() {
        if !tt.eq_ignore_ascii_case("bearer") {
            return Err(trail.fail(format!("{what}: token_type {tt:?} is not Bearer")));
        }
    }
    let s = |k: &str| {
        v[k].as_str()
            .filter(|t| !t.is_empty())
            .map(|t| t.to_string())
    };
    Ok(Tokens {
        access_token: Secret::new(access.to_string()),
        refresh_token: s("refresh_token").map(Secret::new),
        id_token: s("id_token"),
        expires_in: v["expires_in"]
            .as_u64()
            .or_else(|| v["expires_in"].as_str().and_then(|t| t.parse().ok())),
    })
}

/// Turns tokens into a session.
pub fn session(tokens: Tokens, token_url: Uri, cookies: CookieJar, start: Instant) -> Session {
    let lifetime = tokens
        .expires_in
        .map_or(DEFAULT_LIFETIME, std::time::Duration::from_secs)
        .min(std::time::Duration::from_secs(366 * 24 * 3600));
    Session {
        credentials: Credentials {
            bearer: Some(tokens.access_token),
            cookies,
        },
        refresh_token: tokens.refresh_token,
        expires: start + lifetime,
        token_url,
    }
}

/// A full login.
pub async fn obtain(spec: &LoginSpec, ctx: &RunContext) -> Result<Obtained, Observation> {
    let start = Instant::now();
    let mut trail = Trail::default();
    let (secret, password) = read_secrets(spec).await?;
    let ep = endpoints(spec, ctx, &mut trail).await?;
    let scope = spec.scope.as_deref();
    let (tokens, cookies) = match spec.flow {
        Flow::ClientCredentials => {
            let mut p = vec![("grant_type", "client_credentials")];
            p.extend(scope.map(|s| ("scope", s)));
            let req = token_request(spec, &ep.token, secret.as_ref(), &p);
            (
                exchange(ctx, &mut trail, &req, "token").await?,
                CookieJar::default(),
            )
        }
        Flow::Password => {
            let user = spec.username.as_deref().unwrap_or("");
            let pw = password.as_ref().map_or("", Secret::expose);
            let mut p = vec![
                ("grant_type", "password"),
                ("username", user),
                ("password", pw),
            ];
            p.extend(scope.map(|s| ("scope", s)));
            let req = token_request(spec, &ep.token, secret.as_ref(), &p);
            (
                exchange(ctx, &mut trail, &req, "token").await?,
                CookieJar::default(),
            )
        }
        Flow::AuthorizationCode => {
            let pw = password
                .as_ref()
                .ok_or_else(|| trail.fail("no password configured"))?;
            super::oidc::run(spec, ctx, &mut trail, &ep, secret.as_ref(), pw).await?
        }
    };
    Ok(Obtained {
        session: session(tokens, ep.token, cookies, start),
        phases: trail.phases,
        http_status: trail.http_status,
        tls_cert_days_left: trail.tls_cert_days_left,
    })
}

/// Uses a refresh token; a new, different access token must come back.
pub async fn refresh(
    spec: &LoginSpec,
    ctx: &RunContext,
    token_url: &Uri,
    refresh_token: &Secret,
    cookies: CookieJar,
) -> Result<Obtained, Observation> {
    let start = Instant::now();
    let mut trail = Trail::default();
    let (secret, _) = read_secrets(spec).await?;
    let req = token_request(
        spec,
        token_url,
        secret.as_ref(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ],
    );
    let mut tokens = exchange(ctx, &mut trail, &req, "refresh").await?;
    if tokens.refresh_token.is_none() {
        // No rotation: the old refresh token stays valid.
        tokens.refresh_token = Some(refresh_token.clone());
    }
    Ok(Obtained {
        session: session(tokens, token_url.clone(), cookies, start),
        phases: trail.phases,
        http_status: trail.http_status,
        tls_cert_days_left: trail.tls_cert_days_left,
    })
}

/// A random base64url string of `n` bytes of entropy.
pub fn random_b64(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(bytes)
}
