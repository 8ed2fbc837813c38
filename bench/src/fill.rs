//! Synthetic results written through the agent's library API: the same
//! encoding and the same group commit the recorder uses, so the buffer
//! the real agent then opens is indistinguishable from one it filled.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use outpost_agent::buffer::{Buffer, Limits};
use outpost_agent::result::{CheckResult, Outcome, Phases};
use outpost_agent::transport::convert;

/// Results per group commit while filling (default).
pub const GROUP: u64 = 10_000;
/// Distinct check names (a mid-sized agent).
const CHECKS: u64 = 20;

/// What a fill did.
#[derive(Debug, Clone, Copy)]
pub struct Filled {
    pub results: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// One plausible page-check result: every phase timed, labels set, one
/// in fifty a failure with an error text.
pub fn synthetic(seq: u64, started: SystemTime) -> CheckResult {
    let failed = seq.is_multiple_of(50);
    let ms = |v: u64| Some(Duration::from_millis(v));
    CheckResult {
        check: format!("portal-check-{:02}", seq % CHECKS),
        kind: "page",
        labels: BTreeMap::from([
            ("module".to_string(), "portal".to_string()),
            ("objective".to_string(), "portal_availability".to_string()),
            ("tier".to_string(), "gold".to_string()),
        ]),
        started,
        duration: Duration::from_millis(120 + seq % 80),
        phases: Phases {
            dns: ms(2),
            connect: ms(9),
            tls: ms(31),
            first_byte: ms(88),
            total: ms(120 + seq % 80),
        },
        outcome: if failed { Outcome::Failed } else { Outcome::Ok },
        http_status: Some(if failed { 500 } else { 200 }),
        error: if failed {
            "HTTP 500 from https://portal.example/home".to_string()
        } else {
            String::new()
        },
        value: None,
        confirmation: false,
        tls_cert_days_left: Some(42.5),
    }
}

/// Writes `n` synthetic results into the buffer at `path`.
pub async fn fill(path: &Path, n: u64, limits: Limits, group: u64) -> Result<Filled> {
    let (buffer, _) = Buffer::open(path, limits).context("open the buffer")?;
    let t0 = Instant::now();
    let mut first_seq = None;
    let mut last_seq = 0;
    let mut done = 0u64;
    let started = SystemTime::now() - Duration::from_secs(3600);
    while done < n {
        let k = group.max(1).min(n - done);
        let entries: Vec<(u64, i64, Vec<u8>)> = (0..k)
            .map(|i| {
                let seq = buffer.next_seq();
                let r = synthetic(seq, started + Duration::from_millis(done + i));
                (
                    seq,
                    convert::started_unix_ms(&r),
                    convert::encode_result(&r, seq),
                )
            })
            .collect();
        first_seq.get_or_insert(entries[0].0);
        last_seq = entries[entries.len() - 1].0;
        buffer.commit(&entries).await.context("commit a group")?;
        done += k;
    }
    let elapsed = t0.elapsed();
    let stats = buffer.stats();
    Ok(Filled {
        results: n,
        first_seq: first_seq.unwrap_or(0),
        last_seq,
        bytes: stats.bytes,
        elapsed,
    })
}
