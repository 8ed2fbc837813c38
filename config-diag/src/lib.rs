//! `outpost-config-diag`: turns problems in a TOML configuration file into
//! messages an operator can act on — file, line, column, what is wrong and
//! what to write instead — for both the agent and the collector (which
//! must not link each other's code).
//!
//! Binaries map every [`ConfigError`] to exit status 2.
//!
//! It also sets up the one log format both binaries share
//! ([`init_logging`]): plain text on stderr (journald adds timestamps and
//! the unit), level and targets from `OUTPOST_LOG`.

#![forbid(unsafe_code)]

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

/// A configuration problem. Its `Display` is the whole message an operator
/// needs: where, what, and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}\n  fix: pass an existing, readable file with -c/--config")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: file is {size} bytes, larger than the {limit}-byte limit\n  fix: this is not an Outpost config file; check the path")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path}:{line}:{column}: {message}\n  fix: {fix}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        fix: String,
    },
}

/// Installs the stderr log subscriber. `OUTPOST_LOG` takes `Targets`
/// directives ("info", "warn,outpost_agent::transport=debug"); an unset or
/// unparsable value means "info" (an unparsable one is reported).
pub fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let raw = std::env::var("OUTPOST_LOG").ok();
    let parsed = raw.as_deref().map(str::parse::<Targets>);
    let targets = match &parsed {
        Some(Ok(t)) => t.clone(),
        _ => Targets::new().with_default(tracing::Level::INFO),
    };
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(targets)
        .try_init();
    if let Some(Err(e)) = parsed {
        tracing::warn!(error = %e, "OUTPOST_LOG is not valid (write e.g. \"info\" or \"info,outpost_agent=debug\"); using info");
    }
}

/// Reads a config file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<String, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > limit {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        });
    }
    std::fs::read_to_string(path).map_err(read_err)
}

/// The source text being validated, so that any span can become a
/// file:line:column error.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// An error at byte range `span` of the file.
    pub fn error(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = line_column(self.text, span.start);
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// Parses a human duration such as `30s`, `2m`, `1h 30m`.
    pub fn duration(&self, value: &Spanned<String>, field: &str) -> Result<Duration, ConfigError> {
        humantime::parse_duration(value.get_ref().trim()).map_err(|e| {
            self.error(
                value.span(),
                format!("`{field}` = {:?} is not a duration ({e})", value.get_ref()),
                format!("write a duration such as \"30s\", \"2m\" or \"1h 30m\" for `{field}`"),
            )
        })
    }

    /// A TOML syntax or shape error (unknown field, missing field, wrong
    /// type), with a fix chosen by the kind of problem.
    pub fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let message = e.message().trim().to_string();
        let fix = if message.starts_with("unknown field") {
            "remove the field or correct its spelling; the allowed fields are listed above (README.md, \"Configuration\")"
        } else if message.starts_with("missing field") {
            "add the field named above to this table (README.md, \"Configuration\")"
        } else if message.contains("invalid type") {
            "write a value of the type named above (strings in quotes, numbers bare, lists in [ ])"
        } else {
            "correct the TOML syntax at this position (https://toml.io)"
        };
        self.error(e.span().unwrap_or(0..0), message, fix)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("", 10), (1, 1));
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("outpost-diag-{}", std::process::id()));
        std::fs::write(&dir, "x".repeat(100)).unwrap();
        assert!(matches!(read(&dir, 10), Err(ConfigError::TooLarge { .. })));
        assert_eq!(read(&dir, 1000).unwrap().len(), 100);
        let _ = std::fs::remove_file(&dir);
    }
}
