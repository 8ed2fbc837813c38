//! Identity side of the simulated portal: OAuth2 token endpoint, an
//! OIDC-style authorization-code flow with PKCE through an HTML login form,
//! sessions, and the protected `/app/*` pages.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::{header, HeaderMap, StatusCode};
use ring::rand::SystemRandom;
use serde_json::json;

use super::faults::FaultState;
use super::util::{
    append_header, b64url, basic_auth, bearer, cookie, encode_form, escape, html, json,
    json_no_store, now_epoch, page, parse_form, random_token, redirect, set_header, Resp,
};
use super::{CLIENT_ID, CLIENT_SECRET, USERS};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "portal_session";

const MAX_ENTRIES: usize = 10_000;
const SESSION_TTL: Duration = Duration::from_secs(3600);
const CODE_TTL: Duration = Duration::from_secs(60);
const REFRESH_TTL: Duration = Duration::from_secs(24 * 3600);

/// Authorize parameters carried through the login form as hidden inputs.
const AUTHZ_KEYS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

/// The subject of client-credentials tokens.
pub const SERVICE_ACCOUNT: &str = "service-account-outpost";

#[derive(Clone, Debug)]
struct AuthzRequest {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
}

struct Session {
    csrf: String,
    user: Option<String>,
    pending: Option<AuthzRequest>,
    created: Instant,
}

struct AccessGrant {
    sub: String,
    expires: Instant,
}

struct RefreshGrant {
    sub: String,
    client_id: String,
    scope: String,
    expires: Instant,
}

struct CodeGrant {
    authz: AuthzRequest,
    sub: String,
    expires: Instant,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    access: HashMap<String, AccessGrant>,
    refresh: HashMap<String, RefreshGrant>,
    codes: HashMap<String, CodeGrant>,
}

/// Sessions, tokens and codes issued so far.
#[derive(Default)]
pub struct AuthStore {
    inner: Mutex<Inner>,
}

/// Keeps a map bounded: drops expired entries once it is full, and
/// everything if that was not enough.
fn make_room<V>(map: &mut HashMap<String, V>, expired: impl Fn(&V) -> bool) {
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, v| !expired(v));
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
    }
}

fn check_password(faults: &FaultState, username: &str, password: &str) -> bool {
    !faults.wrong_password_always && USERS.iter().any(|(u, p)| *u == username && *p == password)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Resp {
    json_no_store(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn error_page(status: StatusCode, message: &str) -> Resp {
    html(
        status,
        page(
            "Error",
            &format!(
                "<h1>We are sorry...</h1>\n<p class=\"error\">{}</p>",
                escape(message)
            ),
        ),
    )
}

fn session_cookie(sid: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

/// Appends `params` to `uri`'s query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", encode_form(params.iter().copied()))
}

/// Only local absolute paths are followed after a login.
fn safe_next(next: Option<&String>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.clone(),
        _ => "/app/home".to_owned(),
    }
}

/// Validates authorize parameters. `Err` carries a response: a 400 page for
/// a bad client or redirect URI (never redirect to an unchecked URI), or a
/// redirect with `error=` for the rest.
fn authz_from_params(params: &HashMap<String, String>) -> Result<AuthzRequest, Box<Resp>> {
    let client_id = params.get("client_id").cloned().unwrap_or_default();
    if client_id != CLIENT_ID {
        return Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "Client not found.",
        )));
    }
    let redirect_uri = params.get("redirect_uri").cloned().unwrap_or_default();
    if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://"))
        || redirect_uri.contains('#')
    {
        return Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid parameter: redirect_uri",
        )));
    }
    let state = params.get("state").cloned();
    let fail = |error: &str, description: &str| {
        let mut p = vec![("error", error), ("error_description", description)];
        if let Some(s) = &state {
            p.push(("state", s));
        }
        Err(Box::new(redirect(&with_query(&redirect_uri, &p))))
    };
    if params.get("response_type").map(String::as_str) != Some("code") {
        return fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    let code_challenge = params.get("code_challenge").cloned();
    let method = params.get("code_challenge_method").map(String::as_str);
    match (&code_challenge, method) {
        (None, None) => {}
        (Some(c), Some("S256")) if (43..=128).contains(&c.len()) => {}
        (Some(_), Some("S256")) => return fail("invalid_request", "invalid code_challenge"),
        _ => {
            return fail(
                "invalid_request",
                "code_challenge with code_challenge_method=S256 required",
            )
        }
    }
    Ok(AuthzRequest {
        client_id,
        redirect_uri,
        scope: params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| "openid".to_owned()),
        state,
        nonce: params.get("nonce").cloned(),
        code_challenge,
    })
}

fn login_form(csrf: &str, hidden: &[(&str, &str)], error: Option<&str>) -> String {
    let mut inner = String::new();
    inner.push_str(
        "<header>\n<form id=\"search\" method=\"get\" action=\"/search\">\n\
         <input type=\"search\" name=\"q\" placeholder=\"Search the help center\">\n\
         <button type=\"submit\">Search</button>\n</form>\n</header>\n<main>\n\
         <h1>Sign in to the ECTS portal</h1>\n",
    );
    if let Some(error) = error {
        inner.push_str(&format!(
            "<p class=\"alert-error\" role=\"alert\">{}</p>\n",
            escape(error)
        ));
    }
    inner.push_str("<form id=\"kc-form-login\" method=\"post\" action=\"login\">\n");
    inner.push_str(&format!(
        "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\n",
        escape(csrf)
    ));
    for (k, v) in hidden {
        inner.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
            escape(k),
            escape(v)
        ));
    }
    inner.push_str(
        "<label for=\"username\">Username</label>\n\
         <input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" autofocus>\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\">\n\
         <button type=\"submit\" name=\"login\" value=\"Sign in\">Sign in</button>\n\
         </form>\n</main>",
    );
    page("Sign in", &inner)
}

/// The hidden fields to carry: authorize parameters and `next`.
fn hidden_fields(params: &HashMap<String, String>) -> Vec<(&str, &str)> {
    AUTHZ_KEYS
        .iter()
        .chain(["next"].iter())
        .filter_map(|k| params.get(*k).map(|v| (*k, v.as_str())))
        .collect()
}

/// Whether the request carries authorize parameters.
fn is_authz(params: &HashMap<String, String>) -> bool {
    params.contains_key("client_id") || params.contains_key("redirect_uri")
}

pub fn module_title(module: &str) -> Option<&'static str> {
    match module {
        "home" => Some("Home"),
        "devices" => Some("Devices"),
        "alerts" => Some("Alerts"),
        "reports" => Some("Reports"),
        _ => None,
    }
}

impl AuthStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live session of the request's cookie, if any.
    fn session_id(inner: &Inner, headers: &HeaderMap) -> Option<String> {
        let sid = cookie(headers, SESSION_COOKIE)?;
        let session = inner.sessions.get(&sid)?;
        (session.created.elapsed() < SESSION_TTL).then_some(sid)
    }

    fn new_session(inner: &mut Inner, rng: &SystemRandom) -> anyhow::Result<String> {
        make_room(&mut inner.sessions, |s| s.created.elapsed() >= SESSION_TTL);
        let sid = random_token(rng)?;
        let csrf = random_token(rng)?;
        inner.sessions.insert(
            sid.clone(),
            Session {
                csrf,
                user: None,
                pending: None,
                created: Instant::now(),
            },
        );
        Ok(sid)
    }

    /// The subject of a valid bearer token.
    fn token_subject(inner: &Inner, headers: &HeaderMap) -> Option<String> {
        let token = bearer(headers)?;
        let grant = inner.access.get(&token)?;
        (Instant::now() < grant.expires).then(|| grant.sub.clone())
    }

    /// Issues a code and redirects to the client with it.
    fn code_redirect(
        inner: &mut Inner,
        rng: &SystemRandom,
        authz: AuthzRequest,
        sub: String,
    ) -> anyhow::Result<Resp> {
        make_room(&mut inner.codes, |c| Instant::now() >= c.expires);
        let code = random_token(rng)?;
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = &authz.state {
            params.push(("state", state));
        }
        let location = with_query(&authz.redirect_uri, &params);
        inner.codes.insert(
            code.clone(),
            CodeGrant {
                authz,
                sub,
                expires: Instant::now() + CODE_TTL,
            },
        );
        Ok(redirect(&location))
    }

    /// After a successful login (or with a logged-in session): consent page
    /// or straight to the client.
    fn finish_authz(
        inner: &mut Inner,
        rng: &SystemRandom,
        faults: &FaultState,
        sid: &str,
        user: String,
        authz: AuthzRequest,
    ) -> anyhow::Result<Resp> {
        if faults.consent_required {
            if let Some(session) = inner.sessions.get_mut(sid) {
                session.pending = Some(authz);
            }
            return Ok(redirect("/consent"));
        }
        Self::code_redirect(inner, rng, authz, user)
    }

    /// `GET /authorize`.
    pub fn authorize(
        &self,
        rng: &SystemRandom,
        faults: &FaultState,
        headers: &HeaderMap,
        query: &str,
        secure: bool,
    ) -> anyhow::Result<Resp> {
        let params = parse_form(query.as_bytes());
        let authz = match authz_from_params(&params) {
            Ok(a) => a,
            Err(resp) => return Ok(*resp),
        };
        let mut inner = self.lock();
        let (sid, fresh) = match Self::session_id(&inner, headers) {
            Some(sid) => (sid, false),
            None => (Self::new_session(&mut inner, rng)?, true),
        };
        let user = inner.sessions.get(&sid).and_then(|s| s.user.clone());
        let mut resp = match user {
            // Single sign-on: a logged-in session skips the form.
            Some(user) => Self::finish_authz(&mut inner, rng, faults, &sid, user, authz)?,
            None => {
                let pairs: Vec<(&str, &str)> = AUTHZ_KEYS
                    .iter()
                    .filter_map(|k| params.get(*k).map(|v| (*k, v.as_str())))
                    .collect();
                redirect(&format!("/login?{}", encode_form(pairs)))
            }
        };
        if fresh {
            append_header(
                resp.headers_mut(),
                header::SET_COOKIE,
                &session_cookie(&sid, secure),
            );
        }
        Ok(resp)
    }

    /// `GET /login`: the search form, then the login form.
    pub fn login_page(
        &self,
        rng: &SystemRandom,
        headers: &HeaderMap,
        query: &str,
        secure: bool,
    ) -> anyhow::Result<Resp> {
        let params = parse_form(query.as_bytes());
        if is_authz(&params) {
            if let Err(resp) = authz_from_params(&params) {
                return Ok(*resp);
            }
        }
        let mut inner = self.lock();
        let (sid, fresh) = match Self::session_id(&inner, headers) {
            Some(sid) => (sid, false),
            None => (Self::new_session(&mut inner, rng)?, true),
        };
        let csrf = inner
            .sessions
            .get(&sid)
            .map(|s| s.csrf.clone())
            .unwrap_or_default();
        let mut resp = html(
            StatusCode::OK,
            login_form(&csrf, &hidden_fields(&params), None),
        );
        set_header(resp.headers_mut(), header::CACHE_CONTROL, "no-store");
        if fresh {
            append_header(
                resp.headers_mut(),
                header::SET_COOKIE,
                &session_cookie(&sid, secure),
            );
        }
        Ok(resp)
    }

    /// `POST /login`: checks cookie, CSRF token and credentials.
    pub fn login_submit(
        &self,
        rng: &SystemRandom,
        faults: &FaultState,
        headers: &HeaderMap,
        body: &[u8],
        secure: bool,
    ) -> anyhow::Result<Resp> {
        let form = parse_form(body);
        let mut inner = self.lock();
        let Some(sid) = Self::session_id(&inner, headers) else {
            return Ok(error_page(
                StatusCode::BAD_REQUEST,
                "Cookie not found. Please make sure cookies are enabled in your browser.",
            ));
        };
        let csrf = inner
            .sessions
            .get(&sid)
            .map(|s| s.csrf.clone())
            .unwrap_or_default();
        if form.get("csrf_token") != Some(&csrf) {
            return Ok(error_page(StatusCode::BAD_REQUEST, "Invalid CSRF token."));
        }
        let authz = if is_authz(&form) {
            match authz_from_params(&form) {
                Ok(a) => Some(a),
                Err(resp) => return Ok(*resp),
            }
        } else {
            None
        };
        let username = form.get("username").map(String::as_str).unwrap_or("");
        let password = form.get("password").map(String::as_str).unwrap_or("");
        if !check_password(faults, username, password) {
            return Ok(html(
                StatusCode::OK,
                login_form(
                    &csrf,
                    &hidden_fields(&form),
                    Some("Invalid username or password."),
                ),
            ));
        }
        // A new session id after login (no session fixation).
        let Some(mut session) = inner.sessions.remove(&sid) else {
            return Ok(error_page(StatusCode::BAD_REQUEST, "Session expired."));
        };
        session.user = Some(username.to_owned());
        session.csrf = random_token(rng)?;
        session.created = Instant::now();
        make_room(&mut inner.sessions, |s| s.created.elapsed() >= SESSION_TTL);
        let new_sid = random_token(rng)?;
        inner.sessions.insert(new_sid.clone(), session);
        let mut resp = match authz {
            Some(authz) => Self::finish_authz(
                &mut inner,
                rng,
                faults,
                &new_sid,
                username.to_owned(),
                authz,
            )?,
            None => redirect(&safe_next(form.get("next"))),
        };
        append_header(
            resp.headers_mut(),
            header::SET_COOKIE,
            &session_cookie(&new_sid, secure),
        );
        Ok(resp)
    }

    /// `GET /consent`: a form with a hidden token and an approve button.
    pub fn consent_page(&self, headers: &HeaderMap) -> Resp {
        let inner = self.lock();
        let session = Self::session_id(&inner, headers).and_then(|sid| inner.sessions.get(&sid));
        let Some(session) = session.filter(|s| s.user.is_some() && s.pending.is_some()) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "No authorization request is pending.",
            );
        };
        let client = session
            .pending
            .as_ref()
            .map(|p| p.client_id.as_str())
            .unwrap_or("");
        html(
            StatusCode::OK,
            page(
                "Grant access",
                &format!(
                    "<h1>Grant access to {}</h1>\n<p>The application wants to read your profile.</p>\n\
                     <form id=\"consent\" method=\"post\" action=\"consent\">\n\
                     <input type=\"hidden\" name=\"consent_token\" value=\"{}\">\n\
                     <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\n\
                     </form>",
                    escape(client),
                    escape(&session.csrf)
                ),
            ),
        )
    }

    /// `POST /consent`: `decision=deny` refuses; anything else approves.
    pub fn consent_submit(
        &self,
        rng: &SystemRandom,
        headers: &HeaderMap,
        body: &[u8],
    ) -> anyhow::Result<Resp> {
        let form = parse_form(body);
        let mut inner = self.lock();
        let Some(sid) = Self::session_id(&inner, headers) else {
            return Ok(error_page(StatusCode::BAD_REQUEST, "Cookie not found."));
        };
        let Some(session) = inner.sessions.get_mut(&sid) else {
            return Ok(error_page(StatusCode::BAD_REQUEST, "Session expired."));
        };
        if form.get("consent_token") != Some(&session.csrf) {
            return Ok(error_page(StatusCode::BAD_REQUEST, "Invalid CSRF token."));
        }
        let (Some(user), Some(authz)) = (session.user.clone(), session.pending.take()) else {
            return Ok(error_page(
                StatusCode::BAD_REQUEST,
                "No authorization request is pending.",
            ));
        };
        if form.get("decision").map(String::as_str) == Some("deny") {
            let mut p = vec![("error", "access_denied")];
            if let Some(s) = &authz.state {
                p.push(("state", s));
            }
            return Ok(redirect(&with_query(&authz.redirect_uri, &p)));
        }
        Self::code_redirect(&mut inner, rng, authz, user)
    }

    /// `POST /oauth/token`.
    pub fn token(
        &self,
        rng: &SystemRandom,
        faults: &FaultState,
        issuer: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> anyhow::Result<Resp> {
        let form_ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if !form_ct {
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "expected application/x-www-form-urlencoded",
            ));
        }
        let form = parse_form(body);
        let basic = basic_auth(headers);
        let used_basic = basic.is_some();
        let (client_id, client_secret) = match basic {
            Some(pair) => pair,
            None => (
                form.get("client_id").cloned().unwrap_or_default(),
                form.get("client_secret").cloned().unwrap_or_default(),
            ),
        };
        if client_id != CLIENT_ID || client_secret != CLIENT_SECRET {
            let mut resp = oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Invalid client or client credentials",
            );
            if used_basic {
                set_header(
                    resp.headers_mut(),
                    header::WWW_AUTHENTICATE,
                    "Basic realm=\"portal\"",
                );
            }
            return Ok(resp);
        }
        let invalid_grant = |d: &str| -> anyhow::Result<Resp> {
            Ok(oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", d))
        };
        let requested_scope = form.get("scope").cloned();
        let mut inner = self.lock();
        let (sub, scope, nonce, refresh) = match form.get("grant_type").map(String::as_str) {
            Some("client_credentials") => (
                SERVICE_ACCOUNT.to_owned(),
                requested_scope.unwrap_or_default(),
                None,
                false,
            ),
            Some("password") => {
                let (Some(u), Some(p)) = (form.get("username"), form.get("password")) else {
                    return Ok(oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "username and password are required",
                    ));
                };
                if !check_password(faults, u, p) {
                    return invalid_grant("Invalid user credentials");
                }
                (u.clone(), requested_scope.unwrap_or_default(), None, true)
            }
            Some("refresh_token") => {
                let Some(token) = form.get("refresh_token") else {
                    return Ok(oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "refresh_token is required",
                    ));
                };
                // Single use: the presented token is gone whatever happens.
                let Some(grant) = inner.refresh.remove(token) else {
                    return invalid_grant("Invalid refresh token");
                };
                if Instant::now() >= grant.expires || grant.client_id != client_id {
                    return invalid_grant("Invalid refresh token");
                }
                (grant.sub, grant.scope, None, true)
            }
            Some("authorization_code") => {
                let Some(code) = form.get("code") else {
                    return Ok(oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "code is required",
                    ));
                };
                let Some(grant) = inner.codes.remove(code) else {
                    return invalid_grant("Code not valid");
                };
                if Instant::now() >= grant.expires || grant.authz.client_id != client_id {
                    return invalid_grant("Code not valid");
                }
                if form.get("redirect_uri") != Some(&grant.authz.redirect_uri) {
                    return invalid_grant("Incorrect redirect_uri");
                }
                if let Some(challenge) = &grant.authz.code_challenge {
                    let Some(verifier) = form.get("code_verifier") else {
                        return invalid_grant("PKCE verification failed: code_verifier missing");
                    };
                    if !pkce_ok(verifier, challenge) {
                        return invalid_grant("PKCE verification failed");
                    }
                }
                (grant.sub, grant.authz.scope, grant.authz.nonce, true)
            }
            Some(_) => {
                return Ok(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "unsupported grant_type",
                ))
            }
            None => {
                return Ok(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "grant_type is required",
                ))
            }
        };
        let ttl = faults.token_ttl_secs;
        make_room(&mut inner.access, |g| Instant::now() >= g.expires);
        let access_token = random_token(rng)?;
        inner.access.insert(
            access_token.clone(),
            AccessGrant {
                sub: sub.clone(),
                expires: Instant::now() + Duration::from_secs(ttl),
            },
        );
        let mut out = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": scope,
        });
        if refresh {
            make_room(&mut inner.refresh, |g| Instant::now() >= g.expires);
            let refresh_token = random_token(rng)?;
            inner.refresh.insert(
                refresh_token.clone(),
                RefreshGrant {
                    sub: sub.clone(),
                    client_id: client_id.clone(),
                    scope: scope.clone(),
                    expires: Instant::now() + REFRESH_TTL,
                },
            );
            out["refresh_token"] = json!(refresh_token);
            out["refresh_expires_in"] = json!(REFRESH_TTL.as_secs());
        }
        if scope.split(' ').any(|s| s == "openid") && sub != SERVICE_ACCOUNT {
            out["id_token"] = json!(id_token(issuer, &client_id, &sub, nonce.as_deref(), ttl));
        }
        Ok(json_no_store(StatusCode::OK, &out))
    }

    /// The user (or service account) behind a bearer token or a logged-in
    /// session cookie.
    pub fn principal(&self, headers: &HeaderMap) -> Option<String> {
        let inner = self.lock();
        if let Some(sub) = Self::token_subject(&inner, headers) {
            return Some(sub);
        }
        let sid = Self::session_id(&inner, headers)?;
        inner.sessions.get(&sid)?.user.clone()
    }

    /// `GET /app/{module}`.
    pub fn app_page(&self, faults: &FaultState, headers: &HeaderMap, module: &str) -> Resp {
        let Some(title) = module_title(module) else {
            return html(
                StatusCode::NOT_FOUND,
                page("Not found", "<h1>Not Found</h1>"),
            );
        };
        let Some(user) = self.principal(headers) else {
            return redirect(&format!(
                "/login?{}",
                encode_form([("next", format!("/app/{module}").as_str())])
            ));
        };
        if faults.forbidden_users.contains(&user) {
            return html(
                StatusCode::FORBIDDEN,
                page(
                    "Forbidden",
                    &format!(
                        "<h1>Access denied</h1>\n<p>User {} may not open {title}.</p>",
                        escape(&user)
                    ),
                ),
            );
        }
        html(
            StatusCode::OK,
            page(
                title,
                &format!(
                    "<nav><a href=\"/app/home\">Home</a> <a href=\"/app/devices\">Devices</a> \
                     <a href=\"/app/alerts\">Alerts</a> <a href=\"/app/reports\">Reports</a></nav>\n\
                     <h1>{title}</h1>\n<p class=\"user\">Signed in as {}</p>",
                    escape(&user)
                ),
            ),
        )
    }

    /// `GET /userinfo`.
    pub fn userinfo(&self, headers: &HeaderMap) -> Resp {
        let sub = Self::token_subject(&self.lock(), headers);
        match sub {
            Some(sub) => json(
                StatusCode::OK,
                &json!({"sub": sub, "preferred_username": sub, "name": sub}),
            ),
            None => {
                let mut resp = json(StatusCode::UNAUTHORIZED, &json!({"error": "invalid_token"}));
                set_header(
                    resp.headers_mut(),
                    header::WWW_AUTHENTICATE,
                    "Bearer error=\"invalid_token\"",
                );
                resp
            }
        }
    }
}

/// RFC 7636 S256: `BASE64URL(SHA256(verifier)) == challenge`.
fn pkce_ok(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    well_formed
        && b64url(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
            == challenge
}

/// An HS256 JWT signed with the client secret.
fn id_token(issuer: &str, client_id: &str, sub: &str, nonce: Option<&str>, ttl: u64) -> String {
    let iat = now_epoch().as_secs();
    let mut claims = json!({
        "iss": issuer,
        "sub": sub,
        "aud": client_id,
        "azp": client_id,
        "iat": iat,
        "auth_time": iat,
        "exp": iat + ttl,
        "preferred_username": sub,
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, CLIENT_SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(tag.as_ref()))
}

/// The login page with its password input turned into a text input (the
/// `login_without_password` fault).
pub async fn without_password_field(resp: Resp) -> Resp {
    use http_body_util::BodyExt as _;
    let (parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).replace("type=\"password\"", "type=\"text\"");
    let mut out = html(parts.status, text);
    for (k, v) in &parts.headers {
        if k != header::CONTENT_LENGTH && k != header::CONTENT_TYPE {
            out.headers_mut().append(k.clone(), v.clone());
        }
    }
    out
}

/// `GET /.well-known/openid-configuration`.
pub fn discovery(issuer: &str) -> Resp {
    json(
        StatusCode::OK,
        &json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/oauth/token"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "password", "client_credentials", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "profile"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "preferred_username"],
        }),
    )
}

/// `GET /jwks`: empty, since id_tokens are HS256 (a shared secret).
pub fn jwks() -> Resp {
    json(StatusCode::OK, &json!({"keys": []}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rfc7636_example() {
        // RFC 7636 appendix B.
        assert!(pkce_ok(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_ok(
            "short",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }

    #[test]
    fn id_token_is_verifiable() {
        let jwt = id_token("http://x", CLIENT_ID, "alice", Some("n1"), 300);
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, CLIENT_SECRET.as_bytes());
        let sig =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[2])
                .unwrap();
        ring::hmac::verify(&key, format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["nonce"], "n1");
        assert_eq!(claims["aud"], CLIENT_ID);
    }
}
