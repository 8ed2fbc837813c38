//! `outpost-collector` command line: parses arguments, validates the
//! config (exit 2 on error), binds the listeners, prints where they are,
//! and runs the library until SIGTERM/SIGINT.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use outpost_collector::cli::{Cli, Command, IncidentsAction, PkiAction};
use outpost_collector::config::{self, Config};

/// `outpost-collector incidents …`: exit 0 done, 1 refused or unreachable, 2 usage.
fn incidents(
    cfg: &Config,
    url: Option<&str>,
    token_file: Option<&PathBuf>,
    action: &IncidentsAction,
) -> ExitCode {
    use outpost_collector::incidents_cli::{self, Action};
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
    match runtime.block_on(incidents_cli::run(&url, token.as_deref(), &action)) {
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

/// `outpost-collector report …`: exit 0 written, 1 unreachable or
/// refused, 2 usage.
fn report(
    cfg: &Config,
    month: &str,
    out: &std::path::Path,
    format: &str,
    url: Option<&str>,
) -> ExitCode {
    use outpost_collector::notify::client::HttpUrl;
    use outpost_collector::report::{self, Month};
    let month = match Month::parse(month) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if format != "html" && format != "md" {
        eprintln!("error: --format {format:?}: write html or md");
        return ExitCode::from(2);
    }
    let base = url.map_or_else(|| format!("http://{}", cfg.http_listen), str::to_string);
    let url = match HttpUrl::parse(&base) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: --url {base:?}: {e}");
            return ExitCode::from(2);
        }
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
    let now = outpost_collector::store::now_unix_ms();
    let r = match runtime.block_on(report::collect(&url, month, now)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let text = if format == "md" {
        report::markdown(&r)
    } else {
        report::html(&r)
    };
    if let Err(e) = std::fs::write(out, text) {
        eprintln!(
            "error: cannot write {}: {e}\n  fix: choose a writable --out path",
            out.display()
        );
        return ExitCode::from(1);
    }
    println!(
        "wrote {} ({} objectives, {} incidents, {} agents)",
        out.display(),
        r.objectives.len(),
        r.incidents.len(),
        r.agents.len()
    );
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    outpost_config_diag::init_logging();
    match &cli.command {
        Some(Command::Pki { action }) => return pki(action),
        Some(Command::Rules) => {
            return match load(&cli) {
                Ok(cfg) => {
                    print!(
                        "{}",
                        outpost_collector::rules::render(&cfg.evaluation.engine.objectives)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            };
        }
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
    if let Some(Command::Incidents {
        url,
        token_file,
        action,
    }) = &cli.command
    {
        return incidents(&cfg, url.as_deref(), token_file.as_ref(), action);
    }
    if let Some(Command::Report {
        month,
        out,
        format,
        url,
    }) = &cli.command
    {
        return report(&cfg, month, out, format, url.as_deref());
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
