//! `outpost-collector` command line: parses arguments, validates the
//! config (exit 2 on error), binds the listeners, prints where they are,
//! and runs the library until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use outpost_collector::cli::{Cli, Command};
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
        let shutdown = outpost_collector::signal::shutdown();
        match outpost_collector::run_with(cfg, grpc, http, shutdown, notifier).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    })
}
