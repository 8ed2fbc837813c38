//! Collector configuration: raw TOML in, validated [`Config`] out, with
//! file:line:column errors (exit status 2 in the binary). Every field has
//! an embedded default, so the collector also runs with no file at all
//! (loopback listeners, store under the current directory).

pub mod evaluation;

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
    grpc: RawListen,
    #[serde(default)]
    http: RawListen,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    limits: RawLimits,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_series_per_agent: Option<Spanned<u64>>,
}

/// The validated collector configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub store_path: PathBuf,
    pub retention: Duration,
    pub max_series_per_agent: usize,
    /// SLOs, escalation rules, incidents, receivers (`[slo]`, `[[objective]]`, ...).
    pub evaluation: evaluation::EvaluationConfig,
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
            http_listen: parse(DEFAULT_HTTP_LISTEN),
            store_path: PathBuf::from("outpost-collector-data"),
            retention: DEFAULT_RETENTION,
            max_series_per_agent: crate::live::DEFAULT_MAX_SERIES_PER_AGENT,
            evaluation: evaluation::EvaluationConfig::default(),
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
    let evaluation = evaluation::validate(
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
    Ok(Config {
        grpc_listen: listen(raw.grpc.listen, d.grpc_listen, "grpc")?,
        http_listen: listen(raw.http.listen, d.http_listen, "http")?,
        store_path: raw.store.path.unwrap_or(d.store_path),
        retention,
        max_series_per_agent,
        evaluation,
    })
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
