//! What a visitor does: join the line, watch its place, claim its token.

use std::net::IpAddr;

use serde::Serialize;

use super::WaitingRoom;
use super::join_guard::Outcome;
use crate::challenge::{self, Demand};
use crate::clients::ClientKey;
use crate::domain::{
    Admission, EnqueueRequest, EventConfig, EventCounters, EventId, EventState, RequestId,
    RequestRecord, SessionStatus, TokenRecord, eta,
};
use crate::error::Error;
use crate::ports::ClaimOutcome;

/// How long an enqueued request may go unassigned before the look-ups call it unknown: far
/// longer than the buffer takes to drain even during a burst.
/// (The page learns it from `/event_state`, to forget no sooner than the room.)
pub(crate) const UNASSIGNED_GRACE_MS: i64 = 15 * 60 * 1000;

/// Why a request has no record yet: `NotAssigned` while the buffer may still hold it;
/// `UnknownRequest` once it cannot, because a reset wiped its line (it was made in an earlier
/// generation: the consumer drops those) or it is older than the grace (lost, or never ours).
/// A newer generation than the counters' means only that they were read from a cache.
fn unplaced(request_id: &RequestId, counters: &EventCounters, now_ms: i64) -> Error {
    let wiped = request_id.generation() < counters.generation;
    let stale = now_ms.abs_diff(request_id.created_at_ms()) > UNASSIGNED_GRACE_MS.unsigned_abs();
    if wiped || stale {
        Error::UnknownRequest
    } else {
        Error::NotAssigned
    }
}

/// A solved join challenge, as a page sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub challenge: String,
    /// The nonce that solves it.
    pub solution: String,
}

/// Answer of `generate_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOutcome {
    pub token: TokenRecord,
    /// Seconds left before the token expires.
    pub expires_in: u64,
    /// The pass for the gate on CloudFront, when the room issues them.
    pub edge_pass: Option<EdgePass>,
}

/// A pass for the gate on CloudFront (see [`crate::gate::edge`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgePass {
    pub value: String,
    /// Seconds left before the pass expires (never after the token).
    pub expires_in: u64,
}

/// A request's standing in line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// In the pre-queue: its place is drawn at the start.
    AwaitingDraw,
    Waiting {
        place: u64,
    },
    /// Let in; it may claim a token until the deadline (ms since the epoch).
    Served {
        place: u64,
        claim_by_ms: i64,
    },
    /// Let in, but the claim window passed.
    Expired {
        place: u64,
    },
    /// Holds a token (whatever its session status).
    Claimed {
        place: u64,
        status: SessionStatus,
    },
}

impl Standing {
    pub fn place(&self) -> Option<u64> {
        match *self {
            Standing::AwaitingDraw => None,
            Standing::Waiting { place }
            | Standing::Served { place, .. }
            | Standing::Expired { place }
            | Standing::Claimed { place, .. } => Some(place),
        }
    }

    /// The `status` number of `/queue_num` (the AWS solution's values, −2 for expired).
    pub fn status_code(&self) -> i32 {
        match *self {
            Standing::Claimed { status, .. } => status.code(),
            Standing::Expired { .. } => SessionStatus::Expired.code(),
            _ => 0,
        }
    }
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
    /// The place in line; `null` while unassigned or awaiting the pre-queue draw.
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
    /// Schedule, for the page's countdowns (ms since the epoch).
    pub opens_at_ms: Option<i64>,
    pub starts_at_ms: Option<i64>,
    pub ends_at_ms: Option<i64>,
    pub now_ms: i64,
}

impl WaitingRoom {
    /// The event's config and generation, if it takes visitors now (the cached config decides:
    /// not before the line opens, not once the event is over). A join's id carries the cached
    /// generation: a join that lands just after a reset, while this process still has the
    /// previous one, counts as made before it (dropped, reported gone, joined again).
    async fn arrival(&self, event_id: &EventId) -> Result<(EventConfig, u64), Error> {
        let config = self.cached_config(event_id).await?;
        let generation = self.cached_generation(event_id).await?;
        match config.state(self.now_ms()) {
            EventState::NotOpen => Err(Error::NotOpen),
            EventState::Closed => Err(Error::Closed),
            EventState::PreQueue | EventState::Open | EventState::Paused => {
                Ok((config, generation))
            }
        }
    }

    /// Puts a visitor in line without a challenge solved (what a join without one does).
    pub async fn enqueue(&self, event_id: &EventId) -> Result<RequestId, Error> {
        self.join(event_id, None, None).await
    }

    /// Puts a visitor in line: one buffer message, no store write. The event is checked
    /// against the in-process config cache. When the event's challenge asks for it (see
    /// [`crate::domain::ChallengeSettings`]), only with `proof` of a solved challenge issued
    /// to `client`; otherwise the answer is [`Error::Challenge`] with one to solve. A solved
    /// challenge joins as the request it names: sent again, it gets that request id back and
    /// never a second place (a request already placed is not sent again; one still in the
    /// buffer is, and the consumer places it once).
    pub async fn join(
        &self,
        event_id: &EventId,
        client: Option<IpAddr>,
        proof: Option<&Proof>,
    ) -> Result<RequestId, Error> {
        let (config, generation) = self.arrival(event_id).await?;
        let now = self.now_ms();
        let client = client.map(ClientKey::of);
        let (pressure, address_joins) = self.guard.record(event_id, client, now);
        let settings = config.challenge;
        let required = settings.required(pressure, address_joins);
        let request_id = if proof.is_none() && !required {
            RequestId::new(now, generation)
        } else {
            let keys = self.tokens()?.keys().await;
            let demand = |refused| {
                self.guard.count(event_id, Outcome::Issued);
                let difficulty = settings.difficulty(pressure, address_joins);
                let issued =
                    challenge::issue(keys.challenge_key(), event_id, client, difficulty, now);
                Error::Challenge(Box::new(Demand {
                    refused,
                    challenge: issued,
                }))
            };
            let Some(proof) = proof else {
                return Err(demand(None));
            };
            let solved = challenge::verify(
                keys.challenge_keys(),
                event_id,
                client,
                &proof.challenge,
                &proof.solution,
                now,
            )
            .map_err(|refused| {
                self.guard.count(event_id, Outcome::Refused);
                demand(Some(refused))
            })?;
            let request_id =
                RequestId::from_challenge(solved.issued_at_ms, generation, solved.request_seed);
            if self
                .store
                .get_request(event_id, &request_id)
                .await?
                .is_some()
            {
                crate::metrics::add("joins_replayed_total", 1);
                return Ok(request_id);
            }
            self.guard.count(event_id, Outcome::Solved);
            request_id
        };
        let request = EnqueueRequest {
            event_id: event_id.clone(),
            request_id,
            entry_time_ms: now,
        };
        self.buffer()?.send(&request).await?;
        crate::metrics::add("enqueued_total", 1);
        tracing::debug!(event_id = %event_id, request_id = %request.request_id, "enqueued");
        Ok(request.request_id)
    }

    /// Skips the line with a bypass or invite code: the visitor is let in at once and claims
    /// its token as any served visitor would.
    pub async fn redeem_code(&self, event_id: &EventId, code: &str) -> Result<RequestId, Error> {
        crate::domain::request::validate_code(code)?;
        let (_, generation) = self.arrival(event_id).await?;
        let now = self.now_ms();
        let request = EnqueueRequest {
            event_id: event_id.clone(),
            request_id: RequestId::new(now, generation),
            entry_time_ms: now,
        };
        match self.store.redeem_code(event_id, code, &request).await? {
            crate::ports::RedeemOutcome::Redeemed => {
                crate::metrics::add("codes_redeemed_total", 1);
                tracing::info!(event_id = %event_id, request_id = %request.request_id, "code redeemed");
                Ok(request.request_id)
            }
            crate::ports::RedeemOutcome::Refused => Err(Error::CodeRefused),
        }
    }

    /// Where a request stands. Whether its place is served is decided by the serving moves,
    /// which only grow: a place no move has reached is never called served. `counter` is a
    /// cached serving counter the caller holds, if any: a place beyond it is waiting without
    /// a look-up.
    async fn standing(
        &self,
        config: &EventConfig,
        request: &RequestRecord,
        counter: Option<u64>,
    ) -> Result<Standing, Error> {
        let now = self.now_ms();
        if let Some(token) = &request.token {
            return Ok(Standing::Claimed {
                place: config.place(request.position),
                status: token.status_at(now),
            });
        }
        if request.bypass {
            // Let in by a code: served from the moment it was redeemed.
            let claim_by_ms = request.entry_time_ms + config.position_expiry_secs as i64 * 1000;
            return Ok(if now >= claim_by_ms {
                Standing::Expired { place: 0 }
            } else {
                Standing::Served {
                    place: 0,
                    claim_by_ms,
                }
            });
        }
        if config.awaits_draw() {
            return Ok(Standing::AwaitingDraw);
        }
        let place = config.place(request.position);
        if counter.is_some_and(|counter| place > counter) {
            return Ok(Standing::Waiting { place });
        }
        let Some(made) = self
            .moves
            .covering(self.store.as_ref(), &config.event_id, place)
            .await?
        else {
            return Ok(Standing::Waiting { place });
        };
        Ok(if now >= made.claim_by_ms {
            Standing::Expired { place }
        } else {
            Standing::Served {
                place,
                claim_by_ms: made.claim_by_ms,
            }
        })
    }

    /// A request's record and standing; `NotAssigned` while the consumer has not reached it,
    /// `UnknownRequest` once it never will (see [`unplaced`]).
    pub async fn locate(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<(RequestRecord, Standing), Error> {
        let view = self.view(event_id).await?;
        let request = self
            .store
            .get_request(event_id, request_id)
            .await?
            .ok_or_else(|| unplaced(request_id, &view.counters, self.now_ms()))?;
        let standing = self
            .standing(&view.config, &request, Some(view.counters.serving_counter))
            .await?;
        Ok((request, standing))
    }

    /// Seconds left for a served visitor to claim its token.
    pub async fn position_expiry(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<u64, Error> {
        match self.locate(event_id, request_id).await?.1 {
            Standing::AwaitingDraw | Standing::Waiting { .. } => Err(Error::NotServed),
            Standing::Served { claim_by_ms, .. } => {
                Ok(((claim_by_ms - self.now_ms()).max(0) as u64).div_ceil(1000))
            }
            Standing::Expired { .. } => Err(Error::PositionExpired),
            // Claimed: the place can no longer expire.
            Standing::Claimed { .. } => Ok(0),
        }
    }

    /// Issues (or re-issues, unchanged) the token set of a served visitor.
    pub async fn generate_token(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<TokenOutcome, Error> {
        let config = self.cached_config(event_id).await?;
        let now = self.now_ms();
        if config.state(now) == EventState::Closed {
            return Err(Error::Closed);
        }
        let request = self
            .store
            .get_request(event_id, request_id)
            .await?
            .ok_or(Error::UnknownRequest)?;
        if let Some(token) = request.token {
            return self.outcome(event_id, request_id, token, now).await;
        }
        // Decided on the serving moves alone: no shared counter is read per claim.
        let claim_by_ms = match self.standing(&config, &request, None).await? {
            Standing::Served { claim_by_ms, .. } => claim_by_ms,
            Standing::Expired { .. } => return Err(Error::PositionExpired),
            // (Claimed cannot happen: the request had no token.)
            Standing::AwaitingDraw | Standing::Waiting { .. } | Standing::Claimed { .. } => {
                return Err(Error::NotServed);
            }
        };
        let place = config.place(request.position);
        let admission = if request.bypass {
            Admission::Bypass
        } else {
            Admission::Line {
                position: request.position,
                claim_by_ms,
            }
        };
        let token = self
            .tokens()?
            .issue(event_id, request_id, place, now, config.token_ttl_secs)
            .await?;
        let token = match self
            .store
            .claim_token(event_id, request_id, admission, &token)
            .await?
        {
            ClaimOutcome::Claimed(token) => {
                crate::metrics::add("tokens_issued_total", 1);
                tracing::info!(event_id = %event_id, request_id = %request_id, place, "token issued");
                token
            }
            ClaimOutcome::Existing(token) => token,
            ClaimOutcome::UnknownRequest => return Err(Error::UnknownRequest),
        };
        self.outcome(event_id, request_id, token, now).await
    }

    /// A claimed token set, if its session is still open, with a fresh edge pass: the pass is
    /// short-lived and signed anew on every claim, so a session ended in the room gets none.
    async fn outcome(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        token: TokenRecord,
        now_ms: i64,
    ) -> Result<TokenOutcome, Error> {
        let left = token.expires_at - now_ms / 1000;
        if token.status != SessionStatus::Active || left <= 0 {
            return Err(Error::SessionEnded);
        }
        let edge_pass = match &self.edge_passes {
            Some(passes) => {
                let keys = self.tokens()?.keys().await;
                let (value, expires_in) =
                    passes.issue(&keys, event_id, request_id, now_ms / 1000, token.expires_at);
                Some(EdgePass { value, expires_in })
            }
            None => None,
        };
        Ok(TokenOutcome {
            token,
            expires_in: left as u64,
            edge_pass,
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
        let now = self.now_ms();
        let schedule = view.config.schedule;
        let mut status = QueueStatus {
            event_id: event_id.clone(),
            request_id: *request_id,
            name: view.config.name.clone(),
            state: view.config.state(now),
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
            admission_rate_per_min: (view.admission_rate * 600.0).round() / 10.0,
            eta_seconds: None,
            next_poll_ms: eta::MIN_POLL_MS,
            target_url: view.config.target_url.clone(),
            opens_at_ms: schedule.prequeue_at_ms,
            starts_at_ms: schedule.start_at_ms,
            ends_at_ms: schedule.end_at_ms,
            now_ms: now,
        };
        let Some(request) = request else {
            // Still in the buffer, or gone for good: then the visitor should join again.
            return match unplaced(request_id, &counters, now) {
                Error::NotAssigned => Ok(status),
                gone => Err(gone),
            };
        };
        let standing = self
            .standing(&view.config, &request, Some(counters.serving_counter))
            .await?;
        status.queue_number = standing.place();
        match standing {
            Standing::AwaitingDraw => {
                // Nothing moves before the start: poll again around it.
                let until_start = schedule
                    .start_at_ms
                    .map_or(0, |at| (at - now).max(0) as u64);
                status.next_poll_ms = until_start.clamp(eta::MIN_POLL_MS, eta::MAX_POLL_MS);
            }
            Standing::Waiting { place } => {
                let ahead = place - counters.serving_counter - 1;
                let eta_seconds = eta::eta_seconds(ahead + 1, view.admission_rate);
                status.ahead = Some(ahead);
                status.eta_seconds = eta_seconds;
                status.next_poll_ms = eta::next_poll_ms(ahead, eta_seconds);
            }
            Standing::Served { claim_by_ms, .. } => {
                status.ahead = Some(0);
                status.served = true;
                status.eta_seconds = Some(0);
                status.expires_in = Some(((claim_by_ms - now).max(0) as u64).div_ceil(1000));
            }
            Standing::Expired { .. } => {
                status.ahead = Some(0);
                status.position_expired = true;
            }
            Standing::Claimed {
                status: session, ..
            } => {
                status.ahead = Some(0);
                status.served = true;
                status.session = Some(session);
            }
        }
        Ok(status)
    }
}
