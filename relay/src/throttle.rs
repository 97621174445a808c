//! Per-address rate limits, applied to every HTTP request before routing:
//!
//! - failed authentication: a response of 401 (bad, missing or revoked
//!   token, or no valid web session) or a failed invite redemption or web
//!   link (404/410 from `/v1/invites/redeem` or `/web/open`) counts as a failure. After
//!   `max_auth_failures` failures within a minute from one IP address, that
//!   address gets 429 (with `Retry-After`) on every request for
//!   `auth_cooldown`, valid token or not;
//! - connection attempts: at most `max_connect_attempts` WebSocket upgrade
//!   requests (`/` and `/sync`) per minute from one IP address; more get 429.
//!
//! `/healthz` is never limited. Memory is bounded: at most
//! [`MAX_TRACKED`] addresses are tracked; stale entries are pruned first, and
//! if the table is still full new addresses are not tracked (fail open for
//! them rather than grow without bound).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The window failures and attempts are counted in.
const WINDOW: Duration = Duration::from_secs(60);
/// Most addresses tracked at once.
pub(crate) const MAX_TRACKED: usize = 100_000;

/// Counters for one address.
#[derive(Debug, Clone, Copy)]
struct Counter {
    window_start: Instant,
    failures: u32,
    attempts: u32,
    blocked_until: Option<Instant>,
}

impl Counter {
    fn new(now: Instant) -> Counter {
        Counter {
            window_start: now,
            failures: 0,
            attempts: 0,
            blocked_until: None,
        }
    }

    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.window_start) >= WINDOW {
            self.window_start = now;
            self.failures = 0;
            self.attempts = 0;
        }
        if self.blocked_until.is_some_and(|t| now >= t) {
            // A served cooldown earns a fresh allowance.
            self.blocked_until = None;
            self.failures = 0;
        }
    }

    fn stale(&self, now: Instant) -> bool {
        now.duration_since(self.window_start) >= WINDOW
            && self.blocked_until.is_none_or(|t| now >= t)
    }
}

/// The per-address limits and their counters.
#[derive(Debug)]
pub(crate) struct Throttle {
    max_auth_failures: u32,
    auth_cooldown: Duration,
    max_connect_attempts: u32,
    counters: Mutex<HashMap<IpAddr, Counter>>,
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    /// Refuse with 429; retry after this long.
    Refuse(Duration),
}

impl Throttle {
    /// Limits of 0 disable that limit.
    pub(crate) fn new(
        max_auth_failures: u32,
        auth_cooldown: Duration,
        max_connect_attempts: u32,
    ) -> Arc<Throttle> {
        Arc::new(Throttle {
            max_auth_failures,
            auth_cooldown,
            max_connect_attempts,
            counters: Mutex::new(HashMap::new()),
        })
    }

    fn with_counter<T>(&self, ip: IpAddr, now: Instant, f: impl FnOnce(&mut Counter) -> T) -> T {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if !counters.contains_key(&ip) && counters.len() >= MAX_TRACKED {
            counters.retain(|_, c| !c.stale(now));
        }
        if !counters.contains_key(&ip) && counters.len() >= MAX_TRACKED {
            // Full of live entries: do not grow; judge this address afresh.
            return f(&mut Counter::new(now));
        }
        let counter = counters.entry(ip).or_insert_with(|| Counter::new(now));
        counter.roll(now);
        f(counter)
    }

    /// Judge a request from `ip`; `connect` if it is a WebSocket attempt.
    pub(crate) fn check(&self, ip: IpAddr, connect: bool, now: Instant) -> Verdict {
        self.with_counter(ip, now, |c| {
            if let Some(until) = c.blocked_until {
                return Verdict::Refuse(until.duration_since(now));
            }
            if connect && self.max_connect_attempts > 0 {
                if c.attempts >= self.max_connect_attempts {
                    return Verdict::Refuse(
                        WINDOW.saturating_sub(now.duration_since(c.window_start)),
                    );
                }
                c.attempts += 1;
            }
            Verdict::Allow
        })
    }

    /// Record a failed authentication from `ip`.
    pub(crate) fn failed(&self, ip: IpAddr, now: Instant) {
        if self.max_auth_failures == 0 {
            return;
        }
        self.with_counter(ip, now, |c| {
            c.failures = c.failures.saturating_add(1);
            if c.failures >= self.max_auth_failures {
                c.blocked_until = Some(now + self.auth_cooldown);
            }
        });
    }

    /// Addresses currently tracked.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// The middleware: refuse throttled addresses, count failures.
pub(crate) async fn guard(
    State(throttle): State<Arc<Throttle>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if path == "/healthz" {
        return next.run(request).await;
    }
    let Some(ip) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    else {
        return next.run(request).await;
    };
    let connect = path == "/" || path == "/sync";
    if let Verdict::Refuse(wait) = throttle.check(ip, connect, Instant::now()) {
        tracing::warn!(%ip, path = %path, "request refused: rate limited");
        return too_many(wait);
    }
    let response = next.run(request).await;
    let status = response.status();
    let failed = status == StatusCode::UNAUTHORIZED
        || ((path == "/v1/invites/redeem" || path == "/web/open")
            && (status == StatusCode::NOT_FOUND || status == StatusCode::GONE));
    if failed {
        throttle.failed(ip, Instant::now());
    }
    response
}

fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(
            serde_json::json!({ "error": "too many requests from this address; retry later" }),
        ),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn failures_block_for_the_cooldown_then_clear() {
        let t = Throttle::new(3, Duration::from_secs(30), 0);
        let now = Instant::now();
        for _ in 0..2 {
            t.failed(ip(1), now);
        }
        assert_eq!(t.check(ip(1), false, now), Verdict::Allow);
        t.failed(ip(1), now);
        assert!(matches!(t.check(ip(1), false, now), Verdict::Refuse(_)));
        // Other addresses are not affected.
        assert_eq!(t.check(ip(2), true, now), Verdict::Allow);
        let later = now + Duration::from_secs(31);
        assert_eq!(t.check(ip(1), false, later), Verdict::Allow);
        // Failures spread over more than a window never block.
        let t = Throttle::new(3, Duration::from_secs(30), 0);
        for i in 0..10u64 {
            t.failed(ip(1), now + Duration::from_secs(31 * i));
            assert_eq!(
                t.check(ip(1), false, now + Duration::from_secs(31 * i)),
                Verdict::Allow
            );
        }
    }

    #[test]
    fn connection_attempts_per_window() {
        let t = Throttle::new(0, Duration::from_secs(30), 2);
        let now = Instant::now();
        assert_eq!(t.check(ip(1), true, now), Verdict::Allow);
        assert_eq!(t.check(ip(1), true, now), Verdict::Allow);
        assert!(matches!(t.check(ip(1), true, now), Verdict::Refuse(_)));
        // Plain API requests are not connection attempts.
        assert_eq!(t.check(ip(1), false, now), Verdict::Allow);
        assert_eq!(
            t.check(ip(1), true, now + Duration::from_secs(61)),
            Verdict::Allow
        );
    }

    #[test]
    fn table_is_bounded() {
        let t = Throttle::new(5, Duration::from_secs(30), 5);
        let now = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 10) {
            t.failed(IpAddr::from(i.to_be_bytes()), now);
        }
        assert_eq!(t.tracked(), MAX_TRACKED);
        // Once the window has passed, stale entries make room.
        t.failed(ip(1), now + Duration::from_secs(61));
        assert_eq!(t.tracked(), 1);
    }
}
