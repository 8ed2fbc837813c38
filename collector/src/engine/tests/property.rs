//! Property: for random result streams (late, replayed, with gaps,
//! partly beyond retention), every window's counts from the buckets equal
//! the counts recomputed from the raw results — also after trimming,
//! persisting and restoring.

use super::*;

/// xorshift64*: a seeded, dependency-free generator for the property test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn bucket_slis_equal_slis_recomputed_from_raw_results() {
    let objectives = [
        "portal_availability",
        "authentication",
        "report_completion",
        "none",
    ];
    for case in 0..40u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (case + 1).wrapping_mul(0x1000_0001));
        let now = T0 + rng.below(86_400_000) as i64;
        let mut e = Engine::new(EngineConfig::default());
        let n_agents = 1 + rng.below(4) as usize;
        let mut raw: Vec<(String, ResultRecord)> = Vec::new();
        for a in 0..n_agents {
            let agent = format!("agent-{a}");
            let site = format!("site-{}", a % 3);
            let l = labels(&[("site", &site)]);
            // A stream going back up to 40 days (some beyond retention).
            let mut t = now - (rng.below(40 * 1440) as i64 + 1) * MIN;
            let mut seq = 1 + rng.below(1_000);
            let mut batch = Vec::new();
            while t < now {
                let obj = objectives[rng.below(4) as usize];
                let o = Outcome::ALL[rng.below(8) as usize];
                let late = rng.below(5) == 0;
                let delay = if late {
                    3 * MIN + rng.below(3 * 86_400_000) as i64
                } else {
                    rng.below(60_000) as i64
                };
                let r = ResultRecord {
                    seq,
                    check: format!("c{}", rng.below(3)),
                    kind: "page".into(),
                    labels: labels(&[("objective", obj)]),
                    started_unix_ms: t,
                    duration_us: 1_000,
                    phases: Phases::default(),
                    outcome: o,
                    http_status: None,
                    error: String::new(),
                    value: None,
                    confirmation: false,
                    tls_cert_days_left: None,
                    received_unix_ms: t + 1 + delay,
                };
                seq += 1 + rng.below(2); // gaps happen
                batch.push(r.clone());
                raw.push((site.clone(), r));
                if batch.len() > rng.below(50) as usize {
                    // Sometimes a batch is delivered twice (replay).
                    if rng.below(10) == 0 {
                        e.fold(&agent, &l, &batch, now);
                    }
                    e.fold(&agent, &l, &batch, now);
                    batch.clear();
                }
                t += (5_000 + rng.below(20 * MIN as u64)) as i64;
            }
            e.fold(&agent, &l, &batch, now);
        }
        // Through persistence, trimming and restore too.
        e.trim(now);
        let p = e.take_persist();
        let mut e2 = Engine::new(EngineConfig::default());
        for (k, rec) in p.blocks {
            e2.restore_block(&k, rec, now);
        }
        let cutoff_hour = hour_of(minute_of(now - EngineConfig::default().retention_ms));
        for engine in [&e, &e2] {
            for report in engine.reports(now) {
                let Some(o) = Objective::defaults()
                    .into_iter()
                    .find(|o| o.name == report.objective)
                else {
                    continue;
                };
                if matches!(o.source, Source::Acknowledgement { .. }) {
                    continue;
                }
                for w in Window::ALL {
                    let (from, to) = w.range(now);
                    let mut want = Counts::default();
                    for (_, r) in &raw {
                        let m = minute_of(r.started_unix_ms);
                        if m < from
                            || m > to
                            || hour_of(m) < cutoff_hour
                            || !o.selects(&r.kind, &r.labels)
                        {
                            continue;
                        }
                        match o.class(r.outcome).unwrap() {
                            Class::Good => want.good += 1,
                            Class::Excluded => want.excluded += 1,
                            Class::Bad => {
                                want.bad += 1;
                                let finished = r.started_unix_ms + 1;
                                if r.received_unix_ms - finished <= 2 * MIN {
                                    want.bad_live += 1;
                                }
                            }
                        }
                    }
                    let got = report.window(w);
                    assert_eq!(got.counts, want, "case {case} {} {}", o.name, w.name());
                    let raw_sli =
                        (want.valid() > 0).then(|| f64::from(want.good) / want.valid() as f64);
                    assert_eq!(got.sli(), raw_sli);
                }
            }
        }
    }
}
