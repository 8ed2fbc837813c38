//! In-process tests of the simulated portal, with a plain hyper client.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Body as _;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::body::{PortalBody, HUGE_CHUNK};
use super::*;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// `portal_session=...` from `Set-Cookie`.
    fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(SESSION_COOKIE))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
    }
}

async fn send_on<I>(io: I, req: Request<Full<Bytes>>) -> hyper::Response<Incoming>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender.send_request(req).await.unwrap()
}

async fn call(
    portal: &Portal,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, portal.addr().to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let stream = TcpStream::connect(portal.addr()).await.unwrap();
    let resp = send_on(stream, req).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(portal: &Portal, path: &str) -> Reply {
    call(portal, Method::GET, path, &[], "").await
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

async fn password_grant(portal: &Portal, user: &str, password: &str) -> Reply {
    let body = util::encode_form([
        ("grant_type", "password"),
        ("username", user),
        ("password", password),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ]);
    call(portal, Method::POST, "/oauth/token", &[FORM], &body).await
}

/// The `value` of the input named `name` in `html`.
fn input_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}

#[tokio::test]
async fn home_and_module_pages_answer() {
    let portal = Portal::start().await.unwrap();
    let home = get(&portal, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Welcome to the ECTS portal"));
    assert_eq!(get(&portal, "/healthz").await.body, "ok");
    let devices = get(&portal, "/portal/devices").await;
    assert_eq!(devices.status, StatusCode::OK);
    assert!(devices.body.contains("<h1>Devices</h1>"));
    let broken = get(&portal, "/portal/broken").await;
    assert_eq!(broken.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(broken.body, "Internal Server Error: Exception");
    assert_eq!(get(&portal, "/nope").await.status, StatusCode::NOT_FOUND);
    let wrong_method = call(&portal, Method::POST, "/portal/home", &[], "").await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(portal.hits("/portal/devices"), 1);
    assert_eq!(portal.hits("/portal/home"), 1);
    assert!(portal.url("/x").starts_with("http://127.0.0.1:"));

    portal
        .faults()
        .set_slow_page_delay(Duration::from_millis(100));
    let t = Instant::now();
    assert_eq!(get(&portal, "/portal/slow").await.status, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(100));
    portal.shutdown().await;
}

#[tokio::test]
async fn protected_page_without_auth_redirects_to_login() {
    let portal = Portal::start().await.unwrap();
    let r = get(&portal, "/app/devices").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.location(), "/login?next=%2Fapp%2Fdevices");
    let r = call(
        &portal,
        Method::GET,
        "/app/devices",
        &[("authorization", "Bearer not-a-token")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);

    // Form login without an authorize request: back to `next`, with a cookie.
    let login = get(&portal, &r.location()).await;
    let cookie = login.session_cookie().unwrap();
    let csrf = input_value(&login.body, "csrf_token").unwrap();
    let next = input_value(&login.body, "next").unwrap();
    assert_eq!(next, "/app/devices");
    let body = util::encode_form([
        ("csrf_token", csrf.as_str()),
        ("next", next.as_str()),
        ("username", "bob"),
        ("password", "bob-password"),
    ]);
    let bad_csrf = body.replace("csrf_token=", "csrf_token=x");
    let r = call(
        &portal,
        Method::POST,
        "/login",
        &[FORM, ("cookie", &cookie)],
        &bad_csrf,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(
        &portal,
        Method::POST,
        "/login",
        &[FORM, ("cookie", &cookie)],
        &body,
    )
    .await;
    assert_eq!(
        (r.status, r.location().as_str()),
        (StatusCode::FOUND, "/app/devices")
    );
    let cookie = r.session_cookie().unwrap();
    let page = call(
        &portal,
        Method::GET,
        "/app/devices",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert!(page.body.contains("Signed in as bob"), "{}", page.body);
    portal.faults().set_forbidden_user("bob");
    let page = call(
        &portal,
        Method::HEAD,
        "/app/devices",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    portal.shutdown().await;
}

#[tokio::test]
async fn password_grant_token_opens_app_and_refresh_rotates() {
    let portal = Portal::start().await.unwrap();
    let r = password_grant(&portal, "alice", "alice-password").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let tokens = r.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {access}");
    let page = call(
        &portal,
        Method::GET,
        "/app/home",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<h1>Home</h1>"));
    assert!(page.body.contains("Signed in as alice"));

    // Refresh with HTTP Basic client auth: a new pair, the old one is spent.
    let basic = "Basic b3V0cG9zdDpvdXRwb3N0LXNlY3JldA==";
    let body = util::encode_form([("grant_type", "refresh_token"), ("refresh_token", &refresh)]);
    let r = call(
        &portal,
        Method::POST,
        "/oauth/token",
        &[FORM, ("authorization", basic)],
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_ne!(r.json()["refresh_token"].as_str().unwrap(), refresh);
    let again = call(
        &portal,
        Method::POST,
        "/oauth/token",
        &[FORM, ("authorization", basic)],
        &body,
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.json()["error"], "invalid_grant");

    // Client credentials: no refresh token.
    let body = util::encode_form([("grant_type", "client_credentials")]);
    let r = call(
        &portal,
        Method::POST,
        "/oauth/token",
        &[FORM, ("authorization", basic)],
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json().get("refresh_token").is_none());

    // A forbidden user gets 403.
    portal.faults().set_forbidden_user("bob");
    let bob = password_grant(&portal, "bob", "bob-password").await.json();
    let auth = format!("Bearer {}", bob["access_token"].as_str().unwrap());
    let page = call(
        &portal,
        Method::GET,
        "/app/reports",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    portal.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_give_rfc6749_errors() {
    let portal = Portal::start().await.unwrap();
    let r = password_grant(&portal, "alice", "nope").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid_grant");
    portal.faults().set_wrong_password_always(true);
    let r = password_grant(&portal, "alice", "alice-password").await;
    assert_eq!(r.json()["error"], "invalid_grant");
    let body = "grant_type=client_credentials&client_id=outpost&client_secret=wrong";
    let r = call(&portal, Method::POST, "/oauth/token", &[FORM], body).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid_client");
    let body = "grant_type=magic&client_id=outpost&client_secret=outpost-secret";
    let r = call(&portal, Method::POST, "/oauth/token", &[FORM], body).await;
    assert_eq!(r.json()["error"], "unsupported_grant_type");
    portal.shutdown().await;
}

#[tokio::test]
async fn authorization_code_flow_with_pkce_through_the_login_form() {
    let portal = Portal::start().await.unwrap();
    portal.faults().set_consent_required(true);
    let discovery = get(&portal, "/.well-known/openid-configuration")
        .await
        .json();
    assert_eq!(discovery["issuer"], portal.base_url());
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let redirect_uri = "http://127.0.0.1:9/callback";
    let query = util::encode_form([
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]);
    let r = get(&portal, &format!("/authorize?{query}")).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(r.location().starts_with("/login?"));
    let cookie = r.session_cookie().unwrap();

    let login = call(
        &portal,
        Method::GET,
        &r.location(),
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    let search_at = login.body.find("action=\"/search\"").unwrap();
    let form_at = login.body.find("action=\"login\"").unwrap();
    assert!(search_at < form_at && login.body.matches("type=\"password\"").count() == 1);
    let mut fields: HashMap<&str, String> = HashMap::new();
    for name in [
        "csrf_token",
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    ] {
        fields.insert(name, input_value(&login.body, name).unwrap());
    }
    let post = |password: &'static str| {
        let mut f = fields.clone();
        f.insert("username", "alice".to_owned());
        f.insert("password", password.to_owned());
        util::encode_form(f.iter().map(|(k, v)| (*k, v.as_str())))
    };

    let wrong = call(
        &portal,
        Method::POST,
        "/login",
        &[FORM, ("cookie", &cookie)],
        &post("x"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(wrong.body.contains("Invalid username or password"));
    let no_cookie = call(
        &portal,
        Method::POST,
        "/login",
        &[FORM],
        &post("alice-password"),
    )
    .await;
    assert_eq!(no_cookie.status, StatusCode::BAD_REQUEST);

    let ok = call(
        &portal,
        Method::POST,
        "/login",
        &[FORM, ("cookie", &cookie)],
        &post("alice-password"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::FOUND, "{}", ok.body);
    assert_eq!(ok.location(), "/consent");
    let cookie = ok.session_cookie().unwrap();
    let consent = call(&portal, Method::GET, "/consent", &[("cookie", &cookie)], "").await;
    assert_eq!(consent.status, StatusCode::OK);
    let token = input_value(&consent.body, "consent_token").unwrap();
    let body = util::encode_form([("consent_token", token.as_str()), ("decision", "approve")]);
    let approved = call(
        &portal,
        Method::POST,
        "/consent",
        &[FORM, ("cookie", &cookie)],
        &body,
    )
    .await;
    assert_eq!(approved.status, StatusCode::FOUND);
    let location = approved.location();
    let params = util::parse_form(location.split_once('?').unwrap().1.as_bytes());
    assert!(location.starts_with(redirect_uri));
    assert_eq!(params["state"], "st-1");

    let exchange = |code: &str, verifier: &str| {
        util::encode_form([
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
    };
    let r = call(
        &portal,
        Method::POST,
        "/oauth/token",
        &[FORM],
        &exchange(&params["code"], verifier),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id_token = r.json()["id_token"].as_str().unwrap().to_owned();
    let claims = id_token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["sub"], "alice");
    // Codes are single use.
    let r = call(
        &portal,
        Method::POST,
        "/oauth/token",
        &[FORM],
        &exchange(&params["code"], verifier),
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");

    // The session cookie also opens /app pages; SSO skips the form.
    let page = call(
        &portal,
        Method::GET,
        "/app/alerts",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert!(page.body.contains("<h1>Alerts</h1>"));
    portal.faults().set_consent_required(false);
    let again = call(
        &portal,
        Method::GET,
        &format!("/authorize?{query}"),
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert!(again.location().starts_with(redirect_uri));
    let code =
        util::parse_form(again.location().split_once('?').unwrap().1.as_bytes())["code"].clone();
    let bad_verifier = "x".repeat(43);
    let r = call(
        &portal,
        Method::POST,
        "/oauth/token",
        &[FORM],
        &exchange(&code, &bad_verifier),
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");
    portal.shutdown().await;
}

#[tokio::test]
async fn report_goes_from_pending_to_ready() {
    let portal = Portal::start().await.unwrap();
    portal
        .faults()
        .set_report_pending_for(Duration::from_millis(200));
    let r = call(&portal, Method::POST, "/api/reports", &[], "{}").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        r.json(),
        serde_json::json!({"id": "r1", "status": "pending"})
    );
    let r = get(&portal, "/api/reports/r1").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json()["status"], "pending");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let r = get(&portal, "/api/reports/r1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ready");
    assert_eq!(r.json()["rows"], 42);
    assert_eq!(
        get(&portal, "/api/reports/r9").await.status,
        StatusCode::NOT_FOUND
    );

    portal.faults().set_report_pending_forever();
    call(&portal, Method::POST, "/api/reports", &[], "").await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        get(&portal, "/api/reports/r2").await.json()["status"],
        "pending"
    );
    portal.shutdown().await;
}

#[tokio::test]
async fn freshness_command_and_queue_apis() {
    let portal = Portal::start().await.unwrap();
    portal
        .faults()
        .set_stale_devices(2, Duration::from_secs(7200));
    let t = get(&portal, "/api/telemetry/devices").await.json();
    let devices = t["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 5);
    let now_ms = util::now_epoch().as_millis() as u64;
    let age = |d: &serde_json::Value| now_ms - d["last_seen_ms"].as_u64().unwrap();
    assert!(age(&devices[0]) >= 7_200_000 && age(&devices[4]) < 20_000);
    assert!(devices[0]["last_seen"].as_str().unwrap().ends_with('Z'));
    let b = get(&portal, "/api/backup/status").await.json();
    assert_eq!(b["job"], "nightly-full");
    let backup_age = util::now_epoch().as_secs() - b["last_success_epoch"].as_u64().unwrap();
    assert!((299..=302).contains(&backup_age));
    assert_eq!(
        get(&portal, "/api/alerts/queue").await.json(),
        serde_json::json!({"depth": 12, "oldest_age_seconds": 30})
    );

    portal
        .faults()
        .set_command_delay(Duration::from_millis(200));
    portal.faults().set_command_outcome(CommandOutcome::Failed);
    let r = call(
        &portal,
        Method::POST,
        "/api/devices/dev-1/commands",
        &[],
        r#"{"command":"reboot"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["status"], "queued");
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        get(&portal, &format!("/api/commands/{id}")).await.json()["status"],
        "queued"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        get(&portal, &format!("/api/commands/{id}")).await.json()["status"],
        "failed"
    );
    let bad = call(
        &portal,
        Method::POST,
        "/api/devices/dev-1/commands",
        &[],
        "nope",
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown = call(
        &portal,
        Method::POST,
        "/api/devices/dev-9/commands",
        &[],
        r#"{"command":"x"}"#,
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    portal.shutdown().await;
}

#[tokio::test]
async fn path_faults_and_http_fault_api() {
    let portal = Portal::start().await.unwrap();
    portal.faults().set_status("/portal/home", Some(503));
    assert_eq!(
        get(&portal, "/portal/home").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    portal.faults().set_redirect_loop("/portal/alerts", true);
    let r = get(&portal, "/portal/alerts?x=1").await;
    assert_eq!(
        (r.status, r.location().as_str()),
        (StatusCode::FOUND, "/portal/alerts?x=1")
    );
    portal.faults().set_invalid_json("/api/alerts/queue", true);
    let r = get(&portal, "/api/alerts/queue").await;
    assert!(serde_json::from_str::<serde_json::Value>(&r.body).is_err());
    portal
        .faults()
        .set_delay("/healthz", Duration::from_millis(100));
    let t = Instant::now();
    get(&portal, "/healthz").await;
    assert!(t.elapsed() >= Duration::from_millis(100));

    let patch = r#"{"paths":{"/portal/home":null,"/portal/devices":{"status":502}},"forbidden_users":["bob"]}"#;
    let r = call(&portal, Method::POST, "/_faults", &[], patch).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(get(&portal, "/portal/home").await.status, StatusCode::OK);
    assert_eq!(
        get(&portal, "/portal/devices").await.status,
        StatusCode::BAD_GATEWAY
    );
    let state = get(&portal, "/_faults").await.json();
    assert_eq!(state["forbidden_users"], serde_json::json!(["bob"]));
    assert_eq!(state["paths"]["/portal/devices"]["status"], 502);
    let bad = call(&portal, Method::POST, "/_faults", &[], r#"{"nope":1}"#).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let too_big = "x".repeat(MAX_REQUEST_BODY + 1);
    let r = call(&portal, Method::POST, "/_faults", &[], &too_big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    portal.shutdown().await;
}

#[test]
fn huge_body_frames_borrow_the_static_buffer() {
    let mut body = PortalBody::huge();
    assert_eq!(body.size_hint().exact(), Some(HUGE_BODY_LEN));
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut total = 0u64;
    while let std::task::Poll::Ready(Some(frame)) =
        std::pin::Pin::new(&mut body).poll_frame(&mut cx)
    {
        let data = frame.unwrap().into_data().unwrap();
        // Every frame is a view into the one static buffer: nothing allocated.
        assert_eq!(data.as_ptr(), HUGE_CHUNK.as_ptr());
        total += data.len() as u64;
    }
    assert_eq!(total, HUGE_BODY_LEN);
}

#[tokio::test]
async fn huge_body_streams_50_mib() {
    let portal = Portal::start().await.unwrap();
    portal.faults().set_huge_body("/portal/home", true);
    let req = Request::get("/portal/home")
        .header(header::HOST, "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send_on(TcpStream::connect(portal.addr()).await.unwrap(), req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let len = resp.headers()[header::CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(len, HUGE_BODY_LEN.to_string());
    let mut body = resp.into_body();
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        total += frame.unwrap().into_data().map_or(0, |d| d.len() as u64);
    }
    assert_eq!(total, HUGE_BODY_LEN);
    portal.shutdown().await;
}

#[tokio::test]
async fn slowloris_trickles_and_shutdown_still_ends() {
    let portal = Portal::start().await.unwrap();
    portal.faults().set_slowloris("/portal/home", true);
    let req = Request::get("/portal/home")
        .header(header::HOST, "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send_on(TcpStream::connect(portal.addr()).await.unwrap(), req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let t = Instant::now();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.len(), 1);
    assert!(t.elapsed() >= Duration::from_millis(900));
    let t = Instant::now();
    portal.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(3));
}

fn tls_connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn tls_mode_valid_and_expired_certificates() {
    let portal = Portal::start_tls(30).await.unwrap();
    assert!(portal.url("/").starts_with("https://127.0.0.1:"));
    let connector = tls_connector(&portal.ca_pem().unwrap());
    let tcp = TcpStream::connect(portal.addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let req = Request::get("/healthz")
        .header(header::HOST, "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send_on(tls, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    portal.shutdown().await;

    let expired = Portal::start_tls(-2).await.unwrap();
    let connector = tls_connector(&expired.ca_pem().unwrap());
    let tcp = TcpStream::connect(expired.addr()).await.unwrap();
    let ip = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let err = connector.connect(ip, tcp).await.unwrap_err();
    assert!(err.to_string().to_lowercase().contains("expired"), "{err}");
    expired.shutdown().await;
}
