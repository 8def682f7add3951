//! The embedded enqueue buffer: an in-process queue drained in batches by the consumer task,
//! standing in for SQS and its event source mapping.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::domain::EnqueueRequest;
use crate::ports::{BufferError, EnqueueBuffer};

/// In-memory [`EnqueueBuffer`] with a bound, so a flood answers `503` instead of eating memory.
pub struct MemoryBuffer {
    // std Mutex: held only to push or drain, never across an `.await`.
    queue: Mutex<VecDeque<EnqueueRequest>>,
    capacity: usize,
    ready: Notify,
}

impl MemoryBuffer {
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            ready: Notify::new(),
        }
    }

    /// Waits until at least one request is buffered, then takes up to `max` of them.
    pub async fn next_batch(&self, max: usize) -> Vec<EnqueueRequest> {
        loop {
            let batch = self.take_now(max);
            if !batch.is_empty() {
                return batch;
            }
            self.ready.notified().await;
        }
    }

    /// Takes up to `max` requests without waiting (empty when there are none).
    pub fn take_now(&self, max: usize) -> Vec<EnqueueRequest> {
        match self.queue.lock() {
            Ok(mut queue) => {
                let n = max.min(queue.len());
                queue.drain(..n).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Puts a batch back at the front, as SQS redelivers messages whose processing failed.
    pub fn redeliver(&self, batch: Vec<EnqueueRequest>) {
        if let Ok(mut queue) = self.queue.lock() {
            for request in batch.into_iter().rev() {
                queue.push_front(request);
            }
        }
        self.ready.notify_one();
    }

    /// Whether a send now would be refused as [`BufferError::Full`].
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// Appends a request already accepted elsewhere (journaled, or found in the journal on
    /// start): the bound was checked when it was accepted.
    pub fn push(&self, request: EnqueueRequest) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.push_back(request);
        }
        self.ready.notify_one();
    }

    pub fn len(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl EnqueueBuffer for MemoryBuffer {
    async fn send(&self, request: &EnqueueRequest) -> Result<(), BufferError> {
        {
            let mut queue = self
                .queue
                .lock()
                .map_err(|_| BufferError::Unavailable("buffer lock poisoned".into()))?;
            if queue.len() >= self.capacity {
                return Err(BufferError::Full);
            }
            queue.push_back(request.clone());
        }
        self.ready.notify_one();
        Ok(())
    }
}
