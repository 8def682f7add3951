//! Pure types and rules of the waiting room. Nothing here does I/O or knows about AWS.

pub mod challenge;
pub mod counters;
pub mod eta;
pub mod event;
pub mod exits;
pub mod request;
pub mod shuffle;
pub mod strategy;

pub use challenge::{ChallengeCounts, ChallengeMode, ChallengeSettings};
pub use counters::EventCounters;
pub use event::{Appearance, Draw, EventConfig, EventId, EventState, Schedule};
pub use request::{
    Admission, BypassCode, EnqueueRequest, RequestId, RequestRecord, ServingIncrement, SessionEnd,
    SessionStatus, TokenRecord,
};
pub use strategy::Strategy;
