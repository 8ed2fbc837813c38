//! `outpost-collector` command line: parses arguments, validates the
//! config (exit 2 on error), binds the listeners, prints where they are,
//! and runs the library until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use outpost_collector::config::{self, Config};

#[derive(Parser)]
#[command(name = "outpost-collector", version, about = "Outpost collector")]
struct Cli {
    /// Config file; without it the embedded defaults apply.
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// Override [grpc] listen (e.g. 127.0.0.1:0 for any free port).
    #[arg(long, global = true)]
    grpc_listen: Option<SocketAddr>,
    /// Override [http] listen.
    #[arg(long, global = true)]
    http_listen: Option<SocketAddr>,
    /// Override [store] path.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector (the default).
    Run,
    /// Validate the config and exit (0 valid, 2 invalid).
    CheckConfig,
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
}

#[derive(Subcommand)]
enum IncidentsAction {
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

/// `outpost-collector incidents …`: exit 0 done, 1 refused or unreachable, 2 usage.
fn incidents(
    cfg: &Config,
    url: Option<&str>,
    token_file: Option<&PathBuf>,
    action: &IncidentsAction,
) -> ExitCode {
    use outpost_collector::cli::{self, Action};
    use outpost_collector::notify::client::HttpUrl;
    let base = url.map_or_else(|| format!("http://{}", cfg.http_listen), str::to_string);
    let url = match HttpUrl::parse(&base) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: --url {base:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let token_path = token_file
        .cloned()
        .or_else(|| cfg.evaluation.api_token_file.clone());
    let token = match &token_path {
        None => None,
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => Some(t.trim().to_string()),
            Err(e) => {
                eprintln!("error: cannot read the token file {}: {e}\n  fix: pass --token-file with the collector's [api] token_file", p.display());
                return ExitCode::from(2);
            }
        },
    };
    let action = match action {
        IncidentsAction::List { state, limit, json } => Action::List {
            state: state.clone(),
            limit: *limit,
            json: *json,
        },
        IncidentsAction::Show { id } => Action::Show { id: *id },
        IncidentsAction::Ack { id, by } => Action::Ack {
            id: *id,
            by: by
                .clone()
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "cli".into()),
        },
        IncidentsAction::Close { id, root_cause } => Action::Close {
            id: *id,
            root_cause: root_cause.clone(),
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(&url, token.as_deref(), &action)) {
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn load(cli: &Cli) -> Result<Config, config::ConfigError> {
    let mut cfg = match &cli.config {
        Some(path) => config::load(path)?,
        None => Config::defaults(),
    };
    if let Some(a) = cli.grpc_listen {
        cfg.grpc_listen = a;
    }
    if let Some(a) = cli.http_listen {
        cfg.http_listen = a;
    }
    if let Some(d) = &cli.data_dir {
        cfg.store_path.clone_from(d);
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OUTPOST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cfg = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Some(Command::CheckConfig)) {
        println!("config ok");
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Incidents {
        url,
        token_file,
        action,
    }) = &cli.command
    {
        return incidents(&cfg, url.as_deref(), token_file.as_ref(), action);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let bind = |addr: SocketAddr, what: &str| {
            let what = what.to_string();
            async move {
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen for {what} on {addr}: {e}\n  fix: choose a free address with --{what}-listen or in the config"))
            }
        };
        let grpc = match bind(cfg.grpc_listen, "grpc").await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        let http = match bind(cfg.http_listen, "http").await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        let (Ok(g), Ok(h)) = (grpc.local_addr(), http.local_addr()) else {
            eprintln!("error: cannot read the bound addresses");
            return ExitCode::from(1);
        };
        // One machine-readable line for scripts and tests.
        println!("outpost-collector listening grpc={g} http={h}");
        tracing::info!(grpc = %g, http = %h, store = %cfg.store_path.display(), "collector running");
        match outpost_collector::run(cfg, grpc, http, outpost_collector::signal::shutdown()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    })
}
