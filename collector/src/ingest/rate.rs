//! Per-stream rate bound: a token bucket on results per second. A stream
//! over its rate is slowed, not cut: the session waits before reading on,
//! HTTP/2 flow control pushes back to the agent, whose results stay in its
//! buffer. Nothing is dropped; the wait is counted
//! (`outpost_ingest_throttled_seconds_total`).

use std::time::Duration;

/// Tokens are results; `rate` per second, up to `burst` saved up.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
}

impl Bucket {
    pub fn new(rate: u64) -> Self {
        let rate = rate.max(1) as f64;
        Bucket {
            rate,
            burst: rate * 2.0,
            tokens: rate * 2.0,
        }
    }

    /// Adds tokens for `elapsed`, takes `n`, and returns how long to wait
    /// before the batch may be processed (zero when within the rate).
    pub fn take(&mut self, n: usize, elapsed: Duration) -> Duration {
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_rate_no_wait_over_rate_waits_proportionally() {
        let mut b = Bucket::new(1000);
        assert_eq!(
            b.take(2000, Duration::ZERO),
            Duration::ZERO,
            "burst of 2x rate is free"
        );
        let wait = b.take(500, Duration::ZERO);
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        // After waiting it out, steady 1000/s costs nothing more.
        assert_eq!(b.take(1000, Duration::from_millis(1500)), Duration::ZERO);
    }

    #[test]
    fn refill_is_capped_at_the_burst() {
        let mut b = Bucket::new(10);
        b.take(20, Duration::ZERO);
        assert_eq!(b.take(20, Duration::from_secs(3600)), Duration::ZERO);
        assert!(b.take(1, Duration::ZERO) > Duration::ZERO);
    }
}
