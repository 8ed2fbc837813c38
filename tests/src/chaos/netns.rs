//! Kernel-level link faults: a network namespace of the test's own,
//! joined to the host by a veth pair, and nftables rules on the
//! namespace's outgoing traffic (drop: packets vanish; reject: TCP reset).
//!
//! Root only, and needs `ip` (iproute2) and `nft` (nftables):
//! [`NetnsPair::create`] says why it cannot run, and tests skip with that
//! reason printed. Only the namespace's own traffic is filtered; the host's
//! firewall is never touched. Everything is removed on drop (deleting the
//! namespace deletes the veth pair and its rules).

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A namespace plus a veth pair: the host side is [`NetnsPair::host_ip`],
/// the namespace side [`NetnsPair::ns_ip`] (a /30 of 10.201.0.0/16).
pub struct NetnsPair {
    name: String,
    pub host_ip: Ipv4Addr,
    pub ns_ip: Ipv4Addr,
}

fn run(cmd: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("run {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

impl NetnsPair {
    /// Why a namespace cannot be made here, if it cannot.
    pub fn unavailable() -> Option<String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok());
        if uid.as_deref().map(str::trim) != Some("0") {
            return Some("not root".to_string());
        }
        for cmd in ["ip", "nft"] {
            if !have(cmd) {
                return Some(format!(
                    "`{cmd}` missing (scripts/test installs iproute2 and nftables)"
                ));
            }
        }
        None
    }

    /// Creates a namespace and its veth pair.
    pub fn create() -> Result<NetnsPair> {
        if let Some(why) = Self::unavailable() {
            bail!("network namespaces unavailable: {why}");
        }
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = (std::process::id().wrapping_mul(7).wrapping_add(n)) % 16_000;
        let name = format!("outpost-t{id}");
        // A /30 per pair: 10.201.x.y where (x, y) come from id.
        let base = id * 4;
        let (x, y) = ((base / 256) as u8, (base % 256) as u8);
        let host_ip = Ipv4Addr::new(10, 201, x, y + 1);
        let ns_ip = Ipv4Addr::new(10, 201, x, y + 2);
        let (vh, vn) = (format!("oh{id}"), format!("on{id}"));
        // A stale one from a crashed run: remove it first.
        let _ = run("ip", &["netns", "del", &name]);
        let _ = run("ip", &["link", "del", &vh]);
        run("ip", &["netns", "add", &name])?;
        let pair = NetnsPair {
            name,
            host_ip,
            ns_ip,
        };
        let ns = pair.name.as_str();
        run(
            "ip",
            &[
                "link", "add", &vh, "type", "veth", "peer", "name", &vn, "netns", ns,
            ],
        )?;
        run("ip", &["addr", "add", &format!("{host_ip}/30"), "dev", &vh])?;
        run("ip", &["link", "set", &vh, "up"])?;
        let exec = |args: &[&str]| {
            let mut all = vec!["netns", "exec", ns];
            all.extend_from_slice(args);
            run("ip", &all)
        };
        exec(&["ip", "addr", "add", &format!("{ns_ip}/30"), "dev", &vn])?;
        exec(&["ip", "link", "set", &vn, "up"])?;
        exec(&["ip", "link", "set", "lo", "up"])?;
        exec(&["nft", "add", "table", "inet", "outpost"])?;
        exec(&[
            "nft",
            "add chain inet outpost out { type filter hook output priority 0 ; policy accept ; }",
        ])?;
        Ok(pair)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`
    /// execs it: the child's pid is the program's).
    pub fn command(&self, program: &std::path::Path) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    fn nft(&self, rule: &str) -> Result<()> {
        run("ip", &["netns", "exec", &self.name, "nft", rule])
    }

    /// Silently drops the namespace's packets to the host's `port`.
    pub fn drop_to(&self, port: u16) -> Result<()> {
        self.nft(&format!(
            "add rule inet outpost out ip daddr {} tcp dport {port} drop",
            self.host_ip
        ))
    }

    /// Answers the namespace's packets to the host's `port` with a TCP reset.
    pub fn reject_to(&self, port: u16) -> Result<()> {
        self.nft(&format!(
            "add rule inet outpost out ip daddr {} tcp dport {port} reject with tcp reset",
            self.host_ip
        ))
    }

    /// Removes every rule: traffic flows again.
    pub fn clear(&self) -> Result<()> {
        self.nft("flush chain inet outpost out")
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}
