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
}
