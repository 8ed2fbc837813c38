//! The `outpost-collector` command line, as data: the binary parses it
//! and the packaging's man page generator (`packaging/xtask`) renders it
//! with clap_mangen, so `--help` and `man outpost-collector` agree.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "outpost-collector", version, about = "Outpost collector")]
pub struct Cli {
    /// Config file; without it the embedded defaults apply.
    #[arg(short, long, global = true)]
    pub config: Option<PathBuf>,
    /// Override [grpc] listen (e.g. 127.0.0.1:0 for any free port).
    #[arg(long, global = true)]
    pub grpc_listen: Option<SocketAddr>,
    /// Override [http] listen.
    #[arg(long, global = true)]
    pub http_listen: Option<SocketAddr>,
    /// Override [store] path.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the collector (the default).
    Run,
    /// Validate the config and exit (0 valid, 2 invalid).
    CheckConfig,
    /// A small PKI for trials (use your organisation's CA in production).
    Pki {
        #[command(subcommand)]
        action: PkiAction,
    },
    /// Print the SHA-256 (hex) of a bearer token read from stdin, for
    /// [[auth.tokens]] sha256 = "...".
    HashToken,
    /// Print Prometheus recording and burn-rate alert rules equivalent to
    /// the configured objectives (YAML, for `rule_files`).
    Rules,
    /// Incidents of a running collector: list, show, ack, close.
    Incidents {
        /// The collector's HTTP URL (default: http://<[http] listen>).
        #[arg(long)]
        url: Option<String>,
        /// File holding the API bearer token (default: [api] token_file).
        #[arg(long)]
        token_file: Option<PathBuf>,
        #[command(subcommand)]
        action: IncidentsAction,
    },
    // ---- monthly evidence report (issue #6)
    /// Monthly evidence report of a running collector (reads its JSON
    /// API, so the store stays with the collector): SLO attainment,
    /// incidents, backup freshness, fleet and data completeness.
    Report {
        /// The calendar month, YYYY-MM (UTC).
        #[arg(long)]
        month: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// html or md.
        #[arg(long, default_value = "html")]
        format: String,
        /// The collector's HTTP URL (default: http://<[http] listen>).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum IncidentsAction {
    /// List incidents, newest first (`*` marks historical ones).
    List {
        /// open, acknowledged, resolved, closed or all.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one incident with its timeline (JSON).
    Show { id: u64 },
    /// Acknowledge an open incident.
    Ack {
        id: u64,
        /// Who acknowledges (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Close an acknowledged or resolved incident with its root cause.
    Close {
        id: u64,
        #[arg(long)]
        root_cause: String,
    },
}

#[derive(Subcommand)]
pub enum PkiAction {
    /// Create a CA and a collector certificate in DIR.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// Host names / IPs the collector certificate is valid for.
        #[arg(long = "host", default_values_t = vec!["localhost".to_string(), "127.0.0.1".to_string()])]
        hosts: Vec<String>,
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// Create a client certificate for agent ID, signed by the CA in DIR.
    IssueAgent {
        id: String,
        #[arg(long)]
        dir: PathBuf,
        /// Validity in days (negative: already expired, for tests).
        #[arg(long, default_value_t = 365, allow_negative_numbers = true)]
        days: i64,
    },
}
