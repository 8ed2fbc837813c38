//! Agent configuration: raw TOML in, validated [`Config`] out.
//!
//! Parsing happens once, in two steps (the ripgrep low/high args split):
//! serde structs that mirror the file exactly (`deny_unknown_fields`, every
//! value that needs checking wrapped in [`Spanned`]), then [`validate`] turns
//! them into typed values that cannot be wrong. Every error names the file,
//! line and column and says what to write instead; the binary maps
//! [`ConfigError`] to exit status 2. Nothing binds a socket or opens the
//! buffer before validation passed.
//!
//! Check kinds: each `[[check]]` has common fields and exactly one kind
//! sub-table (`[check.page]`, ...), the shape blackbox_exporter operators
//! know (`prober` + its section). A kind's own fields are validated by its
//! module in `checks/`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use outpost_config_diag::{line_column, ConfigError, Source};
use serde::Deserialize;
use toml::Spanned;

use crate::checks::{self, CheckKind};

/// Largest config file accepted; anything bigger is certainly a mistake.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Most checks one agent may run.
pub const MAX_CHECKS: usize = 1000;
/// Most free labels on the agent or on one check.
pub const MAX_LABELS: usize = 16;
/// Longest label value or name.
pub const MAX_LABEL_LEN: usize = 128;

// ---------------------------------------------------------------- raw ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    agent: RawAgent,
    #[serde(default)]
    buffer: RawBuffer,
    collector: RawCollector,
    /// Probe targets (not the collector): extra trusted CAs.
    #[serde(default)]
    targets: RawTargets,
    #[serde(default, rename = "check")]
    checks: Vec<Spanned<RawCheck>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    id: Spanned<String>,
    labels: Option<Spanned<BTreeMap<String, String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuffer {
    path: Option<PathBuf>,
    max_bytes: Option<Spanned<u64>>,
    max_entries: Option<Spanned<u64>>,
    /// Key for encryption at rest (32 raw bytes or 64 hex digits).
    encryption_key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollector {
    endpoints: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    allow_insecure: bool,
    batch_max: Option<Spanned<u32>>,
    heartbeat: Option<Spanned<String>>,
    backoff_initial: Option<Spanned<String>>,
    backoff_max: Option<Spanned<String>>,
    /// CA bundle (PEM) to verify the collector with; default: the Mozilla
    /// roots built into the agent.
    ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; its DNS SAN or CN must be
    /// this agent's id.
    cert: Option<PathBuf>,
    /// Client key (PEM). `$CREDENTIALS_DIRECTORY/...` paths work with
    /// systemd's LoadCredential=.
    key: Option<PathBuf>,
    /// File holding a bearer token, for collectors that use tokens instead
    /// of client certificates.
    token_file: Option<PathBuf>,
    /// Name to verify the collector's certificate against, when it differs
    /// from the endpoint's host.
    server_name: Option<String>,
    // delivery (#4): HTTP/2 keepalive interval and timeout.
    keepalive: Option<Spanned<String>>,
}

/// `[targets]`: how the agent talks to the systems it probes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTargets {
    /// PEM file of CA certificates trusted for HTTPS targets, in addition
    /// to the Mozilla roots built into the agent (a private CA).
    ca_file: Option<Spanned<String>>,
}

/// The fields every check has, plus one optional table per kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheck {
    name: Spanned<String>,
    interval: Spanned<String>,
    timeout: Option<Spanned<String>>,
    /// Fraction of the interval used to spread start times (0..=1).
    jitter: Option<Spanned<f64>>,
    module: Option<String>,
    objective: Option<String>,
    labels: Option<Spanned<BTreeMap<String, String>>>,
    /// Re-run a failed run once at once to tell a blip from an outage.
    #[serde(default)]
    confirm_failures: bool,
    // One table per kind; exactly one must be present. `login` is either
    // the kind table `[check.login]` or `login = "NAME"`, the login check
    // whose session this check uses.
    page: Option<Spanned<checks::page::RawPage>>,
    login: Option<Spanned<checks::login::LoginField>>,
    report: Option<Spanned<checks::report::RawReport>>,
    freshness: Option<Spanned<checks::freshness::RawFreshness>>,
    command: Option<Spanned<checks::command::RawCommand>>,
    consistency: Option<Spanned<checks::consistency::RawConsistency>>,
}

// ---------------------------------------------------------- validated ----

/// The validated agent configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub agent: AgentSettings,
    pub buffer: BufferSettings,
    pub collector: CollectorSettings,
    pub targets: TargetSettings,
    pub checks: Vec<CheckSpec>,
}

/// `[targets]`, validated: the extra CA certificates are read and parsed
/// when the config is loaded, so a bad file is a config error (exit 2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSettings {
    pub ca_file: Option<PathBuf>,
    /// DER certificates from `ca_file`, trusted besides the Mozilla roots.
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

/// Most certificates read from `[targets] ca_file`.
pub const MAX_TARGET_CAS: usize = 256;

#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub id: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct BufferSettings {
    pub path: PathBuf,
    /// Bound on logical bytes (keys + values). sled uses about twice this
    /// on disk and never gives deleted space back to the filesystem.
    pub max_bytes: u64,
    pub max_entries: u64,
    pub encryption_key_file: Option<PathBuf>,
}

/// Default buffer bound: 256 MiB logical, about 512 MiB on disk.
pub const DEFAULT_BUFFER_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Default entry bound.
pub const DEFAULT_BUFFER_MAX_ENTRIES: u64 = 2_000_000;

#[derive(Debug, Clone)]
pub struct CollectorSettings {
    pub endpoints: Vec<http::Uri>,
    /// TLS material, read again at every connection (rotation needs no
    /// restart).
    pub tls: ClientTls,
    pub token_file: Option<PathBuf>,
    pub batch_max: usize,
    pub heartbeat: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// HTTP/2 ping interval, and how long a ping may go unanswered: a
    /// silently dead link is noticed within about twice this.
    pub keepalive: Duration,
}

/// Files for TLS to the collector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub server_name: Option<String>,
}

/// Paths may start with `$CREDENTIALS_DIRECTORY/` (systemd
/// `LoadCredential=`); it is replaced by the variable's value.
pub fn expand_credentials(p: PathBuf) -> PathBuf {
    let Some(rest) = p
        .to_str()
        .and_then(|s| s.strip_prefix("$CREDENTIALS_DIRECTORY/"))
    else {
        return p;
    };
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) => PathBuf::from(dir).join(rest),
        None => p,
    }
}

/// One configured check: common settings plus its kind.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub name: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub jitter: f64,
    /// `module`, `objective` and free labels, merged.
    pub labels: BTreeMap<String, String>,
    pub confirm_failures: bool,
    /// The login check whose shared session this check uses.
    pub login: Option<String>,
    pub kind: CheckKind,
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = outpost_config_diag::read(path, MAX_CONFIG_BYTES)?;
    parse(path, &text)
}

/// Parses and validates config `text` that came from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let src = Source { path, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
    validate(&src, raw)
}

fn validate(src: &Source<'_>, raw: RawConfig) -> Result<Config, ConfigError> {
    let id = raw.agent.id.get_ref().trim().to_string();
    if !valid_id(&id) {
        return Err(src.error(
            raw.agent.id.span(),
            format!("agent id {:?} is not valid", raw.agent.id.get_ref()),
            "use 1 to 64 characters from A-Z a-z 0-9 . _ - (for example \"site-a-portal-1\")",
        ));
    }
    validate_labels(src, raw.agent.labels.as_ref())?;

    let buffer = BufferSettings {
        path: raw
            .buffer
            .path
            .unwrap_or_else(|| PathBuf::from("/var/lib/outpost-agent/buffer")),
        max_bytes: positive(
            src,
            raw.buffer.max_bytes,
            "max_bytes",
            DEFAULT_BUFFER_MAX_BYTES,
        )?,
        max_entries: positive(
            src,
            raw.buffer.max_entries,
            "max_entries",
            DEFAULT_BUFFER_MAX_ENTRIES,
        )?,
        encryption_key_file: raw.buffer.encryption_key_file.map(expand_credentials),
    };

    let collector = validate_collector(src, raw.collector)?;
    let targets = validate_targets(src, raw.targets)?;

    if raw.checks.len() > MAX_CHECKS {
        let span = raw.checks.get(MAX_CHECKS).map_or(0..0, Spanned::span);
        return Err(src.error(
            span,
            format!(
                "{} checks configured, more than the limit of {MAX_CHECKS}",
                raw.checks.len()
            ),
            "split the checks across several agents",
        ));
    }
    let mut checks = Vec::with_capacity(raw.checks.len());
    let mut names = std::collections::HashSet::new();
    let mut login_refs = Vec::new();
    for check in raw.checks {
        let span = check.span();
        let (spec, login_ref) = validate_check(src, span, check.into_inner())?;
        if let Some(r) = login_ref {
            login_refs.push((spec.name.clone(), r));
        }
        if !names.insert(spec.name.clone()) {
            return Err(src.error(
                0..0,
                format!("two checks are named {:?}", spec.name),
                "give every check a unique name",
            ));
        }
        checks.push(spec);
    }
    validate_login_refs(src, &checks, login_refs)?;

    Ok(Config {
        agent: AgentSettings {
            id,
            labels: raw
                .agent
                .labels
                .map(Spanned::into_inner)
                .unwrap_or_default(),
        },
        buffer,
        collector,
        targets,
        checks,
    })
}

/// Reads `[targets] ca_file`: at least one PEM certificate, at most
/// [`MAX_TARGET_CAS`], within [`MAX_CONFIG_BYTES`].
fn validate_targets(src: &Source<'_>, raw: RawTargets) -> Result<TargetSettings, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    let Some(file) = raw.ca_file else {
        return Ok(TargetSettings::default());
    };
    let path = expand_credentials(PathBuf::from(file.get_ref()));
    let fail = |what: String| {
        src.error(
            file.span(),
            format!("[targets] ca_file {}: {what}", path.display()),
            "point `ca_file` at a readable PEM file of CA certificates (-----BEGIN CERTIFICATE-----), or remove it to trust only the built-in roots",
        )
    };
    let bytes = match std::fs::metadata(&path) {
        Ok(m) if m.len() > MAX_CONFIG_BYTES => {
            return Err(fail(format!(
                "is {} bytes, more than {MAX_CONFIG_BYTES}",
                m.len()
            )))
        }
        Ok(_) => std::fs::read(&path).map_err(|e| fail(format!("cannot be read ({e})")))?,
        Err(e) => return Err(fail(format!("cannot be read ({e})"))),
    };
    let mut extra_roots = Vec::new();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| fail(format!("is not valid PEM ({e})")))?;
        if extra_roots.len() >= MAX_TARGET_CAS {
            return Err(fail(format!(
                "holds more than {MAX_TARGET_CAS} certificates"
            )));
        }
        extra_roots.push(cert);
    }
    if extra_roots.is_empty() {
        return Err(fail("holds no certificate".to_string()));
    }
    Ok(TargetSettings {
        ca_file: Some(path),
        extra_roots,
    })
}

fn positive(
    src: &Source<'_>,
    v: Option<Spanned<u64>>,
    field: &str,
    default: u64,
) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if *v.get_ref() == 0 => Err(src.error(
            v.span(),
            format!("`{field}` must be greater than 0"),
            format!("remove `{field}` to use the default ({default}) or write a positive number"),
        )),
        Some(v) => Ok(*v.get_ref()),
    }
}

fn validate_collector(
    src: &Source<'_>,
    raw: RawCollector,
) -> Result<CollectorSettings, ConfigError> {
    if raw.endpoints.get_ref().is_empty() {
        return Err(src.error(
            raw.endpoints.span(),
            "`endpoints` is empty",
            "list at least one collector, e.g. endpoints = [\"https://collector.example:7400\"]",
        ));
    }
    let mut endpoints = Vec::new();
    for ep in raw.endpoints.get_ref() {
        let uri: http::Uri = ep.get_ref().parse().map_err(|e| {
            src.error(
                ep.span(),
                format!("collector endpoint {:?} is not a URL ({e})", ep.get_ref()),
                "write it as \"https://HOST:PORT\" (or \"http://127.0.0.1:PORT\" on loopback)",
            )
        })?;
        let scheme = uri.scheme_str().unwrap_or("");
        let host = uri.host().unwrap_or("");
        if !(scheme == "http" || scheme == "https") || host.is_empty() || uri.port_u16().is_none() {
            return Err(src.error(
                ep.span(),
                format!(
                    "collector endpoint {:?} needs a scheme, host and port",
                    ep.get_ref()
                ),
                "write it as \"https://HOST:PORT\" (or \"http://127.0.0.1:PORT\" on loopback)",
            ));
        }
        if scheme == "http" && !is_loopback_host(host) && !raw.allow_insecure {
            return Err(src.error(
                ep.span(),
                format!("plaintext endpoint {:?} is not on loopback", ep.get_ref()),
                "use https:// with TLS, or set `allow_insecure = true` in [collector] if you accept sending results in clear text",
            ));
        }
        endpoints.push(uri);
    }
    let batch_max = match raw.batch_max {
        None => 2000,
        Some(v) if (1..=10_000).contains(v.get_ref()) => *v.get_ref() as usize,
        Some(v) => {
            return Err(src.error(
                v.span(),
                format!("`batch_max` = {} is out of range", v.get_ref()),
                "write a number from 1 to 10000 (default 2000)",
            ))
        }
    };
    let dur = |v: Option<Spanned<String>>,
               field: &str,
               default: Duration|
     -> Result<Duration, ConfigError> {
        match v {
            None => Ok(default),
            Some(v) => {
                let d = src.duration(&v, field)?;
                if d.is_zero() {
                    return Err(src.error(
                        v.span(),
                        format!("`{field}` must be longer than 0"),
                        format!("write a positive duration for `{field}`"),
                    ));
                }
                Ok(d)
            }
        }
    };
    let heartbeat = dur(raw.heartbeat, "heartbeat", Duration::from_secs(15))?;
    let backoff_initial = dur(
        raw.backoff_initial,
        "backoff_initial",
        Duration::from_millis(500),
    )?;
    let backoff_max = dur(raw.backoff_max, "backoff_max", Duration::from_secs(60))?;
    if raw.cert.is_some() != raw.key.is_some() {
        return Err(src.error(
            raw.endpoints.span(),
            "[collector] needs both `cert` and `key` for mutual TLS, or neither",
            "set both to PEM files (outpost-collector pki issue-agent ID makes a trial pair)",
        ));
    }
    let keepalive = dur(raw.keepalive, "keepalive", Duration::from_secs(10))?;
    Ok(CollectorSettings {
        endpoints,
        tls: ClientTls {
            ca: raw.ca.map(expand_credentials),
            cert: raw.cert.map(expand_credentials),
            key: raw.key.map(expand_credentials),
            server_name: raw.server_name,
        },
        token_file: raw.token_file.map(expand_credentials),
        batch_max,
        heartbeat,
        backoff_initial,
        backoff_max: backoff_max.max(backoff_initial),
        keepalive,
    })
}

/// Every `login = "NAME"` must name a `login` check of this config.
fn validate_login_refs(
    src: &Source<'_>,
    checks: &[CheckSpec],
    refs: Vec<(String, Spanned<String>)>,
) -> Result<(), ConfigError> {
    let logins: Vec<&str> = checks
        .iter()
        .filter(|c| matches!(c.kind, CheckKind::Login(_)))
        .map(|c| c.name.as_str())
        .collect();
    for (check, r) in refs {
        if !logins.contains(&r.get_ref().as_str()) {
            return Err(src.error(
                r.span(),
                format!(
                    "check {check:?} names login {:?}, but no login check has that name",
                    r.get_ref()
                ),
                if logins.is_empty() {
                    "add a [[check]] with a [check.login] table of that name, or remove `login`"
                        .to_string()
                } else {
                    format!("use one of: {}", logins.join(", "))
                },
            ));
        }
    }
    Ok(())
}

fn validate_check(
    src: &Source<'_>,
    span: Range<usize>,
    raw: RawCheck,
) -> Result<(CheckSpec, Option<Spanned<String>>), ConfigError> {
    let name = raw.name.get_ref().trim().to_string();
    if !valid_id(&name) {
        return Err(src.error(
            raw.name.span(),
            format!("check name {:?} is not valid", raw.name.get_ref()),
            "use 1 to 64 characters from A-Z a-z 0-9 . _ - (for example \"portal-home\")",
        ));
    }
    let interval = src.duration(&raw.interval, "interval")?;
    if interval < Duration::from_secs(1) {
        return Err(src.error(
            raw.interval.span(),
            format!(
                "check {name:?}: interval {:?} is shorter than 1s",
                raw.interval.get_ref()
            ),
            "write an interval of at least \"1s\" (for example \"60s\")",
        ));
    }
    let timeout = match &raw.timeout {
        None => interval.min(Duration::from_secs(10)),
        Some(t) => {
            let timeout = src.duration(t, "timeout")?;
            if timeout.is_zero() || timeout > interval {
                return Err(src.error(
                    t.span(),
                    format!("check {name:?}: timeout {:?} must be above 0 and no longer than its interval {:?}", t.get_ref(), raw.interval.get_ref()),
                    "shorten the timeout or lengthen the interval: a check never overlaps itself",
                ));
            }
            timeout
        }
    };
    let jitter = match &raw.jitter {
        None => 1.0,
        Some(j) if (0.0..=1.0).contains(j.get_ref()) => *j.get_ref(),
        Some(j) => {
            return Err(src.error(
                j.span(),
                format!("check {name:?}: jitter {} is outside 0..1", j.get_ref()),
                "write a fraction of the interval between 0.0 (no spread) and 1.0 (default)",
            ))
        }
    };
    validate_labels(src, raw.labels.as_ref())?;
    let mut labels = raw.labels.map(Spanned::into_inner).unwrap_or_default();
    for (key, value) in [("module", raw.module), ("objective", raw.objective)] {
        if let Some(value) = value {
            labels.insert(key.to_string(), value);
        }
    }
    let (login_table, login_ref) = checks::login::split_field(raw.login);
    let kinds = checks::RawKinds {
        page: raw.page,
        login: login_table,
        report: raw.report,
        freshness: raw.freshness,
        command: raw.command,
        consistency: raw.consistency,
    };
    let kind = checks::validate_kind(src, span, &name, timeout, kinds)?;
    if let Some(r) = &login_ref {
        if !kind.takes_login() {
            return Err(src.error(
                r.span(),
                format!("a {} check cannot use a login", kind.name()),
                "remove `login`: only page, report, command, consistency and HTTP freshness checks send a session",
            ));
        }
    }
    Ok((
        CheckSpec {
            name,
            interval,
            timeout,
            jitter,
            labels,
            confirm_failures: raw.confirm_failures,
            login: login_ref.as_ref().map(|r| r.get_ref().clone()),
            kind,
        },
        login_ref,
    ))
}

fn validate_labels(
    src: &Source<'_>,
    labels: Option<&Spanned<BTreeMap<String, String>>>,
) -> Result<(), ConfigError> {
    let Some(labels) = labels else {
        return Ok(());
    };
    let map = labels.get_ref();
    if map.len() > MAX_LABELS {
        return Err(src.error(
            labels.span(),
            format!("{} labels, more than the limit of {MAX_LABELS}", map.len()),
            "keep only the labels you select or group by",
        ));
    }
    for (k, v) in map {
        let name_ok = !k.is_empty()
            && k.len() <= MAX_LABEL_LEN
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && !k.starts_with("__");
        if !name_ok || v.len() > MAX_LABEL_LEN {
            return Err(src.error(
                labels.span(),
                format!("label {k:?} = {v:?} is not valid"),
                format!("label names use a-z A-Z 0-9 _ (not starting with a digit or __); values are at most {MAX_LABEL_LEN} bytes"),
            ));
        }
    }
    Ok(())
}

/// Agent ids and check names: 1..=64 of `[A-Za-z0-9._-]`.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[agent]
id = "site-a-1"
labels = { site = "site-a" }

[buffer]
path = "/tmp/outpost-buffer"

[collector]
endpoints = ["http://127.0.0.1:7400"]

[[check]]
name = "home"
interval = "30s"
timeout = "5s"
module = "portal"
objective = "portal_availability"
[check.page]
url = "http://127.0.0.1:8080/"
expect_status = [200]
body_contains = ["Welcome"]
latency_bound = "2s"
"#;

    fn err(text: &str) -> (usize, usize, String) {
        match parse(Path::new("agent.toml"), text) {
            Err(ConfigError::Invalid {
                line,
                column,
                message,
                fix,
                ..
            }) => (line, column, format!("{message} | {fix}")),
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn good_config_parses_into_typed_values() {
        let cfg = parse(Path::new("agent.toml"), GOOD).unwrap();
        assert_eq!(cfg.agent.id, "site-a-1");
        assert_eq!(cfg.checks.len(), 1);
        let check = &cfg.checks[0];
        assert_eq!(check.interval, Duration::from_secs(30));
        assert_eq!(check.timeout, Duration::from_secs(5));
        assert_eq!(
            check.labels.get("module").map(String::as_str),
            Some("portal")
        );
        assert_eq!(check.kind.name(), "page");
        assert_eq!(cfg.buffer.max_bytes, DEFAULT_BUFFER_MAX_BYTES);
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let text = GOOD.replace("interval = \"30s\"", "interval = \"30s");
        let (line, column, msg) = err(&text);
        assert_eq!(line, 14, "{msg}");
        assert!(column >= 12, "{column} {msg}");
    }

    #[test]
    fn unknown_field_is_named_with_its_position() {
        let text = GOOD.replace("module = \"portal\"", "modul = \"portal\"");
        let (line, column, msg) = err(&text);
        assert_eq!((line, column), (16, 1), "{msg}");
        assert!(msg.contains("modul"), "{msg}");
        assert!(msg.contains("spelling"), "{msg}");
    }

    #[test]
    fn missing_field_says_add_it() {
        let text = GOOD.replace("interval = \"30s\"\n", "");
        let (_, _, msg) = err(&text);
        assert!(msg.contains("missing field `interval`"), "{msg}");
        assert!(msg.contains("add the field"), "{msg}");
    }

    #[test]
    fn zero_interval_points_at_the_value() {
        let text = GOOD.replace("interval = \"30s\"", "interval = \"0s\"");
        let (line, column, msg) = err(&text);
        assert_eq!((line, column), (14, 12), "{msg}");
        assert!(msg.contains("at least"), "{msg}");
    }

    #[test]
    fn timeout_longer_than_interval_is_refused() {
        let text = GOOD.replace("timeout = \"5s\"", "timeout = \"60s\"");
        let (line, _, msg) = err(&text);
        assert_eq!(line, 15, "{msg}");
        assert!(msg.contains("never overlaps"), "{msg}");
    }

    #[test]
    fn bad_url_is_refused_with_a_fix() {
        let text = GOOD.replace("url = \"http://127.0.0.1:8080/\"", "url = \"not a url\"");
        let (line, column, msg) = err(&text);
        assert_eq!((line, column), (19, 7), "{msg}");
        assert!(msg.contains("http"), "{msg}");
    }

    #[test]
    fn plaintext_to_a_remote_collector_needs_allow_insecure() {
        let text = GOOD.replace("http://127.0.0.1:7400", "http://10.1.2.3:7400");
        let (line, _, msg) = err(&text);
        assert_eq!(line, 10, "{msg}");
        assert!(msg.contains("allow_insecure"), "{msg}");
        let allowed = text.replace("[collector]\n", "[collector]\nallow_insecure = true\n");
        assert!(parse(Path::new("a.toml"), &allowed).is_ok());
    }

    #[test]
    fn a_check_without_a_kind_table_is_refused() {
        let text = GOOD
            .split("[check.page]")
            .next()
            .unwrap_or_default()
            .to_string();
        let (_, _, msg) = err(&text);
        assert!(msg.contains("no kind"), "{msg}");
    }

    #[test]
    fn invalid_agent_id_is_refused() {
        let text = GOOD.replace("\"site-a-1\"", "\"site a/1\"");
        let (line, column, _) = err(&text);
        assert_eq!((line, column), (3, 6));
    }
}
