//! Counts the DynamoDB calls a store makes, by operation, from inside the SDK (an interceptor
//! sees every operation the client sends, whatever code path sent it). Tests use it to prove
//! "one queue counter move per batch" and to measure calls per visitor; a service can log it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use super::keys;

/// Calls made so far (operations, not HTTP attempts: SDK retries are not counted twice).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls per DynamoDB operation name (`PutItem`, `TransactWriteItems`...).
    pub by_operation: BTreeMap<String, u64>,
    /// `UpdateItem` calls that moved an event's queue counter.
    pub queue_counter_moves: u64,
}

impl CallCounts {
    pub fn total(&self) -> u64 {
        self.by_operation.values().sum()
    }

    pub fn get(&self, operation: &str) -> u64 {
        self.by_operation.get(operation).copied().unwrap_or(0)
    }

    /// What was called between `earlier` and `self`.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        CallCounts {
            by_operation: self
                .by_operation
                .iter()
                .map(|(op, n)| (op.clone(), n - earlier.get(op)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            queue_counter_moves: self.queue_counter_moves - earlier.queue_counter_moves,
        }
    }
}

impl std::fmt::Display for CallCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} calls", self.total())?;
        for (op, n) in &self.by_operation {
            write!(f, ", {op} {n}")?;
        }
        write!(f, " (queue counter moves {})", self.queue_counter_moves)
    }
}

/// The interceptor; clones share one tally.
#[derive(Debug, Clone, Default)]
pub(super) struct CountCalls {
    // std Mutex: held for one map update, never across an `.await`.
    tally: Arc<Mutex<CallCounts>>,
}

impl CountCalls {
    pub fn snapshot(&self) -> CallCounts {
        self.tally.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "CountCalls"
    }

    // Once per operation (before its attempts), and late enough for the operation's metadata
    // to be in the config bag.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map_or("unknown", |m| m.name())
            .to_owned();
        let moves_counter = context
            .input()
            .downcast_ref::<UpdateItemInput>()
            .and_then(|input| input.update_expression())
            .is_some_and(keys::moves_queue_counter);
        if let Ok(mut tally) = self.tally.lock() {
            *tally.by_operation.entry(operation).or_default() += 1;
            if moves_counter {
                tally.queue_counter_moves += 1;
            }
        }
        Ok(())
    }
}
