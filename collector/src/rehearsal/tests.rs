use super::*;

const T0: i64 = 1_780_000_000_000;
const H: i64 = 3_600_000;

fn res(check: &str, outcome: Outcome, ended_ms: i64) -> RoundResult {
    RoundResult {
        check: check.into(),
        kind: "page".into(),
        outcome,
        error: if outcome == Outcome::Ok {
            String::new()
        } else {
            format!("{check} said no")
        },
        ended_ms,
        value: None,
    }
}

fn report(round: u32, results: Vec<RoundResult>) -> Report {
    Report {
        agent: "site-a".into(),
        rehearsal_id: "r1".into(),
        name: "restore".into(),
        scenario: String::new(),
        selector: BTreeMap::new(),
        started_ms: T0,
        round,
        results,
        green_ms: None,
        finished: false,
    }
}

#[test]
fn a_failing_round_then_a_green_round_is_met_with_the_elapsed_time() {
    let cfg = RehearsalConfig::default();
    let mut book = Book::default();
    let r1 = report(
        1,
        vec![
            res("home", Outcome::Ok, T0 + 1_000),
            res("reports", Outcome::Failed, T0 + 2_000),
        ],
    );
    let (a, rec, _) = book.apply(&r1, &cfg, T0 + 3_000);
    assert_eq!(a, Applied::Recorded);
    assert_eq!(
        rec.status(T0 + 3_000, cfg.abandon_after_ms),
        Status::Running
    );
    assert_eq!(rec.scenario, "full_platform");
    assert_eq!(rec.rto_ms, 4 * H);
    let mut r2 = report(
        2,
        vec![
            res("home", Outcome::Ok, T0 + 60_000),
            res("reports", Outcome::Ok, T0 + 90_000),
        ],
    );
    r2.green_ms = Some(T0 + 90_000);
    r2.finished = true;
    let (_, rec, _) = book.apply(&r2, &cfg, T0 + 91_000);
    assert_eq!(rec.elapsed_ms(), Some(90_000));
    assert_eq!(rec.status(T0 + 10 * H, cfg.abandon_after_ms), Status::Met);
    let failed: Vec<&CheckTrail> = rec.failed_on_the_way().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (
            failed[0].check.as_str(),
            failed[0].times_failed,
            failed[0].first_error.as_str()
        ),
        ("reports", 1, "reports said no")
    );
    assert_eq!(failed[0].last_outcome, Outcome::Ok);
    assert_eq!(rec.rounds, 2);
    let v = rec.json(T0 + 10 * H, cfg.abandon_after_ms);
    assert_eq!(v["status"], "met");
    assert_eq!(v["elapsed_seconds"], 90.0);
}

#[test]
fn green_after_the_rto_is_missed_and_a_running_one_past_it_too() {
    let cfg = RehearsalConfig::default();
    let mut book = Book::default();
    let mut r = report(1, vec![res("home", Outcome::Ok, T0 + 5 * H)]);
    r.scenario = "single_service".into();
    r.green_ms = Some(T0 + 2 * H);
    let (_, rec, _) = book.apply(&r, &cfg, T0 + 5 * H);
    assert_eq!(rec.rto_ms, H);
    assert_eq!(rec.status(T0 + 5 * H, cfg.abandon_after_ms), Status::Missed);

    let mut running = report(1, vec![res("home", Outcome::Failed, T0 + 1_000)]);
    running.rehearsal_id = "r2".into();
    running.scenario = "single_service".into();
    let (_, rec, _) = book.apply(&running, &cfg, T0 + 2_000);
    assert_eq!(rec.status(T0 + 30 * 60_000, H * 10), Status::Running);
    assert_eq!(rec.status(T0 + 61 * 60_000, H * 10), Status::Missed);
    // Without a report for abandon_after, it is abandoned.
    assert_eq!(rec.status(T0 + 2_000 + H + 1, H), Status::Abandoned);
    // Finished without green.
    running.round = 2;
    running.finished = true;
    let (_, rec, _) = book.apply(&running, &cfg, T0 + 3_000);
    assert_eq!(rec.status(T0 + 10 * H, H), Status::NotGreen);
}

#[test]
fn a_round_with_every_check_ok_is_green_without_the_agents_word() {
    let cfg = RehearsalConfig::default();
    let mut book = Book::default();
    let r = report(
        1,
        vec![
            res("a", Outcome::Ok, T0 + 4_000),
            res("b", Outcome::Ok, T0 + 7_000),
        ],
    );
    let (_, rec, _) = book.apply(&r, &cfg, T0 + 8_000);
    assert_eq!(rec.green_ms, Some(T0 + 7_000));
    // An empty round is never green.
    let mut e = report(1, vec![]);
    e.rehearsal_id = "empty".into();
    let (_, rec, _) = book.apply(&e, &cfg, T0);
    assert_eq!(rec.green_ms, None);
}

#[test]
fn reports_are_idempotent_per_round() {
    let cfg = RehearsalConfig::default();
    let mut book = Book::default();
    let r1 = report(1, vec![res("x", Outcome::Failed, T0 + 1)]);
    let r2 = report(2, vec![res("x", Outcome::Timeout, T0 + 2)]);
    book.apply(&r1, &cfg, T0);
    book.apply(&r2, &cfg, T0);
    let (a, rec, _) = book.apply(&r2, &cfg, T0);
    assert_eq!(a, Applied::Replaced);
    assert_eq!((rec.rounds, rec.checks[0].times_failed), (2, 2));
    let (a, rec2, _) = book.apply(&r1, &cfg, T0);
    assert_eq!(a, Applied::Duplicate);
    assert_eq!(rec2, rec);
    assert_eq!(book.duplicates, 1);
    // A retried round that now passes undoes the earlier copy's failure.
    let r2ok = report(2, vec![res("x", Outcome::Ok, T0 + 3)]);
    let (_, rec, _) = book.apply(&r2ok, &cfg, T0);
    assert_eq!(rec.checks[0].times_failed, 1);
    assert_eq!(rec.checks[0].first_failed_round, 1);
}

#[test]
fn unknown_scenarios_fall_back_to_the_default_and_say_so() {
    let cfg = RehearsalConfig::default();
    assert_eq!(
        cfg.resolve("report_subsystem"),
        ("report_subsystem".into(), 2 * H, false)
    );
    assert_eq!(cfg.resolve(""), ("full_platform".into(), 4 * H, false));
    assert_eq!(cfg.resolve("moon"), ("full_platform".into(), 4 * H, true));
    let mut book = Book::default();
    let mut r = report(1, vec![]);
    r.scenario = "moon".into();
    let (_, rec, _) = book.apply(&r, &cfg, T0);
    assert!(rec.scenario_unknown());
    let v = rec.json(T0, H);
    assert!(v["scenario_note"].as_str().unwrap().contains("moon"));
}

#[test]
fn the_book_is_bounded_and_counts_evictions() {
    let cfg = RehearsalConfig {
        keep: 3,
        ..RehearsalConfig::default()
    };
    let mut book = Book::default();
    let mut evicted = Vec::new();
    for i in 0..5 {
        let mut r = report(1, vec![]);
        r.rehearsal_id = format!("r{i}");
        let (_, _, e) = book.apply(&r, &cfg, T0 + i);
        evicted.extend(e);
    }
    assert_eq!(book.len(), 3);
    assert_eq!(book.evicted, 2);
    assert_eq!(
        evicted,
        vec![
            ("site-a".to_string(), "r0".to_string()),
            ("site-a".to_string(), "r1".to_string())
        ]
    );
    assert!(book.get("site-a", "r4").is_some() && book.get("site-a", "r0").is_none());
    let (b, gone) = Book::restore(book.newest_first(), 2);
    assert_eq!((b.len(), gone.len()), (2, 1));
}

#[test]
fn distinct_checks_are_bounded() {
    let cfg = RehearsalConfig::default();
    let mut book = Book::default();
    let many: Vec<RoundResult> = (0..MAX_CHECKS + 5)
        .map(|i| res(&format!("c{i}"), Outcome::Ok, T0))
        .collect();
    let (_, rec, _) = book.apply(&report(1, many), &cfg, T0);
    assert_eq!(rec.checks.len(), MAX_CHECKS);
    assert_eq!(rec.checks_dropped, 5);
}
