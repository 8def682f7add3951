//! The validate-token authorizer: one decision, served in API Gateway's three authorizer
//! formats (REST `TOKEN`, REST `REQUEST`, HTTP API simple responses) and over plain HTTP
//! (`GET /authorize`, for nginx `auth_request`, Traefik ForwardAuth or Envoy ext_authz).

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequest,
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use serde_json::{Value, json};

use crate::breaker::BreakerState;
use crate::domain::{EventId, RequestId, SessionStatus};
use crate::error::Error;
use crate::service::WaitingRoom;
use crate::token::{Claims, TokenError};

/// Takes the token out of an `Authorization` value, with or without `Bearer `.
pub fn bearer(value: &str) -> &str {
    let value = value.trim();
    match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => value,
    }
}

impl WaitingRoom {
    /// Accepts a token for `event_id` (or for any event when `None`): signature by a known key,
    /// issuer, time window, access use, audience, and not revoked (session still active).
    pub async fn authorize(
        &self,
        authorization: Option<&str>,
        event_id: Option<&EventId>,
    ) -> Result<Claims, Error> {
        let decision = self.decide(authorization, event_id).await;
        match &decision {
            Ok(_) => crate::metrics::add("tokens_validated_total", 1),
            Err(Error::Token(reason)) => {
                crate::metrics::add_labelled("tokens_rejected_total", "reason", reason.code())
            }
            Err(_) => crate::metrics::add("authorizer_unavailable_total", 1),
        }
        decision
    }

    async fn decide(
        &self,
        authorization: Option<&str>,
        event_id: Option<&EventId>,
    ) -> Result<Claims, Error> {
        let token = bearer(authorization.unwrap_or(""));
        let claims = self.tokens()?.verify(token, self.now_ms()).await?;
        if event_id.is_some_and(|event| event.as_str() != claims.aud) {
            return Err(TokenError::WrongEvent.into());
        }
        // Claims are signed by us, but a malformed id can only mean a token we never issued.
        let event = EventId::parse(&claims.aud).map_err(|_| TokenError::Malformed)?;
        let request = RequestId::parse(&claims.sub).map_err(|_| TokenError::Malformed)?;
        // An event that no longer exists (or cannot be read) gets no fail-open leniency.
        let fail_open = match self.cached_config(&event).await {
            Ok(config) => config.authorizer_fail_open,
            Err(Error::UnknownEvent) => return Err(TokenError::Revoked.into()),
            Err(_) => false,
        };
        let breaker = self.revocation_breaker();
        let now = self.now_ms();
        let lookup = if breaker.allow(now) {
            let lookup = self.store().get_request(&event, &request).await;
            breaker.record(lookup.is_ok(), self.now_ms());
            crate::metrics::set_gauge(
                "revocation_breaker_open",
                f64::from(u8::from(
                    breaker.state(self.now_ms()) != BreakerState::Closed,
                )),
            );
            lookup.map_err(Error::from)
        } else {
            Err(Error::Store(crate::ports::StoreError::Unavailable(
                "revocation checks suspended: circuit breaker open".into(),
            )))
        };
        match lookup {
            Ok(record) => {
                let active = record
                    .and_then(|r| r.token)
                    .is_some_and(|t| t.status == SessionStatus::Active);
                if active {
                    Ok(claims)
                } else {
                    Err(TokenError::Revoked.into())
                }
            }
            Err(error) if fail_open => {
                tracing::warn!(%error, event_id = %event, "revocation unchecked: failing open");
                Ok(claims)
            }
            Err(error) => Err(error),
        }
    }
}

/// What a REST authorizer must do with a refused token: API Gateway turns the error message
/// `Unauthorized` into a 401, and a Deny policy into a 403.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerFailure {
    #[error("Unauthorized")]
    Unauthorized,
    #[error("unrecognised authorizer event")]
    UnknownEvent,
    #[error(transparent)]
    Room(Error),
}

/// Answers one API Gateway authorizer invocation, whichever of the three formats it is.
/// `default_event` is the event checked when the request does not name one.
pub async fn handle_authorizer_event(
    room: &WaitingRoom,
    event: Value,
    default_event: Option<&EventId>,
) -> Result<Value, AuthorizerFailure> {
    let version = event.get("version").and_then(Value::as_str);
    let kind = event.get("type").and_then(Value::as_str);
    match (version, kind) {
        (Some("2.0"), _) => {
            let request: ApiGatewayV2CustomAuthorizerV2Request =
                serde_json::from_value(event).map_err(|_| AuthorizerFailure::UnknownEvent)?;
            let token = header(&request.headers, "authorization")
                .or_else(|| request.identity_source.as_ref()?.first().cloned());
            let event_id = event_from(
                request.query_string_parameters.get("event_id"),
                default_event,
            );
            let decision = decide(room, token.as_deref(), event_id.as_ref()).await?;
            let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::<Value>::default();
            response.is_authorized = decision.is_ok();
            response.context = context(&decision);
            to_value(response)
        }
        (_, Some("TOKEN")) => {
            let request: ApiGatewayCustomAuthorizerRequest =
                serde_json::from_value(event).map_err(|_| AuthorizerFailure::UnknownEvent)?;
            let event_id = default_event.cloned();
            let decision = decide(
                room,
                request.authorization_token.as_deref(),
                event_id.as_ref(),
            )
            .await?;
            policy(decision, request.method_arn.unwrap_or_default())
        }
        (_, Some("REQUEST")) => {
            let request: ApiGatewayCustomAuthorizerRequestTypeRequest =
                serde_json::from_value(event).map_err(|_| AuthorizerFailure::UnknownEvent)?;
            let token = header(&request.headers, "authorization");
            let event_id = event_from(
                request
                    .query_string_parameters
                    .first("event_id")
                    .map(str::to_owned)
                    .as_ref(),
                default_event,
            );
            let decision = decide(room, token.as_deref(), event_id.as_ref()).await?;
            policy(decision, request.method_arn.unwrap_or_default())
        }
        _ => Err(AuthorizerFailure::UnknownEvent),
    }
}

fn header(headers: &aws_lambda_events::http::HeaderMap, name: &str) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_owned)
}

fn event_from(query: Option<&String>, default_event: Option<&EventId>) -> Option<EventId> {
    query
        .and_then(|raw| EventId::parse(raw).ok())
        .or_else(|| default_event.cloned())
}

/// The decision; store failures are not a decision and fail the invocation (API Gateway then
/// answers 500, never Allow: fail-closed).
async fn decide(
    room: &WaitingRoom,
    token: Option<&str>,
    event_id: Option<&EventId>,
) -> Result<Result<Claims, TokenError>, AuthorizerFailure> {
    match room.authorize(token, event_id).await {
        Ok(claims) => Ok(Ok(claims)),
        Err(Error::Token(reason)) => Ok(Err(reason)),
        Err(other) => Err(AuthorizerFailure::Room(other)),
    }
}

fn context(decision: &Result<Claims, TokenError>) -> Value {
    match decision {
        Ok(claims) => json!({
            "event_id": claims.aud,
            "request_id": claims.sub,
            "queue_position": claims.queue_position,
        }),
        Err(reason) => json!({ "reason": reason.code() }),
    }
}

/// REST answer: Allow with the visitor's claims as context; Deny (403) for a valid token
/// that may not pass (revoked, other event); the `Unauthorized` error (401) otherwise.
fn policy(
    decision: Result<Claims, TokenError>,
    method_arn: String,
) -> Result<Value, AuthorizerFailure> {
    let effect = match &decision {
        Ok(_) => IamPolicyEffect::Allow,
        Err(TokenError::Revoked | TokenError::WrongEvent) => IamPolicyEffect::Deny,
        Err(_) => return Err(AuthorizerFailure::Unauthorized),
    };
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".into()];
    statement.effect = effect;
    statement.resource = vec![method_arn];
    let mut document = ApiGatewayCustomAuthorizerPolicy::default();
    document.version = Some("2012-10-17".into());
    document.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::<Value>::default();
    response.principal_id = Some(match &decision {
        Ok(claims) => claims.sub.clone(),
        Err(_) => "anonymous".into(),
    });
    response.policy_document = document;
    response.context = context(&decision);
    to_value(response)
}

fn to_value(response: impl serde::Serialize) -> Result<Value, AuthorizerFailure> {
    serde_json::to_value(response)
        .map_err(|e| AuthorizerFailure::Room(Error::Invalid(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn bearer_prefix_is_optional() {
        assert_eq!(bearer("Bearer abc"), "abc");
        assert_eq!(bearer("bearer  abc "), "abc");
        assert_eq!(bearer("abc"), "abc");
        assert_eq!(bearer(""), "");
    }
}
