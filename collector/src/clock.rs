//! Injectable wall-clock time for the collector's evaluation (SLO windows,
//! escalation durations, incident timers, maintenance windows).
//!
//! The evaluation never calls `SystemTime::now()` itself: it asks a
//! [`Clock`]. Production uses [`SystemClock`]; tests and the benchmark use
//! [`FakeClock`], which only moves when told, so thirty days of history
//! run in seconds and every timer is deterministic.
//!
//! Times are unix milliseconds (`i64`), like every timestamp the
//! collector stores.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of "now", in unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock that moves only when told. Clones share one time.
#[derive(Debug, Clone, Default)]
pub struct FakeClock {
    now: Arc<AtomicI64>,
}

impl FakeClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: i64) -> FakeClock {
        FakeClock {
            now: Arc::new(AtomicI64::new(now_ms)),
        }
    }

    /// Sets the time.
    pub fn set(&self, now_ms: i64) {
        self.now.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// A shared clock as the tasks hold it.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_told_and_clones_share_it() {
        let c = FakeClock::new(1_000);
        let d = c.clone();
        assert_eq!(c.now_ms(), 1_000);
        d.advance(500);
        assert_eq!(c.now_ms(), 1_500);
        c.set(7);
        assert_eq!(d.now_ms(), 7);
        assert!(SystemClock.now_ms() > 1_600_000_000_000);
    }
}
