//! The library's error type. HTTP status codes are assigned once, in `http::error`.

use crate::ports::{BufferError, StoreError};
use crate::token::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("unknown event")]
    UnknownEvent,
    #[error("event already exists")]
    EventExists,
    #[error("unknown request")]
    UnknownRequest,
    #[error("request id not assigned a position yet")]
    NotAssigned,
    #[error("request id not being served yet")]
    NotServed,
    #[error("queue position has expired")]
    PositionExpired,
    #[error("token corresponding to request id has expired or its session ended")]
    SessionEnded,
    #[error("event is paused")]
    Paused,
    #[error("the waiting room for this event is not open yet")]
    NotOpen,
    #[error("this event is over")]
    Closed,
    #[error("unknown or used-up code")]
    CodeRefused,
    /// A join that needs a solved challenge (boxed: it carries the next challenge).
    #[error(transparent)]
    Challenge(Box<crate::challenge::Demand>),
    #[error("this function has no {0} configured")]
    NotConfigured(&'static str),
    #[error("token signing failed: {0}")]
    Signing(String),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Buffer(#[from] BufferError),
}
