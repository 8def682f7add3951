//! The SQS [`EnqueueBuffer`]: one `SendMessage` per visitor, the [`EnqueueRequest`] as JSON
//! body. On AWS the consumer Lambda receives batches through its event source mapping; the
//! receive/acknowledge functions here serve tests and local pollers.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;

use super::aws::AwsConfig;
use crate::domain::EnqueueRequest;
use crate::ports::{BufferError, EnqueueBuffer};

/// Codes SQS answers when it will not take more right now: the caller should come back later.
const BACKPRESSURE: [&str; 4] = [
    "OverLimit",
    "RequestThrottled",
    "ThrottlingException",
    "KmsThrottled",
];

fn buffer_error<E, R>(err: SdkError<E, R>) -> BufferError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if err.code().is_some_and(|code| BACKPRESSURE.contains(&code)) {
        BufferError::Full
    } else {
        BufferError::Unavailable(DisplayErrorContext(&err).to_string())
    }
}

/// A message taken from the queue, to acknowledge once its request is handled.
#[derive(Debug, Clone)]
pub struct Received {
    pub request: EnqueueRequest,
    receipt_handle: String,
}

/// [`EnqueueBuffer`] on one SQS queue.
#[derive(Clone)]
pub struct SqsBuffer {
    client: Client,
    queue_url: String,
}

impl std::fmt::Debug for SqsBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsBuffer")
            .field("queue_url", &self.queue_url)
            .finish_non_exhaustive()
    }
}

impl SqsBuffer {
    pub fn new(aws: &AwsConfig, queue_url: impl Into<String>) -> Self {
        Self {
            client: Client::new(aws.sdk()),
            queue_url: queue_url.into(),
        }
    }

    /// Creates a standard queue named `name` (on AWS the SAM template does this).
    pub async fn create_queue(aws: &AwsConfig, name: &str) -> Result<Self, BufferError> {
        let client = Client::new(aws.sdk());
        let created = client
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(buffer_error)?;
        let queue_url = created
            .queue_url
            .ok_or_else(|| BufferError::Unavailable("CreateQueue returned no queue URL".into()))?;
        Ok(Self { client, queue_url })
    }

    /// The queue `queue_url` names, created if missing (its name is the URL's last segment).
    /// For emulators: on AWS the SAM template creates the queue with its dead-letter redrive.
    pub async fn ensure_queue(aws: &AwsConfig, queue_url: &str) -> Result<Self, BufferError> {
        let name = queue_url
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|name| !name.is_empty())
            .ok_or_else(|| BufferError::Unavailable(format!("no queue name in {queue_url:?}")))?;
        Self::create_queue(aws, name).await
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    pub async fn delete_queue(&self) -> Result<(), BufferError> {
        self.client
            .delete_queue()
            .queue_url(&self.queue_url)
            .send()
            .await
            .map_err(buffer_error)?;
        Ok(())
    }

    /// Takes up to `max` (1–10) messages, long-polling up to `wait_secs` (0–20). A message
    /// whose body is not an enqueue request can never succeed: it is logged and deleted.
    pub async fn receive(&self, max: i32, wait_secs: i32) -> Result<Vec<Received>, BufferError> {
        let answer = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_secs.clamp(0, 20))
            .send()
            .await
            .map_err(buffer_error)?;
        let mut received = Vec::new();
        for message in answer.messages.unwrap_or_default() {
            let Some(receipt_handle) = message.receipt_handle else {
                continue;
            };
            let body = message.body.unwrap_or_default();
            match serde_json::from_str::<EnqueueRequest>(&body) {
                Ok(request) => received.push(Received {
                    request,
                    receipt_handle,
                }),
                Err(error) => {
                    tracing::error!(%error, body = %body, "dropping an undecodable enqueue message");
                    self.client
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(receipt_handle)
                        .send()
                        .await
                        .map_err(buffer_error)?;
                }
            }
        }
        Ok(received)
    }

    /// Deletes handled messages (up to 10 per call to SQS).
    pub async fn acknowledge(&self, messages: &[Received]) -> Result<(), BufferError> {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, message)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&message.receipt_handle)
                        .build()
                        .map_err(|e| BufferError::Unavailable(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let answer = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(buffer_error)?;
            if let Some(failed) = answer.failed.first() {
                return Err(BufferError::Unavailable(format!(
                    "could not delete message: {}",
                    failed.message().unwrap_or(failed.code())
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EnqueueBuffer for SqsBuffer {
    async fn send(&self, request: &EnqueueRequest) -> Result<(), BufferError> {
        let body = serde_json::to_string(request)
            .map_err(|e| BufferError::Unavailable(format!("cannot encode request: {e}")))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(buffer_error)?;
        Ok(())
    }
}
