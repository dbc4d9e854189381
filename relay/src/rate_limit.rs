//! Token-bucket rate limits, keyed per device and per client IP address.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The retry time given when a bucket never refills (a zero rate): try again in a minute.
const NO_REFILL_RETRY: Duration = Duration::from_secs(60);

/// Buckets per key: `rate` tokens per second up to `burst`; each frame or request takes one.
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter; a non-positive `burst` disables it.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self { rate: rate.max(0.0), burst, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`; false when its bucket is empty.
    pub fn check(&self, key: &K) -> bool {
        self.take(key).is_ok()
    }

    /// Takes one token for `key`; when its bucket is empty, how long until it holds one again (what
    /// the refusal tells the client to wait).
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        if self.burst <= 0.0 || !self.burst.is_finite() {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: self.burst, last: now });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else if self.rate > 0.0 {
            // Whole milliseconds, rounded up, so a retry at that time finds the token there.
            let ms = ((1.0 - bucket.tokens) / self.rate * 1000.0).ceil();
            Err(Duration::from_millis(ms as u64).min(NO_REFILL_RETRY))
        } else {
            Err(NO_REFILL_RETRY)
        }
    }

    /// Forgets buckets that have refilled completely (they would start full anyway).
    pub fn prune(&self) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * self.rate < self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse() {
        let limiter = RateLimiter::new(0.0, 3.0);
        assert!((0..3).all(|_| limiter.check(&1)));
        assert!(!limiter.check(&1));
        assert!(limiter.check(&2));
        let off = RateLimiter::new(0.0, 0.0);
        assert!((0..100).all(|_| off.check(&1)));
    }

    #[test]
    fn a_refusal_says_when_the_next_token_comes() {
        // 4 tokens a second: an empty bucket holds its next one within 250 ms.
        let limiter = RateLimiter::new(4.0, 1.0);
        assert_eq!(limiter.take(&1), Ok(()));
        let wait = limiter.take(&1).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(250), "{wait:?}");
        std::thread::sleep(wait);
        assert_eq!(limiter.take(&1), Ok(()), "a retry at the time given is taken");
        let never = RateLimiter::new(0.0, 1.0);
        assert!(never.check(&1));
        assert_eq!(never.take(&1), Err(NO_REFILL_RETRY));
        // A slow rate is capped: a client is not told to wait for hours.
        let slow = RateLimiter::new(0.0001, 1.0);
        assert!(slow.check(&1));
        assert_eq!(slow.take(&1), Err(NO_REFILL_RETRY));
    }

    #[test]
    fn prune_drops_full_buckets() {
        let limiter = RateLimiter::new(1e9, 2.0);
        limiter.check(&1);
        std::thread::sleep(std::time::Duration::from_millis(2));
        limiter.prune();
        assert!(limiter.buckets.lock().map(|b| b.is_empty()).unwrap_or(false));
    }
}
