//! Per-client limits on joining the line, for the local server (on AWS, API Gateway's
//! throttling and WAF rate rules sit in front instead). A token bucket per client address:
//! a browser that joins once and polls is never near it; a script joining in a loop is.

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

#[derive(Debug, Clone, Copy)]
pub struct ClientLimit {
    /// Joins allowed at once.
    pub burst: f64,
    /// Joins per second refilled.
    pub per_second: f64,
}

impl Default for ClientLimit {
    /// Generous for people (a household behind one address joins a few times), tight for bots.
    fn default() -> Self {
        Self {
            burst: 20.0,
            per_second: 2.0,
        }
    }
}

#[derive(Clone)]
pub struct ClientLimiter {
    limit: ClientLimit,
    // std Mutex: held for one map update per request, never across an `.await`.
    buckets: Arc<Mutex<HashMap<IpAddr, (f64, Instant)>>>,
}

impl ClientLimiter {
    pub fn new(limit: ClientLimit) -> Self {
        Self {
            limit,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes one token for `client`; `Err(seconds)` until the next one when none is left.
    fn take(&self, client: IpAddr) -> Result<(), u64> {
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

    /// Middleware: refuses a client over its limit with `429` and `Retry-After`. Requests
    /// without a peer address (in-process tests, Lambda) are not limited here.
    pub async fn check(self, request: Request, next: Next) -> Response {
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        if let Some(client) = client
            && let Err(wait) = self.take(client)
        {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many joins from this address, retry shortly",
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
        let limiter = ClientLimiter::new(ClientLimit {
            burst: 2.0,
            per_second: 0.5,
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(limiter.take(a).is_ok());
        assert!(limiter.take(a).is_ok());
        assert_eq!(limiter.take(a), Err(2), "burst spent: one token every 2 s");
        assert!(limiter.take(b).is_ok(), "another client has its own bucket");
    }
}
