//! The `EnqueueBuffer` contract: what enqueue sends, the consumer gets back, whole. The memory
//! buffer and the durable one (which also keeps what it took across a restart) always; SQS when `WR_TEST_AWS_ENDPOINT` points at moto (see `infra/moto.sh`), on a
//! small queue of its own that the case drains and deletes.

use std::collections::BTreeMap;
use std::sync::Arc;

use waiting_room_core::adapters::aws::{TEST_ENDPOINT_VAR, test_endpoint};
use waiting_room_core::adapters::{AwsConfig, DurableStore, MemoryBuffer, SqsBuffer};
use waiting_room_core::domain::{EnqueueRequest, EventConfig, EventId, RequestId};
use waiting_room_core::ports::{BufferError, EnqueueBuffer, Store};
use waiting_room_tests::unique_suffix;

fn requests(n: usize) -> Vec<EnqueueRequest> {
    let event_id = EventId::parse("sale").expect("event id");
    (0..n)
        .map(|i| EnqueueRequest {
            event_id: event_id.clone(),
            request_id: RequestId::new(0, 0),
            entry_time_ms: 1_767_225_600_000 + i as i64,
        })
        .collect()
}

async fn send_all(buffer: &dyn EnqueueBuffer, sent: &[EnqueueRequest]) {
    for request in sent {
        buffer.send(request).await.expect("send");
    }
}

#[tokio::test]
async fn memory_buffer_hands_back_what_was_sent() {
    let buffer = Arc::new(MemoryBuffer::new(5));
    let sent = requests(5);
    send_all(buffer.as_ref(), &sent).await;
    assert!(matches!(
        buffer.send(&requests(1)[0]).await,
        Err(BufferError::Full)
    ));
    assert_eq!(buffer.next_batch(10).await, sent);
    assert!(buffer.is_empty());
}

#[tokio::test]
async fn durable_buffer_hands_back_what_was_sent_and_keeps_what_was_not_placed() {
    let dir = std::env::temp_dir().join(format!("wr-contract-buffer-{}", unique_suffix()));
    let (store, _) = DurableStore::open(&dir).await.expect("open");
    let event_id = EventId::parse("sale").expect("event id");
    store
        .create_event(&EventConfig::new(event_id.clone()), 0)
        .await
        .expect("create event");
    let queue = Arc::new(MemoryBuffer::new(5));
    let buffer = store.buffer(queue.clone());
    let sent = requests(5);
    send_all(&buffer, &sent).await;
    assert!(matches!(
        buffer.send(&requests(1)[0]).await,
        Err(BufferError::Full)
    ));
    let taken = queue.next_batch(2).await;
    assert_eq!(taken, sent[..2]);
    // The consumer places the first two; the process stops before the other three.
    store
        .assign_positions(&event_id, &taken, 1)
        .await
        .expect("assign");
    store.close();

    let (reopened, recovered) = DurableStore::open(&dir).await.expect("reopen");
    reopened.close();
    let _ = std::fs::remove_dir_all(&dir);
    // Neither the placed joins nor the one refused as full come back; the rest do, in order.
    assert_eq!(recovered.waiting, sent[2..]);
}

#[tokio::test]
async fn sqs_buffer_hands_back_what_was_sent() {
    let Some(endpoint) = test_endpoint("contract_buffer::sqs_buffer_hands_back_what_was_sent")
    else {
        return;
    };
    let name = format!("wr-contract-{}", unique_suffix());
    let sqs = match SqsBuffer::create_queue(&AwsConfig::local(&endpoint), &name).await {
        Ok(sqs) => sqs,
        Err(error) => {
            panic!(
                "{TEST_ENDPOINT_VAR}={endpoint} is set but the queue could not be created: {error}"
            )
        }
    };
    let buffer: Arc<dyn EnqueueBuffer> = Arc::new(sqs.clone());
    let sent = requests(7);
    send_all(buffer.as_ref(), &sent).await;

    // A standard queue keeps no order and may hand a message out twice: compare by id.
    let mut received = BTreeMap::new();
    for _ in 0..10 {
        let messages = sqs.receive(10, 1).await.expect("receive");
        for message in &messages {
            received.insert(message.request.request_id, message.request.clone());
        }
        sqs.acknowledge(&messages).await.expect("acknowledge");
        if received.len() == sent.len() {
            break;
        }
    }
    let expected: BTreeMap<_, _> = sent.iter().map(|r| (r.request_id, r.clone())).collect();
    assert_eq!(received, expected, "every request back, whole");
    // Drained: acknowledged messages do not come back.
    assert!(sqs.receive(10, 0).await.expect("receive").is_empty());
    sqs.delete_queue().await.expect("delete queue");
}

#[tokio::test]
async fn sqs_buffer_unreachable_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let aws = AwsConfig::local(&format!("http://127.0.0.1:{port}"));
    let buffer = SqsBuffer::new(&aws, format!("http://127.0.0.1:{port}/000000000000/q"));
    let result = buffer.send(&requests(1)[0]).await;
    assert!(
        matches!(result, Err(BufferError::Unavailable(_))),
        "{result:?}"
    );
}
