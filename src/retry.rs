//! Exponential backoff with full jitter, for the retry loops promsnap runs
//! itself (the Prometheus API and the Pushgateway).
//!
//! S3 requests are retried by aws-sdk-s3's standard retry strategy instead,
//! configured from the same `--retries`: it already knows which S3 errors are
//! transient (throttling, 5xx, timeouts, broken connections). Both wait a
//! random time between zero and an exponentially growing cap, so clients
//! that failed together (a restarted server, a cron fleet) do not all come
//! back at the same moment.

use std::time::Duration;

/// Retries after the first attempt, unless `--retries` says otherwise.
pub const DEFAULT_RETRIES: u32 = 5;

/// Delays between attempts: uniformly random in `[0, min(max, base * 2^n)]`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            attempt: 0,
        }
    }

    /// The upper bound of the next delay, before jitter.
    pub fn cap(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(20));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// How long to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self.cap();
        self.attempt += 1;
        cap.mul_f64(rand::random::<f64>())
    }
}

impl Default for Backoff {
    /// The same shape as the AWS SDK's standard mode: 1 s doubling to 20 s.
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(20))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap_and_are_jittered() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let caps: Vec<u64> = (0..6)
            .map(|_| {
                let cap = b.cap();
                let d = b.next_delay();
                assert!(d <= cap, "{d:?} > {cap:?}");
                cap.as_millis() as u64
            })
            .collect();
        assert_eq!(caps, [100, 200, 400, 800, 1000, 1000]);
        // Jitter: a hundred delays under the same cap are not all equal.
        let delays: std::collections::HashSet<Duration> = (0..100)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_delay())
            .collect();
        assert!(delays.len() > 50);
    }
}
