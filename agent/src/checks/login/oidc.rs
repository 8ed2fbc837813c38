//! OpenID Connect authorization code + PKCE through the provider's HTML
//! login form, as a browser does it — without running any script.
//!
//! Steps: build the authorize URL (`state`, `nonce`, S256 `code_challenge`
//! from a fresh verifier), then up to `max_steps` hops with a cookie jar:
//! a 3xx is followed; an HTML page gets its form filled in — the first
//! form with a password field gets the username and password (other
//! fields, e.g. a CSRF token, as the page set them), and after that a page
//! with a form but no password field is taken as a consent page and
//! submitted with its approving button (at most [`MAX_CONSENT`] times). The
//! flow ends when a redirect points at `redirect_uri`: `state` must match,
//! `code` is exchanged (with the verifier) and the ID token validated.
//!
//! A login form shown again after the credentials were posted means the
//! password was wrong: `failed`. Every request goes through the one HTTP
//! client with the run's deadline, so the flow as a whole is bounded.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{HeaderValue, Method, Uri};

use super::cookies::CookieJar;
use super::form::{self, Form};
use super::secret::Secret;
use super::token::{self, Endpoints, Tokens, Trail};
use super::{jwt, LoginSpec};
use crate::checks::{json, Observation, RunContext};
use crate::http::{decode_form, encode_form, resolve_location, Request, Response};

/// Most consent-like pages passed after the login form.
pub const MAX_CONSENT: usize = 3;

/// Where the flow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    BeforeLogin,
    CredentialsPosted,
}

/// Runs the browser part and the code exchange.
pub async fn run(
    spec: &LoginSpec,
    ctx: &RunContext,
    trail: &mut Trail,
    ep: &Endpoints,
    secret: Option<&Secret>,
    password: &Secret,
) -> Result<(Tokens, CookieJar), Observation> {
    let authorize = ep
        .authorization
        .as_ref()
        .ok_or_else(|| trail.fail("no authorization endpoint (discovery has none)"))?;
    let redirect_uri = spec.redirect_uri.as_deref().unwrap_or("");
    let state = token::random_b64(16);
    let nonce = token::random_b64(16);
    let verifier = token::random_b64(32);
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    let scope = spec.scope.as_deref().unwrap_or("openid");
    let query = encode_form([
        ("response_type", "code"),
        ("client_id", spec.client_id.as_str()),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", state.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let sep = if authorize.query().is_some() {
        '&'
    } else {
        '?'
    };
    let first: Uri = format!("{authorize}{sep}{query}")
        .parse()
        .map_err(|_| trail.fail("the authorize URL is not valid"))?;

    let mut jar = CookieJar::default();
    let mut req = browser_request(spec, Method::GET, first, None);
    let mut stage = Stage::BeforeLogin;
    let mut consents = 0;
    let mut callback = None;
    for _ in 0..spec.max_steps {
        if let Some(c) = jar.header_for(&req.url) {
            req.headers.insert(http::header::COOKIE, c);
        }
        let resp = trail.send(ctx, &req, "authorize").await?;
        jar.store_all(&resp.final_url, &resp.headers);
        if resp.status.is_redirection() {
            let Some(loc) = resp.headers.get(http::header::LOCATION) else {
                return Err(trail.fail(format!("{} without a Location", resp.status.as_u16())));
            };
            if is_callback(loc, redirect_uri) {
                callback = Some(loc.clone());
                break;
            }
            let next = resolve_location(&resp.final_url, loc)
                .map_err(|e| trail.fail(format!("bad redirect: {e}")))?;
            req = browser_request(spec, Method::GET, next, None);
            continue;
        }
        req = next_form(spec, trail, &resp, &mut stage, &mut consents, password)?;
    }
    let Some(loc) = callback else {
        return Err(trail.fail(format!(
            "no redirect to redirect_uri within {} steps",
            spec.max_steps
        )));
    };
    let params = decode_form(
        loc.to_str()
            .unwrap_or("")
            .split_once('?')
            .map_or("", |(_, q)| q),
        64,
    );
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(err) = get("error") {
        return Err(trail.fail(format!("the provider refused: {}", short(err))));
    }
    if get("state") != Some(state.as_str()) {
        return Err(trail.fail("state in the redirect does not match the authorize request"));
    }
    let code = get("code").ok_or_else(|| trail.fail("redirect without a code"))?;
    let exchange = token::token_request(
        spec,
        &ep.token,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.as_str()),
        ],
    );
    let tokens = token::exchange(ctx, trail, &exchange, "code exchange").await?;
    if scope.split(' ').any(|s| s == "openid") {
        check_id_token(spec, ctx, trail, ep, secret, &tokens, &nonce).await?;
    }
    Ok((tokens, jar))
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Whether a Location points at the redirect URI (same URL before `?`).
fn is_callback(loc: &HeaderValue, redirect_uri: &str) -> bool {
    let loc = loc.to_str().unwrap_or("");
    let base = |s: &str| s.split(['?', '#']).next().unwrap_or("").to_string();
    !redirect_uri.is_empty() && base(loc) == base(redirect_uri)
}

fn browser_request(spec: &LoginSpec, method: Method, url: Uri, form: Option<String>) -> Request {
    let mut req = match form {
        Some(body) => Request::post(url, "application/x-www-form-urlencoded", body),
        None => Request::get(url),
    };
    req.method = method;
    req.max_body_bytes = spec.max_body_bytes;
    req.follow_redirects = false;
    req.headers.insert(
        http::header::ACCEPT,
        HeaderValue::from_static("text/html,application/xhtml+xml"),
    );
    req
}

/// The request that submits the right form of an HTML answer.
fn next_form(
    spec: &LoginSpec,
    trail: &Trail,
    resp: &Response,
    stage: &mut Stage,
    consents: &mut usize,
    password: &Secret,
) -> Result<Request, Observation> {
    let status = resp.status.as_u16();
    let path = resp.final_url.path().to_string();
    if !resp.status.is_success() {
        return Err(trail.fail(format!("the provider answered {status} at {path}")));
    }
    let html = String::from_utf8_lossy(&resp.body);
    let forms = form::parse(&html);
    let login = forms.iter().find(|f| f.has_password());
    match (*stage, login) {
        (Stage::BeforeLogin, Some(f)) => {
            let user_field = spec
                .username_field
                .as_deref()
                .or_else(|| f.username_field())
                .ok_or_else(|| {
                    trail.fail(format!("the login form at {path} has no username field"))
                })?;
            let pw_field = spec
                .password_field
                .as_deref()
                .or_else(|| f.password_field())
                .unwrap_or("password");
            let user = spec.username.as_deref().unwrap_or("");
            let pairs = f.submission(&[(user_field, user), (pw_field, password.expose())], None);
            *stage = Stage::CredentialsPosted;
            submit(spec, trail, resp, f, &pairs)
        }
        (Stage::BeforeLogin, None) => Err(trail.fail(format!(
            "no login form with a password field at {path} ({} forms, status {status})",
            forms.len()
        ))),
        (Stage::CredentialsPosted, Some(_)) => {
            Err(trail.fail("credentials rejected: the provider showed the login form again"))
        }
        (Stage::CredentialsPosted, None) => {
            let consent = forms
                .iter()
                .find(|f| f.method == "post")
                .or_else(|| forms.first());
            match consent {
                Some(f) if *consents < MAX_CONSENT => {
                    *consents += 1;
                    let pairs = f.submission(&[], None);
                    submit(spec, trail, resp, f, &pairs)
                }
                _ => Err(trail.fail(format!(
                    "after the login the provider answered {status} at {path} without redirecting back"
                ))),
            }
        }
    }
}

fn submit(
    spec: &LoginSpec,
    trail: &Trail,
    resp: &Response,
    f: &Form,
    pairs: &[(String, String)],
) -> Result<Request, Observation> {
    let target = match &f.action {
        None => resp.final_url.clone(),
        Some(a) => {
            let v = HeaderValue::from_str(a.trim())
                .map_err(|_| trail.fail("the form's action is not a valid URL"))?;
            resolve_location(&resp.final_url, &v)
                .map_err(|_| trail.fail("the form's action is not a valid URL"))?
        }
    };
    let body = encode_form(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if f.method == "post" {
        Ok(browser_request(spec, Method::POST, target, Some(body)))
    } else {
        let base = target.to_string();
        let base = base.split('?').next().unwrap_or("");
        let url: Uri = format!("{base}?{body}")
            .parse()
            .map_err(|_| trail.fail("the form's action is not a valid URL"))?;
        Ok(browser_request(spec, Method::GET, url, None))
    }
}

async fn check_id_token(
    spec: &LoginSpec,
    ctx: &RunContext,
    trail: &mut Trail,
    ep: &Endpoints,
    secret: Option<&Secret>,
    tokens: &Tokens,
    nonce: &str,
) -> Result<(), Observation> {
    let raw = tokens
        .id_token
        .as_deref()
        .ok_or_else(|| trail.fail("the code exchange returned no id_token (scope has openid)"))?;
    let jwt = jwt::decode(raw).map_err(|e| trail.fail(e))?;
    let issuer = ep.issuer.as_deref().unwrap_or("");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if !issuer.is_empty() {
        jwt::validate_claims(&jwt, issuer, &spec.client_id, Some(nonce), now)
            .map_err(|e| trail.fail(e))?;
    }
    if !spec.verify_signature {
        return Ok(());
    }
    let jwks = if jwt.alg().starts_with("HS") {
        serde_json::Value::Null
    } else {
        let url = ep.jwks.clone().ok_or_else(|| {
            trail.fail(
                "no jwks_uri to verify the id_token (set jwks_url or verify_signature = false)",
            )
        })?;
        let mut req = Request::get(url);
        req.max_body_bytes = spec.max_body_bytes;
        let resp = trail.send(ctx, &req, "jwks").await?;
        if !resp.status.is_success() {
            return Err(trail.fail(format!("jwks answered {}", resp.status.as_u16())));
        }
        json::parse(&resp.body).map_err(|e| trail.fail(format!("jwks: {e}")))?
    };
    jwt::verify_signature(&jwt, &jwks, secret.map(Secret::expose)).map_err(|e| trail.fail(e))
}
