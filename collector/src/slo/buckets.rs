//! Minute buckets of one (objective, site): how many results of each class
//! were *produced* in each minute, so that any window's SLI is a sum of
//! buckets and a 30-day evaluation never rescans raw results.
//!
//! Layout: one [`HourBlock`] per hour holding the hour's sum and, for hours
//! within [`MINUTE_HORIZON_HOURS`] of now, the 60 minute buckets. Older hours
//! keep only their sum in memory (the store keeps their minutes); a window
//! is summed from minute buckets at its ragged edges and hour sums between,
//! so a 30-day sum reads at most ~840 numbers.
//!
//! Invariants: an hour's `sum` always equals the sum of its minutes (when
//! present); counts saturate (a minute holds at most `u16::MAX` per class,
//! overflow is counted, never wrapped); a result lands in the minute it was
//! produced (`started_unix_ms`), however late it arrives. Pure, no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// Hours back from now for which minute detail is kept in memory: the
/// longest minute-precise window (3 days) plus a margin.
pub const MINUTE_HORIZON_HOURS: i64 = 4 * 24;

/// The minute (since the epoch) of a unix-ms time.
pub fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS)
}

/// The hour (since the epoch) of a minute.
pub fn hour_of(minute: i64) -> i64 {
    minute.div_euclid(60)
}

/// What a bucket counts. `bad_live` is the part of `bad` that arrived on
/// time (alerting looks only at it: late data never pages for the past);
/// `maintenance` counts runs inside a maintenance window (excluded from the
/// SLI, still "arrived" for completeness).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub good: u32,
    pub bad: u32,
    pub excluded: u32,
    pub bad_live: u32,
    pub maintenance: u32,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.good = self.good.saturating_add(o.good);
        self.bad = self.bad.saturating_add(o.bad);
        self.excluded = self.excluded.saturating_add(o.excluded);
        self.bad_live = self.bad_live.saturating_add(o.bad_live);
        self.maintenance = self.maintenance.saturating_add(o.maintenance);
    }

    /// Events that count for the SLI.
    pub fn valid(&self) -> u64 {
        u64::from(self.good) + u64::from(self.bad)
    }

    /// Every run that arrived (for data completeness).
    pub fn arrived(&self) -> u64 {
        self.valid() + u64::from(self.excluded) + u64::from(self.maintenance)
    }

    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// One minute's counts, compact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Minute {
    pub good: u16,
    pub bad: u16,
    pub excluded: u16,
    pub bad_live: u16,
    pub maintenance: u16,
}

impl Minute {
    fn counts(&self) -> Counts {
        Counts {
            good: self.good.into(),
            bad: self.bad.into(),
            excluded: self.excluded.into(),
            bad_live: self.bad_live.into(),
            maintenance: self.maintenance.into(),
        }
    }

    /// Adds `c`; returns the part that did not fit (saturated).
    fn add(&mut self, c: &Counts) -> u64 {
        let mut lost = 0u64;
        let mut put = |slot: &mut u16, v: u32| {
            let room = u32::from(u16::MAX - *slot);
            let take = v.min(room);
            *slot += take as u16;
            lost += u64::from(v - take);
            take
        };
        let _ = put(&mut self.good, c.good);
        let _ = put(&mut self.bad, c.bad);
        let _ = put(&mut self.excluded, c.excluded);
        let _ = put(&mut self.bad_live, c.bad_live);
        let _ = put(&mut self.maintenance, c.maintenance);
        lost
    }
}

/// One hour: its sum, and its minutes while within the horizon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourBlock {
    pub sum: Counts,
    pub minutes: Option<Box<[Minute; 60]>>,
}

/// The persisted form of a block: the non-empty minutes (sparse).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    pub minutes: Vec<(u8, Minute)>,
}

impl BlockRecord {
    /// Rebuilds the block (its sum from its minutes).
    pub fn into_block(self) -> HourBlock {
        let mut minutes = Box::new([Minute::default(); 60]);
        let mut sum = Counts::default();
        for (i, m) in self.minutes {
            if let Some(slot) = minutes.get_mut(usize::from(i)) {
                *slot = m;
                sum.add(&m.counts());
            }
        }
        HourBlock {
            sum,
            minutes: Some(minutes),
        }
    }
}

impl HourBlock {
    /// The persisted form; `None` when minute detail is not in memory.
    pub fn record(&self) -> Option<BlockRecord> {
        let minutes = self.minutes.as_ref()?;
        Some(BlockRecord {
            minutes: minutes
                .iter()
                .enumerate()
                .filter(|(_, m)| **m != Minute::default())
                .map(|(i, m)| (i as u8, *m))
                .collect(),
        })
    }
}

/// The buckets of one (objective, site).
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    hours: BTreeMap<i64, HourBlock>,
    /// Counts that did not fit a minute bucket (saturated).
    pub saturated: u64,
}

impl Buckets {
    /// Whether the block of `hour` is in memory without its minutes (it
    /// must be loaded from the store before a result lands in it).
    pub fn needs_detail(&self, hour: i64) -> bool {
        self.hours.get(&hour).is_some_and(|b| b.minutes.is_none())
    }

    /// Puts a block read from the store (replacing what is in memory).
    pub fn hydrate(&mut self, hour: i64, block: HourBlock) {
        self.hours.insert(hour, block);
    }

    /// Adds `c` to `minute`.
    pub fn add(&mut self, minute: i64, c: &Counts) {
        let block = self.hours.entry(hour_of(minute)).or_default();
        let minutes = block
            .minutes
            .get_or_insert_with(|| Box::new([Minute::default(); 60]));
        let slot = &mut minutes[minute.rem_euclid(60) as usize];
        let lost = slot.add(c);
        self.saturated += lost;
        if lost == 0 {
            block.sum.add(c);
        } else {
            // Recompute so the sum still equals its minutes.
            let mut sum = Counts::default();
            for m in minutes.iter() {
                sum.add(&m.counts());
            }
            block.sum = sum;
        }
    }

    /// The block of `hour`, if any.
    pub fn block(&self, hour: i64) -> Option<&HourBlock> {
        self.hours.get(&hour)
    }

    /// Sum of minutes `from..=to`. Hours without minute detail in memory
    /// count whole when the range touches them (never happens for the
    /// windows the evaluation uses: see [`MINUTE_HORIZON_HOURS`]).
    pub fn sum(&self, from: i64, to: i64) -> Counts {
        let mut out = Counts::default();
        if to < from {
            return out;
        }
        let (h0, h1) = (hour_of(from), hour_of(to));
        for (&h, block) in self.hours.range(h0..=h1) {
            let lo = if h == h0 { from.rem_euclid(60) } else { 0 };
            let hi = if h == h1 { to.rem_euclid(60) } else { 59 };
            match (&block.minutes, lo == 0 && hi == 59) {
                (_, true) | (None, false) => out.add(&block.sum),
                (Some(m), false) => {
                    for x in &m[lo as usize..=hi as usize] {
                        out.add(&x.counts());
                    }
                }
            }
        }
        out
    }

    /// Drops minute detail of hours before `keep_from_hour` (except the
    /// hours `pinned` says are not persisted yet) and whole blocks before
    /// `retain_from_hour`.
    pub fn trim(
        &mut self,
        keep_from_hour: i64,
        retain_from_hour: i64,
        pinned: impl Fn(i64) -> bool,
    ) {
        self.hours = self.hours.split_off(&retain_from_hour);
        for (h, b) in self.hours.range_mut(..keep_from_hour) {
            if !pinned(*h) {
                b.minutes = None;
            }
        }
    }

    /// Hours held.
    pub fn len(&self) -> usize {
        self.hours.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }

    /// Approximate heap bytes (for the benchmark and self-metrics).
    pub fn heap_bytes(&self) -> usize {
        self.hours
            .values()
            .map(|b| {
                64 + std::mem::size_of::<HourBlock>()
                    + b.minutes
                        .as_ref()
                        .map_or(0, |_| std::mem::size_of::<[Minute; 60]>())
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good(n: u32) -> Counts {
        Counts {
            good: n,
            ..Counts::default()
        }
    }

    #[test]
    fn sums_cross_hours_at_minute_precision() {
        let mut b = Buckets::default();
        for m in 0..300 {
            b.add(m, &good(1));
        }
        assert_eq!(b.sum(0, 299).good, 300);
        assert_eq!(b.sum(55, 65).good, 11);
        assert_eq!(b.sum(59, 180).good, 122);
        assert_eq!(b.sum(10, 9).good, 0);
        assert_eq!(b.sum(-100, 0).good, 1);
    }

    #[test]
    fn trimmed_hours_keep_their_sum_and_records_round_trip() {
        let mut b = Buckets::default();
        b.add(61, &good(2));
        b.add(62, &good(3));
        let rec = b.block(1).unwrap().record().unwrap();
        assert_eq!(rec.minutes.len(), 2);
        assert_eq!(rec.clone().into_block(), b.block(1).unwrap().clone());
        b.trim(2, 0, |_| false);
        assert!(b.needs_detail(1));
        assert!(b.block(1).unwrap().record().is_none());
        assert_eq!(b.sum(60, 119).good, 5);
        b.hydrate(1, rec.into_block());
        assert_eq!(b.sum(62, 62).good, 3);
        b.trim(2, 2, |_| false);
        assert!(b.is_empty());
    }

    #[test]
    fn a_full_minute_saturates_and_counts_the_overflow() {
        let mut b = Buckets::default();
        b.add(5, &good(u32::from(u16::MAX) - 1));
        b.add(5, &good(10));
        assert_eq!(b.sum(0, 59).good, u32::from(u16::MAX));
        assert_eq!(b.saturated, 9);
    }
}
