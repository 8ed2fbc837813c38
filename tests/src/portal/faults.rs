//! Fault switches of the simulated portal: the Rust API ([`Faults`]) and the
//! JSON shapes of the `/_faults` HTTP API ([`FaultState`], [`FaultPatch`]).
//! See the module docs of [`crate::portal`] for what every switch does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Upper bound for every duration switch (7 days), so that no arithmetic on
/// deadlines can overflow and nothing waits "longer than forever".
pub const MAX_SWITCH_MS: u64 = 7 * 24 * 3600 * 1000;

/// Number of simulated devices in `/api/telemetry/devices`.
pub const DEVICE_COUNT: u32 = 5;

/// Most devices the registry may list beyond the telemetry's.
pub const MAX_EXTRA_DEVICES: u32 = 1000;

/// Final state a device command reaches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandOutcome {
    /// The command ends `executed` (the default).
    #[default]
    Executed,
    /// The command ends `failed`.
    Failed,
    /// The command is picked up (`running`) but never finishes.
    Never,
}

impl std::str::FromStr for CommandOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "executed" => Ok(Self::Executed),
            "failed" => Ok(Self::Failed),
            "never" => Ok(Self::Never),
            other => Err(format!(
                "unknown command outcome {other:?} (expected executed, failed or never)"
            )),
        }
    }
}

/// Faults applied to the requests of one path (or path prefix, see
/// [`Faults::set_status`]). The default value means "no fault".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathFaults {
    /// Answer with this status and a canned body instead of the real page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Sleep this long before answering (0 = none).
    pub delay_ms: u64,
    /// Answer 200 with a 50 MiB body streamed from a static buffer.
    pub huge_body: bool,
    /// Answer 302 with `Location` pointing to the request's own URL.
    pub redirect_loop: bool,
    /// Answer 200 `application/json` with a truncated, unparsable body.
    pub invalid_json: bool,
    /// Send the headers, then trickle one byte per second, forever.
    pub slowloris: bool,
}

impl PathFaults {
    fn is_clear(&self) -> bool {
        *self == PathFaults::default()
    }
}

/// The complete state of all switches; `GET /_faults` returns it as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultState {
    /// Per-path faults, keyed by exact path or by a prefix ending in `*`.
    pub paths: BTreeMap<String, PathFaults>,
    /// Users whose sessions and tokens get 403 on `/app/*`.
    pub forbidden_users: BTreeSet<String>,
    /// Every password check fails (password grant and form login).
    pub wrong_password_always: bool,
    /// After the form login of an authorization-code flow, show `/consent`.
    pub consent_required: bool,
    /// `/login` shows its forms without any password field (a broken or
    /// unexpected login page).
    pub login_without_password: bool,
    /// `expires_in` of access tokens, in seconds.
    pub token_ttl_secs: u64,
    /// Delay of `GET /portal/slow`, in milliseconds.
    pub slow_page_delay_ms: u64,
    /// How long a new report stays pending, in milliseconds.
    pub report_pending_ms: u64,
    /// New reports stay pending forever (overrides `report_pending_ms`).
    pub report_pending_forever: bool,
    /// Age of fresh devices' `last_seen`, in milliseconds (device *i*, from
    /// 1, is `(i - 1)` seconds older than this).
    pub telemetry_age_ms: u64,
    /// The first N devices (`dev-1` ..) are stale.
    pub stale_devices: u32,
    /// Age of stale devices' `last_seen`, in milliseconds.
    pub stale_age_ms: u64,
    /// Age of the last successful backup, in milliseconds.
    pub backup_age_ms: u64,
    /// Final state of new device commands.
    pub command_outcome: CommandOutcome,
    /// Time a new command takes to reach its final state, in milliseconds
    /// (queued for the first half, running for the second half).
    pub command_delay_ms: u64,
    /// `depth` of `/api/alerts/queue`.
    pub alert_queue_depth: u64,
    /// `oldest_age_seconds` of `/api/alerts/queue`.
    pub alert_oldest_age_seconds: u64,
    /// The last N telemetry devices are missing from `/api/registry/devices`.
    pub registry_missing_devices: u32,
    /// Devices `dev-6` .. registered in `/api/registry/devices` but never
    /// reporting telemetry.
    pub registry_extra_devices: u32,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState {
            paths: BTreeMap::new(),
            forbidden_users: BTreeSet::new(),
            wrong_password_always: false,
            consent_required: false,
            login_without_password: false,
            token_ttl_secs: 300,
            slow_page_delay_ms: 1500,
            report_pending_ms: 3000,
            report_pending_forever: false,
            telemetry_age_ms: 5000,
            stale_devices: 0,
            stale_age_ms: 3_600_000,
            backup_age_ms: 300_000,
            command_outcome: CommandOutcome::Executed,
            command_delay_ms: 1000,
            alert_queue_depth: 12,
            alert_oldest_age_seconds: 30,
            registry_missing_devices: 0,
            registry_extra_devices: 0,
        }
    }
}

/// Per-path part of a [`FaultPatch`]: absent fields stay unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathFaultsPatch {
    /// Status override; `0` clears it.
    pub status: Option<u16>,
    /// Delay in ms; `0` clears it.
    pub delay_ms: Option<u64>,
    pub huge_body: Option<bool>,
    pub redirect_loop: Option<bool>,
    pub invalid_json: Option<bool>,
    pub slowloris: Option<bool>,
}

/// Body of `POST /_faults`: a partial update. Absent fields stay unchanged;
/// `reset: true` first restores every default. In `paths`, a `null` value
/// clears every fault of that path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPatch {
    pub reset: bool,
    pub paths: BTreeMap<String, Option<PathFaultsPatch>>,
    /// Replaces the whole set of forbidden users.
    pub forbidden_users: Option<Vec<String>>,
    pub wrong_password_always: Option<bool>,
    pub consent_required: Option<bool>,
    pub login_without_password: Option<bool>,
    pub token_ttl_secs: Option<u64>,
    pub slow_page_delay_ms: Option<u64>,
    pub report_pending_ms: Option<u64>,
    pub report_pending_forever: Option<bool>,
    pub telemetry_age_ms: Option<u64>,
    pub stale_devices: Option<u32>,
    pub stale_age_ms: Option<u64>,
    pub backup_age_ms: Option<u64>,
    pub command_outcome: Option<CommandOutcome>,
    pub command_delay_ms: Option<u64>,
    pub alert_queue_depth: Option<u64>,
    pub alert_oldest_age_seconds: Option<u64>,
    pub registry_missing_devices: Option<u32>,
    pub registry_extra_devices: Option<u32>,
}

/// Runtime-settable fault switches of a [`crate::portal::Portal`].
///
/// Cheap to clone (an `Arc` inside); every clone controls the same portal.
/// All setters take effect for the next request.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultState>>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .min(MAX_SWITCH_MS)
}

fn check_status(status: u16) -> Result<(), String> {
    if (100..=999).contains(&status) {
        Ok(())
    } else {
        Err(format!(
            "status {status} is not an HTTP status (100..=999, or 0 to clear)"
        ))
    }
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn edit_path(&self, path: &str, f: impl FnOnce(&mut PathFaults)) {
        let mut state = self.lock();
        let entry = state.paths.entry(path.to_owned()).or_default();
        f(entry);
        if entry.is_clear() {
            state.paths.remove(path);
        }
    }

    /// A copy of the current state (what `GET /_faults` returns).
    pub fn snapshot(&self) -> FaultState {
        self.lock().clone()
    }

    /// Restores every default and clears every per-path fault.
    pub fn reset(&self) {
        *self.lock() = FaultState::default();
    }

    /// Applies a `POST /_faults` patch. On error nothing is changed.
    pub fn apply(&self, patch: &FaultPatch) -> Result<(), String> {
        for (path, p) in &patch.paths {
            if !path.starts_with('/') {
                return Err(format!("path {path:?} must start with '/'"));
            }
            if let Some(status) = p.as_ref().and_then(|p| p.status) {
                if status != 0 {
                    check_status(status)?;
                }
            }
        }
        let mut guard = self.lock();
        let mut state = if patch.reset {
            FaultState::default()
        } else {
            guard.clone()
        };
        for (path, p) in &patch.paths {
            let Some(p) = p else {
                state.paths.remove(path);
                continue;
            };
            let entry = state.paths.entry(path.clone()).or_default();
            if let Some(s) = p.status {
                entry.status = (s != 0).then_some(s);
            }
            if let Some(v) = p.delay_ms {
                entry.delay_ms = v.min(MAX_SWITCH_MS);
            }
            if let Some(v) = p.huge_body {
                entry.huge_body = v;
            }
            if let Some(v) = p.redirect_loop {
                entry.redirect_loop = v;
            }
            if let Some(v) = p.invalid_json {
                entry.invalid_json = v;
            }
            if let Some(v) = p.slowloris {
                entry.slowloris = v;
            }
            if entry.is_clear() {
                state.paths.remove(path);
            }
        }
        if let Some(users) = &patch.forbidden_users {
            state.forbidden_users = users.iter().cloned().collect();
        }
        let cap = |v: u64| v.min(MAX_SWITCH_MS);
        if let Some(v) = patch.wrong_password_always {
            state.wrong_password_always = v;
        }
        if let Some(v) = patch.consent_required {
            state.consent_required = v;
        }
        if let Some(v) = patch.login_without_password {
            state.login_without_password = v;
        }
        if let Some(v) = patch.token_ttl_secs {
            state.token_ttl_secs = v.clamp(1, MAX_SWITCH_MS / 1000);
        }
        if let Some(v) = patch.slow_page_delay_ms {
            state.slow_page_delay_ms = cap(v);
        }
        if let Some(v) = patch.report_pending_ms {
            state.report_pending_ms = cap(v);
        }
        if let Some(v) = patch.report_pending_forever {
            state.report_pending_forever = v;
        }
        if let Some(v) = patch.telemetry_age_ms {
            state.telemetry_age_ms = cap(v);
        }
        if let Some(v) = patch.stale_devices {
            state.stale_devices = v.min(DEVICE_COUNT);
        }
        if let Some(v) = patch.stale_age_ms {
            state.stale_age_ms = cap(v);
        }
        if let Some(v) = patch.backup_age_ms {
            state.backup_age_ms = cap(v);
        }
        if let Some(v) = patch.command_outcome {
            state.command_outcome = v;
        }
        if let Some(v) = patch.command_delay_ms {
            state.command_delay_ms = cap(v);
        }
        if let Some(v) = patch.alert_queue_depth {
            state.alert_queue_depth = v;
        }
        if let Some(v) = patch.alert_oldest_age_seconds {
            state.alert_oldest_age_seconds = v;
        }
        if let Some(v) = patch.registry_missing_devices {
            state.registry_missing_devices = v.min(DEVICE_COUNT);
        }
        if let Some(v) = patch.registry_extra_devices {
            state.registry_extra_devices = v.min(MAX_EXTRA_DEVICES);
        }
        *guard = state;
        Ok(())
    }

    /// The faults that apply to `path`: an exact key wins, otherwise the
    /// longest matching prefix key ending in `*`.
    pub fn for_path(&self, path: &str) -> Option<PathFaults> {
        let state = self.lock();
        if let Some(f) = state.paths.get(path) {
            return Some(f.clone());
        }
        state
            .paths
            .iter()
            .filter_map(|(key, f)| {
                let prefix = key.strip_suffix('*')?;
                path.starts_with(prefix).then_some((prefix.len(), f))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, f)| f.clone())
    }

    /// Answer requests to `path` with `status` and a canned body (`None`
    /// clears). `path` is an exact path, or a prefix ending in `*` (e.g.
    /// `/api/reports/*`); the same holds for every per-path setter. Statuses
    /// outside 100..=999 are ignored.
    pub fn set_status(&self, path: &str, status: Option<u16>) {
        if status.is_some_and(|s| check_status(s).is_err()) {
            return;
        }
        self.edit_path(path, |f| f.status = status);
    }

    /// Sleep `delay` before answering requests to `path` (`Duration::ZERO`
    /// clears). Capped at 7 days.
    pub fn set_delay(&self, path: &str, delay: Duration) {
        self.edit_path(path, |f| f.delay_ms = ms(delay));
    }

    /// Answer `path` with a streamed 50 MiB body.
    pub fn set_huge_body(&self, path: &str, on: bool) {
        self.edit_path(path, |f| f.huge_body = on);
    }

    /// Answer `path` with a 302 to itself.
    pub fn set_redirect_loop(&self, path: &str, on: bool) {
        self.edit_path(path, |f| f.redirect_loop = on);
    }

    /// Answer `path` with 200 and an unparsable JSON body.
    pub fn set_invalid_json(&self, path: &str, on: bool) {
        self.edit_path(path, |f| f.invalid_json = on);
    }

    /// Answer `path` with headers, then one body byte per second, forever.
    pub fn set_slowloris(&self, path: &str, on: bool) {
        self.edit_path(path, |f| f.slowloris = on);
    }

    /// Clears every fault of `path` (the exact key).
    pub fn clear_path(&self, path: &str) {
        self.lock().paths.remove(path);
    }

    /// Marks `user` forbidden: their sessions and tokens get 403 on `/app/*`.
    pub fn set_forbidden_user(&self, user: &str) {
        self.lock().forbidden_users.insert(user.to_owned());
    }

    /// Removes `user` from the forbidden set.
    pub fn clear_forbidden_user(&self, user: &str) {
        self.lock().forbidden_users.remove(user);
    }

    /// Whether `user` is currently forbidden.
    pub fn is_forbidden(&self, user: &str) -> bool {
        self.lock().forbidden_users.contains(user)
    }

    /// Every password check fails (password grant and the login form).
    pub fn set_wrong_password_always(&self, on: bool) {
        self.lock().wrong_password_always = on;
    }

    /// Show the `/consent` page after the form login of an authorization
    /// code flow (default off).
    pub fn set_consent_required(&self, on: bool) {
        self.lock().consent_required = on;
    }

    /// `/login` renders its forms without a password field (default off).
    pub fn set_login_without_password(&self, on: bool) {
        self.lock().login_without_password = on;
    }

    /// Lifetime of new access tokens (`expires_in`, default 300 s, min 1 s).
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.lock().token_ttl_secs = ttl.as_secs().clamp(1, MAX_SWITCH_MS / 1000);
    }

    /// Delay of `GET /portal/slow` (default 1500 ms).
    pub fn set_slow_page_delay(&self, delay: Duration) {
        self.lock().slow_page_delay_ms = ms(delay);
    }

    /// New reports are pending for `d` after creation (default 3 s); also
    /// clears "forever".
    pub fn set_report_pending_for(&self, d: Duration) {
        let mut s = self.lock();
        s.report_pending_ms = ms(d);
        s.report_pending_forever = false;
    }

    /// New reports stay pending forever.
    pub fn set_report_pending_forever(&self) {
        self.lock().report_pending_forever = true;
    }

    /// Age of fresh devices' `last_seen` (default 5 s).
    pub fn set_telemetry_age(&self, age: Duration) {
        self.lock().telemetry_age_ms = ms(age);
    }

    /// Makes the first `count` devices (`dev-1` ..) stale by `age`
    /// (`count` 0 makes all fresh; capped at the device count).
    pub fn set_stale_devices(&self, count: u32, age: Duration) {
        let mut s = self.lock();
        s.stale_devices = count.min(DEVICE_COUNT);
        s.stale_age_ms = ms(age);
    }

    /// Age of the last successful backup (default 5 min).
    pub fn set_backup_age(&self, age: Duration) {
        self.lock().backup_age_ms = ms(age);
    }

    /// Final state of new device commands (default executed).
    pub fn set_command_outcome(&self, outcome: CommandOutcome) {
        self.lock().command_outcome = outcome;
    }

    /// Time new commands take to reach their final state (default 1 s).
    pub fn set_command_delay(&self, d: Duration) {
        self.lock().command_delay_ms = ms(d);
    }

    /// Makes `/api/registry/devices` drift from the telemetry store: the
    /// last `missing` telemetry devices are not registered, and `extra`
    /// registered devices (`dev-6` ..) never report (default 0, 0).
    pub fn set_registry_drift(&self, missing: u32, extra: u32) {
        let mut s = self.lock();
        s.registry_missing_devices = missing.min(DEVICE_COUNT);
        s.registry_extra_devices = extra.min(MAX_EXTRA_DEVICES);
    }

    /// Values of `/api/alerts/queue` (default depth 12, oldest 30 s).
    pub fn set_alert_queue(&self, depth: u64, oldest_age_seconds: u64) {
        let mut s = self.lock();
        s.alert_queue_depth = depth;
        s.alert_oldest_age_seconds = oldest_age_seconds;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_exact_matching() {
        let f = Faults::default();
        f.set_status("/api/reports/*", Some(503));
        f.set_delay("/api/reports/r1", Duration::from_millis(5));
        assert_eq!(
            f.for_path("/api/reports/r2").and_then(|p| p.status),
            Some(503)
        );
        let exact = f.for_path("/api/reports/r1").unwrap();
        assert_eq!((exact.status, exact.delay_ms), (None, 5));
        assert!(f.for_path("/api/other").is_none());
        f.set_status("/api/reports/*", None);
        assert!(!f.snapshot().paths.contains_key("/api/reports/*"));
    }

    #[test]
    fn patch_roundtrip() {
        let f = Faults::default();
        let patch: FaultPatch = serde_json::from_str(
            r#"{"paths":{"/x":{"status":503,"slowloris":true}},"forbidden_users":["bob"],
                "report_pending_forever":true,"command_outcome":"never"}"#,
        )
        .unwrap();
        f.apply(&patch).unwrap();
        let s = f.snapshot();
        assert_eq!(s.paths["/x"].status, Some(503));
        assert!(s.paths["/x"].slowloris);
        assert!(f.is_forbidden("bob"));
        assert_eq!(s.command_outcome, CommandOutcome::Never);
        let clear: FaultPatch = serde_json::from_str(r#"{"paths":{"/x":null}}"#).unwrap();
        f.apply(&clear).unwrap();
        assert!(f.snapshot().paths.is_empty());
        assert!(serde_json::from_str::<FaultPatch>(r#"{"typo":1}"#).is_err());
        let bad: FaultPatch = serde_json::from_str(r#"{"paths":{"/x":{"status":42}}}"#).unwrap();
        assert!(f.apply(&bad).is_err());
        f.apply(&FaultPatch {
            reset: true,
            ..FaultPatch::default()
        })
        .unwrap();
        assert_eq!(f.snapshot(), FaultState::default());
    }
}
