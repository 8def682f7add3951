//! What the journal holds: one record per change, with the inputs of the store call that made
//! it. The working set is a [`MemoryStore`], whose every change is a function of its state and
//! the call's inputs (times included), so calling the same methods again in journal order
//! rebuilds the same state, and the store's rules live in one place.

use serde::{Deserialize, Serialize};

use crate::adapters::MemoryStore;
use crate::domain::{
    Admission, BypassCode, Draw, EnqueueRequest, EventConfig, EventId, RequestId, SessionEnd,
    TokenRecord,
};
use crate::ports::{AuditEntry, Store, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum Record {
    /// A join answered `202`, waiting for its position (the enqueue buffer's message).
    Enqueued {
        request: EnqueueRequest,
    },
    CreateEvent {
        config: EventConfig,
        now_ms: i64,
    },
    UpdateEvent {
        config: EventConfig,
    },
    Draw {
        event_id: EventId,
        draw: Draw,
    },
    SettleExits {
        event_id: EventId,
        now_ms: i64,
    },
    /// A batch the consumer assigned: its requests leave the enqueue buffer.
    AssignPositions {
        event_id: EventId,
        requests: Vec<EnqueueRequest>,
        now_ms: i64,
    },
    AdvanceServing {
        event_id: EventId,
        from: Option<u64>,
        by: u64,
        now_ms: i64,
    },
    ClaimToken {
        event_id: EventId,
        request_id: RequestId,
        admission: Admission,
        token: TokenRecord,
    },
    EndSession {
        event_id: EventId,
        request_id: RequestId,
        end: SessionEnd,
        now_ms: i64,
    },
    PutCodes {
        event_id: EventId,
        codes: Vec<BypassCode>,
    },
    RedeemCode {
        event_id: EventId,
        code: String,
        request: EnqueueRequest,
    },
    ResetEvent {
        event_id: EventId,
        now_ms: i64,
    },
    AppendAudit {
        entry: AuditEntry,
    },
}

impl Record {
    /// Makes the change again on `memory`. Outcomes are not checked: the same calls on the
    /// same state give the same ones as when they were made.
    pub(super) async fn replay(self, memory: &MemoryStore) -> Result<(), StoreError> {
        match self {
            Record::Enqueued { .. } => {}
            Record::CreateEvent { config, now_ms } => {
                memory.create_event(&config, now_ms).await?;
            }
            Record::UpdateEvent { config } => {
                memory.update_event(&config).await?;
            }
            Record::Draw { event_id, draw } => {
                memory.record_draw(&event_id, &draw).await?;
            }
            Record::SettleExits { event_id, now_ms } => {
                memory.settle_exits(&event_id, now_ms).await?;
            }
            Record::AssignPositions {
                event_id,
                requests,
                now_ms,
            } => {
                memory
                    .assign_positions(&event_id, &requests, now_ms)
                    .await?;
            }
            Record::AdvanceServing {
                event_id,
                from,
                by,
                now_ms,
            } => {
                memory.advance_serving(&event_id, from, by, now_ms).await?;
            }
            Record::ClaimToken {
                event_id,
                request_id,
                admission,
                token,
            } => {
                memory
                    .claim_token(&event_id, &request_id, admission, &token)
                    .await?;
            }
            Record::EndSession {
                event_id,
                request_id,
                end,
                now_ms,
            } => {
                memory
                    .end_session(&event_id, &request_id, end, now_ms)
                    .await?;
            }
            Record::PutCodes { event_id, codes } => {
                memory.put_codes(&event_id, &codes).await?;
            }
            Record::RedeemCode {
                event_id,
                code,
                request,
            } => {
                memory.redeem_code(&event_id, &code, &request).await?;
            }
            Record::ResetEvent { event_id, now_ms } => {
                memory.reset_event(&event_id, now_ms).await?;
            }
            Record::AppendAudit { entry } => memory.append_audit(&entry).await?,
        }
        Ok(())
    }
}
