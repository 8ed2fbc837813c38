//! The `outpost-agent` command line, as data: the binary parses it and
//! the packaging's man page generator (`packaging/xtask`) renders it with
//! clap_mangen, so `--help` and `man outpost-agent` cannot disagree.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Restore rehearsal: run every check (or a selection) once, or round
    /// after round until all are green; print a table per round and a
    /// summary, and report the rounds to the collector (never into the
    /// result stream or the buffer). Exit 0 green, 1 not green, 2 usage or
    /// config error, 3 green but the collector did not record it.
    Smoke(SmokeArgs),
}

/// `outpost-agent smoke` options.
#[derive(clap::Args, Debug, Clone)]
pub struct SmokeArgs {
    /// Run only checks with this label (all of them when repeated).
    #[arg(long = "select", value_name = "KEY=VALUE", value_parser = crate::smoke::key_value)]
    pub select: Vec<(String, String)>,
    /// Run only this check (repeatable).
    #[arg(long = "check", value_name = "NAME")]
    pub check: Vec<String>,
    /// Label the rehearsal; `rehearsal=NAME` names it (default "smoke").
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = crate::smoke::key_value)]
    pub label: Vec<(String, String)>,
    /// Recovery scenario whose RTO applies (full_platform, single_service,
    /// report_subsystem, or one named in the collector config).
    #[arg(long, value_name = "SCENARIO")]
    pub scenario: Option<String>,
    /// Repeat rounds until one is all ok, or --timeout passes.
    #[arg(long)]
    pub until_green: bool,
    /// Time between round starts with --until-green.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub every: Duration,
    /// Give up after this long with --until-green.
    #[arg(long, value_name = "DURATION", default_value = "4h", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Do not report the rehearsal to the collector.
    #[arg(long)]
    pub no_send: bool,
}
