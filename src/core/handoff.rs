//! Hinted handoff pacing (paper §4.6): how fast a node may hand hints back
//! to their owners.
//!
//! Handoff is background work: it must not take the bandwidth or the write
//! throughput that clients need (DESIGN.md §2 "background work"). A
//! [`RateLimiter`] is a token bucket refilled with time given as `now`;
//! the driver asks it before each hint it sends and also caps hints in
//! flight at [`HANDOFF_IN_FLIGHT_MAX`].

use std::time::Duration;

/// Most hints a node hands off per second.
pub const HANDOFF_HINTS_PER_SECOND: u32 = 500;
/// Most hints being handed off at once.
pub const HANDOFF_IN_FLIGHT_MAX: usize = 16;
/// Hints read from the store in one batch.
pub const HANDOFF_BATCH: usize = 64;
/// How often the handoff task looks for hints to deliver when idle.
pub const HANDOFF_IDLE_INTERVAL: Duration = Duration::from_millis(250);

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate_per_second: u32,
    burst: u32,
    tokens: f64,
    last: Option<Duration>,
}

impl RateLimiter {
    /// A full bucket.
    pub fn new(rate_per_second: u32, burst: u32) -> Self {
        Self {
            rate_per_second,
            burst: burst.max(1),
            tokens: f64::from(burst.max(1)),
            last: None,
        }
    }

    fn refill(&mut self, now: Duration) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_sub(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * f64::from(self.rate_per_second))
                .min(f64::from(self.burst));
        }
        self.last = Some(now);
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Duration) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until a token is available (zero when one is).
    pub fn wait(&mut self, now: Duration) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 || self.rate_per_second == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 - self.tokens) / f64::from(self.rate_per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let mut r = RateLimiter::new(10, 3);
        let t0 = Duration::ZERO;
        assert!(r.try_take(t0));
        assert!(r.try_take(t0));
        assert!(r.try_take(t0));
        assert!(!r.try_take(t0));
        assert_eq!(r.wait(t0), Duration::from_millis(100));
        assert!(r.try_take(Duration::from_millis(100)));
        assert!(!r.try_take(Duration::from_millis(150)));
        // A long pause refills at most the burst.
        let later = Duration::from_secs(10);
        assert!((0..3).all(|_| r.try_take(later)));
        assert!(!r.try_take(later));
    }
}
