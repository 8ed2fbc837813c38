//! `outpost-portal`: runs the simulated portal (`outpost_tests::portal`) as
//! a process, for the demo and for manual probing.
//!
//! ```text
//! outpost-portal [--listen ADDR] [--tls] [--tls-days N] [--ca-out FILE] [--no-stdin-watch]
//! ```
//!
//! Prints exactly one line, `portal listening on http://ADDR` (or
//! `https://`), then serves until SIGTERM or SIGINT, or until standard input
//! reaches end of file (so a parent that dies takes the portal with it;
//! `--no-stdin-watch` turns that off, e.g. when started with `< /dev/null`).
//! Faults are switched over HTTP: `GET`/`POST /_faults`.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;

use outpost_tests::portal::Portal;
use tokio_util::sync::CancellationToken;

const USAGE: &str = "\
usage: outpost-portal [--listen ADDR] [--tls] [--tls-days N] [--ca-out FILE] [--no-stdin-watch]

  --listen ADDR      address to listen on (default 127.0.0.1:0)
  --tls              serve HTTPS with a certificate made at start
  --tls-days N       days until the certificate expires (default 30; negative:
                     already expired); implies --tls
  --ca-out FILE      in TLS mode, write the CA certificate (PEM) to FILE
  --no-stdin-watch   keep running when standard input closes
";

struct Args {
    listen: SocketAddr,
    tls_days: Option<i64>,
    ca_out: Option<String>,
    stdin_watch: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls_days: None,
        ca_out: None,
        stdin_watch: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let v = value("--listen")?;
                args.listen = v.parse().map_err(|e| format!("--listen {v:?}: {e}"))?;
            }
            "--tls" => {
                args.tls_days.get_or_insert(30);
            }
            "--tls-days" => {
                let v = value("--tls-days")?;
                args.tls_days = Some(v.parse().map_err(|e| format!("--tls-days {v:?}: {e}"))?);
            }
            "--ca-out" => args.ca_out = Some(value("--ca-out")?),
            "--no-stdin-watch" => args.stdin_watch = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(args))
}

/// Cancels `stop` when standard input reaches EOF. A plain thread, not a
/// tokio blocking task, so that a pending read never holds up exit.
fn watch_stdin(stop: CancellationToken) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        stop.cancel();
    });
}

/// Resolves on SIGTERM or SIGINT. Installed before the ready line is
/// printed, so a signal sent right after reading it is never missed.
fn termination() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let portal = Portal::bind(args.listen, args.tls_days).await?;
    let signalled = termination()?;
    if let (Some(path), Some(pem)) = (&args.ca_out, portal.ca_pem()) {
        std::fs::write(path, pem)?;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "portal listening on {}", portal.base_url())?;
        out.flush()?;
    }
    let stop = CancellationToken::new();
    if args.stdin_watch {
        watch_stdin(stop.clone());
    }
    tokio::select! {
        _ = signalled => {}
        _ = stop.cancelled() => {}
    }
    portal.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("outpost-portal: {err}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("outpost-portal: {err:#}");
            ExitCode::FAILURE
        }
    }
}
