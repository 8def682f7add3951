//! The one place where errors become HTTP answers: `{"error": "...", "code": "..."}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;
use crate::ports::{BufferError, StoreError};
use crate::token::TokenError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for `Retry-After` on 503s.
    pub retry_after: Option<u64>,
    /// One more field of the body: the challenge a refused join is to solve.
    pub detail: Option<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            detail: None,
        }
    }

    pub fn retry(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn unauthorized_admin() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "admin_unauthorized",
            "a valid admin key is required: Authorization: Bearer <key>",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        use StatusCode as S;
        let message = error.to_string();
        match error {
            Error::Invalid(_) => Self::new(S::BAD_REQUEST, "invalid_request", message),
            Error::UnknownEvent => Self::new(S::NOT_FOUND, "unknown_event", message),
            Error::EventExists => Self::new(S::CONFLICT, "event_exists", message),
            Error::UnknownRequest => Self::new(S::NOT_FOUND, "unknown_request", message),
            // 202 for "not yet", as the AWS solution answers: the client polls again.
            Error::NotAssigned => Self::new(S::ACCEPTED, "not_assigned", message),
            Error::NotServed => Self::new(S::ACCEPTED, "not_served", message),
            Error::PositionExpired => Self::new(S::GONE, "position_expired", message),
            Error::SessionEnded => Self::new(S::GONE, "session_ended", message),
            Error::Paused => Self::new(S::CONFLICT, "event_paused", message),
            Error::NotOpen => Self::new(S::CONFLICT, "event_not_open", message),
            Error::Closed => Self::new(S::GONE, "event_closed", message),
            Error::CodeRefused => Self::new(S::FORBIDDEN, "code_refused", message),
            Error::Challenge(demand) => {
                let code = match demand.refused {
                    None => "challenge_required",
                    Some(crate::challenge::Refusal::Expired) => "challenge_expired",
                    Some(_) => "challenge_failed",
                };
                let mut error = Self::new(S::FORBIDDEN, code, message);
                error.detail = Some(("challenge", json!(demand.challenge)));
                error
            }
            Error::Token(reason @ (TokenError::Revoked | TokenError::WrongEvent)) => {
                Self::new(S::FORBIDDEN, reason.code(), message)
            }
            Error::Token(reason) => Self::new(S::UNAUTHORIZED, reason.code(), message),
            Error::NotConfigured(_) => {
                tracing::error!(%message, "route served by a function without what it needs");
                Self::new(S::INTERNAL_SERVER_ERROR, "not_configured", message)
            }
            Error::Signing(_) => {
                tracing::error!(%message, "token signing failed");
                Self::new(
                    S::INTERNAL_SERVER_ERROR,
                    "signing_failed",
                    "token signing failed",
                )
            }
            Error::Store(store) => {
                tracing::error!(error = %store, "store call failed");
                let retry = if matches!(store, StoreError::Throttled) {
                    1
                } else {
                    2
                };
                Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the waiting room is busy, retry shortly",
                )
                .retry(retry)
            }
            Error::Buffer(BufferError::Full) => Self::new(
                S::SERVICE_UNAVAILABLE,
                "queue_full",
                "too many arrivals right now, retry shortly",
            )
            .retry(5),
            Error::Buffer(buffer) => {
                tracing::error!(error = %buffer, "enqueue buffer failed");
                Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "queue_unavailable",
                    "the waiting room is busy, retry shortly",
                )
                .retry(2)
            }
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        Error::Token(error).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        use StatusCode as S;
        match rejection {
            JsonRejection::JsonSyntaxError(_) => Self::new(
                S::BAD_REQUEST,
                "malformed_json",
                "request body is not valid JSON",
            ),
            JsonRejection::JsonDataError(e) => {
                Self::new(S::BAD_REQUEST, "invalid_request", e.body_text())
            }
            JsonRejection::MissingJsonContentType(_) => Self::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(e) if e.status() == S::PAYLOAD_TOO_LARGE => Self::new(
                S::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "request body too large",
            ),
            other => Self::new(S::BAD_REQUEST, "invalid_request", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            rejection.body_text(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        crate::metrics::add_labelled("errors_total", "code", self.code);
        let mut body = json!({ "error": self.message, "code": self.code });
        if let Some((name, value)) = self.detail {
            body[name] = value;
        }
        let body = Json(body);
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
