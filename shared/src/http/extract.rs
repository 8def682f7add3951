//! Extractors that turn every malformed input into an [`ApiError`] with a JSON body.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::domain::EventId;

/// A JSON body; syntax errors, missing fields and oversized bodies answer 4xx JSON.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Body(value))
    }
}

/// Query string parameters, with the same error shape.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Params(value))
    }
}

/// The `event_id` of a shared read's query string, read in place: these are the reads every
/// waiting page polls, so no deserializer and no copy of the query. Refused as [`Params`]
/// refuses it (missing, repeated or malformed: 400 `invalid_request`).
pub fn event_id(uri: &Uri) -> Result<EventId, ApiError> {
    let refuse = |why: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("Failed to deserialize query string: {why}"),
        )
    };
    let mut found = None;
    for (key, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if key == "event_id" {
            if found.is_some() {
                return Err(refuse("duplicate field `event_id`".into()));
            }
            found = Some(value);
        }
    }
    let raw = found.ok_or_else(|| refuse("missing field `event_id`".into()))?;
    EventId::parse(&raw).map_err(|e| refuse(format!("event_id: {e}")))
}
