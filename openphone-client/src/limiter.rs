//! One rate limiter per API key, shared by every client and task in the process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// How many requests may start in any window of time (`requests: 0` means unlimited).
///
/// OpenPhone allows 10 requests per second per API key; the default is exactly that. The
/// limiter admits a request only when fewer than `requests` have started in the last `per`
/// plus a guard band of 2.5% (25 ms a second), so bursts of up to `requests` go out at once
/// and no window of length `per` ever holds more, even when requests reach the server with
/// uneven delays (the first request of a burst also opens the connection, so it arrives
/// late). The long-run rate is 97.5% of the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    pub per: Duration,
}

impl RateLimit {
    /// `requests` per second.
    pub fn per_second(requests: u32) -> Self {
        Self {
            requests,
            per: Duration::from_secs(1),
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::per_second(10)
    }
}

/// A sliding-window limiter: the start times of the last `requests` requests.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    started: Mutex<VecDeque<Instant>>,
}

impl Limiter {
    fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            started: Mutex::new(VecDeque::with_capacity(limit.requests as usize)),
        }
    }

    /// The window the limiter enforces: `per` and its guard band.
    fn window(&self) -> Duration {
        self.limit.per.saturating_add(self.limit.per / 40)
    }

    /// Waits until a request may start, and counts it as started.
    pub(crate) async fn acquire(&self) {
        if self.limit.requests == 0 {
            return;
        }
        let window = self.window();
        loop {
            let wait = {
                let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                while started
                    .front()
                    .is_some_and(|&at| now.duration_since(at) >= window)
                {
                    started.pop_front();
                }
                if started.len() < self.limit.requests as usize {
                    started.push_back(now);
                    return;
                }
                // Full: the oldest start leaves the window first.
                started.front().map_or(Duration::ZERO, |&oldest| {
                    window.saturating_sub(now.duration_since(oldest))
                })
            };
            // Timers have millisecond resolution: a shorter wait could wake on the same tick
            // with the window still full, and spin.
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }
}

/// Limiters by API key digest (the key itself is not kept). Entries are kept for the life of
/// the process, so a client built after every earlier one was dropped still sees the key's
/// recent requests. An entry is a few hundred bytes per key.
static LIMITERS: LazyLock<Mutex<HashMap<[u8; 32], Arc<Limiter>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The process-wide limiter of `api_key`. The first client built for a key sets its limit;
/// later ones share that limiter whatever they ask for (the limit is the key's, not the
/// client's).
pub(crate) fn for_key(api_key: &str, limit: RateLimit) -> Arc<Limiter> {
    let digest: [u8; 32] = Sha256::digest(api_key.as_bytes()).into();
    let mut limiters = LIMITERS.lock().unwrap_or_else(|e| e.into_inner());
    limiters
        .entry(digest)
        .or_insert_with(|| Arc::new(Limiter::new(limit)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_any_window() {
        let limiter = Limiter::new(RateLimit::per_second(10));
        let start = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..35 {
            limiter.acquire().await;
            starts.push(start.elapsed());
        }
        // The first 10 at once, then 10 per window of 1.025 s.
        assert!(starts[..10].iter().all(|at| at.is_zero()));
        let ms = |at: Duration| at.as_millis();
        assert!((1025..=1027).contains(&ms(starts[10])), "{:?}", starts[10]);
        assert!((3075..=3081).contains(&ms(starts[34])), "{:?}", starts[34]);
        for (index, at) in starts.iter().enumerate() {
            let in_window = starts
                .iter()
                .filter(|other| **other >= *at && **other < *at + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 10,
                "{in_window} requests in the second after #{index}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_tasks_share_the_limit() {
        let limiter = Arc::new(Limiter::new(RateLimit::per_second(10)));
        let start = Instant::now();
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire().await;
                    start.elapsed()
                })
            })
            .collect();
        let mut starts = Vec::new();
        for task in tasks {
            starts.push(task.await.unwrap());
        }
        starts.sort();
        assert_eq!(starts[9], Duration::ZERO);
        assert!(
            (1025..=1027).contains(&starts[10].as_millis()),
            "{:?}",
            starts[10]
        );
        assert!(
            (2050..=2054).contains(&starts[29].as_millis()),
            "{:?}",
            starts[29]
        );
    }

    #[test]
    fn the_limiter_outlives_its_clients() {
        let first = for_key("key-outlives-test", RateLimit::per_second(3));
        let address = Arc::as_ptr(&first);
        drop(first);
        let again = for_key("key-outlives-test", RateLimit::per_second(3));
        assert_eq!(Arc::as_ptr(&again), address);
    }

    #[test]
    fn one_limiter_per_key() {
        let a = for_key("key-shared-test", RateLimit::per_second(10));
        let b = for_key("key-shared-test", RateLimit::per_second(99));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(b.limit(), RateLimit::per_second(10));
        let other = for_key("key-other-test", RateLimit::per_second(5));
        assert!(!Arc::ptr_eq(&a, &other));
    }
}
