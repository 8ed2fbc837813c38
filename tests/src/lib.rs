//! `outpost-tests`: everything that exercises Outpost from outside — a
//! simulated portal to probe ([`portal`]), a process harness that drives
//! the real binaries over real sockets ([`harness`]), a real OpenID
//! provider from npm ([`oidc`]), `outpost-agent probe` runs ([`probe`]),
//! and the demo
//! runner (`src/bin/outpost-demo.rs`). Nothing here is linked into the
//! agent or the collector.

pub mod chaos;
pub mod harness;
pub mod oidc;
pub mod portal;
pub mod probe;
pub mod prom;
