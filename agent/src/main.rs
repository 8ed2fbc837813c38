//! `outpost-agent` command line: the thin edge that parses arguments,
//! sets up logging, maps errors to exit statuses (2: bad configuration or
//! usage; 1: runtime failure or a failed probe; `smoke` adds 3: green, but
//! the collector did not record the rehearsal) and calls the library.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use outpost_agent::cli::{Cli, Command};
use outpost_agent::{config, schedule};

fn main() -> ExitCode {
    let cli = Cli::parse();
    outpost_config_diag::init_logging();

    let cfg = match config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => {
            println!("{}: ok ({} checks)", cli.config.display(), cfg.checks.len());
            ExitCode::SUCCESS
        }
        Command::Run => runtime.block_on(async {
            // SIGHUP handler first: its default action would end us.
            let reload = outpost_agent::Reload {
                path: cli.config.clone(),
                requests: outpost_agent::signal::Hangups::install(),
            };
            let notifier = outpost_sd_notify::Notifier::from_env().unwrap_or_else(|e| {
                tracing::error!(error = %e, "systemd notifications disabled");
                outpost_sd_notify::Notifier::disabled()
            });
            let buffer = match outpost_agent::open_buffer(&cfg).await {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            let options = outpost_agent::RunOptions {
                grace: Duration::from_secs(10),
                reload: Some(reload),
                notifier,
            };
            outpost_agent::run_with(cfg, buffer, outpost_agent::signal::shutdown(), options).await;
            ExitCode::SUCCESS
        }),
        Command::Buffer => print_buffer(&cfg),
        Command::Smoke(args) => smoke(&cfg, args, &runtime),
        Command::Probe { name } => {
            let Some(spec) = cfg.checks.iter().find(|c| c.name == name) else {
                let names: Vec<_> = cfg.checks.iter().map(|c| c.name.as_str()).collect();
                eprintln!(
                    "error: no check named {name:?} in {}\n  fix: use one of: {}",
                    cli.config.display(),
                    names.join(", ")
                );
                return ExitCode::from(2);
            };
            runtime.block_on(async {
                // A check naming a login runs that login first (printed
                // too): it obtains the session the check then uses.
                let sessions = outpost_agent::session::Sessions::new(&cfg.checks);
                let login = spec
                    .login
                    .as_deref()
                    .and_then(|l| cfg.checks.iter().find(|c| c.name == l));
                let token = tokio_util::sync::CancellationToken::new();
                let client = outpost_agent::http::Client::for_targets(&cfg.targets);
                let mut all_ok = true;
                let mut first = true;
                for s in login.into_iter().chain(std::iter::once(spec)) {
                    let check = outpost_agent::checks::build(s, &sessions);
                    for r in
                        schedule::run_with_confirmation(s, check.as_ref(), &client, &token).await
                    {
                        all_ok &= r.outcome.is_ok();
                        if !first {
                            println!();
                        }
                        first = false;
                        print_result(&r);
                    }
                    if let Some(name) = s.login.as_deref() {
                        let held = match sessions.slot(name) {
                            Some(slot) => slot.has_session().await,
                            None => false,
                        };
                        println!(
                            "session:      login {name} ({})",
                            if held {
                                "live session held, re-used until it nears expiry"
                            } else {
                                "no live session"
                            }
                        );
                    }
                }
                if all_ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            })
        }
    }
}

/// `outpost-agent smoke`: the restore rehearsal (see `outpost_agent::smoke`).
/// SIGINT/SIGTERM cancel the one token: the run ends, not green.
fn smoke(
    cfg: &config::Config,
    args: outpost_agent::cli::SmokeArgs,
    runtime: &tokio::runtime::Runtime,
) -> ExitCode {
    use outpost_agent::smoke;
    let opts = smoke::Options {
        select: args.select,
        checks: args.check,
        labels: args.label,
        scenario: args.scenario,
        until_green: args.until_green,
        every: args.every,
        timeout: args.timeout,
        send: !args.no_send,
    };
    let plan = match smoke::plan(cfg, &opts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let token = tokio_util::sync::CancellationToken::new();
        let mut out = std::io::stdout();
        let run = smoke::run(cfg, plan, &mut out, token.clone());
        tokio::pin!(run);
        let summary = tokio::select! {
            s = &mut run => s,
            _ = outpost_agent::signal::shutdown() => {
                token.cancel();
                run.await
            }
        };
        ExitCode::from(summary.exit_code())
    })
}

/// `outpost-agent buffer`: the buffer's figures. Never moves anything
/// aside; when a running agent holds the buffer, prints the status file it
/// keeps current.
fn print_buffer(cfg: &config::Config) -> ExitCode {
    use outpost_agent::buffer::{self, Buffer, BufferError, Limits};
    let limits = Limits {
        max_bytes: cfg.buffer.max_bytes,
        max_entries: cfg.buffer.max_entries,
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    if !cfg.buffer.path.exists() {
        println!(
            "no buffer at {} yet (the agent creates it when it starts)",
            cfg.buffer.path.display()
        );
        return ExitCode::SUCCESS;
    }
    match Buffer::inspect(&cfg.buffer.path, limits) {
        Ok(b) => {
            print!(
                "{}",
                buffer::render(&cfg.buffer.path, &b.stats(), limits, now_ms)
            );
            ExitCode::SUCCESS
        }
        Err(BufferError::Locked { .. }) => match buffer::read_status(&cfg.buffer.path) {
            Ok(Some(s)) if !std::path::Path::new(&format!("/proc/{}", s.pid)).exists() => {
                eprintln!(
                    "error: the buffer at {} is in use, but its status file was written by process {}, which no longer runs; try again in a few seconds",
                    cfg.buffer.path.display(),
                    s.pid
                );
                ExitCode::from(1)
            }
            Ok(Some(s)) => {
                println!(
                    "source:             status file of the running agent (pid {}), written {:.1}s ago",
                    s.pid,
                    (now_ms - s.written_unix_ms).max(0) as f64 / 1000.0
                );
                print!("{}", s.text);
                ExitCode::SUCCESS
            }
            Ok(None) => {
                eprintln!(
                    "error: the buffer at {} is in use by a running agent and it has not written {} yet; try again in a few seconds",
                    cfg.buffer.path.display(),
                    buffer::status_path(&cfg.buffer.path).display()
                );
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!(
                    "error: the buffer at {} is in use by a running agent, and its status file is unreadable: {e}",
                    cfg.buffer.path.display()
                );
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn print_result(r: &outpost_agent::result::CheckResult) {
    let ms = |d: Option<Duration>| {
        d.map_or("-".to_string(), |d| {
            format!("{:.1} ms", d.as_secs_f64() * 1000.0)
        })
    };
    println!("check:        {} ({})", r.check, r.kind);
    println!(
        "outcome:      {}{}",
        r.outcome,
        if r.confirmation {
            " (confirmation run)"
        } else {
            ""
        }
    );
    println!(
        "http status:  {}",
        r.http_status.map_or("-".to_string(), |s| s.to_string())
    );
    println!("duration:     {}", ms(Some(r.duration)));
    println!(
        "phases:       dns {} | connect {} | tls {} | first byte {} | total {}",
        ms(r.phases.dns),
        ms(r.phases.connect),
        ms(r.phases.tls),
        ms(r.phases.first_byte),
        ms(r.phases.total)
    );
    if let Some(v) = r.value {
        println!("value:        {v}");
    }
    if let Some(d) = r.tls_cert_days_left {
        println!("cert expires: in {d:.1} days");
    }
    if !r.error.is_empty() {
        println!("error:        {}", r.error);
    }
    let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("labels:       {}", labels.join(" "));
}
