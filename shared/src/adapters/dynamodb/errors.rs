//! SDK errors to [`StoreError`], in one place. Conditional-check failures are not errors here:
//! they are answers ("already claimed", "already ended"), recognised by their error code.

use std::fmt::{Debug, Display};

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

use crate::ports::StoreError;

const THROTTLING: [&str; 5] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
];

const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

/// Throttling (and lost races on a busy item) become `Throttled`, everything else
/// `Unavailable`: both are the store's fault and answer `503` with `Retry-After`.
pub(super) fn store_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    if err.code().is_some_and(|code| THROTTLING.contains(&code)) {
        StoreError::Throttled
    } else {
        StoreError::Unavailable(DisplayErrorContext(&err).to_string())
    }
}

pub(super) fn is_condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.code() == Some(CONDITION_FAILED)
}

/// A request the SDK refused to build (a missing required field: a bug, not an outage).
pub(super) fn build_error(err: impl Display) -> StoreError {
    StoreError::Unavailable(format!("invalid DynamoDB request: {err}"))
}

/// Why a transaction did not apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Cancelled {
    /// Indexes of the operations whose condition failed.
    pub failed_conditions: Vec<usize>,
    /// Another transaction or write held one of the items: worth retrying after a pause.
    pub conflict: bool,
}

/// A cancelled transaction becomes [`Cancelled`]; throttling inside it `Throttled`; anything
/// else an error.
pub(super) fn cancellation<R>(
    err: SdkError<TransactWriteItemsError, R>,
) -> Result<Cancelled, StoreError>
where
    R: Debug + Send + Sync + 'static,
{
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    else {
        return Err(store_error(err));
    };
    let mut outcome = Cancelled::default();
    for (index, reason) in cancelled.cancellation_reasons().iter().enumerate() {
        match reason.code() {
            None | Some("None") => {}
            Some("ConditionalCheckFailed") => outcome.failed_conditions.push(index),
            Some("TransactionConflict") => outcome.conflict = true,
            Some("ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded") => {
                return Err(StoreError::Throttled);
            }
            Some(other) => {
                return Err(StoreError::Unavailable(format!(
                    "transaction cancelled: {other}: {}",
                    reason.message().unwrap_or_default()
                )));
            }
        }
    }
    // Cancelled without a stated reason: treat as a lost race and let the caller retry.
    if outcome.failed_conditions.is_empty() {
        outcome.conflict = true;
    }
    Ok(outcome)
}
