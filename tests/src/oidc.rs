//! A real OpenID provider for the login tests: `tests/oidc/provider.mjs`
//! (node-oidc-provider from npm) started with Node on 127.0.0.1 at a free
//! port, stopped by PID. `scripts/test` installs its packages (`npm ci`).
//!
//! Identities (see the script): client `outpost` / `outpost-secret`,
//! redirect URI [`REDIRECT_URI`], users `alice` / `alice-password` and
//! `bob` / `bob-password`; RS256 ID tokens; its own login and consent pages.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The redirect URI registered for the `outpost` client.
pub const REDIRECT_URI: &str = "http://127.0.0.1/outpost/callback";

/// The folder with `provider.mjs` and its `package.json`.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

/// A running provider.
pub struct OidcProvider {
    child: Child,
    /// `http://127.0.0.1:PORT` (the issuer).
    pub issuer: String,
}

impl OidcProvider {
    /// Starts the provider and waits for it to print its issuer.
    pub async fn start() -> Result<OidcProvider> {
        let dir = dir();
        if !dir.join("node_modules/oidc-provider").exists() {
            bail!(
                "{}/node_modules is missing; run `npm ci` there (scripts/test does this)",
                dir.display()
            );
        }
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("spawn node (install Node.js 20+: apt-get install nodejs npm)")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("the OpenID provider did not print its issuer within 30s")??
            .ok_or_else(|| anyhow!("the OpenID provider exited before listening"))?;
        let issuer = line
            .strip_prefix("issuer=")
            .ok_or_else(|| anyhow!("unexpected first line {line:?}"))?
            .to_string();
        // Keep reading stdout so the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(OidcProvider { child, issuer })
    }

    /// SIGTERM by PID and wait (bounded).
    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .map_err(|_| anyhow!("the OpenID provider did not exit within 10s"))??;
        Ok(())
    }
}
