//! Per-client limits for the local server (on AWS, API Gateway's throttling and WAF rate rules
//! sit in front instead). A token bucket per client and per kind of request: a browser joins
//! once, looks its place up now and then and claims one token, and never meets a limit; a
//! script joining, guessing request ids or claiming in a loop does.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::client_address::ClientAddress;
use super::error::ApiError;
use crate::clients::{ClientCounts, ClientKey};

#[derive(Debug, Clone, Copy)]
pub struct ClientLimit {
    /// Requests allowed at once.
    pub burst: f64,
    /// Requests per second refilled.
    pub per_second: f64,
}

impl ClientLimit {
    /// Joins (and, as many, token claims). One address may be thousands of people: a mobile
    /// carrier's NAT, an office, a load test. 20 a second (72,000 an hour) lets such a crowd
    /// in within a minute or two of a sale's opening, the pages retrying after `Retry-After`;
    /// 40 at once cuts a scripted burst from one address short. What makes each place cost
    /// a script is the join challenge (proof of work), not this limit.
    pub const JOINS: Self = Self {
        burst: 40.0,
        per_second: 20.0,
    };
    /// Look-ups of one's own place: a page asks for its position once or twice (with a
    /// backoff), scripts polling `/status` follow `next_poll_ms` (a second at least). The
    /// same crowd behind one address: 1,000 at once, 200 a second.
    pub const LOOKUPS: Self = Self {
        burst: 1000.0,
        per_second: 200.0,
    };
}

/// The local server's limits per client; `None` turns one off (load tests from one address).
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    /// Joining the line (enqueue, code redemption); token claims get buckets of their own of
    /// the same size.
    pub joins: Option<ClientLimit>,
    /// Looking a request up: `/queue_num`, `/queue_pos_expiry`, `/status`.
    pub lookups: Option<ClientLimit>,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            joins: Some(ClientLimit::JOINS),
            lookups: Some(ClientLimit::LOOKUPS),
        }
    }
}

impl ClientLimits {
    /// No limit at all.
    pub const OFF: Self = Self {
        joins: None,
        lookups: None,
    };
}

#[derive(Clone)]
pub struct ClientLimiter {
    limit: ClientLimit,
    /// What the limit guards, for the `429`'s message ("joins", "look-ups"...).
    guards: &'static str,
    // std Mutex: held for one table update per request, never across an `.await`. The count
    // of a client is what it spent of its burst, refilled (faded) at the limit's rate.
    spent: Arc<Mutex<ClientCounts>>,
}

/// Milliseconds on this process's monotonic clock (the limits need no wall time).
fn monotonic_ms() -> i64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as i64
}

impl ClientLimiter {
    pub fn new(limit: ClientLimit, guards: &'static str) -> Self {
        Self {
            limit,
            guards,
            spent: Arc::new(Mutex::new(ClientCounts::new(limit.per_second))),
        }
    }

    /// Takes one request from `client`'s budget; `Err(seconds)` until the next one when it is
    /// spent.
    fn take(&self, client: ClientKey, now_ms: i64) -> Result<(), u64> {
        let mut spent = match self.spent.lock() {
            Ok(spent) => spent,
            Err(poisoned) => poisoned.into_inner(),
        };
        spent
            .add(client, self.limit.burst, now_ms)
            .map(|_| ())
            .map_err(|count| {
                ((count + 1.0 - self.limit.burst) / self.limit.per_second).ceil() as u64
            })
    }

    /// Middleware: refuses a client over its limit with `429` and `Retry-After`.
    pub async fn check(self, request: Request, next: Next) -> Response {
        if let Some(ClientAddress(address)) = request.extensions().get::<ClientAddress>().copied()
            && let Err(wait) = self.take(ClientKey::of(address), monotonic_ms())
        {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many {} from this address, retry shortly", self.guards),
            )
            .into_response();
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, wait.max(1).into());
            return response;
        }
        next.run(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_waits_for_its_refill() {
        let limiter = ClientLimiter::new(
            ClientLimit {
                burst: 2.0,
                per_second: 0.5,
            },
            "joins",
        );
        let a = ClientKey::of("127.0.0.1".parse().unwrap());
        let b = ClientKey::of("127.0.0.2".parse().unwrap());
        assert!(limiter.take(a, 0).is_ok());
        assert!(limiter.take(a, 0).is_ok());
        assert_eq!(
            limiter.take(a, 0),
            Err(2),
            "burst spent: one token every 2 s"
        );
        assert!(
            limiter.take(b, 0).is_ok(),
            "another client has its own bucket"
        );
        assert!(limiter.take(a, 2_000).is_ok(), "refilled");
    }
}
