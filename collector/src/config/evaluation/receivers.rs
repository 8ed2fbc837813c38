//! `[api]`, `[[alertmanager]]` and `[[webhook]]`, and the secrets they
//! read from files (never printed).

use std::path::PathBuf;
use std::time::Duration;

use outpost_config_diag::ConfigError;
use toml::Spanned;

use super::{EvaluationConfig, RawAlertmanager, RawApi, RawWebhook, MAX_RECEIVERS, V};
use crate::notify::client::HttpUrl;

/// A secret read from a file. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One Alertmanager.
#[derive(Debug, Clone)]
pub struct AlertmanagerConfig {
    pub name: String,
    pub url: HttpUrl,
    pub resend: Duration,
    pub timeout: Duration,
}

/// One signed JSON webhook.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub name: String,
    pub url: HttpUrl,
    pub secret: Secret,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub queue: usize,
}

/// Validates the receivers into `out`.
pub(super) fn receivers(
    v: &V<'_>,
    api: &RawApi,
    alertmanager: &[RawAlertmanager],
    webhook: &[RawWebhook],
    out: &mut EvaluationConfig,
) -> Result<(), ConfigError> {
    let src = v.src;
    if let Some(t) = &api.token_file {
        out.api_token = Some(v.secret(t, "API token")?);
        out.api_token_file = Some(PathBuf::from(t.get_ref()));
    }
    if let Some(u) = &api.external_url {
        let url = u.get_ref().trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(src.error(u.span(), "`external_url` must start with http:// or https://", "write the URL people use to reach this collector, e.g. \"https://outpost.example\""));
        }
        out.external_url = Some(url.to_string());
    }

    // receivers
    if alertmanager.len() + webhook.len() > MAX_RECEIVERS {
        return Err(src.error(
            0..0,
            format!("more than {MAX_RECEIVERS} receivers"),
            "use fewer [[alertmanager]] and [[webhook]] tables",
        ));
    }
    let url = |u: &Spanned<String>| {
        HttpUrl::parse(u.get_ref()).map_err(|e| {
            src.error(
                u.span(),
                format!("receiver url {:?}: {e}", u.get_ref()),
                "write http://HOST:PORT (optionally with a path prefix)",
            )
        })
    };
    let timeout = |t: &Option<Spanned<String>>| -> Result<Duration, ConfigError> {
        match t {
            None => Ok(Duration::from_secs(5)),
            Some(t) => v.duration(t, "timeout", Duration::from_millis(100)),
        }
    };
    for (i, a) in alertmanager.iter().enumerate() {
        out.alertmanagers.push(AlertmanagerConfig {
            name: a
                .name
                .clone()
                .unwrap_or_else(|| format!("alertmanager-{}", i + 1)),
            url: url(&a.url)?,
            resend: match &a.resend {
                None => Duration::from_secs(60),
                Some(r) => v.duration(r, "resend", Duration::from_millis(100))?,
            },
            timeout: timeout(&a.timeout)?,
        });
    }
    for (i, w) in webhook.iter().enumerate() {
        let max_attempts = match &w.max_attempts {
            None => 5,
            Some(n) if (1..=100).contains(n.get_ref()) => *n.get_ref(),
            Some(n) => {
                return Err(src.error(
                    n.span(),
                    "`max_attempts` must be 1..=100",
                    "write e.g. 5 (the default)",
                ))
            }
        };
        let queue = match &w.queue {
            None => 1024,
            Some(n) if (1..=100_000).contains(n.get_ref()) => *n.get_ref() as usize,
            Some(n) => {
                return Err(src.error(
                    n.span(),
                    "`queue` must be 1..=100000",
                    "write e.g. 1024 (the default)",
                ))
            }
        };
        out.webhooks.push(WebhookConfig {
            name: w
                .name
                .clone()
                .unwrap_or_else(|| format!("webhook-{}", i + 1)),
            url: url(&w.url)?,
            secret: v.secret(&w.secret_file, "webhook secret")?,
            timeout: timeout(&w.timeout)?,
            max_attempts,
            queue,
        });
    }
    Ok(())
}
