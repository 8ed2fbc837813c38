//! The **simulated portal**: the HTTP(S) target that Outpost's integration
//! tests and demo probe.
//!
//! This is a test fixture of the `outpost-tests` crate, not part of the
//! agent or collector. It imitates the "ECTS portal" an Outpost agent
//! watches: plain module pages, pages behind a login, an OAuth2 / OpenID
//! Connect-style identity provider with an HTML login form, an asynchronous
//! report API, device telemetry, backup status, device commands and an alert
//! queue, plus switchable faults for every kind of failure the agent has to
//! qualify (5xx, slowness, huge bodies, redirect loops, broken JSON,
//! slowloris, access denied, stale data, expired certificates...).
//!
//! Start it in-process with [`Portal::start`] (plain HTTP on 127.0.0.1:0) or
//! [`Portal::start_tls`] (HTTPS with a certificate made at start), or as a
//! process with the `outpost-portal` binary. Everything is deterministic
//! except random tokens; every request body read is capped at 64 KiB; the
//! server never panics. [`Portal::shutdown`] stops the accept loop and every
//! connection task (open connections get a 500 ms grace period, then are
//! dropped), so no task outlives the portal. Dropping a [`Portal`] without
//! `shutdown` also cancels its tasks, but does not wait for them.
//!
//! # Identities
//!
//! | what | value |
//! |---|---|
//! | users | `alice` / `alice-password`, `bob` / `bob-password` ([`USERS`]) |
//! | OAuth2 client | `outpost` / `outpost-secret` ([`CLIENT_ID`], [`CLIENT_SECRET`]); confidential, any `http(s)` redirect URI |
//! | client-credentials subject | `service-account-outpost` |
//!
//! # Routes
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | 200 HTML "Welcome to the ECTS portal" |
//! | `GET /healthz` | 200 `ok` |
//! | `GET /portal/{home,devices,alerts,reports}` | 200 HTML with `<h1>Home</h1>`, `<h1>Devices</h1>`, ... (no login) |
//! | `GET /portal/broken` | always 500 `Internal Server Error: Exception` |
//! | `GET /portal/slow` | 200 `<h1>Slow</h1>` after `slow_page_delay_ms` (default 1500) |
//! | `GET /app/{home,devices,alerts,reports}` | needs a valid `Authorization: Bearer` token from this portal or the session cookie of a form login; without (or with an unknown/expired token) 302 to `/login?next=/app/{module}`; a forbidden user gets 403 "Access denied"; else 200 with `<h1>{Module}</h1>` and "Signed in as {user}" |
//! | `GET /.well-known/openid-configuration` | discovery: issuer = base URL, `authorization_endpoint` `/authorize`, `token_endpoint` `/oauth/token`, `userinfo_endpoint` `/userinfo`, `jwks_uri` `/jwks` |
//! | `GET /authorize?response_type=code&client_id&redirect_uri&state&nonce&scope&code_challenge&code_challenge_method=S256` | sets the session cookie `portal_session` and 302s to `/login?<the same params>`; with an already logged-in session (single sign-on) it skips the form. Unknown client or non-http(s) redirect URI: 400 page; other errors: 302 to `redirect_uri?error=...&state=...`. PKCE is optional, but only `S256` is accepted |
//! | `GET /login` | HTML with two forms: first a search form (`GET /search`, no password field), then the login form: `method="post" action="login"` (a relative URL), hidden `csrf_token` (random, tied to the session cookie, which is set here if missing) and the authorize params (or `next`), inputs `username`, `password` |
//! | `POST /login` | checks cookie, CSRF token and credentials. Wrong: 200 with the form again and "Invalid username or password." Right: new session id (cookie), then with authorize params 302 to `/consent` (if `consent_required`) or to `redirect_uri?code=...&state=...`; without, 302 to `next` (local paths only; default `/app/home`). Missing cookie or bad CSRF token: 400 page |
//! | `GET /consent`, `POST /consent` | form `action="consent"` with hidden `consent_token` and a button `decision=approve`; posting approves (or `decision=deny`: 302 `redirect_uri?error=access_denied`) |
//! | `POST /oauth/token` | `application/x-www-form-urlencoded`; client auth by HTTP Basic or `client_id`/`client_secret` in the form. Grants: `client_credentials`, `password` (`username`, `password`), `refresh_token` (single use, rotates), `authorization_code` (`code`, `redirect_uri`, `code_verifier`; codes are single use, 60 s). Answer `{"access_token","token_type":"Bearer","expires_in":300,"scope","refresh_token"?,"refresh_expires_in"?,"id_token"?}` with `Cache-Control: no-store`. No refresh token for `client_credentials` (RFC 6749 4.4.3). An `id_token` when the scope has `openid` (authorization-code requests default to `openid`). Errors per RFC 6749 5.2: bad client 401 `invalid_client`; bad user, code, verifier or refresh token 400 `invalid_grant`; also `invalid_request`, `unsupported_grant_type` |
//! | `GET /userinfo` | with a bearer token `{"sub","preferred_username","name"}`, else 401 |
//! | `GET /jwks` | `{"keys":[]}` (id_tokens are HS256, see below) |
//! | `GET /search?q=` | 200 HTML result page |
//! | `POST /api/reports` | 202 `{"id":"r1","status":"pending"}` (+ `Location`) |
//! | `GET /api/reports/{id}` | 202 `{"id","status":"pending"}` until the report's pending time has passed since creation, then 200 `{"id","status":"ready","rows":42}`; unknown id 404 |
//! | `GET /api/telemetry/devices` | `{"generated_at","devices":[{"id":"dev-1","name","last_seen":"<RFC 3339>","last_seen_ms":<epoch ms>}, ...]}`, 5 devices; device *i* is `telemetry_age_ms + (i-1) s` old, or `stale_age_ms + (i-1) s` for the first `stale_devices` devices |
//! | `GET /api/backup/status` | `{"job":"nightly-full","status":"succeeded","last_success":"<RFC 3339>","last_success_epoch":<secs>}`, `backup_age_ms` old |
//! | `POST /api/devices/{dev-1..dev-5}/commands` | body `{"command":"reboot"}`: 201 `{"id":"c1","device","command","status":"queued"}` (+ `Location`); bad body 400; unknown device 404 |
//! | `GET /api/commands/{id}` | `{"id","device","command","status"}`: `queued` for the first half of `command_delay_ms`, `running` for the second half, then `executed` / `failed`, or `running` forever for `never` |
//! | `GET /api/alerts/queue` | `{"depth":12,"oldest_age_seconds":30}` |
//! | `GET /api/registry/devices` | the device registry: `{"count":5,"updated_by":"cmdb-sync","ids":["dev-1",...],"devices":[{"id":"dev-1","name"},...]}`, the telemetry's devices unless drifted (below) |
//! | `GET /api/telemetry/summary` | `{"devices_reporting":5,"generated_at":"<RFC 3339>"}` |
//! | `GET /_faults`, `POST /_faults` | the fault switches as JSON (below) |
//!
//! Other paths 404; a known path with another method 405 (with `Allow`).
//! `HEAD` is answered like `GET`. Report and command timings are fixed when
//! the report or command is created.
//!
//! The id_token is a JWT signed with **HS256 using the client secret**
//! (`outpost-secret`) as the key, with claims `iss`, `sub`, `aud`, `azp`,
//! `iat`, `auth_time`, `exp`, `nonce` (when the authorize request had one)
//! and `preferred_username`. That keeps the fixture small; a test against a
//! real OpenID provider covers RS256 elsewhere.
//!
//! # Fault switches
//!
//! [`Portal::faults`] returns a [`Faults`]: cheap to clone, thread-safe,
//! effective from the next request. Per-path switches take an exact path
//! (`/portal/reports`) or a prefix ending in `*` (`/api/reports/*`); an
//! exact key wins over prefixes, a longer prefix over a shorter one.
//! `/_faults` itself is never faulted.
//!
//! | setter | JSON field | effect |
//! |---|---|---|
//! | [`Faults::set_status`]`(path, Some(503))` | `paths.{path}.status` | answer that status with a canned body (`503 Service Unavailable`); `None` / `0` clears |
//! | [`Faults::set_delay`]`(path, d)` | `paths.{path}.delay_ms` | sleep before answering (combines with every other fault); zero clears |
//! | [`Faults::set_huge_body`]`(path, on)` | `paths.{path}.huge_body` | 200 with a 50 MiB body (`Content-Length` set) streamed from one static 64 KiB buffer, nothing allocated per chunk |
//! | [`Faults::set_redirect_loop`]`(path, on)` | `paths.{path}.redirect_loop` | 302 with `Location` = the request's own path and query |
//! | [`Faults::set_invalid_json`]`(path, on)` | `paths.{path}.invalid_json` | 200 `application/json` with a truncated body |
//! | [`Faults::set_slowloris`]`(path, on)` | `paths.{path}.slowloris` | 200 headers at once, then one byte (`.`) per second, forever |
//! | [`Faults::clear_path`]`(path)` | `paths.{path}: null` | clears every fault of the path |
//! | [`Faults::set_forbidden_user`]`("bob")` / [`Faults::clear_forbidden_user`] | `forbidden_users` (replaces the set) | that user's tokens and sessions get 403 on `/app/*` |
//! | [`Faults::set_wrong_password_always`]`(on)` | `wrong_password_always` | every password check fails (password grant: `invalid_grant`; form: "Invalid username or password.") |
//! | [`Faults::set_consent_required`]`(on)` | `consent_required` | the code flow goes through `/consent` (default off) |
//! | [`Faults::set_login_without_password`]`(on)` | `login_without_password` | `/login` renders the login form with its password input turned into a text input (a form without a password field; default off) |
//! | [`Faults::set_token_ttl`]`(d)` | `token_ttl_secs` | `expires_in` of new access tokens and id_tokens (default 300) |
//! | [`Faults::set_slow_page_delay`]`(d)` | `slow_page_delay_ms` | delay of `/portal/slow` (default 1500) |
//! | [`Faults::set_report_pending_for`]`(d)` | `report_pending_ms` | pending time of new reports (default 3000); the setter also clears "forever" |
//! | [`Faults::set_report_pending_forever`]`()` | `report_pending_forever` | new reports never get ready |
//! | [`Faults::set_telemetry_age`]`(d)` | `telemetry_age_ms` | base age of fresh devices (default 5000) |
//! | [`Faults::set_stale_devices`]`(n, age)` | `stale_devices`, `stale_age_ms` | the first `n` devices are `age` old (default 0 devices, 1 h) |
//! | [`Faults::set_backup_age`]`(d)` | `backup_age_ms` | age of the last successful backup (default 300000) |
//! | [`Faults::set_command_outcome`]`(`[`CommandOutcome`]`)` | `command_outcome`: `"executed"` \| `"failed"` \| `"never"` | final state of new commands (default executed) |
//! | [`Faults::set_command_delay`]`(d)` | `command_delay_ms` | time to the final state (default 1000) |
//! | [`Faults::set_alert_queue`]`(depth, age)` | `alert_queue_depth`, `alert_oldest_age_seconds` | `/api/alerts/queue` values (default 12, 30) |
//! | [`Faults::set_registry_drift`]`(missing, extra)` | `registry_missing_devices`, `registry_extra_devices` | the registry lacks the last `missing` telemetry devices and lists `extra` devices `dev-6` .. that never report (default 0, 0) |
//! | [`Faults::reset`]`()` | `reset: true` | every default back, all path faults cleared |
//!
//! When several per-path faults are on, the delay comes first, then the
//! first of: redirect loop, status, slowloris, huge body, invalid JSON.
//! Durations are capped at 7 days.
//!
//! # HTTP fault API
//!
//! `GET /_faults` returns the whole state ([`FaultState`]):
//!
//! ```json
//! {"paths":{"/portal/reports":{"status":503,"delay_ms":0,"huge_body":false,
//!   "redirect_loop":false,"invalid_json":false,"slowloris":false}},
//!  "forbidden_users":["bob"],"wrong_password_always":false,"consent_required":false,
//!  "login_without_password":false,
//!  "token_ttl_secs":300,"slow_page_delay_ms":1500,"report_pending_ms":3000,
//!  "report_pending_forever":false,"telemetry_age_ms":5000,"stale_devices":0,
//!  "stale_age_ms":3600000,"backup_age_ms":300000,"command_outcome":"executed",
//!  "command_delay_ms":1000,"alert_queue_depth":12,"alert_oldest_age_seconds":30,
//!  "registry_missing_devices":0,"registry_extra_devices":0}
//! ```
//!
//! `POST /_faults` takes a partial update ([`FaultPatch`]): every field is
//! optional and absent fields stay as they are; `"reset": true` restores the
//! defaults before the rest applies; in `paths`, each path's object is itself
//! partial (`status: 0` and `delay_ms: 0` clear) and `null` clears the path.
//! Unknown fields, a bad status or a path not starting with `/` give 400
//! `{"error": "..."}` and change nothing; success gives 200 with the new
//! state. Example:
//!
//! ```json
//! {"paths":{"/portal/reports":{"status":503},"/portal/home":null},
//!  "forbidden_users":["bob"],"report_pending_forever":true,"command_outcome":"failed"}
//! ```
//!
//! # TLS mode
//!
//! [`Portal::start_tls`]`(days)` makes a throwaway CA and a server
//! certificate for `localhost` and `127.0.0.1` whose `notAfter` is `days`
//! days from now (negative: expired that many days ago). [`Portal::ca_pem`]
//! returns the CA certificate (the one to trust); [`Portal::cert_pem`] the
//! server certificate. ALPN offers `h2` and `http/1.1`.

mod apis;
mod auth;
mod body;
mod faults;
pub mod tls;
mod util;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use ring::rand::SystemRandom;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use auth::{SERVICE_ACCOUNT, SESSION_COOKIE};
pub use body::HUGE_BODY_LEN;
pub use faults::{
    CommandOutcome, FaultPatch, FaultState, Faults, PathFaults, PathFaultsPatch, DEVICE_COUNT,
};

use body::PortalBody;
use util::{html, json, page, set_header, text, Resp};

/// The configured users: (username, password).
pub const USERS: [(&str, &str); 2] = [("alice", "alice-password"), ("bob", "bob-password")];
/// The OAuth2 client id.
pub const CLIENT_ID: &str = "outpost";
/// The OAuth2 client secret (also the HS256 key of id_tokens).
pub const CLIENT_SECRET: &str = "outpost-secret";

/// Largest request body read (64 KiB); larger ones get 413.
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
/// Connections beyond this many are closed at once.
const MAX_CONNECTIONS: usize = 1024;
/// How long open connections may finish after [`Portal::shutdown`].
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HIT_PATHS: usize = 10_000;

/// Shared by every connection of one portal.
struct State {
    base: String,
    tls: bool,
    faults: Faults,
    hits: Mutex<HashMap<String, u64>>,
    rng: SystemRandom,
    auth: auth::AuthStore,
    apis: apis::ApiStore,
}

impl State {
    fn count_hit(&self, path: &str) {
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = hits.get_mut(path) {
            *n += 1;
        } else if hits.len() < MAX_HIT_PATHS {
            hits.insert(path.to_owned(), 1);
        }
    }
}

/// A running simulated portal. See the [module docs](self).
pub struct Portal {
    addr: SocketAddr,
    ca_pem: Option<String>,
    cert_pem: Option<String>,
    state: Arc<State>,
    graceful: CancellationToken,
    hard: CancellationToken,
    tracker: TaskTracker,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("base", &self.state.base)
            .finish_non_exhaustive()
    }
}

impl Portal {
    /// Starts on 127.0.0.1:0 (plain HTTP) in the current tokio runtime.
    pub async fn start() -> anyhow::Result<Portal> {
        Self::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), None).await
    }

    /// Starts on 127.0.0.1:0 with TLS: a certificate for `localhost` /
    /// `127.0.0.1` valid until `days` days from now (negative: expired).
    pub async fn start_tls(days: i64) -> anyhow::Result<Portal> {
        Self::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), Some(days)).await
    }

    /// Starts on `listen`, with TLS when `tls_days` is given (see
    /// [`Portal::start_tls`]). With an unspecified address (0.0.0.0) the
    /// base URL still names 127.0.0.1.
    pub async fn bind(listen: SocketAddr, tls_days: Option<i64>) -> anyhow::Result<Portal> {
        let material = tls_days.map(tls::server_config).transpose()?;
        let listener = TcpListener::bind(listen).await?;
        let mut addr = listener.local_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        let scheme = if material.is_some() { "https" } else { "http" };
        let state = Arc::new(State {
            base: format!("{scheme}://{addr}"),
            tls: material.is_some(),
            faults: Faults::default(),
            hits: Mutex::new(HashMap::new()),
            rng: SystemRandom::new(),
            auth: auth::AuthStore::default(),
            apis: apis::ApiStore::default(),
        });
        let graceful = CancellationToken::new();
        let hard = CancellationToken::new();
        let tracker = TaskTracker::new();
        let acceptor = material
            .as_ref()
            .map(|m| tokio_rustls::TlsAcceptor::from(m.config.clone()));
        tracker.spawn(accept_loop(
            listener,
            acceptor,
            state.clone(),
            graceful.clone(),
            hard.clone(),
            tracker.clone(),
        ));
        Ok(Portal {
            addr,
            ca_pem: material.as_ref().map(|m| m.ca_pem.clone()),
            cert_pem: material.map(|m| m.cert_pem),
            state,
            graceful,
            hard,
            tracker,
        })
    }

    /// The address the portal listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (also the OIDC issuer).
    pub fn base_url(&self) -> &str {
        &self.state.base
    }

    /// `base_url() + path`, e.g. `http://127.0.0.1:41234/portal/home`.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.state.base)
        } else {
            format!("{}/{path}", self.state.base)
        }
    }

    /// In TLS mode, the PEM of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// In TLS mode, the PEM of the server certificate.
    pub fn cert_pem(&self) -> Option<String> {
        self.cert_pem.clone()
    }

    /// The fault switches.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Number of requests seen for `path` (exact path, no query), including
    /// faulted ones.
    pub fn hits(&self, path: &str) -> u64 {
        let hits = self.state.hits.lock().unwrap_or_else(|p| p.into_inner());
        hits.get(path).copied().unwrap_or(0)
    }

    /// Stops accepting, lets open connections finish for up to 500 ms, then
    /// drops them, and returns once every task of the portal has ended.
    pub async fn shutdown(self) {
        self.graceful.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            self.hard.cancel();
            self.tracker.wait().await;
        }
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.graceful.cancel();
        self.hard.cancel();
        self.tracker.close();
    }
}

/// Runs hyper's spawned work (HTTP/2 streams) on the portal's tracker, so
/// that shutdown waits for it too.
#[derive(Clone)]
struct TrackedExec {
    tracker: TaskTracker,
    hard: CancellationToken,
}

impl<F> hyper::rt::Executor<F> for TrackedExec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        let hard = self.hard.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = fut => {}
                _ = hard.cancelled() => {}
            }
        });
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
    graceful: CancellationToken,
    hard: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = graceful.cancelled() => return,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tokio::select! {
                    _ = graceful.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        if tracker.len() > MAX_CONNECTIONS {
            continue;
        }
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            state: state.clone(),
            graceful: graceful.clone(),
            hard: hard.clone(),
            tracker: tracker.clone(),
        };
        let acceptor = acceptor.clone();
        tracker.spawn(async move {
            match acceptor {
                None => conn.serve(stream).await,
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        _ = conn.graceful.cancelled() => return,
                        r = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => r,
                    };
                    if let Ok(Ok(tls_stream)) = handshake {
                        conn.serve(tls_stream).await;
                    }
                }
            }
        });
    }
}

struct Conn {
    state: Arc<State>,
    graceful: CancellationToken,
    hard: CancellationToken,
    tracker: TaskTracker,
}

impl Conn {
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut builder = auto::Builder::new(TrackedExec {
            tracker: self.tracker.clone(),
            hard: self.hard.clone(),
        });
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30));
        let state = self.state.clone();
        let svc = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(state, req).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(io), svc);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = self.graceful.cancelled() => {}
        }
        conn.as_mut().graceful_shutdown();
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = self.hard.cancelled() => {}
        }
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_owned();
    state.count_hit(&path);
    if path != "/_faults" {
        if let Some(pf) = state.faults.for_path(&path) {
            if let Some(resp) = apply_path_faults(&pf, req.uri()).await {
                return resp;
            }
        }
    }
    match route(&state, req).await {
        Ok(resp) => resp,
        Err(err) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Internal Server Error: {err}\n"),
        ),
    }
}

/// Applies per-path faults; `None` lets the real handler answer.
async fn apply_path_faults(pf: &PathFaults, uri: &Uri) -> Option<Resp> {
    if pf.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(pf.delay_ms)).await;
    }
    if pf.redirect_loop {
        let own = uri.path_and_query().map_or("/", |pq| pq.as_str());
        return Some(util::redirect(own));
    }
    if let Some(status) = pf.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = status.canonical_reason().unwrap_or("Injected fault");
        return Some(text(status, format!("{} {reason}\n", status.as_u16())));
    }
    if pf.slowloris {
        let mut resp = Resp::new(PortalBody::trickle(Duration::from_secs(1)));
        set_header(resp.headers_mut(), header::CONTENT_TYPE, "text/html");
        return Some(resp);
    }
    if pf.huge_body {
        let mut resp = Resp::new(PortalBody::huge());
        set_header(
            resp.headers_mut(),
            header::CONTENT_TYPE,
            "application/octet-stream",
        );
        return Some(resp);
    }
    if pf.invalid_json {
        return Some(util::response(
            StatusCode::OK,
            "application/json",
            r#"{"status": "ready", "rows": 42, "devices": [{"id": "dev-1", "last_seen": "#,
        ));
    }
    None
}

/// Reads a request body of at most [`MAX_REQUEST_BODY`] bytes.
async fn read_body(body: Incoming) -> Result<Bytes, Resp> {
    let read = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        Limited::new(body, MAX_REQUEST_BODY).collect(),
    )
    .await;
    match read {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large\n",
        )),
        Ok(Err(_)) => Err(text(StatusCode::BAD_REQUEST, "unreadable request body\n")),
        Err(_) => Err(text(StatusCode::REQUEST_TIMEOUT, "request body too slow\n")),
    }
}

/// Methods allowed on a path; `None`: no such path.
fn allowed_methods(segs: &[&str]) -> Option<&'static str> {
    const GET: &str = "GET, HEAD";
    const POST: &str = "POST";
    const BOTH: &str = "GET, HEAD, POST";
    Some(match segs {
        [""] | ["healthz"] | ["search"] | ["jwks"] => GET,
        ["portal", "broken" | "slow"] => GET,
        ["portal", m] | ["app", m] if auth::module_title(m).is_some() => GET,
        [".well-known", "openid-configuration"] | ["authorize"] | ["userinfo"] => GET,
        ["login"] | ["consent"] | ["_faults"] => BOTH,
        ["oauth", "token"] => POST,
        ["api", "reports"] => POST,
        ["api", "reports", _] => GET,
        ["api", "telemetry", "devices"] | ["api", "backup", "status"] => GET,
        ["api", "alerts", "queue"] | ["api", "commands", _] => GET,
        ["api", "registry", "devices"] | ["api", "telemetry", "summary"] => GET,
        ["api", "devices", _, "commands"] => POST,
        _ => return None,
    })
}

async fn route(state: &Arc<State>, req: Request<Incoming>) -> anyhow::Result<Resp> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let headers = &parts.headers;
    let segs: Vec<&str> = path.split('/').skip(1).collect();

    let Some(allowed) = allowed_methods(&segs) else {
        return Ok(html(
            StatusCode::NOT_FOUND,
            page("Not found", "<h1>Not Found</h1>"),
        ));
    };
    let is_get = parts.method == Method::GET || parts.method == Method::HEAD;
    let is_post = parts.method == Method::POST;
    if !((is_get && allowed.starts_with("GET")) || (is_post && allowed.ends_with("POST"))) {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        set_header(resp.headers_mut(), header::ALLOW, allowed);
        return Ok(resp);
    }
    let body = if is_post {
        match read_body(body).await {
            Ok(b) => b,
            Err(resp) => return Ok(resp),
        }
    } else {
        Bytes::new()
    };
    let faults = state.faults.snapshot();
    let rng = &state.rng;
    let tls = state.tls;

    Ok(match segs.as_slice() {
        [""] => html(
            StatusCode::OK,
            page(
                "Welcome",
                "<h1>Welcome to the ECTS portal</h1>\n<ul>\n\
                 <li><a href=\"/portal/home\">Home</a></li>\n\
                 <li><a href=\"/portal/devices\">Devices</a></li>\n\
                 <li><a href=\"/portal/alerts\">Alerts</a></li>\n\
                 <li><a href=\"/app/home\">Sign in</a></li>\n</ul>",
            ),
        ),
        ["healthz"] => text(StatusCode::OK, "ok"),
        ["search"] => {
            let q = util::parse_form(query.as_bytes())
                .remove("q")
                .unwrap_or_default();
            html(
                StatusCode::OK,
                page(
                    "Search",
                    &format!(
                        "<h1>Search</h1>\n<p>No results for \"{}\".</p>",
                        util::escape(&q)
                    ),
                ),
            )
        }
        ["portal", "broken"] => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error: Exception",
        ),
        ["portal", "slow"] => {
            tokio::time::sleep(Duration::from_millis(faults.slow_page_delay_ms)).await;
            html(
                StatusCode::OK,
                page("Slow", "<h1>Slow</h1>\n<p>Finally.</p>"),
            )
        }
        ["portal", module] => {
            let title = auth::module_title(module).unwrap_or("Portal");
            html(
                StatusCode::OK,
                page(
                    title,
                    &format!("<h1>{title}</h1>\n<p>Module {module} is up.</p>"),
                ),
            )
        }
        ["app", module] => state.auth.app_page(&faults, headers, module),
        [".well-known", "openid-configuration"] => auth::discovery(&state.base),
        ["authorize"] => state.auth.authorize(rng, &faults, headers, query, tls)?,
        ["login"] if is_get => {
            let mut resp = state.auth.login_page(rng, headers, query, tls)?;
            if faults.login_without_password {
                resp = auth::without_password_field(resp).await;
            }
            resp
        }
        ["login"] => state.auth.login_submit(rng, &faults, headers, &body, tls)?,
        ["consent"] if is_get => state.auth.consent_page(headers),
        ["consent"] => state.auth.consent_submit(rng, headers, &body)?,
        ["oauth", "token"] => state
            .auth
            .token(rng, &faults, &state.base, headers, &body)?,
        ["userinfo"] => state.auth.userinfo(headers),
        ["jwks"] => auth::jwks(),
        ["api", "reports"] => state.apis.create_report(&faults),
        ["api", "reports", id] => state.apis.report_status(id),
        ["api", "telemetry", "devices"] => apis::telemetry(&faults),
        ["api", "backup", "status"] => apis::backup(&faults),
        ["api", "alerts", "queue"] => apis::alert_queue(&faults),
        ["api", "registry", "devices"] => apis::registry(&faults),
        ["api", "telemetry", "summary"] => apis::telemetry_summary(),
        ["api", "devices", device, "commands"] => state.apis.create_command(&faults, device, &body),
        ["api", "commands", id] => state.apis.command_status(id),
        ["_faults"] if is_get => json(StatusCode::OK, &serde_json::to_value(&faults)?),
        ["_faults"] => {
            let patch = serde_json::from_slice::<FaultPatch>(&body)
                .map_err(|e| e.to_string())
                .and_then(|patch| state.faults.apply(&patch));
            match patch {
                Ok(()) => json(
                    StatusCode::OK,
                    &serde_json::to_value(state.faults.snapshot())?,
                ),
                Err(error) => json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({ "error": error }),
                ),
            }
        }
        _ => html(
            StatusCode::NOT_FOUND,
            page("Not found", "<h1>Not Found</h1>"),
        ),
    })
}

#[cfg(test)]
mod tests;
