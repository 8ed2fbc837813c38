//! `outpost-collector` command line: parses arguments, validates the
//! config (exit 2 on error), binds the listeners, prints where they are,
//! and runs the library until SIGTERM/SIGINT.

use std::io::Read as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use outpost_collector::cli::{Cli, Command, PkiAction};
use outpost_collector::config::{self, Config};

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
    match &cli.command {
        Some(Command::Pki { action }) => return pki(action),
        Some(Command::HashToken) => {
            let mut token = String::new();
            if std::io::Read::read_to_string(&mut std::io::stdin().take(64 * 1024), &mut token)
                .is_err()
            {
                eprintln!("error: cannot read the token from stdin");
                return ExitCode::from(2);
            }
            println!(
                "{}",
                outpost_collector::auth::hex(&outpost_collector::auth::hash_token(
                    token.trim().as_bytes()
                ))
            );
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
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
        let notifier = outpost_sd_notify::Notifier::from_env().unwrap_or_else(|e| {
            tracing::error!(error = %e, "systemd notifications disabled");
            outpost_sd_notify::Notifier::disabled()
        });
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(outpost_collector::signal::reloads(reload_tx));
        let reload: Option<outpost_collector::Reload> = cli.config.clone().map(|path| {
            let overrides = (cli.grpc_listen, cli.http_listen, cli.data_dir.clone());
            Box::new(move || {
                let mut c = config::load(&path)?;
                if let Some(a) = overrides.0 {
                    c.grpc_listen = a;
                }
                if let Some(a) = overrides.1 {
                    c.http_listen = a;
                }
                if let Some(d) = &overrides.2 {
                    c.store_path.clone_from(d);
                }
                Ok(c)
            }) as outpost_collector::Reload
        });
        let options = outpost_collector::Options {
            shutdown: outpost_collector::signal::shutdown(),
            reload_requests: Some(reload_rx),
            reload,
            notifier,
        };
        match outpost_collector::run(cfg, grpc, http, options).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    })
}

fn pki(action: &PkiAction) -> ExitCode {
    let result = match action {
        PkiAction::Init { dir, hosts, days } => outpost_collector::pki::init(dir, hosts, *days).map(|()| {
            println!("wrote {0}/ca.pem, ca-key.pem, collector.pem, collector-key.pem (trial CA: keep ca-key.pem offline)", dir.display());
        }),
        PkiAction::IssueAgent { id, dir, days } => {
            if !outpost_collector::ingest::convert::valid_id(id) {
                eprintln!("error: {id:?} is not an agent id\n  fix: use 1-64 characters of A-Z a-z 0-9 . _ -");
                return ExitCode::from(2);
            }
            outpost_collector::pki::issue_agent(dir, id, *days).map(|()| {
                println!("wrote {0}/agent-{id}.pem and agent-{id}-key.pem", dir.display());
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
