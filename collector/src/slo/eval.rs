//! SLI, error budget and burn rate per window, and the multiwindow,
//! multi-burn-rate alerts (Google SRE workbook, the Sloth set for a
//! 30-day period) with Outpost's low-volume guard.
//!
//! * SLI = good / (good + bad) over the window; excluded outcomes and
//!   unknown minutes (no data) count for neither side.
//! * burn rate = (bad / (good + bad)) / (1 - target); budget remaining =
//!   1 - burn rate of the window (meaningful for 30d and month).
//! * completeness = arrived runs / expected runs (expected from each
//!   series' observed interval; see `engine::series`).
//! * An alert pair fires when both windows burn at ≥ its factor **and**
//!   the short window passes the [`Guard`]: at least `min_bad_events` bad
//!   results that arrived on time, from at least
//!   `min(min_bad_sites, sites reporting)` sites.
//!
//! Pure: buckets and expected counts in, a report out.

use crate::slo::buckets::{Buckets, Counts};
use crate::slo::objective::{Guard, Objective};
use crate::slo::window::Window;

/// Page or ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertLevel {
    Ticket,
    Page,
}

impl AlertLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Page => "page",
            AlertLevel::Ticket => "ticket",
        }
    }
}

/// One window pair of the multiwindow alert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnRule {
    pub level: AlertLevel,
    pub long: Window,
    pub short: Window,
    pub factor: f64,
}

/// The Sloth/SRE-workbook set for a 30-day period.
pub const BURN_RULES: [BurnRule; 4] = [
    BurnRule {
        level: AlertLevel::Page,
        long: Window::H1,
        short: Window::M5,
        factor: 14.4,
    },
    BurnRule {
        level: AlertLevel::Page,
        long: Window::H6,
        short: Window::M30,
        factor: 6.0,
    },
    BurnRule {
        level: AlertLevel::Ticket,
        long: Window::D1,
        short: Window::H2,
        factor: 3.0,
    },
    BurnRule {
        level: AlertLevel::Ticket,
        long: Window::D3,
        short: Window::H6,
        factor: 1.0,
    },
];

/// The figures of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowStats {
    pub window: Window,
    pub counts: Counts,
    /// Runs expected in the window (0 when unknown).
    pub expected: f64,
    /// Sites with any run in the window.
    pub sites_reporting: u32,
    /// Sites with an on-time bad result in the window.
    pub sites_bad_live: u32,
}

impl WindowStats {
    fn empty(window: Window) -> WindowStats {
        WindowStats {
            window,
            counts: Counts::default(),
            expected: 0.0,
            sites_reporting: 0,
            sites_bad_live: 0,
        }
    }

    /// good / (good + bad); `None` without events.
    pub fn sli(&self) -> Option<f64> {
        let n = self.counts.valid();
        (n > 0).then(|| f64::from(self.counts.good) / n as f64)
    }

    /// Error rate over the allowed error rate.
    pub fn burn_rate(&self, target: f64) -> Option<f64> {
        let n = self.counts.valid();
        (n > 0).then(|| (f64::from(self.counts.bad) / n as f64) / (1.0 - target))
    }

    /// 1 - burn rate: the share of the window's error budget left
    /// (negative when overspent).
    pub fn budget_remaining(&self, target: f64) -> Option<f64> {
        self.burn_rate(target).map(|b| 1.0 - b)
    }

    /// Arrived / expected runs, at most 1; `None` when nothing is expected.
    pub fn completeness(&self) -> Option<f64> {
        (self.expected > 0.0).then(|| (self.counts.arrived() as f64 / self.expected).min(1.0))
    }
}

/// One site's input: its buckets and its expected runs per window
/// (indexed like [`Window::ALL`]).
pub struct SiteInput<'a> {
    pub site: &'a str,
    pub buckets: &'a Buckets,
    pub expected: [f64; 9],
}

/// One site's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteReport {
    pub site: String,
    pub windows: Vec<WindowStats>,
}

/// A window pair whose burn rates both reached the factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnAlert {
    pub rule: BurnRule,
    pub burn_long: f64,
    pub burn_short: f64,
    /// The guard held it back (too few bad events or sites): not firing.
    pub guarded: bool,
}

/// Everything about one objective at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveReport {
    pub objective: String,
    pub target: f64,
    /// One per [`Window::ALL`], in that order.
    pub windows: Vec<WindowStats>,
    pub sites: Vec<SiteReport>,
    pub alerts: Vec<BurnAlert>,
}

impl ObjectiveReport {
    pub fn window(&self, w: Window) -> &WindowStats {
        &self.windows[w.index()]
    }

    /// The highest alert level firing (not guarded).
    pub fn firing(&self) -> Option<AlertLevel> {
        self.alerts
            .iter()
            .filter(|a| !a.guarded)
            .map(|a| a.rule.level)
            .max()
    }
}

/// Evaluates a results objective over its sites at `now_ms`.
pub fn evaluate(objective: &Objective, sites: &[SiteInput<'_>], now_ms: i64) -> ObjectiveReport {
    let mut windows: Vec<WindowStats> =
        Window::ALL.iter().map(|w| WindowStats::empty(*w)).collect();
    let mut site_reports = Vec::with_capacity(sites.len());
    for s in sites {
        let mut per = Vec::with_capacity(Window::ALL.len());
        for (i, w) in Window::ALL.iter().enumerate() {
            let (from, to) = w.range(now_ms);
            let counts = s.buckets.sum(from, to);
            let stats = WindowStats {
                window: *w,
                counts,
                expected: s.expected[i],
                sites_reporting: u32::from(counts.arrived() > 0),
                sites_bad_live: u32::from(counts.bad_live > 0),
            };
            let agg = &mut windows[i];
            agg.counts.add(&stats.counts);
            agg.expected += stats.expected;
            agg.sites_reporting += stats.sites_reporting;
            agg.sites_bad_live += stats.sites_bad_live;
            per.push(stats);
        }
        site_reports.push(SiteReport {
            site: s.site.to_string(),
            windows: per,
        });
    }
    let alerts = if objective.alert {
        burn_alerts(&windows, objective.target, &objective.guard)
    } else {
        Vec::new()
    };
    ObjectiveReport {
        objective: objective.name.clone(),
        target: objective.target,
        windows,
        sites: site_reports,
        alerts,
    }
}

/// Evaluates from per-window counts computed elsewhere (the
/// acknowledgement objective counts incidents, not results).
pub fn from_counts(objective: &Objective, counts: [Counts; 9]) -> ObjectiveReport {
    let windows = Window::ALL
        .iter()
        .zip(counts)
        .map(|(w, counts)| WindowStats {
            counts,
            ..WindowStats::empty(*w)
        })
        .collect();
    ObjectiveReport {
        objective: objective.name.clone(),
        target: objective.target,
        windows,
        sites: Vec::new(),
        alerts: Vec::new(),
    }
}

/// The window pairs whose burn rates both reach their factor.
pub fn burn_alerts(windows: &[WindowStats], target: f64, guard: &Guard) -> Vec<BurnAlert> {
    let mut out = Vec::new();
    for rule in BURN_RULES {
        let long = &windows[rule.long.index()];
        let short = &windows[rule.short.index()];
        let (Some(burn_long), Some(burn_short)) = (long.burn_rate(target), short.burn_rate(target))
        else {
            continue;
        };
        if burn_long < rule.factor || burn_short < rule.factor {
            continue;
        }
        let need_sites = guard.min_bad_sites.min(short.sites_reporting).max(1);
        let guarded =
            short.counts.bad_live < guard.min_bad_events || short.sites_bad_live < need_sites;
        out.push(BurnAlert {
            rule,
            burn_long,
            burn_short,
            guarded,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::buckets::{minute_of, Buckets};

    const T0: i64 = 1_700_000_000_000;

    fn run(b: &mut Buckets, at_ms: i64, good: bool) {
        let c = if good {
            Counts {
                good: 1,
                ..Counts::default()
            }
        } else {
            Counts {
                bad: 1,
                bad_live: 1,
                ..Counts::default()
            }
        };
        b.add(minute_of(at_ms), &c);
    }

    fn auth() -> Objective {
        Objective::defaults().remove(1)
    }

    /// `n` sites probing once a minute for `minutes` minutes ending at
    /// `now`, with `bad(site, minute_ago)` deciding failures.
    fn fleet(n: usize, minutes: i64, now: i64, bad: impl Fn(usize, i64) -> bool) -> Vec<Buckets> {
        (0..n)
            .map(|s| {
                let mut b = Buckets::default();
                for ago in 0..minutes {
                    run(&mut b, now - ago * 60_000, !bad(s, ago));
                }
                b
            })
            .collect()
    }

    fn eval(o: &Objective, sites: &[Buckets], now: i64) -> ObjectiveReport {
        let names: Vec<String> = (0..sites.len()).map(|i| format!("s{i}")).collect();
        let inputs: Vec<SiteInput<'_>> = sites
            .iter()
            .zip(&names)
            .map(|(b, n)| SiteInput {
                site: n,
                buckets: b,
                expected: [0.0; 9],
            })
            .collect();
        evaluate(o, &inputs, now)
    }

    #[test]
    fn sli_burn_and_budget_follow_the_definitions() {
        let now = T0;
        // Bad 0, 100, 200, 300, ... minutes ago: 4 of the 6h window's 360.
        let sites = fleet(1, 600, now, |_, ago| ago % 100 == 0);
        let r = eval(&auth(), &sites, now);
        let h6 = r.window(Window::H6);
        assert_eq!((h6.counts.good, h6.counts.bad), (356, 4));
        assert!((h6.sli().unwrap() - 356.0 / 360.0).abs() < 1e-12);
        let burn = (4.0 / 360.0) / (1.0 - 0.999);
        assert!((h6.burn_rate(0.999).unwrap() - burn).abs() < 1e-9);
        assert!((h6.budget_remaining(0.999).unwrap() - (1.0 - burn)).abs() < 1e-9);
        assert_eq!(r.window(Window::M5).sli(), Some(0.8));
        assert_eq!(r.window(Window::Rolling30d).counts.valid(), 600);
    }

    #[test]
    fn one_transient_failure_does_not_page() {
        // A single agent probing auth (99.9%) once a minute: one failure
        // 2 minutes ago is 20% of the 5m window and 1.7% of the hour —
        // 200x and 16.7x burn, both over 14.4.
        let now = T0;
        let sites = fleet(1, 120, now, |_, ago| ago == 2);
        let r = eval(&auth(), &sites, now);
        let page = r
            .alerts
            .iter()
            .find(|a| a.rule.short == Window::M5)
            .expect("burn reached 14.4x in both windows");
        assert!(page.burn_short > 14.4 && page.burn_long > 14.4);
        assert!(page.guarded, "the guard holds a single bad event");
        assert_eq!(r.firing(), None);
    }

    #[test]
    fn a_real_outage_pages_within_minutes() {
        let now = T0;
        let o = Objective::defaults().remove(0); // portal 99.5%
        let mut paged_at = None;
        for m in 0..10 {
            // Outage began m minutes before now, at both sites.
            let sites = fleet(2, 240, now, |_, ago| ago < m);
            if eval(&o, &sites, now).firing() == Some(AlertLevel::Page) {
                paged_at = Some(m);
                break;
            }
        }
        // 2 sites x 1/min: the hour needs 7.2% bad (>= 9 of 120) -> 5 minutes.
        assert_eq!(paged_at, Some(5));
        // At 99.9% the hour needs 1.44% (2 of 120), the guard 3 bad events
        // from 2 sites -> 2 minutes.
        let paged_at = (0..10).find(|m| {
            let sites = fleet(2, 240, now, |_, ago| ago < *m);
            eval(&auth(), &sites, now).firing() == Some(AlertLevel::Page)
        });
        assert_eq!(paged_at, Some(2));
    }

    #[test]
    fn one_site_alone_failing_is_held_by_the_site_guard() {
        let now = T0;
        let o = Objective::defaults().remove(0);
        let sites = fleet(3, 240, now, |s, ago| s == 0 && ago < 60);
        let r = eval(&o, &sites, now);
        assert!(r.alerts.iter().any(|a| a.guarded));
        assert_eq!(r.firing(), None);
        // The same failure at two of the three sites pages.
        let sites = fleet(3, 240, now, |s, ago| s < 2 && ago < 60);
        assert_eq!(eval(&o, &sites, now).firing(), Some(AlertLevel::Page));
    }

    #[test]
    fn late_bad_results_do_not_page_for_the_past() {
        let now = T0;
        let mut b = Buckets::default();
        for ago in 0..240 {
            let c = if ago < 30 {
                // bad, but arrived late (back-filled)
                Counts {
                    bad: 1,
                    ..Counts::default()
                }
            } else {
                Counts {
                    good: 1,
                    ..Counts::default()
                }
            };
            b.add(minute_of(now - ago * 60_000), &c);
        }
        let r = eval(&auth(), &[b], now);
        assert!(r.window(Window::M5).burn_rate(0.999).unwrap() > 14.4);
        assert_eq!(r.firing(), None);
    }

    #[test]
    fn slow_burn_raises_a_ticket_not_a_page() {
        let now = T0;
        let o = Objective::defaults().remove(0); // 99.5%: 1x = 0.5%
                                                 // 2% errors spread evenly over three days: 4x burn everywhere.
        let sites = fleet(2, 4_400, now, |s, ago| (ago + s as i64 * 25) % 50 == 0);
        let r = eval(&o, &sites, now);
        assert_eq!(r.firing(), Some(AlertLevel::Ticket));
    }

    #[test]
    fn completeness_is_arrived_over_expected() {
        let mut s = WindowStats::empty(Window::H1);
        assert_eq!(s.completeness(), None);
        s.expected = 60.0;
        s.counts.good = 30;
        s.counts.excluded = 15;
        assert_eq!(s.completeness(), Some(0.75));
        s.counts.good = 100;
        assert_eq!(s.completeness(), Some(1.0));
    }
}
