//! Benchmark of the evaluation (not a test): 1,000 check series (100
//! sites x 10 checks, one run a minute each) with 30 days of minute
//! buckets, on a fake clock.
//!
//! Prints: the incremental cost of folding one result (in memory, and
//! with the sled write of each group as the evaluator does it), the time
//! of one full evaluation of every objective and rule, and memory.
//!
//!     cargo run --release -p outpost-collector --example slo_bench
//!
//! Goals (issue #5): one full evaluation < 50 ms, incremental < 2 us.

use std::collections::BTreeMap;
use std::time::Instant;

use outpost_collector::engine::{Engine, EngineConfig};
use outpost_collector::model::{Outcome, Phases, ResultRecord};
use outpost_collector::store::Store;
use outpost_collector::store_slo::SloStore;

const SITES: usize = 100;
const DAYS: i64 = 30;
const MIN: i64 = 60_000;
/// 2024-03-31T00:00:00Z: a month boundary a day after the history ends.
const END: i64 = 1_711_843_200_000;

/// (check, kind, labels) of the ten checks every site runs.
fn checks() -> Vec<(String, String, BTreeMap<String, String>)> {
    let l = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut v = Vec::new();
    for m in ["home", "devices", "alerts", "reports"] {
        v.push((
            format!("page-{m}"),
            "page".to_string(),
            l(&[("objective", "portal_availability"), ("module", m)]),
        ));
    }
    v.push((
        "login".into(),
        "login".into(),
        l(&[("objective", "authentication")]),
    ));
    v.push((
        "refresh".into(),
        "login".into(),
        l(&[("objective", "authentication")]),
    ));
    v.push((
        "report-sales".into(),
        "report".into(),
        l(&[("objective", "report_completion"), ("module", "reports")]),
    ));
    v.push((
        "report-usage".into(),
        "report".into(),
        l(&[("objective", "report_completion"), ("module", "reports")]),
    ));
    v.push((
        "telemetry-age".into(),
        "freshness".into(),
        l(&[("module", "telemetry")]),
    ));
    v.push((
        "backup-age".into(),
        "freshness".into(),
        l(&[("purpose", "backup"), ("scenario", "full_platform")]),
    ));
    v
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// xorshift64*, for failures and jitter.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn record(
    seq: u64,
    check: &(String, String, BTreeMap<String, String>),
    at: i64,
    o: Outcome,
) -> ResultRecord {
    ResultRecord {
        seq,
        check: check.0.clone(),
        kind: check.1.clone(),
        labels: check.2.clone(),
        started_unix_ms: at,
        duration_us: 150_000,
        phases: Phases::default(),
        outcome: o,
        http_status: Some(200),
        error: String::new(),
        value: Some(60.0),
        confirmation: false,
        tls_cert_days_left: None,
        received_unix_ms: at + 400,
    }
}

fn main() {
    let checks = checks();
    let series = SITES * checks.len();
    let rss0 = rss_kib();
    let start = END - DAYS * 86_400_000;
    let mut engine = Engine::new(EngineConfig::default());
    let labels: Vec<BTreeMap<String, String>> = (0..SITES)
        .map(|s| BTreeMap::from([("site".to_string(), format!("site-{s:03}"))]))
        .collect();
    let agents: Vec<String> = (0..SITES).map(|s| format!("agent-{s:03}")).collect();
    let mut seq = vec![0u64; SITES];
    let mut rng = Rng(0x1234_5678_9abc_def1);

    // ---- fill: 30 days, one run a minute per series, folded an hour of
    // one agent at a time; the engine evaluates and trims once an hour.
    let mut fold_ns: u128 = 0;
    let mut folded: u64 = 0;
    let mut batch = Vec::with_capacity(60 * checks.len());
    let hours = DAYS * 24;
    for h in 0..hours {
        let hour_start = start + h * 3_600_000;
        for s in 0..SITES {
            batch.clear();
            for m in 0..60 {
                let at = hour_start + m * MIN + (rng.next() % 20_000) as i64;
                for c in &checks {
                    seq[s] += 1;
                    let o = if rng.next() % 1000 < 3 {
                        Outcome::Failed
                    } else {
                        Outcome::Ok
                    };
                    batch.push(record(seq[s], c, at, o));
                }
            }
            let now = hour_start + 3_600_000;
            let t = Instant::now();
            engine.fold(&agents[s], &labels[s], &batch, now);
            fold_ns += t.elapsed().as_nanos();
            folded += batch.len() as u64;
        }
        let now = hour_start + 3_600_000;
        engine.evaluate(now);
        let _ = engine.take_persist();
        engine.trim(now);
    }
    let rss_filled = rss_kib();

    // ---- full evaluation, repeated.
    let now = END;
    let runs = 50;
    let mut times = Vec::with_capacity(runs);
    for k in 0..runs {
        let t = Instant::now();
        let ev = engine.evaluate(now + k as i64 * 10_000);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(ev);
    }
    times.sort_by(f64::total_cmp);
    let reports = engine.reports(now);
    let valid_30d: u64 = reports.iter().map(|r| r.windows[7].counts.valid()).sum();

    // ---- incremental with persistence: one agent's 10 results per group
    // (one run of every check), buckets and marks written to sled after
    // every `per_write` groups as the evaluator does after each drain.
    let dir = std::env::temp_dir().join(format!("outpost-slo-bench-{}", std::process::id()));
    let mut persisted = Vec::new();
    for per_write in [1usize, 100] {
        let r = match Store::open(&dir) {
            Ok(store) => match SloStore::open(&store) {
                Ok(slo) => {
                    let groups = 20_000usize;
                    let t = Instant::now();
                    let mut n = 0u64;
                    let base = now + if per_write == 1 { 0 } else { 86_400_000 };
                    for g in 0..groups {
                        let s = g % SITES;
                        let at = base + (g / SITES) as i64 * MIN;
                        let group: Vec<ResultRecord> = checks
                            .iter()
                            .map(|c| {
                                seq[s] += 1;
                                record(seq[s], c, at, Outcome::Ok)
                            })
                            .collect();
                        engine.fold(&agents[s], &labels[s], &group, at + 500);
                        n += group.len() as u64;
                        if (g + 1) % per_write == 0
                            && slo.save(engine.take_persist_buckets()).is_err()
                        {
                            break;
                        }
                    }
                    Some(t.elapsed().as_nanos() as f64 / n as f64)
                }
                Err(_) => None,
            },
            Err(_) => None,
        };
        persisted.push((per_write, r));
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!("slo_bench: {series} check series ({SITES} sites x {} checks), {DAYS} days of minute buckets", checks.len());
    println!("  results folded:            {folded}");
    println!(
        "  incremental fold (memory): {:.3} us/result",
        fold_ns as f64 / folded as f64 / 1e3
    );
    for (per_write, r) in persisted {
        match r {
            Some(ns) => println!(
                "  incremental fold + sled:   {:.3} us/result (groups of {} results, one atomic batch per {per_write} group(s), no fsync)",
                ns / 1e3,
                checks.len()
            ),
            None => println!("  incremental fold + sled:   (store could not be opened in {})", dir.display()),
        }
    }
    println!(
        "  full evaluation:           median {:.2} ms, p90 {:.2} ms, max {:.2} ms ({runs} runs; {} objectives, {} series, rules, incidents)",
        times[runs / 2],
        times[runs * 9 / 10],
        times[runs - 1],
        engine.objectives().len(),
        engine.series_count()
    );
    println!("  events in the 30-day windows: {valid_30d}");
    println!(
        "  bucket memory (estimate):  {:.1} MiB",
        engine.bucket_bytes() as f64 / 1_048_576.0
    );
    println!(
        "  process RSS:               {:.1} MiB before, {:.1} MiB after the fill",
        rss0 as f64 / 1024.0,
        rss_filled as f64 / 1024.0
    );
}
