//! Collector configuration: raw TOML in, validated [`Config`] out, with
//! file:line:column errors (exit status 2 in the binary). Every field has
//! an embedded default, so the collector also runs with no file at all
//! (loopback listeners, store under the current directory).

pub mod evaluation;
pub mod rehearsal;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use outpost_config_diag::{ConfigError, Source};
use serde::Deserialize;
use toml::Spanned;

/// Largest config file accepted.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    grpc: RawGrpc,
    #[serde(default)]
    http: RawListen,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    auth: RawAuth,
    // ---- evaluation sections (config/evaluation.rs)
    #[serde(default)]
    slo: evaluation::RawSlo,
    #[serde(default)]
    objective: Vec<evaluation::RawObjective>,
    #[serde(default)]
    escalation: evaluation::RawEscalation,
    #[serde(default)]
    scenario: BTreeMap<String, evaluation::RawScenario>,
    #[serde(default)]
    maintenance: Vec<evaluation::RawMaintenance>,
    #[serde(default)]
    api: evaluation::RawApi,
    #[serde(default)]
    alertmanager: Vec<evaluation::RawAlertmanager>,
    #[serde(default)]
    webhook: Vec<evaluation::RawWebhook>,
    // ---- remote write
    #[serde(default)]
    remote_write: Vec<Spanned<RawRemoteWrite>>,
    // ---- restore rehearsals and contact points (config/rehearsal.rs)
    #[serde(default)]
    rehearsal: rehearsal::RawRehearsal,
    #[serde(default)]
    contact: Vec<rehearsal::RawContact>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrpc {
    listen: Option<Spanned<String>>,
    /// Server certificate chain (PEM). Enables TLS.
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    tls_key: Option<PathBuf>,
    /// CA bundle (PEM) agents' client certificates must chain to: enables
    /// mutual TLS, and then every agent must present a certificate.
    client_ca: Option<PathBuf>,
    /// Certificate revocation lists (PEM) for client certificates.
    crl: Option<PathBuf>,
    /// Accept plaintext gRPC on a non-loopback address.
    #[serde(default)]
    allow_insecure: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    /// When set, only these agent ids may connect (revoke by removing one
    /// and sending SIGHUP).
    allowed_agents: Option<Vec<Spanned<String>>>,
    /// Per-agent bearer tokens for sites without a PKI, stored hashed.
    #[serde(default)]
    tokens: Vec<Spanned<RawToken>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    agent: String,
    /// Hex SHA-256 of the token (`outpost-collector hash-token`).
    sha256: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    listen: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<PathBuf>,
    retention: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemoteWrite {
    /// Name in metrics (`receiver` label); default `rw<N>`.
    name: Option<String>,
    url: Spanned<String>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    bearer_token_file: Option<PathBuf>,
    queue_groups: Option<usize>,
    max_samples_per_send: Option<usize>,
    max_retries: Option<u32>,
    timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_series_per_agent: Option<Spanned<u64>>,
    max_results_per_second_per_agent: Option<Spanned<u64>>,
}

/// The validated collector configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub grpc_listen: SocketAddr,
    /// TLS and client authentication of the gRPC listener.
    pub grpc_tls: Option<TlsFiles>,
    pub auth: AuthConfig,
    pub http_listen: SocketAddr,
    pub store_path: PathBuf,
    pub retention: Duration,
    pub max_series_per_agent: usize,
    /// Per-stream ingest rate; over it the stream is slowed, not cut.
    pub max_results_per_second_per_agent: u64,
    /// SLOs, escalation rules, incidents, receivers (`[slo]`, `[[objective]]`, ...).
    pub evaluation: evaluation::EvaluationConfig,
    /// Prometheus remote-write receivers.
    pub remote_write: Vec<crate::remote_write::Receiver>,
    /// Restore rehearsals (`[rehearsal]`, RTOs from `[scenario.NAME]`).
    pub rehearsal: crate::rehearsal::RehearsalConfig,
}

/// Files of the gRPC listener's TLS identity and client trust. They are
/// read at start and re-read on SIGHUP (rotation without restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub crl: Option<PathBuf>,
}

/// Who may send results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// `None`: any agent that authenticates (or any agent at all when no
    /// authentication is configured).
    pub allowed_agents: Option<std::collections::BTreeSet<String>>,
    /// agent id → SHA-256 of its bearer token.
    pub tokens: std::collections::BTreeMap<String, [u8; 32]>,
}

/// Default gRPC listen address (loopback: plaintext is only for loopback).
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:7400";
/// Default HTTP listen address.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9464";
/// Default retention: the seed's 35-day profile.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(35 * 86_400);

impl Config {
    /// The embedded defaults.
    pub fn defaults() -> Config {
        let parse = |s: &str| s.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
        Config {
            grpc_listen: parse(DEFAULT_GRPC_LISTEN),
            grpc_tls: None,
            auth: AuthConfig::default(),
            http_listen: parse(DEFAULT_HTTP_LISTEN),
            store_path: PathBuf::from("outpost-collector-data"),
            retention: DEFAULT_RETENTION,
            max_series_per_agent: crate::live::DEFAULT_MAX_SERIES_PER_AGENT,
            max_results_per_second_per_agent: 50_000,
            evaluation: evaluation::EvaluationConfig::default(),
            remote_write: Vec::new(),
            rehearsal: crate::rehearsal::RehearsalConfig::default(),
        }
    }
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = outpost_config_diag::read(path, MAX_CONFIG_BYTES)?;
    parse(path, &text)
}

/// Parses and validates `text` from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let src = Source { path, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
    let d = Config::defaults();
    let listen = |v: Option<Spanned<String>>,
                  default: SocketAddr,
                  table: &str|
     -> Result<SocketAddr, ConfigError> {
        match v {
            None => Ok(default),
            Some(v) => v.get_ref().parse().map_err(|_| {
                src.error(
                    v.span(),
                    format!("[{table}] listen = {:?} is not an address", v.get_ref()),
                    "write IP:PORT, e.g. \"127.0.0.1:7400\" or \"[::]:7400\"",
                )
            }),
        }
    };
    let retention = match raw.store.retention {
        None => d.retention,
        Some(r) => {
            let v = src.duration(&r, "retention")?;
            if v < Duration::from_secs(86_400) {
                return Err(src.error(
                    r.span(),
                    "`retention` is shorter than one day",
                    "write at least \"1d\"; the default is \"35d\"",
                ));
            }
            v
        }
    };
    let max_series_per_agent = match raw.limits.max_series_per_agent {
        None => d.max_series_per_agent,
        Some(v) if (1..=100_000).contains(v.get_ref()) => *v.get_ref() as usize,
        Some(v) => {
            return Err(src.error(
                v.span(),
                "`max_series_per_agent` must be 1..=100000",
                "write e.g. 500 (the default)",
            ))
        }
    };
    let grpc_span = raw.grpc.listen.as_ref().map_or(0..0, Spanned::span);
    let grpc_listen = listen(raw.grpc.listen, d.grpc_listen, "grpc")?;
    let grpc_tls = match (raw.grpc.tls_cert, raw.grpc.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: expand_credentials(cert),
            key: expand_credentials(key),
            client_ca: raw.grpc.client_ca.map(expand_credentials),
            crl: raw.grpc.crl.map(expand_credentials),
        }),
        (None, None) if raw.grpc.client_ca.is_none() => None,
        _ => return Err(src.error(
            grpc_span,
            "[grpc] TLS needs both `tls_cert` and `tls_key` (and `client_ca` needs them too)",
            "set tls_cert and tls_key to PEM files (outpost-collector pki init makes a trial set)",
        )),
    };
    if grpc_tls.is_none() && !grpc_listen.ip().is_loopback() && !raw.grpc.allow_insecure {
        return Err(src.error(
            grpc_span,
            format!("plaintext gRPC on non-loopback address {grpc_listen}"),
            "set tls_cert/tls_key (and client_ca for mutual TLS), or `allow_insecure = true` in [grpc] if you accept clear text",
        ));
    }
    let auth = validate_auth(&src, raw.auth)?;
    let mut evaluation = evaluation::validate(
        src,
        evaluation::RawSections {
            slo: raw.slo,
            objective: raw.objective,
            escalation: raw.escalation,
            scenario: raw.scenario,
            maintenance: raw.maintenance,
            api: raw.api,
            alertmanager: raw.alertmanager,
            webhook: raw.webhook,
        },
        retention,
    )?;
    let remote_write = validate_remote_write(&src, raw.remote_write)?;
    let rehearsal = rehearsal::rehearsal(&src, raw.rehearsal, &evaluation.engine.rules.scenarios)?;
    let objective_names: Vec<String> = evaluation
        .engine
        .objectives
        .iter()
        .map(|o| o.name.clone())
        .collect();
    evaluation.engine.contacts = rehearsal::contacts(&src, raw.contact, &objective_names)?;
    Ok(Config {
        grpc_listen,
        grpc_tls,
        auth,
        http_listen: listen(raw.http.listen, d.http_listen, "http")?,
        store_path: raw.store.path.unwrap_or(d.store_path),
        retention,
        max_series_per_agent,
        max_results_per_second_per_agent: match raw.limits.max_results_per_second_per_agent {
            None => d.max_results_per_second_per_agent,
            Some(v) if *v.get_ref() >= 1 => *v.get_ref(),
            Some(v) => {
                return Err(src.error(
                    v.span(),
                    "`max_results_per_second_per_agent` must be at least 1",
                    "write e.g. 50000 (the default); streams over it are slowed, never cut",
                ))
            }
        },
        evaluation,
        remote_write,
        rehearsal,
    })
}

fn validate_remote_write(
    src: &Source<'_>,
    raw: Vec<Spanned<RawRemoteWrite>>,
) -> Result<Vec<crate::remote_write::Receiver>, ConfigError> {
    let mut out = Vec::new();
    for (i, rw) in raw.into_iter().enumerate() {
        let span = rw.span();
        let rw = rw.into_inner();
        let url: http::Uri = rw.url.get_ref().parse().map_err(|_| {
            src.error(
                rw.url.span(),
                format!("remote_write url {:?} is not a URL", rw.url.get_ref()),
                "write e.g. \"http://127.0.0.1:9090/api/v1/write\"",
            )
        })?;
        if !matches!(url.scheme_str(), Some("http") | Some("https")) || url.host().is_none() {
            return Err(src.error(
                rw.url.span(),
                "remote_write url must be http:// or https:// with a host",
                "write e.g. \"https://mimir.example/api/v1/push\"",
            ));
        }
        let name = rw.name.unwrap_or_else(|| format!("rw{i}"));
        if !crate::ingest::convert::valid_id(&name) {
            return Err(src.error(
                span,
                format!("remote_write name {name:?} is not valid"),
                "use 1-64 characters of A-Z a-z 0-9 . _ -",
            ));
        }
        let timeout = match &rw.timeout {
            None => Duration::from_secs(30),
            Some(t) => src.duration(t, "timeout")?,
        };
        let max_samples_per_send = rw.max_samples_per_send.unwrap_or(2000);
        if !(1..=100_000).contains(&max_samples_per_send) {
            return Err(src.error(
                span,
                "`max_samples_per_send` must be 1..=100000",
                "write e.g. 2000 (the default)",
            ));
        }
        out.push(crate::remote_write::Receiver {
            name,
            url,
            external_labels: rw.external_labels,
            bearer_token_file: rw.bearer_token_file.map(expand_credentials),
            queue_groups: rw.queue_groups.unwrap_or(1024).clamp(1, 1_000_000),
            max_samples_per_send,
            max_retries: rw.max_retries.unwrap_or(10),
            timeout,
        });
    }
    Ok(out)
}

fn validate_auth(src: &Source<'_>, raw: RawAuth) -> Result<AuthConfig, ConfigError> {
    let id_fix = "agent ids are 1-64 characters of A-Z a-z 0-9 . _ -";
    let allowed_agents = match raw.allowed_agents {
        None => None,
        Some(list) => {
            let mut set = std::collections::BTreeSet::new();
            for id in list {
                if !crate::ingest::convert::valid_id(id.get_ref()) {
                    return Err(src.error(
                        id.span(),
                        format!("{:?} is not an agent id", id.get_ref()),
                        id_fix,
                    ));
                }
                set.insert(id.into_inner());
            }
            Some(set)
        }
    };
    let mut tokens = std::collections::BTreeMap::new();
    for t in raw.tokens {
        let span = t.span();
        let t = t.into_inner();
        if !crate::ingest::convert::valid_id(&t.agent) {
            return Err(src.error(span, format!("{:?} is not an agent id", t.agent), id_fix));
        }
        let digest = crate::auth::parse_sha256_hex(&t.sha256).ok_or_else(|| {
            src.error(
                span.clone(),
                "`sha256` must be 64 hex digits",
                "store the token's SHA-256, e.g. from `outpost-collector hash-token < token-file`",
            )
        })?;
        tokens.insert(t.agent, digest);
    }
    Ok(AuthConfig {
        allowed_agents,
        tokens,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        let c = parse(Path::new("c.toml"), "").unwrap();
        assert_eq!(c.grpc_listen.to_string(), DEFAULT_GRPC_LISTEN);
        assert_eq!(c.retention, DEFAULT_RETENTION);
    }

    #[test]
    fn plaintext_off_loopback_needs_tls_or_allow_insecure() {
        let err = parse(Path::new("c.toml"), "[grpc]\nlisten = \"0.0.0.0:7400\"\n").unwrap_err();
        assert!(err.to_string().contains("allow_insecure"), "{err}");
        assert!(parse(
            Path::new("c.toml"),
            "[grpc]\nlisten = \"0.0.0.0:7400\"\nallow_insecure = true\n"
        )
        .is_ok());
        let tls = "[grpc]\nlisten = \"0.0.0.0:7400\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nclient_ca = \"ca.pem\"\n";
        let c = parse(Path::new("c.toml"), tls).unwrap();
        assert_eq!(c.grpc_tls.unwrap().client_ca, Some(PathBuf::from("ca.pem")));
    }

    #[test]
    fn tokens_are_stored_hashed_and_checked() {
        let ok = format!(
            "[auth]\nallowed_agents = [\"a1\"]\n[[auth.tokens]]\nagent = \"a1\"\nsha256 = \"{}\"\n",
            "ab".repeat(32)
        );
        let c = parse(Path::new("c.toml"), &ok).unwrap();
        assert_eq!(c.auth.tokens["a1"], [0xab; 32]);
        let bad = "[[auth.tokens]]\nagent = \"a1\"\nsha256 = \"secret-in-clear\"\n";
        match parse(Path::new("c.toml"), bad) {
            Err(ConfigError::Invalid { line, fix, .. }) => {
                assert_eq!(line, 1);
                assert!(fix.contains("hash-token"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_point_at_the_value() {
        let text = "[grpc]\nlisten = \"nowhere\"\n";
        match parse(Path::new("c.toml"), text) {
            Err(ConfigError::Invalid {
                line, column, fix, ..
            }) => {
                assert_eq!((line, column), (2, 10));
                assert!(fix.contains("IP:PORT"));
            }
            other => panic!("{other:?}"),
        }
        match parse(Path::new("c.toml"), "[store]\nretension = \"3d\"\n") {
            Err(ConfigError::Invalid { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("retension"));
            }
            other => panic!("{other:?}"),
        }
    }
}
