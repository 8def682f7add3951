//! The local server on DynamoDB and SQS (moto), over TCP: what `waiting-room serve --store
//! dynamodb` runs. Visitors join concurrently, SQS delivers some of them twice, the server's
//! poller assigns them; then they are admitted and their token passes the authorizer. Runs
//! when `WR_TEST_AWS_ENDPOINT` is set.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use waiting_room_core::adapters::aws::test_endpoint;
use waiting_room_core::adapters::{AwsConfig, AwsSettings, SqsBuffer};
use waiting_room_core::domain::{EnqueueRequest, EventId, RequestId};
use waiting_room_core::listener::{Listener, ListenerSettings};
use waiting_room_core::ports::EnqueueBuffer;
use waiting_room_core::server::{LocalRoom, LocalSettings, LocalStore};
use waiting_room_core::token::{KeyAlgorithm, SigningKey};
use waiting_room_tests::{ADMIN_KEY, no_cache, unique_suffix};

const VISITORS: usize = 40;
const REDELIVERED: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_local_server_runs_on_dynamodb_and_sqs() {
    let Some(endpoint) = test_endpoint("local_on_moto") else {
        return;
    };
    let aws = AwsConfig::local(&endpoint);
    let name = format!("local-{}", unique_suffix());
    let mut settings = LocalSettings::new(
        ADMIN_KEY.into(),
        SigningKey::generate(KeyAlgorithm::EdDSA).expect("key"),
    );
    settings.events = vec![EventId::parse("demo").expect("event id")];
    settings.client_limits = waiting_room_core::http::ClientLimits::OFF;
    settings.cache = no_cache();
    settings.store = LocalStore::Aws {
        aws: aws.clone(),
        resources: AwsSettings {
            table: name.clone(),
            queue_url: format!("{endpoint}/123456789012/{name}"),
        },
        create_missing: true,
    };
    let local = LocalRoom::build(settings).await.expect("room on moto");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = Listener::from_tcp(listener, ListenerSettings::default()).expect("listener");
    let server = tokio::spawn(local.serve(listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();

    // Visitors join at once; each gets its request id straight away (202).
    let joins = (0..VISITORS).map(|_| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let answer = http
                .post(format!("{base}/assign_queue_num"))
                .json(&json!({ "event_id": "demo" }))
                .send()
                .await
                .expect("enqueue");
            assert_eq!(answer.status(), 202);
            let body: Value = answer.json().await.expect("json");
            RequestId::parse(body["api_request_id"].as_str().expect("id")).expect("request id")
        }
    });
    let ids: Vec<RequestId> = join_spawned(joins).await;

    // SQS delivers at least once: send some of the same requests again.
    let queue = SqsBuffer::ensure_queue(&aws, &format!("{endpoint}/123456789012/{name}"))
        .await
        .expect("queue");
    for id in &ids[..REDELIVERED] {
        let again = EnqueueRequest {
            event_id: EventId::parse("demo").expect("event id"),
            request_id: *id,
            entry_time_ms: id.created_at_ms(),
        };
        queue.send(&again).await.expect("redeliver");
    }

    // The poller assigns every visitor one position: exactly 1..=VISITORS.
    let mut positions = BTreeSet::new();
    for id in &ids {
        let status = wait_for(&http, &base, id, |s| s["assigned"] == true).await;
        assert!(positions.insert(status["queue_number"].as_u64().expect("position")));
    }
    assert_eq!(positions, (1..=VISITORS as u64).collect::<BTreeSet<_>>());

    // Once the redeliveries are consumed, the queue counter has not moved for them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while metric(&http, &base, "waiting_room_redeliveries_total").await < REDELIVERED as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "redeliveries not consumed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = wait_for(&http, &base, &ids[0], |_| true).await;
    assert_eq!(status["queue_counter"], VISITORS as u64);

    // The operator admits everyone; the last visitor's token passes the authorizer.
    let answer = http
        .post(format!("{base}/increment_serving_counter"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "event_id": "demo", "increment_by": VISITORS }))
        .send()
        .await
        .expect("increment");
    assert_eq!(answer.status(), 200);
    let last = ids.last().expect("a visitor");
    let tokens: Value = http
        .post(format!("{base}/generate_token"))
        .json(&json!({ "event_id": "demo", "request_id": last }))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let access = tokens["access_token"].as_str().expect("access token");
    let authorized = http
        .get(format!("{base}/authorize?event_id=demo"))
        .bearer_auth(access)
        .send()
        .await
        .expect("authorize");
    assert_eq!(authorized.status(), 200);

    let _ = stop.send(());
    let stopped = server.await.expect("server task");
    assert_eq!(stopped.unplaced, 0);
    queue.delete_queue().await.expect("delete queue");
}

/// Polls `/status` until `done` holds for the answer (30 s at most).
async fn wait_for(
    http: &reqwest::Client,
    base: &str,
    id: &RequestId,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status: Value = http
            .get(format!("{base}/status?event_id=demo&request_id={id}"))
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        if done(&status) {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One counter from the server's Prometheus `/metrics`.
async fn metric(http: &reqwest::Client, base: &str, name: &str) -> u64 {
    let text = http
        .get(format!("{base}/metrics"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs the futures concurrently on the runtime and returns their outputs in order.
async fn join_spawned<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    outputs
}
