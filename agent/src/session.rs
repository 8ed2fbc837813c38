//! Shared login sessions: one [`Slot`] per `login` check, used by every
//! check that names that login (`login = "NAME"`).
//!
//! A slot holds the last [`Session`] a login obtained: the bearer token
//! (access token), the refresh token and the cookies the provider set.
//! Checks take [`Credentials`] from it; when there is no session, or the
//! access token is within [`expiry_margin`] of its end, the slot first
//! refreshes it (if it has a refresh token) and otherwise logs in again.
//! The `login` check itself always runs a full login plus a refresh and
//! stores the result here, so a healthy agent rarely logs in on a page's
//! time.
//!
//! Invariants:
//! * one login or refresh per slot at a time (a `tokio::sync::Mutex` held
//!   across it); waiting is bounded by the caller's deadline;
//! * tokens and cookies are [`Secret`]s: their `Debug` is redacted and
//!   nothing here logs them;
//! * a session is never used past its expiry: a slot whose refresh fails
//!   logs in from scratch, and a failed login leaves the slot empty.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::checks::login::{self, cookies::CookieJar, secret::Secret, LoginSpec};

use crate::checks::{CheckKind, Observation, RunContext};
use crate::config::CheckSpec;
use crate::http::Request;
use crate::result::Outcome;

/// What a login obtained.
#[derive(Debug, Clone)]
pub struct Session {
    pub credentials: Credentials,
    pub refresh_token: Option<Secret>,
    /// When the access token ends (without `expires_in` in the answer,
    /// [`DEFAULT_LIFETIME`] after it was obtained).
    pub expires: Instant,
    /// Where the refresh token is used.
    pub token_url: http::Uri,
}

/// Lifetime assumed when a token answer has no `expires_in`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// How long before its expiry a session is renewed: a fifth of its
/// lifetime, at most 30 s.
pub fn expiry_margin(lifetime: Duration) -> Duration {
    (lifetime / 5).min(Duration::from_secs(30))
}

/// What a request needs to act as the logged-in user.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub bearer: Option<Secret>,
    pub cookies: CookieJar,
}

impl Credentials {
    /// Adds `Authorization: Bearer` and the matching cookies to `req`.
    pub fn apply(&self, req: &mut Request) {
        if let Some(token) = &self.bearer {
            if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {}", token.expose())) {
                let mut v = v;
                v.set_sensitive(true);
                req.headers.insert(http::header::AUTHORIZATION, v);
            }
        }
        if let Some(cookie) = self.cookies.header_for(&req.url) {
            req.headers.insert(http::header::COOKIE, cookie);
        }
    }
}

struct State {
    session: Option<Session>,
    lifetime: Duration,
}

/// The shared session of one login.
pub struct Slot {
    name: String,
    spec: Arc<LoginSpec>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("login", &self.name)
            .finish_non_exhaustive()
    }
}

impl Slot {
    /// An empty slot for the login check `name`.
    pub fn new(name: &str, spec: Arc<LoginSpec>) -> Self {
        Slot {
            name: name.to_string(),
            spec,
            state: Mutex::new(State {
                session: None,
                lifetime: DEFAULT_LIFETIME,
            }),
        }
    }

    /// The login's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Credentials of a live session, renewing it first when needed.
    /// `fresh` is true when this call logged in (or refreshed), so a 401
    /// right after is a real denial. `Err` is the observation of the failed
    /// login, with the login's name in its error.
    pub async fn credentials(&self, ctx: &RunContext) -> Result<(Credentials, bool), Observation> {
        let Ok(mut state) = tokio::time::timeout_at(ctx.deadline, self.state.lock()).await else {
            return Err(Observation::bare(
                Outcome::Timeout,
                format!(
                    "waited for login {:?} until the deadline (another check is logging in)",
                    self.name
                ),
            ));
        };
        let now = Instant::now();
        let margin = expiry_margin(state.lifetime);
        if let Some(s) = &state.session {
            if now + margin < s.expires {
                return Ok((s.credentials.clone(), false));
            }
        }
        // Renew: refresh when possible, else log in.
        let old = state.session.take();
        let refreshable = old.and_then(|s| {
            let rt = s.refresh_token.filter(|_| self.spec.refresh_allowed())?;
            Some((rt, s.token_url, s.credentials.cookies))
        });
        if let Some((rt, token_url, cookies)) = refreshable {
            if let Ok(s) = login::refresh(&self.spec, ctx, &token_url, &rt, cookies).await {
                state.lifetime = s.session.expires.saturating_duration_since(now);
                let creds = s.session.credentials.clone();
                state.session = Some(s.session);
                return Ok((creds, true));
            }
            tracing::info!(login = %self.name, "session refresh failed; logging in again");
        }
        match login::obtain(&self.spec, ctx).await {
            Ok(done) => {
                state.lifetime = done.session.expires.saturating_duration_since(now);
                let creds = done.session.credentials.clone();
                state.session = Some(done.session);
                Ok((creds, true))
            }
            Err(obs) => Err(obs.context(&format!("login {:?}", self.name))),
        }
    }

    /// Forgets the session (after a 401 on a re-used one).
    pub async fn invalidate(&self) {
        self.state.lock().await.session = None;
    }

    /// Stores the session a login check just obtained.
    pub async fn store(&self, session: Session) {
        let mut state = self.state.lock().await;
        state.lifetime = session.expires.saturating_duration_since(Instant::now());
        state.session = Some(session);
    }

    /// Whether a live session is held (for `probe` output and tests).
    pub async fn has_session(&self) -> bool {
        let state = self.state.lock().await;
        state
            .session
            .as_ref()
            .is_some_and(|s| Instant::now() < s.expires)
    }
}

/// Every login's slot, by the login check's name. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    slots: Arc<HashMap<String, Arc<Slot>>>,
}

impl Sessions {
    /// One empty slot per `login` check in `checks`.
    pub fn new(checks: &[CheckSpec]) -> Self {
        let slots = checks
            .iter()
            .filter_map(|c| match &c.kind {
                CheckKind::Login(spec) => {
                    Some((c.name.clone(), Arc::new(Slot::new(&c.name, spec.clone()))))
                }
                _ => None,
            })
            .collect();
        Sessions {
            slots: Arc::new(slots),
        }
    }

    /// The slot of login `name`.
    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_a_fifth_capped_at_30s() {
        assert_eq!(
            expiry_margin(Duration::from_secs(10)),
            Duration::from_secs(2)
        );
        assert_eq!(
            expiry_margin(Duration::from_secs(3600)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn credentials_add_bearer_and_cookies() {
        let mut creds = Credentials {
            bearer: Some(Secret::new("tok".into())),
            ..Credentials::default()
        };
        let url: http::Uri = "http://127.0.0.1:8080/app/home".parse().unwrap();
        creds.cookies.store(&url, "sid=abc; Path=/; HttpOnly");
        let mut req = Request::get(url);
        creds.apply(&mut req);
        assert_eq!(req.headers[http::header::AUTHORIZATION], "Bearer tok");
        assert!(req.headers[http::header::AUTHORIZATION].is_sensitive());
        assert_eq!(req.headers[http::header::COOKIE], "sid=abc");
        assert!(!format!("{creds:?}").contains("tok"));
    }
}
