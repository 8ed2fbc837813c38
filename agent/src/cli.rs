//! The `outpost-agent` command line, as data: the binary parses it and
//! the packaging's man page generator (`packaging/xtask`) renders it with
//! clap_mangen, so `--help` and `man outpost-agent` cannot disagree.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "outpost-agent", version, about = "Outpost edge probe agent")]
pub struct Cli {
    /// Config file.
    #[arg(short, long, global = true, default_value = "/etc/outpost/agent.toml")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the agent (the default).
    Run,
    /// Validate the config and exit (0 valid, 2 invalid).
    CheckConfig,
    /// Print the buffer's depth, bytes, oldest unsent age and dropped counts.
    Buffer,
    /// Run one check once and print its result (0 when ok, 1 otherwise).
    Probe {
        /// The check's name.
        name: String,
    },
}
