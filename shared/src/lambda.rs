//! What the Lambda binaries share: the non-HTTP entry points as plain async functions over the
//! room (the SQS batch consumer, the scheduled strategy runner), JSON logs, CloudWatch metrics,
//! and the IAM caller API Gateway verified. The binaries in `functions/` only wire these to
//! `lambda_runtime` / `lambda_http`.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use serde::Serialize;

use crate::adapters::pass_keys::{KeyChanges, PassKeyStoreError};
use crate::adapters::{AwsConfig, DynamoStore, PassKeyStore, SecretKeys, SqsBuffer, SystemClock};
use crate::domain::{EnqueueRequest, EventConfig, EventId, Strategy};
use crate::gate::edge::EdgePasses;
use crate::http::admin::Actor;
use crate::http::{AdminKey, TrustedProxies};
use crate::service::{CacheSettings, WaitingRoom};
use crate::token::TokenIssuer;

/// Assigns positions to one SQS batch. Messages the store could not take, and messages that
/// cannot be read, are reported as batch item failures: SQS delivers them again (and, after
/// the redrive policy's count, to the dead-letter queue) while the rest of the batch is done.
pub async fn handle_sqs_batch(room: &WaitingRoom, event: SqsEvent) -> SqsBatchResponse {
    let mut failed: Vec<String> = Vec::new();
    let mut requests: Vec<EnqueueRequest> = Vec::with_capacity(event.records.len());
    let mut ids: Vec<String> = Vec::with_capacity(event.records.len());
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        match message
            .body
            .as_deref()
            .map(serde_json::from_str::<EnqueueRequest>)
        {
            Some(Ok(request)) => {
                requests.push(request);
                ids.push(id);
            }
            _ => {
                tracing::error!(message_id = %id, "unreadable enqueue message");
                failed.push(id);
            }
        }
    }
    let report = room.assign_batch(&requests).await;
    tracing::info!(
        assigned = report.assigned,
        duplicates = report.duplicates,
        dropped = report.dropped,
        failed = report.failed.len() + failed.len(),
        "sqs batch"
    );
    failed.extend(report.failed.iter().map(|&i| ids[i].clone()));
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// What one scheduled invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScheduleReport {
    pub passes: u32,
    pub admitted: u64,
    pub failures: u32,
}

/// A scheduled invocation stops this long after it started at the latest, so two never overlap
/// (the schedule fires once a minute).
pub const RUNNER_MINUTE_BUDGET: Duration = Duration::from_secs(55);
/// Margin a scheduled invocation keeps before the function's own deadline.
pub const RUNNER_DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// How long one scheduled invocation may run its passes, given the time left before its
/// deadline.
pub fn runner_budget(to_deadline: Duration) -> Duration {
    RUNNER_MINUTE_BUDGET.min(to_deadline.saturating_sub(RUNNER_DEADLINE_MARGIN))
}

/// EventBridge schedules fire at most once a minute, so one invocation runs a pass every
/// `every` until `budget` is spent (keep it under the function timeout and the schedule rate,
/// so invocations do not overlap). When no event is busy (see
/// [`crate::service::StrategyReport::busy`]) it stops after one pass: an idle room costs one
/// short invocation a minute.
pub async fn handle_schedule(
    room: &WaitingRoom,
    event: EventBridgeEvent,
    every: Duration,
    budget: Duration,
) -> ScheduleReport {
    tracing::info!(source = %event.source, detail_type = %event.detail_type, "scheduled run");
    let deadline = tokio::time::Instant::now() + budget;
    let mut report = ScheduleReport::default();
    loop {
        let started = tokio::time::Instant::now();
        let mut busy = false;
        match room.apply_strategies().await {
            Ok(results) => {
                for (_, result) in results {
                    match result {
                        Ok(pass) => {
                            report.admitted += pass.admitted;
                            busy |= pass.busy;
                        }
                        Err(_) => report.failures += 1,
                    }
                }
            }
            Err(_) => report.failures += 1,
        }
        report.passes += 1;
        let next = started + every;
        if !busy || next >= deadline {
            return report;
        }
        tokio::time::sleep_until(next).await;
    }
}

/// Structured logs as one JSON object per line, which CloudWatch Logs Insights queries by field.
/// The level comes from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time() // CloudWatch stamps every line
        .with_target(false)
        .init();
}

/// CloudWatch namespace of the room's metrics.
pub const METRICS_NAMESPACE: &str = "WaitingRoom";

/// Writes what the counters did since the last call as one CloudWatch EMF line on stdout
/// (CloudWatch turns it into metrics; no API call, no extra latency).
pub fn flush_metrics(function: &str, now_ms: i64) {
    if let Some(document) = crate::metrics::emf_flush(METRICS_NAMESPACE, function, now_ms) {
        println!("{document}");
    }
}

/// Milliseconds since the epoch, for metric timestamps.
fn now_ms() -> i64 {
    crate::ports::Clock::now_ms(&SystemClock)
}

/// An HTTP function's router, ending every invocation with its metrics line.
pub fn with_metrics(router: axum::Router, function: &'static str) -> axum::Router {
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| async move {
            let response = next.run(request).await;
            flush_metrics(function, now_ms());
            response
        },
    ))
}

/// Writes the metrics line of a non-HTTP invocation.
pub fn flush_invocation_metrics(function: &str) {
    flush_metrics(function, now_ms());
}

/// The IAM caller API Gateway verified for this request (AWS_IAM authorization), from the
/// request context `lambda_http` attaches: REST APIs put it in the identity, HTTP APIs in the
/// authorizer.
pub fn gateway_caller<B>(request: &axum::http::Request<B>) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(context) => context.identity.user_arn.clone(),
        RequestContext::ApiGatewayV2(context) => {
            context.authorizer.as_ref()?.iam.as_ref()?.user_arn.clone()
        }
        // Only API Gateway verifies IAM callers.
        _ => None,
    }
}

/// Middleware for the admin Lambda: the verified IAM caller becomes the request's [`Actor`],
/// which [`crate::http::AdminAuth::Gateway`] accepts. Nothing a client sends can set it.
pub async fn gateway_identity(mut request: Request, next: Next) -> Response {
    if let Some(arn) = gateway_caller(&request) {
        request.extensions_mut().insert(Actor(arn));
    }
    next.run(request).await
}

// ---- building the room from the environment -------------------------------------------

/// How often a function reloads its signing keys from the secret (rotation pickup).
const KEY_REFRESH: Duration = Duration::from_secs(300);

/// What a function needs besides the store: each gets only what its routes use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// The SQS queue (`WR_QUEUE_URL`): enqueue.
    pub buffer: bool,
    /// The signing keys (`WR_SIGNING_KEY_SECRET`, `WR_ISSUER`): tokens and the authorizer;
    /// with `WR_EDGE_PASS_SECS`, claims carry a pass for the gate on CloudFront that long.
    pub tokens: bool,
}

/// Why a function could not start. Raised at cold start, so a misconfigured deployment fails
/// loudly on its first invocation instead of answering visitors wrongly.
#[derive(thiserror::Error)]
pub enum StartupError {
    #[error("environment variable {0} must be set")]
    Missing(&'static str),
    #[error("environment variable {0}: {1}")]
    Invalid(&'static str, String),
    #[error("signing keys: {0}")]
    Keys(#[from] crate::token::KeyError),
    #[error("default event: {0}")]
    Room(#[from] crate::Error),
}

/// `main` prints a returned error with `Debug`: make that the readable sentence.
impl std::fmt::Debug for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn env(name: &'static str) -> Result<String, StartupError> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .ok_or(StartupError::Missing(name))
}

fn env_parsed<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, StartupError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|e: T::Err| StartupError::Invalid(name, e.to_string())),
        _ => Ok(None),
    }
}

/// The room of a Lambda: DynamoDB store from `WR_TABLE`, plus what `needs` asks for; the
/// event named by `WR_DEFAULT_EVENT_*` is created if missing (never overwritten).
pub async fn room_from_env(needs: Needs) -> Result<Arc<WaitingRoom>, StartupError> {
    let aws = AwsConfig::from_env().await;
    let store = DynamoStore::new(&aws, env("WR_TABLE")?);
    let mut room = WaitingRoom::new(
        Arc::new(store),
        Arc::new(SystemClock),
        CacheSettings::default(),
    );
    if needs.buffer {
        room = room.with_buffer(Arc::new(SqsBuffer::new(&aws, env("WR_QUEUE_URL")?)));
    }
    if needs.tokens {
        let source = Arc::new(SecretKeys::new(&aws, env("WR_SIGNING_KEY_SECRET")?));
        let issuer = env("WR_ISSUER").unwrap_or_else(|_| "waiting-room".into());
        room = room.with_tokens(TokenIssuer::from_source(source, KEY_REFRESH, issuer).await?);
        if let Some(secs) = env_parsed::<u64>("WR_EDGE_PASS_SECS")? {
            let passes = EdgePasses::new(Duration::from_secs(secs))
                .map_err(|e| StartupError::Invalid("WR_EDGE_PASS_SECS", e))?;
            room = room.with_edge_passes(passes);
        }
    }
    let room = Arc::new(room);
    if let Some(config) = default_event_from_env()? {
        room.ensure_event(config).await?;
    }
    Ok(room)
}

/// Why the pass keys could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("signing keys: {0}")]
    Keys(#[from] crate::token::KeyError),
    #[error(transparent)]
    Store(#[from] PassKeyStoreError),
}

/// The pass-keys function's ends: the signing key secret (`WR_SIGNING_KEY_SECRET`) the keys
/// derive from, and the KeyValueStore (`WR_PASS_KEY_STORE`, its ARN) they are published to.
pub async fn pass_keys_from_env() -> Result<(SecretKeys, PassKeyStore), StartupError> {
    let aws = AwsConfig::from_env().await;
    Ok((
        SecretKeys::new(&aws, env("WR_SIGNING_KEY_SECRET")?),
        PassKeyStore::new(&aws, env("WR_PASS_KEY_STORE")?),
    ))
}

/// Publishes the gate's pass keys as they should be at `now_secs` (see
/// [`crate::gate::edge::published`]), reading the secret afresh so a rotated signing key is
/// followed at once.
pub async fn publish_pass_keys(
    secret: &SecretKeys,
    store: &PassKeyStore,
    now_secs: i64,
) -> Result<KeyChanges, PublishError> {
    use crate::token::KeySource;
    let keys = secret.load().await?;
    let changes = store
        .sync(&crate::gate::edge::published(&keys, now_secs))
        .await?;
    tracing::info!(put = ?changes.put, deleted = ?changes.deleted, "pass keys published");
    Ok(changes)
}

/// The event a stack starts with, from `WR_DEFAULT_EVENT_ID` and its `WR_DEFAULT_EVENT_*`
/// settings; `None` when no id is set.
pub fn default_event_from_env() -> Result<Option<EventConfig>, StartupError> {
    let Some(id) = env_parsed::<String>("WR_DEFAULT_EVENT_ID")? else {
        return Ok(None);
    };
    let event_id = EventId::parse(&id)
        .map_err(|e| StartupError::Invalid("WR_DEFAULT_EVENT_ID", e.to_string()))?;
    let mut config = EventConfig::new(event_id);
    let number = |name| env_parsed::<u64>(name);
    config.strategy = match env_parsed::<String>("WR_DEFAULT_EVENT_STRATEGY")?.as_deref() {
        None | Some("Manual") => Strategy::Manual,
        Some("MaxSize") => Strategy::MaxSize {
            max_active: number("WR_DEFAULT_EVENT_MAX_ACTIVE")?.unwrap_or(100),
        },
        Some("Periodic") => Strategy::Periodic {
            increment_by: number("WR_DEFAULT_EVENT_INCREMENT_BY")?.unwrap_or(10),
            interval_secs: number("WR_DEFAULT_EVENT_INTERVAL_SECS")?.unwrap_or(30),
        },
        Some(other) => {
            return Err(StartupError::Invalid(
                "WR_DEFAULT_EVENT_STRATEGY",
                format!("{other:?}: use Manual, MaxSize or Periodic"),
            ));
        }
    };
    if let Some(ttl) = number("WR_DEFAULT_EVENT_TOKEN_TTL_SECS")? {
        config.token_ttl_secs = ttl;
    }
    if let Some(expiry) = number("WR_DEFAULT_EVENT_POSITION_EXPIRY_SECS")? {
        config.position_expiry_secs = expiry;
    }
    config
        .validate()
        .map_err(|e| StartupError::Invalid("WR_DEFAULT_EVENT_*", e.to_string()))?;
    Ok(Some(config))
}

/// The admin key the control panel signs in with, given by its SHA-256 digest in
/// `WR_ADMIN_KEY_SHA256` (`None` when unset: then only IAM callers reach the admin API). Only
/// the digest is deployed, so the function's settings reveal nothing that signs in, and no
/// secret store is paid for each month.
pub fn admin_key_from_env() -> Result<Option<AdminKey>, StartupError> {
    env_parsed::<String>("WR_ADMIN_KEY_SHA256")?
        .filter(|digest| !digest.trim().is_empty())
        .map(|digest| {
            AdminKey::from_sha256_hex(&digest)
                .map_err(|e| StartupError::Invalid("WR_ADMIN_KEY_SHA256", e))
        })
        .transpose()
}

/// Seconds between two strategy passes within one scheduled invocation.
pub fn strategy_every_from_env() -> Result<Duration, StartupError> {
    Ok(Duration::from_secs(
        env_parsed::<u64>("WR_STRATEGY_EVERY_SECS")?
            .unwrap_or(5)
            .clamp(1, 30),
    ))
}

/// The proxies whose word about a joining visitor's address is taken (`WR_TRUSTED_PROXIES`,
/// CIDR blocks separated by commas: CloudFront's origin-facing ranges when it is in front).
/// From them, `CloudFront-Viewer-Address` or else `X-Forwarded-For`; from anyone else, API
/// Gateway's source address.
pub fn trusted_proxies_from_env() -> Result<TrustedProxies, StartupError> {
    let blocks = env_parsed::<String>("WR_TRUSTED_PROXIES")?.unwrap_or_default();
    let blocks: Vec<&str> = blocks.split(',').collect();
    TrustedProxies::parse(&blocks[..])
        .map(TrustedProxies::with_cloudfront_viewer_address)
        .map_err(|e| StartupError::Invalid("WR_TRUSTED_PROXIES", e))
}

/// The event the authorizer checks when a request names none (`WR_EVENT_ID`).
pub fn authorizer_event_from_env() -> Result<Option<EventId>, StartupError> {
    env_parsed::<String>("WR_EVENT_ID")?
        .map(|id| {
            EventId::parse(&id).map_err(|e| StartupError::Invalid("WR_EVENT_ID", e.to_string()))
        })
        .transpose()
}
