//! `xtask`: build helpers for the packages (`packaging/build` calls it).
//!
//! `xtask man DIR` renders `outpost-agent.1` and `outpost-collector.1`
//! from the binaries' clap definitions (`outpost_agent::cli`,
//! `outpost_collector::cli`) with clap_mangen, plus the sections clap does
//! not know (files, signals, exit status, environment). The pages are
//! build output (under `target/`), never checked in, so they cannot drift
//! from `--help`.
//!
//! This crate links both the agent and the collector library; it is a
//! build tool and never shipped, so the rule that the two binaries do not
//! link each other is untouched.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;

mod pages;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    match args {
        [cmd, dir] if cmd == "man" => write_man_pages(Path::new(dir)),
        _ => bail!("usage: xtask man OUT_DIR   (writes outpost-agent.1 and outpost-collector.1)"),
    }
}

/// Writes both man pages into `dir` (created if missing).
pub fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let pages = [
        (
            "outpost-agent.1",
            render(outpost_agent::cli::Cli::command(), pages::AGENT_EXTRA)?,
        ),
        (
            "outpost-collector.1",
            render(
                outpost_collector::cli::Cli::command(),
                pages::COLLECTOR_EXTRA,
            )?,
        ),
    ];
    for (name, text) in pages {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// clap_mangen's page, with the subcommands described in place (clap_mangen
/// would point at one page per subcommand, which we do not ship) and
/// `extra` roff sections appended.
fn render(cmd: clap::Command, extra: &str) -> Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone())
        .section("1")
        .manual("Outpost");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    out.extend_from_slice(commands_section(&cmd).as_bytes());
    man.render_version_section(&mut out)?;
    out.extend_from_slice(extra.as_bytes());
    Ok(out)
}

/// `.SH COMMANDS`: each subcommand with its arguments and about text.
fn commands_section(cmd: &clap::Command) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('-', "\\-");
    let mut s = String::from(".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
        let args: Vec<String> = sub
            .get_positionals()
            .map(|a| format!(" \\fI{}\\fR", a.get_id().as_str().to_uppercase()))
            .collect();
        s.push_str(&format!(
            ".TP\n\\fB{} {}\\fR{}\n{}\n",
            esc(cmd.get_name()),
            esc(sub.get_name()),
            args.concat(),
            esc(&sub.get_about().map(|a| a.to_string()).unwrap_or_default()),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_name_every_subcommand_and_the_packaged_paths() {
        let dir = tempfile::tempdir().unwrap();
        write_man_pages(dir.path()).unwrap();
        let agent = std::fs::read_to_string(dir.path().join("outpost-agent.1")).unwrap();
        for word in [
            "check\\-config",
            "buffer",
            "probe",
            "/etc/outpost/agent.toml",
            "SIGHUP",
        ] {
            assert!(agent.contains(word), "agent page lacks {word:?}:\n{agent}");
        }
        let collector = std::fs::read_to_string(dir.path().join("outpost-collector.1")).unwrap();
        for word in [
            "\\-\\-grpc\\-listen",
            "\\-\\-data\\-dir",
            "/var/lib/outpost\\-collector",
        ] {
            assert!(
                collector.contains(word),
                "collector page lacks {word:?}:\n{collector}"
            );
        }
    }
}
