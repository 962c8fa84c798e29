//! When to retry, as a pure decision: no I/O, unit-tested on its own.

use std::time::{Duration, SystemTime};

/// How failed requests are retried.
///
/// - 429 and 503: always retried (the request was refused, not processed), after the
///   `Retry-After` the API gives (seconds or an HTTP date), else after an exponential backoff
///   with full jitter;
/// - other 5xx, timeouts and dropped connections: retried only for idempotent requests;
/// - a connection that could not be opened: always retried (nothing was sent);
/// - everything else: not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts at most).
    pub max_retries: u32,
    /// The first backoff; each retry doubles it.
    pub base_delay: Duration,
    /// The longest backoff, and the longest `Retry-After` honoured.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }
}

/// What went wrong with one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The API answered with this status.
    Status(u16),
    /// The connection could not be opened: nothing was sent.
    Connect,
    /// The request may have been sent: timeout, reset, incomplete response.
    AfterSend,
    /// The request could not be built or followed (bad URL, redirect loop): not retried.
    Unsendable,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Try again after this long.
    Retry(Duration),
    /// Give up and report the failure.
    Stop,
}

impl RetryPolicy {
    /// Decides after attempt number `attempt` (0 for the first) failed with `failure`.
    /// `retry_after` is the response's `Retry-After`, already parsed; `jitter` is a number in
    /// `[0, 1)` (random in production, fixed in tests).
    pub(crate) fn decide(
        &self,
        attempt: u32,
        idempotent: bool,
        failure: Failure,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Decision {
        if attempt >= self.max_retries {
            return Decision::Stop;
        }
        let retryable = match failure {
            Failure::Status(429 | 503) | Failure::Connect => true,
            Failure::Status(500..=599) | Failure::AfterSend => idempotent,
            Failure::Status(_) | Failure::Unsendable => false,
        };
        if !retryable {
            return Decision::Stop;
        }
        // Asked to wait longer than we would: give up now and report how long, rather than
        // come back early and be refused again.
        if retry_after.is_some_and(|wait| wait > self.max_delay) {
            return Decision::Stop;
        }
        let delay = retry_after.unwrap_or_else(|| {
            // Full jitter: anywhere between zero and the exponential ceiling.
            let ceiling = self
                .base_delay
                .saturating_mul(2u32.saturating_pow(attempt))
                .min(self.max_delay);
            ceiling.mul_f64(jitter.clamp(0.0, 1.0))
        });
        Decision::Retry(delay.min(self.max_delay))
    }
}

/// Parses `Retry-After`: a number of seconds, or an HTTP date (relative to `now`).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_and_unavailability_are_retried_for_every_request() {
        let policy = RetryPolicy::default();
        for status in [429, 503] {
            assert_eq!(
                policy.decide(
                    0,
                    false,
                    Failure::Status(status),
                    Some(Duration::from_secs(2)),
                    0.5
                ),
                Decision::Retry(Duration::from_secs(2))
            );
        }
        assert!(matches!(
            policy.decide(0, false, Failure::Connect, None, 0.5),
            Decision::Retry(_)
        ));
    }

    #[test]
    fn other_server_errors_only_for_idempotent_requests() {
        let policy = RetryPolicy::default();
        assert!(matches!(
            policy.decide(0, true, Failure::Status(500), None, 0.5),
            Decision::Retry(_)
        ));
        assert_eq!(
            policy.decide(0, false, Failure::Status(500), None, 0.5),
            Decision::Stop
        );
        assert_eq!(
            policy.decide(0, false, Failure::AfterSend, None, 0.5),
            Decision::Stop
        );
        assert!(matches!(
            policy.decide(0, true, Failure::AfterSend, None, 0.5),
            Decision::Retry(_)
        ));
        for status in [400, 401, 402, 403, 404, 409, 422] {
            assert_eq!(
                policy.decide(0, true, Failure::Status(status), None, 0.5),
                Decision::Stop
            );
        }
    }

    #[test]
    fn backoff_grows_with_full_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        let delay = |attempt, jitter| match policy.decide(
            attempt,
            true,
            Failure::Status(500),
            None,
            jitter,
        ) {
            Decision::Retry(delay) => delay,
            Decision::Stop => panic!("retried"),
        };
        assert_eq!(
            delay(0, 0.999_999),
            Duration::from_millis(500).mul_f64(0.999_999)
        );
        assert_eq!(delay(2, 0.5), Duration::from_millis(1000));
        assert_eq!(delay(0, 0.0), Duration::ZERO);
        let capped = RetryPolicy {
            max_retries: 20,
            ..policy
        };
        assert!(matches!(
            capped.decide(15, true, Failure::Status(500), None, 0.999),
            Decision::Retry(d) if d <= Duration::from_secs(30)
        ));
        assert_eq!(
            policy.decide(4, true, Failure::Status(500), None, 0.5),
            Decision::Stop
        );
        // A Retry-After beyond the longest wait stops the retries (the caller sees it).
        assert_eq!(
            policy.decide(
                0,
                true,
                Failure::Status(429),
                Some(Duration::from_secs(3600)),
                0.5
            ),
            Decision::Stop
        );
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
