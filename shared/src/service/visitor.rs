//! What a visitor does: join the line, watch its place, claim its token.

use serde::Serialize;

use super::WaitingRoom;
use crate::domain::{
    EnqueueRequest, EventId, EventState, RequestId, RequestRecord, SessionStatus, TokenRecord, eta,
};
use crate::error::Error;
use crate::ports::ClaimOutcome;

/// How long an enqueued request may go unassigned before `/status` calls it unknown: far
/// longer than the buffer takes to drain even during a burst.
const UNASSIGNED_GRACE_MS: i64 = 15 * 60 * 1000;

/// Answer of `generate_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOutcome {
    pub token: TokenRecord,
    /// Seconds left before the token expires.
    pub expires_in: u64,
}

/// One poll of the visitor page: everything it shows, in one cheap request.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    pub event_id: EventId,
    pub request_id: RequestId,
    pub name: String,
    pub state: EventState,
    /// False until the consumer has given the request a position.
    pub assigned: bool,
    pub queue_number: Option<u64>,
    pub serving_counter: u64,
    pub queue_counter: u64,
    pub waiting_num: u64,
    /// Visitors in front of this one.
    pub ahead: Option<u64>,
    /// Allowed in: the page may claim a token now.
    pub served: bool,
    /// Seconds left to claim a token, once served.
    pub expires_in: Option<u64>,
    pub position_expired: bool,
    /// The session status once a token was claimed (`active`, `completed`, ...).
    pub session: Option<SessionStatus>,
    pub admission_rate_per_min: f64,
    pub eta_seconds: Option<u64>,
    /// When to poll again; grows with the distance to the front.
    pub next_poll_ms: u64,
    pub target_url: String,
}

impl WaitingRoom {
    /// Puts a visitor in line: one buffer message, no store write. The event is checked
    /// against the in-process config cache.
    pub async fn enqueue(&self, event_id: &EventId) -> Result<RequestId, Error> {
        self.cached_config(event_id).await?;
        let request = EnqueueRequest {
            event_id: event_id.clone(),
            request_id: RequestId::new(),
            entry_time_ms: self.now_ms(),
        };
        self.buffer.send(&request).await?;
        tracing::debug!(event_id = %event_id, request_id = %request.request_id, "enqueued");
        Ok(request.request_id)
    }

    /// The position of a request; `NotAssigned` while the consumer has not reached it.
    pub async fn queue_number(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<RequestRecord, Error> {
        self.cached_config(event_id).await?;
        self.store
            .get_request(event_id, request_id)
            .await?
            .ok_or(Error::NotAssigned)
    }

    /// Seconds left for a served visitor to claim its token.
    pub async fn position_expiry(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<u64, Error> {
        let view = self.view(event_id).await?;
        let request = self.queue_number(event_id, request_id).await?;
        if request.token.is_some() {
            // Claimed: the position can no longer expire.
            return Ok(0);
        }
        let expiry_ms = view.config.position_expiry_secs as i64 * 1000;
        match self
            .served_at(event_id, request.position, request.entry_time_ms)
            .await?
        {
            None => Err(Error::NotServed),
            Some((inc, served_at)) => {
                let left = served_at + expiry_ms - self.now_ms();
                if inc.swept || request.position_expired || left <= 0 {
                    Err(Error::PositionExpired)
                } else {
                    Ok((left as u64).div_ceil(1000))
                }
            }
        }
    }

    /// Issues (or re-issues, unchanged) the token set of a served visitor.
    pub async fn generate_token(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<TokenOutcome, Error> {
        let config = self.cached_config(event_id).await?;
        let request = self
            .store
            .get_request(event_id, request_id)
            .await?
            .ok_or(Error::UnknownRequest)?;
        let now = self.now_ms();
        if let Some(token) = request.token {
            return Self::existing_token(token, now);
        }
        let Some((_, served_at)) = self
            .served_at(event_id, request.position, request.entry_time_ms)
            .await?
        else {
            return Err(Error::NotServed);
        };
        if request.position_expired || now >= served_at + config.position_expiry_secs as i64 * 1000
        {
            return Err(Error::PositionExpired);
        }
        let token = self.tokens.issue(
            event_id,
            request_id,
            request.position,
            now,
            config.token_ttl_secs,
        )?;
        match self.store.claim_token(event_id, request_id, &token).await? {
            ClaimOutcome::Claimed(token) => {
                tracing::info!(event_id = %event_id, request_id = %request_id, position = request.position, "token issued");
                self.views.invalidate(event_id);
                Self::existing_token(token, now)
            }
            ClaimOutcome::Existing(token) => Self::existing_token(token, now),
            ClaimOutcome::PositionExpired => Err(Error::PositionExpired),
            ClaimOutcome::UnknownRequest => Err(Error::UnknownRequest),
        }
    }

    fn existing_token(token: TokenRecord, now_ms: i64) -> Result<TokenOutcome, Error> {
        let left = token.expires_at - now_ms / 1000;
        if token.status != SessionStatus::Active || left <= 0 {
            return Err(Error::SessionEnded);
        }
        Ok(TokenOutcome {
            token,
            expires_in: left as u64,
        })
    }

    /// Everything the visitor page shows, from the cached counters and one request read.
    pub async fn status(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<QueueStatus, Error> {
        let view = self.view(event_id).await?;
        let request = self.store.get_request(event_id, request_id).await?;
        let counters = view.counters;
        let mut status = QueueStatus {
            event_id: event_id.clone(),
            request_id: *request_id,
            name: view.config.name.clone(),
            state: view.config.state(),
            assigned: request.is_some(),
            queue_number: None,
            serving_counter: counters.serving_counter,
            queue_counter: counters.queue_counter,
            waiting_num: counters.waiting(),
            ahead: None,
            served: false,
            expires_in: None,
            position_expired: false,
            session: None,
            admission_rate_per_min: (view.admission_rate * 60.0 * 10.0).round() / 10.0,
            eta_seconds: None,
            next_poll_ms: eta::MIN_POLL_MS,
            target_url: view.config.target_url.clone(),
        };
        let Some(request) = request else {
            // Made before the last reset, or long enough ago that the consumer must have seen
            // it: the visitor should join again rather than wait forever.
            let forgotten = request_id.created_at_ms().is_none_or(|at| {
                at < counters.reset_at_ms || self.now_ms() - at > UNASSIGNED_GRACE_MS
            });
            return if forgotten {
                Err(Error::UnknownRequest)
            } else {
                Ok(status)
            };
        };
        let ahead = request
            .position
            .saturating_sub(counters.serving_counter + 1);
        let served = request.position <= counters.serving_counter;
        let eta_seconds = if served {
            Some(0)
        } else {
            eta::eta_seconds(ahead + 1, view.admission_rate)
        };
        status.queue_number = Some(request.position);
        status.ahead = Some(if served { 0 } else { ahead });
        status.served = served;
        status.position_expired = request.position_expired;
        status.session = request.token.as_ref().map(|t| t.status);
        status.eta_seconds = eta_seconds;
        status.next_poll_ms = eta::next_poll_ms(if served { 0 } else { ahead }, eta_seconds);
        if served && request.token.is_none() && !request.position_expired {
            match self.position_expiry(event_id, request_id).await {
                Ok(left) => status.expires_in = Some(left),
                Err(Error::PositionExpired) => status.position_expired = true,
                // The cached counter ran ahead of this read: not served yet after all.
                Err(Error::NotServed) => status.served = false,
                Err(e) => return Err(e),
            }
        }
        Ok(status)
    }
}
