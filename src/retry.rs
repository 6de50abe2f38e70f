//! Retrying with exponential backoff and full jitter, for the retries
//! promsnap runs itself: Prometheus API calls, Pushgateway pushes, and S3
//! downloads whose body broke off (a range asked for again, a stream resumed).
//!
//! S3 requests themselves are retried by aws-sdk-s3's standard retry strategy
//! instead, configured from the same `--retries`: it already knows which S3
//! errors are transient (throttling, 5xx, timeouts, broken connections). Both
//! wait a random time between zero and an exponentially growing cap, so
//! clients that failed together (a restarted server, a cron fleet) do not all
//! come back at the same moment.
//!
//! [`Retries::run`] is the one retry loop: each caller keeps its own rule of
//! what may be repeated (a failed attempt says [`Decision::Retry`] or
//! [`Decision::Stop`]) and its own words for giving up ([`GaveUp`] says how
//! many attempts were made and whether the budget ran out).

use std::future::Future;
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

/// What a failed attempt allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again, while the budget lasts.
    Retry,
    /// Repeating would not help (or would do harm): give up now.
    Stop,
}

/// Why [`Retries::run`] gave up.
#[derive(Debug)]
pub struct GaveUp<E> {
    /// The last attempt's error.
    pub error: E,
    /// Attempts made by this run, the first included.
    pub attempts: u32,
    /// The last error could have been retried, but the budget was spent
    /// (rather than an attempt saying [`Decision::Stop`]).
    pub out_of_retries: bool,
}

/// A budget of retries and the backoff between them. Every retry spends one,
/// so a `Retries` bounds all the runs it serves: make one per request, or
/// one per download to bound every resume of that download together.
#[derive(Debug, Clone)]
pub struct Retries {
    left: u32,
    backoff: Backoff,
}

impl Retries {
    /// `retries` after the first attempt, with the default backoff.
    pub fn new(retries: u32) -> Self {
        Retries::with_backoff(retries, Backoff::default())
    }

    pub fn with_backoff(retries: u32, backoff: Backoff) -> Self {
        Retries {
            left: retries,
            backoff,
        }
    }

    /// Runs `attempt` until it succeeds, says [`Decision::Stop`], or the
    /// budget is spent, waiting the backoff's next delay before each retry.
    pub async fn run<T, E, F, Fut>(&mut self, mut attempt: F) -> Result<T, GaveUp<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, (E, Decision)>>,
    {
        let mut attempts = 1;
        loop {
            let (error, decision) = match attempt().await {
                Ok(value) => return Ok(value),
                Err(failed) => failed,
            };
            if decision == Decision::Stop || !self.again().await {
                return Err(GaveUp {
                    error,
                    attempts,
                    out_of_retries: decision == Decision::Retry,
                });
            }
            attempts += 1;
        }
    }

    /// Spends one retry, for a caller that keeps its own loop: `true` after
    /// the backoff's next delay, `false` at once when the budget is spent.
    pub async fn again(&mut self) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        tokio::time::sleep(self.backoff.next_delay()).await;
        true
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

    fn quick(retries: u32) -> Retries {
        Retries::with_backoff(retries, Backoff::new(Duration::ZERO, Duration::ZERO))
    }

    /// An attempt that fails with `failures` in turn, then succeeds.
    fn failing(
        failures: Vec<Decision>,
    ) -> impl FnMut() -> std::future::Ready<Result<u32, (String, Decision)>> {
        let mut calls = 0;
        move || {
            calls += 1;
            std::future::ready(match failures.get(calls - 1) {
                Some(&decision) => Err((format!("failure {calls}"), decision)),
                None => Ok(calls as u32),
            })
        }
    }

    #[tokio::test]
    async fn attempts_are_repeated_until_one_succeeds() {
        use Decision::Retry;
        let calls = quick(3).run(failing(vec![Retry, Retry])).await.unwrap();
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn a_stop_gives_up_at_once_and_the_budget_bounds_the_rest() {
        use Decision::{Retry, Stop};
        let gave_up = quick(5).run(failing(vec![Retry, Stop])).await.unwrap_err();
        assert_eq!(gave_up.error, "failure 2");
        assert_eq!(gave_up.attempts, 2);
        assert!(!gave_up.out_of_retries);

        let gave_up = quick(2).run(failing(vec![Retry; 9])).await.unwrap_err();
        assert_eq!(gave_up.error, "failure 3");
        assert_eq!(gave_up.attempts, 3);
        assert!(gave_up.out_of_retries);
    }

    #[tokio::test]
    async fn one_budget_is_shared_by_the_runs_it_serves() {
        use Decision::Retry;
        let mut retries = quick(2);
        assert_eq!(retries.run(failing(vec![Retry])).await.unwrap(), 2);
        // One retry left: the second failure of this run is the last.
        let gave_up = retries.run(failing(vec![Retry; 9])).await.unwrap_err();
        assert_eq!(gave_up.attempts, 2);
        assert!(gave_up.out_of_retries);
        assert!(!retries.again().await, "the budget is spent");
        let mut retries = quick(1);
        assert!(retries.again().await);
        assert!(!retries.again().await);
    }
}
