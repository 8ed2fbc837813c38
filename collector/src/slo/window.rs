//! The evaluation windows and the calendar arithmetic behind them.
//!
//! Burn windows (5m … 3d) are rolling and minute-precise: the current
//! minute and the `N - 1` minutes before it. The 30-day window is the
//! current hour and the 719 hours before it (hour-aligned at its far
//! edge, so it is summed from hour totals). The calendar month starts at
//! 00:00 UTC on the 1st. Pure, no I/O.

use crate::slo::buckets::minute_of;

/// One evaluation window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    M5,
    M30,
    H1,
    H2,
    H6,
    D1,
    D3,
    Rolling30d,
    CalendarMonth,
}

impl Window {
    pub const ALL: [Window; 9] = [
        Window::M5,
        Window::M30,
        Window::H1,
        Window::H2,
        Window::H6,
        Window::D1,
        Window::D3,
        Window::Rolling30d,
        Window::CalendarMonth,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Window::M5 => "5m",
            Window::M30 => "30m",
            Window::H1 => "1h",
            Window::H2 => "2h",
            Window::H6 => "6h",
            Window::D1 => "1d",
            Window::D3 => "3d",
            Window::Rolling30d => "30d",
            Window::CalendarMonth => "month",
        }
    }

    /// Position in [`Window::ALL`].
    pub fn index(self) -> usize {
        Window::ALL.iter().position(|w| *w == self).unwrap_or(0)
    }

    /// The window's minutes `(from, to)`, inclusive, at `now_ms`.
    pub fn range(self, now_ms: i64) -> (i64, i64) {
        let to = minute_of(now_ms);
        let rolling = |n: i64| (to - n + 1, to);
        match self {
            Window::M5 => rolling(5),
            Window::M30 => rolling(30),
            Window::H1 => rolling(60),
            Window::H2 => rolling(120),
            Window::H6 => rolling(360),
            Window::D1 => rolling(1_440),
            Window::D3 => rolling(4_320),
            Window::Rolling30d => ((to.div_euclid(60) - 719) * 60, to),
            Window::CalendarMonth => (minute_of(month_start_ms(now_ms)), to),
        }
    }

    /// The window as unix ms `[from, to)` at `now_ms` (to = end of the
    /// current minute).
    pub fn span_ms(self, now_ms: i64) -> (i64, i64) {
        let (a, b) = self.range(now_ms);
        (a * 60_000, (b + 1) * 60_000)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// 00:00 UTC on the first day of the month holding `now_ms`.
pub fn month_start_ms(now_ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(now_ms.div_euclid(86_400_000));
    days_from_civil(y, m, 1) * 86_400_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        for z in [-800_000, -1, 0, 59, 19_782, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        // 2024-03-15T12:00:00Z -> 2024-03-01T00:00:00Z
        assert_eq!(month_start_ms(1_710_504_000_000), 1_709_251_200_000);
    }

    #[test]
    fn windows_cover_the_right_minutes() {
        let now = 1_710_504_000_000 + 30_000; // 12:00:30
        let to = minute_of(now);
        assert_eq!(Window::M5.range(now), (to - 4, to));
        assert_eq!(Window::D3.range(now), (to - 4_319, to));
        let (from, _) = Window::Rolling30d.range(now);
        assert_eq!(from % 60, 0);
        assert_eq!(to - from, 719 * 60);
        assert_eq!(
            Window::CalendarMonth.range(now).0,
            1_709_251_200_000 / 60_000
        );
        assert_eq!(
            Window::M5.span_ms(now).1 - Window::M5.span_ms(now).0,
            300_000
        );
    }
}
