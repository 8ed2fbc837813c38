//! `login`: the identity path, and the source of the shared sessions.
//!
//! Flows (`flow = ...`):
//! * `client_credentials` — OAuth2 client credentials at the token
//!   endpoint (no refresh token: RFC 6749 4.4.3);
//! * `password` — the resource owner password grant;
//! * `authorization_code` — OpenID Connect authorization code with PKCE
//!   (S256) through the provider's own HTML login form: discovery, the
//!   authorize request, redirects with a cookie jar, the form with a
//!   password field (action, method, hidden inputs such as CSRF tokens),
//!   an optional consent page, the redirect with `code` and `state`
//!   (state verified), the code exchange, and ID token checks (`iss`,
//!   `aud`, `exp`, `nonce`, and the signature against the provider's JWKS
//!   unless `verify_signature = false`). See [`oidc`].
//!
//! Each run logs in from scratch and then, with `refresh = true` (the
//! default except for client credentials), uses the refresh token once.
//! **Two results per run**: `<name>` times the login, `<name>.refresh`
//! times the refresh (no refresh result when the login failed). The
//! session obtained (bearer token and cookies) is stored in the login's
//! [`Slot`] for every check that says `login = "<name>"`.
//!
//! Classification: a wrong password or a rejected client is `failed`; an
//! unreachable provider is `unreachable`; slow answers `timeout`; a login
//! slower than `latency_bound` is `degraded` (the refresh likewise).
//! Credentials come from files, environment variables or systemd
//! credentials ([`secret`]); nothing secret is logged or put in a result.

pub mod cookies;
pub mod form;
pub mod jwt;
pub mod oidc;
pub mod secret;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use serde::Deserialize;
use tokio::time::Instant;
use toml::Spanned;

use super::{BoxFuture, Check, Observation, Related, RunContext};
use crate::config::{ConfigError, Source};
use crate::result::Outcome;
use crate::session::{Session, Slot};
use cookies::CookieJar;
use secret::{RawSecret, Secret, SecretSource};

pub use token::Obtained;

/// The kind's name.
pub const KIND: &str = "login";
/// Suffix of the refresh result's check name.
pub const REFRESH_SUFFIX: &str = ".refresh";
/// Longest login check name (so that `<name>.refresh` is a valid name).
pub const MAX_NAME_LEN: usize = 64 - REFRESH_SUFFIX.len();
/// Default number of redirects and form posts in the browser flow.
pub const DEFAULT_BROWSER_STEPS: usize = 12;

/// `[check.login]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogin {
    flow: Spanned<String>,
    issuer: Option<Spanned<String>>,
    token_url: Option<Spanned<String>>,
    authorization_url: Option<Spanned<String>>,
    jwks_url: Option<Spanned<String>>,
    client_id: Spanned<String>,
    client_secret_file: Option<Spanned<String>>,
    client_secret_env: Option<Spanned<String>>,
    client_secret_credential: Option<Spanned<String>>,
    client_auth: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    password_credential: Option<Spanned<String>>,
    scope: Option<String>,
    redirect_uri: Option<Spanned<String>>,
    refresh: Option<Spanned<bool>>,
    latency_bound: Option<Spanned<String>>,
    verify_signature: Option<bool>,
    username_field: Option<String>,
    password_field: Option<String>,
    max_body_bytes: Option<Spanned<u64>>,
    max_steps: Option<Spanned<u32>>,
}

/// Which grant a login uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    ClientCredentials,
    Password,
    AuthorizationCode,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`, the default).
    Basic,
    /// `client_id`/`client_secret` in the form (`client_secret_post`).
    Post,
}

/// Validated login settings.
#[derive(Debug, Clone)]
pub struct LoginSpec {
    pub flow: Flow,
    /// OpenID issuer: discovery at `<issuer>/.well-known/openid-configuration`.
    pub issuer: Option<String>,
    pub token_url: Option<Uri>,
    pub authorization_url: Option<Uri>,
    pub jwks_url: Option<Uri>,
    pub client_id: String,
    pub client_secret: Option<SecretSource>,
    pub client_auth: ClientAuth,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub scope: Option<String>,
    pub redirect_uri: Option<String>,
    pub refresh: bool,
    pub latency_bound: Option<Duration>,
    pub verify_signature: bool,
    pub username_field: Option<String>,
    pub password_field: Option<String>,
    pub max_body_bytes: usize,
    pub max_steps: usize,
}

impl LoginSpec {
    /// Whether this flow gets refresh tokens at all.
    pub fn refresh_allowed(&self) -> bool {
        self.flow != Flow::ClientCredentials
    }
}

fn url_field(src: &Source<'_>, raw: Option<&Spanned<String>>) -> Result<Option<Uri>, ConfigError> {
    raw.map(|r| super::page::parse_http_url(src, r)).transpose()
}

/// Validates `[check.login]` of check `name`.
pub fn validate(
    src: &Source<'_>,
    raw: Spanned<RawLogin>,
    name: &str,
    timeout: Duration,
) -> Result<LoginSpec, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    if name.len() > MAX_NAME_LEN {
        return Err(src.error(
            span,
            format!("login check name {name:?} is longer than {MAX_NAME_LEN} characters"),
            format!(
                "shorten it: its refresh result is named \"<name>{REFRESH_SUFFIX}\" (at most 64)"
            ),
        ));
    }
    let flow = match raw.flow.get_ref().as_str() {
        "client_credentials" => Flow::ClientCredentials,
        "password" => Flow::Password,
        "authorization_code" => Flow::AuthorizationCode,
        other => {
            return Err(src.error(
                raw.flow.span(),
                format!("unknown login flow {other:?}"),
                "write flow = \"authorization_code\" (OpenID Connect form login), \"password\" or \"client_credentials\"",
            ))
        }
    };
    let issuer = match &raw.issuer {
        None => None,
        Some(i) => {
            super::page::parse_http_url(src, i)?;
            Some(i.get_ref().trim_end_matches('/').to_string())
        }
    };
    let token_url = url_field(src, raw.token_url.as_ref())?;
    let authorization_url = url_field(src, raw.authorization_url.as_ref())?;
    let jwks_url = url_field(src, raw.jwks_url.as_ref())?;
    let endpoints_ok = match flow {
        Flow::AuthorizationCode => {
            issuer.is_some() || (authorization_url.is_some() && token_url.is_some())
        }
        _ => issuer.is_some() || token_url.is_some(),
    };
    if !endpoints_ok {
        return Err(src.error(
            span,
            "the login has no endpoints",
            match flow {
                Flow::AuthorizationCode => "add issuer = \"https://id.example/realms/x\" (discovery), or authorization_url and token_url",
                _ => "add token_url = \"https://id.example/oauth/token\", or issuer for discovery",
            },
        ));
    }
    let client_id = raw.client_id.get_ref().trim().to_string();
    if client_id.is_empty() {
        return Err(src.error(
            raw.client_id.span(),
            "`client_id` is empty",
            "write the OAuth2 client id registered at the provider",
        ));
    }
    let client_secret = secret::validate(
        src,
        RawSecret {
            file: raw.client_secret_file,
            env: raw.client_secret_env,
            credential: raw.client_secret_credential,
        },
        "client_secret",
        span.clone(),
    )?;
    let password = secret::validate(
        src,
        RawSecret {
            file: raw.password_file,
            env: raw.password_env,
            credential: raw.password_credential,
        },
        "password",
        span.clone(),
    )?;
    if flow == Flow::ClientCredentials && client_secret.is_none() {
        return Err(src.error(
            span,
            "client_credentials needs a client secret",
            "add client_secret_file, client_secret_env or client_secret_credential (never the secret inline)",
        ));
    }
    let username = raw.username.as_ref().map(|u| u.get_ref().clone());
    if flow != Flow::ClientCredentials && (username.is_none() || password.is_none()) {
        return Err(src.error(
            span,
            format!("the {} flow needs a username and a password", raw.flow.get_ref()),
            "add username = \"...\" and one of password_file, password_env or password_credential (never the password inline)",
        ));
    }
    let client_auth = match raw.client_auth.as_ref().map(|c| c.get_ref().as_str()) {
        None | Some("basic") => ClientAuth::Basic,
        Some("post") => ClientAuth::Post,
        Some(other) => {
            return Err(src.error(
                raw.client_auth.as_ref().map_or(span.clone(), Spanned::span),
                format!("unknown client_auth {other:?}"),
                "write client_auth = \"basic\" (HTTP Basic, default) or \"post\" (in the form)",
            ))
        }
    };
    let redirect_uri = match (&raw.redirect_uri, flow) {
        (Some(r), _) => {
            super::page::parse_http_url(src, r)?;
            Some(r.get_ref().clone())
        }
        (None, Flow::AuthorizationCode) => {
            return Err(src.error(
                span,
                "the authorization_code flow needs a redirect_uri",
                "add redirect_uri = \"...\" exactly as registered for the client; the agent catches the redirect and never serves it",
            ))
        }
        (None, _) => None,
    };
    let refresh = match &raw.refresh {
        None => flow != Flow::ClientCredentials,
        Some(r) if *r.get_ref() && flow == Flow::ClientCredentials => {
            return Err(src.error(
                r.span(),
                "client_credentials gets no refresh token (RFC 6749 4.4.3)",
                "remove `refresh` or set refresh = false",
            ))
        }
        Some(r) => *r.get_ref(),
    };
    let latency_bound = raw
        .latency_bound
        .as_ref()
        .map(|l| super::bounded_duration(src, l, "latency_bound", timeout, "the check's timeout"))
        .transpose()?;
    let max_steps = match &raw.max_steps {
        None => DEFAULT_BROWSER_STEPS,
        Some(m) if (1..=30).contains(m.get_ref()) => *m.get_ref() as usize,
        Some(m) => {
            return Err(src.error(
                m.span(),
                "`max_steps` must be 1..=30",
                "write a small number of redirects and form posts, e.g. 12 (the default)",
            ))
        }
    };
    Ok(LoginSpec {
        flow,
        issuer,
        token_url,
        authorization_url,
        jwks_url,
        client_id,
        client_secret,
        client_auth,
        username,
        password,
        scope: raw.scope.filter(|s| !s.trim().is_empty()),
        redirect_uri,
        refresh,
        latency_bound,
        verify_signature: raw.verify_signature.unwrap_or(true),
        username_field: raw.username_field,
        password_field: raw.password_field,
        max_body_bytes: super::body_limit(src, raw.max_body_bytes.as_ref())?,
        max_steps,
    })
}

/// Logs in from scratch with `spec`.
pub async fn obtain(spec: &LoginSpec, ctx: &RunContext) -> Result<Obtained, Observation> {
    token::obtain(spec, ctx).await
}

/// Uses `refresh_token` at `token_url`.
pub async fn refresh(
    spec: &LoginSpec,
    ctx: &RunContext,
    token_url: &Uri,
    refresh_token: &Secret,
    cookies: CookieJar,
) -> Result<Obtained, Observation> {
    token::refresh(spec, ctx, token_url, refresh_token, cookies).await
}

/// A runnable login check.
#[derive(Debug)]
pub struct Login {
    spec: Arc<LoginSpec>,
    slot: Option<Arc<Slot>>,
}

impl Login {
    pub fn new(spec: Arc<LoginSpec>, slot: Option<Arc<Slot>>) -> Self {
        Login { spec, slot }
    }

    async fn store(&self, session: Session) {
        if let Some(slot) = &self.slot {
            slot.store(session).await;
        }
    }
}

fn timed(
    obtained: &Obtained,
    elapsed: Duration,
    bound: Option<Duration>,
    what: &str,
) -> Observation {
    let (outcome, error) = match bound {
        Some(b) if elapsed > b => (
            Outcome::Degraded,
            format!(
                "{what} took {} ms, bound {} ms",
                elapsed.as_millis(),
                b.as_millis()
            ),
        ),
        _ => (Outcome::Ok, String::new()),
    };
    Observation {
        phases: obtained.phases,
        http_status: obtained.http_status,
        tls_cert_days_left: obtained.tls_cert_days_left,
        elapsed: Some(elapsed),
        ..Observation::bare(outcome, error)
    }
}

impl Check for Login {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Observation> {
        Box::pin(async move {
            let t0 = Instant::now();
            let done = match obtain(&self.spec, ctx).await {
                Ok(d) => d,
                Err(obs) => return obs,
            };
            let login_time = t0.elapsed();
            let mut primary = timed(&done, login_time, self.spec.latency_bound, "login");
            if !self.spec.refresh {
                self.store(done.session).await;
                return primary;
            }
            let t1 = Instant::now();
            let refreshed = match &done.session.refresh_token {
                None => Err(Observation::bare(
                    Outcome::Failed,
                    "the provider issued no refresh token (ask for scope offline_access, or set refresh = false)",
                )),
                Some(rt) => {
                    refresh(
                        &self.spec,
                        ctx,
                        &done.session.token_url,
                        rt,
                        done.session.credentials.cookies.clone(),
                    )
                    .await
                }
            };
            let refresh_time = t1.elapsed();
            let refreshed = refreshed.and_then(|r| {
                if r.session.credentials.bearer == done.session.credentials.bearer {
                    Err(Observation::bare(
                        Outcome::Failed,
                        "the refresh returned the same access token",
                    ))
                } else {
                    Ok(r)
                }
            });
            let observation = match refreshed {
                Ok(r) => {
                    let obs = timed(&r, refresh_time, self.spec.latency_bound, "refresh");
                    self.store(r.session).await;
                    obs
                }
                Err(obs) => {
                    // The login's own session is still good to use.
                    self.store(done.session).await;
                    Observation {
                        elapsed: Some(refresh_time),
                        ..obs
                    }
                }
            };
            primary.related.push(Related {
                suffix: REFRESH_SUFFIX,
                offset: t1.duration_since(t0),
                duration: refresh_time,
                observation,
            });
            primary
        })
    }
}

/// The `login` key of a `[[check]]`: the kind table `[check.login]`, or
/// `login = "NAME"` naming the login whose session the check uses.
#[derive(Debug)]
pub enum LoginField {
    Name(String),
    Table(Box<RawLogin>),
}

impl<'de> Deserialize<'de> for LoginField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = LoginField;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a login check's name (login = \"NAME\") or a [check.login] table")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LoginField, E> {
                Ok(LoginField::Name(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<LoginField, A::Error> {
                RawLogin::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|r| LoginField::Table(Box::new(r)))
            }
        }
        d.deserialize_any(V)
    }
}

/// Splits the `login` key into the kind table and the session reference.
pub fn split_field(
    field: Option<Spanned<LoginField>>,
) -> (Option<Spanned<RawLogin>>, Option<Spanned<String>>) {
    let Some(f) = field else {
        return (None, None);
    };
    let span = f.span();
    match f.into_inner() {
        LoginField::Table(t) => (Some(Spanned::new(span, *t)), None),
        LoginField::Name(n) => (None, Some(Spanned::new(span, n))),
    }
}
