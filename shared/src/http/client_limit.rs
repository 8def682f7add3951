//! Per-client limits for the local server (on AWS, API Gateway's throttling and WAF rate rules
//! sit in front instead). A token bucket per client and per kind of request: a browser joins
//! once, looks its place up now and then and claims one token, and never meets a limit; a
//! script joining, guessing request ids or claiming in a loop does.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Clients tracked before the table is emptied: a bound against address floods.
const MAX_CLIENTS: usize = 100_000;

/// Who a request comes from, as far as the limits are concerned. Decided in one place
/// ([`ClientKey::of`]): today the connection's peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of a request; `None` without a peer address (in-process tests, Lambda), which
    /// is not limited here.
    pub fn of(request: &Request) -> Option<Self> {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| Self(info.0.ip()))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ClientLimit {
    /// Requests allowed at once.
    pub burst: f64,
    /// Requests per second refilled.
    pub per_second: f64,
}

impl ClientLimit {
    /// Joins (and, as many, token claims): generous for people (a household behind one
    /// address joins a few times), tight for bots.
    pub const JOINS: Self = Self {
        burst: 20.0,
        per_second: 2.0,
    };
    /// Look-ups of one's own place: a page asks for its position once or twice (with a
    /// backoff), scripts polling `/status` follow `next_poll_ms` (a second at least), and many
    /// visitors may share an address (offices, mobile networks).
    pub const LOOKUPS: Self = Self {
        burst: 100.0,
        per_second: 20.0,
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
    // std Mutex: held for one map update per request, never across an `.await`.
    buckets: Arc<Mutex<HashMap<ClientKey, (f64, Instant)>>>,
}

impl ClientLimiter {
    pub fn new(limit: ClientLimit, guards: &'static str) -> Self {
        Self {
            limit,
            guards,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes one token for `client`; `Err(seconds)` until the next one when none is left.
    fn take(&self, client: ClientKey) -> Result<(), u64> {
        let mut buckets = match self.buckets.lock() {
            Ok(buckets) => buckets,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            buckets.clear();
        }
        let now = Instant::now();
        let (tokens, at) = buckets.entry(client).or_insert((self.limit.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.limit.per_second)
            .min(self.limit.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.limit.per_second).ceil() as u64)
        }
    }

    /// Middleware: refuses a client over its limit with `429` and `Retry-After`.
    pub async fn check(self, request: Request, next: Next) -> Response {
        if let Some(client) = ClientKey::of(&request)
            && let Err(wait) = self.take(client)
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
        let a = ClientKey("127.0.0.1".parse().unwrap());
        let b = ClientKey("127.0.0.2".parse().unwrap());
        assert!(limiter.take(a).is_ok());
        assert!(limiter.take(a).is_ok());
        assert_eq!(limiter.take(a), Err(2), "burst spent: one token every 2 s");
        assert!(limiter.take(b).is_ok(), "another client has its own bucket");
    }
}
