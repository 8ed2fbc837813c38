//! Secrets (passwords, client secrets, tokens) and where credentials come
//! from.
//!
//! A credential is never written inline in the config: it is read at run
//! time from a file (`*_file`), an environment variable (`*_env`) or a
//! systemd credential (`*_credential`, the file of that name in
//! `$CREDENTIALS_DIRECTORY`, as `LoadCredential=` provides). Reading at run
//! time means a rotated secret is picked up without a restart, and
//! `check-config` works on a machine without the secrets.
//!
//! Invariants: a [`Secret`]'s `Debug` and `Display` never show its value;
//! error texts name the source (path, variable), never the content; files
//! are read up to [`MAX_SECRET_BYTES`].

use std::path::PathBuf;

use toml::Spanned;

use crate::config::{ConfigError, Source};

/// Longest secret read from a file or variable.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// A value that must not be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value, for putting on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Where one credential is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
    /// A systemd credential name (`$CREDENTIALS_DIRECTORY/<name>`).
    Credential(String),
}

impl SecretSource {
    /// Reads the secret now. The error names the source, not the value.
    pub async fn read(&self) -> Result<Secret, String> {
        let path = match self {
            SecretSource::Env(var) => {
                return match std::env::var(var) {
                    Ok(v) if v.len() as u64 <= MAX_SECRET_BYTES && !v.trim().is_empty() => {
                        Ok(Secret(v.trim_end_matches(['\r', '\n']).to_string()))
                    }
                    Ok(_) => Err(format!("environment variable {var} is empty or too long")),
                    Err(_) => Err(format!("environment variable {var} is not set")),
                };
            }
            SecretSource::File(p) => p.clone(),
            SecretSource::Credential(name) => match std::env::var_os("CREDENTIALS_DIRECTORY") {
                Some(dir) => PathBuf::from(dir).join(name),
                None => {
                    return Err(format!(
                        "credential {name:?}: CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential={name}:PATH)"
                    ))
                }
            },
        };
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
        if meta.len() > MAX_SECRET_BYTES {
            return Err(format!(
                "secret file {} is larger than {MAX_SECRET_BYTES} bytes",
                path.display()
            ));
        }
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
        let value = text.trim_end_matches(['\r', '\n']);
        if value.is_empty() {
            return Err(format!("secret file {} is empty", path.display()));
        }
        Ok(Secret(value.to_string()))
    }
}

/// The three raw spellings of one credential, as parsed.
#[derive(Debug, Default)]
pub struct RawSecret {
    pub file: Option<Spanned<String>>,
    pub env: Option<Spanned<String>>,
    pub credential: Option<Spanned<String>>,
}

/// Validates that at most one source is given; `None` when none is.
pub fn validate(
    src: &Source<'_>,
    raw: RawSecret,
    field: &str,
    table_span: std::ops::Range<usize>,
) -> Result<Option<SecretSource>, ConfigError> {
    let given = [&raw.file, &raw.env, &raw.credential]
        .iter()
        .filter(|v| v.is_some())
        .count();
    if given > 1 {
        return Err(src.error(
            table_span,
            format!(
                "`{field}` is given more than once ({field}_file, {field}_env, {field}_credential)"
            ),
            format!("keep exactly one of {field}_file, {field}_env or {field}_credential"),
        ));
    }
    if let Some(f) = raw.file {
        if f.get_ref().trim().is_empty() {
            return Err(src.error(
                f.span(),
                format!("`{field}_file` is empty"),
                "write the path of a file holding only the secret",
            ));
        }
        return Ok(Some(SecretSource::File(PathBuf::from(f.into_inner()))));
    }
    if let Some(e) = raw.env {
        let ok = !e.get_ref().is_empty()
            && e.get_ref()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(src.error(
                e.span(),
                format!("`{field}_env` = {:?} is not a variable name", e.get_ref()),
                "write the name of an environment variable, e.g. \"OUTPOST_PORTAL_PASSWORD\"",
            ));
        }
        return Ok(Some(SecretSource::Env(e.into_inner())));
    }
    if let Some(c) = raw.credential {
        let ok = !c.get_ref().is_empty()
            && !c.get_ref().contains('/')
            && c.get_ref() != "."
            && c.get_ref() != "..";
        if !ok {
            return Err(src.error(
                c.span(),
                format!(
                    "`{field}_credential` = {:?} is not a credential name",
                    c.get_ref()
                ),
                "write the name given to systemd's LoadCredential=, e.g. \"portal-password\"",
            ));
        }
        return Ok(Some(SecretSource::Credential(c.into_inner())));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn file_and_env_sources_read_and_trim() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        let got = SecretSource::File(p.clone()).read().await.unwrap();
        assert_eq!(got.expose(), "s3cret");
        std::fs::write(&p, "").unwrap();
        let err = SecretSource::File(p).read().await.unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let err = SecretSource::Env("OUTPOST_TEST_SURELY_UNSET_VAR".into())
            .read()
            .await
            .unwrap_err();
        assert!(err.contains("not set"), "{err}");
    }
}
