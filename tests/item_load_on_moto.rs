//! No hot item: visitors go join → position → token → session end through the real room on
//! DynamoDB (moto), and every DynamoDB call is recorded on the wire, per item key and per
//! partition (of the table and of its index), by a recording proxy between the SDK and moto.
//! No item and no partition may take more than 0.1 reads or 0.1 writes per admitted visitor.
//! Runs when `WR_TEST_AWS_ENDPOINT` is set (and fails without it when `CI=true`).
//!
//! ```text
//! WR_TEST_AWS_ENDPOINT=http://127.0.0.1:4566 cargo test -p waiting-room-tests \
//!     --test item_load_on_moto -- --nocapture
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use waiting_room_core::WaitingRoom;
use waiting_room_core::adapters::{AwsConfig, DynamoStore, ManualClock, MemoryBuffer, SystemClock};
use waiting_room_core::domain::{EventConfig, RequestId, SessionEnd, Strategy};
use waiting_room_core::ports::Clock;
use waiting_room_core::service::CacheSettings;
use waiting_room_core::token::{KeyAlgorithm, KeyRing, SigningKey, TokenIssuer};
use waiting_room_tests::event;

/// Visitors taken through the journey (`WR_ITEM_LOAD_VISITORS` to change).
const VISITORS: usize = 400;
/// The bar: calls of one kind on one item or partition, per admitted visitor.
const BAR: f64 = 0.1;
/// MaxSize cap: visitors are let in over several runner passes.
const CAP: u64 = 200;
/// Simulated seconds between two runner passes, and a session's length.
const PASS_EVERY_MS: i64 = 5_000;
const SESSION_MS: i64 = 10_000;
/// Index partitions: the adapter's tokens index keys its partitions `token_pk`.
const INDEX_KEY: &str = "token_pk";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Read,
    Write,
}

/// Calls per target: `item pk | sk`, `partition pk`, `index name | partition`.
#[derive(Default)]
struct Record {
    // std Mutex: held only to bump counts, never across an `.await`.
    counts: Mutex<HashMap<(String, Kind), u64>>,
}

impl Record {
    fn add(&self, target: String, kind: Kind) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry((target, kind)).or_default() += 1;
        }
    }

    fn clear(&self) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.clear();
        }
    }

    fn snapshot(&self) -> HashMap<(String, Kind), u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// One read or write of an item: counted on the item and on its partition.
    fn item(&self, key: &Value, kind: Kind) {
        let (Some(pk), Some(sk)) = (string(&key["pk"]), string(&key["sk"])) else {
            return;
        };
        self.add(format!("item {pk} | {sk}"), kind);
        self.add(format!("partition {pk}"), kind);
    }

    /// One DynamoDB call, from its operation name, request and answer.
    fn call(&self, operation: &str, request: &Value, answer: &Value) {
        match operation {
            "GetItem" => self.item(&request["Key"], Kind::Read),
            "PutItem" => self.item(&request["Item"], Kind::Write),
            "UpdateItem" | "DeleteItem" => {
                self.item(&request["Key"], Kind::Write);
                self.index_write(request, &answer["Attributes"]);
            }
            "BatchGetItem" => {
                for wanted in objects(&request["RequestItems"]) {
                    for key in wanted["Keys"].as_array().into_iter().flatten() {
                        self.item(key, Kind::Read);
                    }
                }
            }
            "TransactWriteItems" => {
                for op in request["TransactItems"].as_array().into_iter().flatten() {
                    if let Some(put) = op.get("Put") {
                        self.item(&put["Item"], Kind::Write);
                    }
                    for name in ["Update", "Delete", "ConditionCheck"] {
                        if let Some(write) = op.get(name) {
                            self.item(&write["Key"], Kind::Write);
                        }
                    }
                }
            }
            "Query" => {
                let Some(pk) = string(&request["ExpressionAttributeValues"][":pk"]) else {
                    return;
                };
                match request["IndexName"].as_str() {
                    Some(index) => self.add(format!("index {index} | {pk}"), Kind::Read),
                    None => self.add(format!("partition {pk}"), Kind::Read),
                }
            }
            _ => {}
        }
    }

    /// An update that puts an item into an index partition (a claim sets its key) or takes
    /// it out (a session end, answered with the item as it was) writes that partition too.
    fn index_write(&self, request: &Value, old: &Value) {
        let values = &request["ExpressionAttributeValues"];
        let entered = string(&values[&format!(":{INDEX_KEY}")]);
        let left = request["UpdateExpression"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("REMOVE {INDEX_KEY}")))
            .then(|| string(&old[INDEX_KEY]))
            .flatten();
        for partition in entered.into_iter().chain(left) {
            self.add(
                format!("index tokens_by_request | {partition}"),
                Kind::Write,
            );
        }
    }
}

fn string(value: &Value) -> Option<String> {
    value["S"].as_str().map(str::to_owned)
}

fn objects(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_object().into_iter().flat_map(|map| map.values())
}

/// A proxy on a free port in front of `upstream` that records every call it forwards.
async fn recording_proxy(upstream: String, record: Arc<Record>) -> String {
    let http = reqwest::Client::new();
    let forward = move |headers: HeaderMap, body: Bytes| {
        let (http, upstream, record) = (http.clone(), upstream.clone(), record.clone());
        async move {
            let mut request = http.post(&upstream).body(body.clone());
            for (name, value) in &headers {
                if name != "host" && name != "content-length" {
                    request = request.header(name, value);
                }
            }
            let answer = request.send().await.expect("moto answers");
            let status = answer.status();
            let content_type = answer.headers().get("content-type").cloned();
            let answered = answer.bytes().await.expect("moto's answer");
            let operation = headers
                .get("x-amz-target")
                .and_then(|t| t.to_str().ok())
                .and_then(|t| t.rsplit('.').next())
                .unwrap_or_default();
            let parse = |bytes: &[u8]| serde_json::from_slice(bytes).unwrap_or(Value::Null);
            if status.is_success() || status == StatusCode::BAD_REQUEST {
                record.call(operation, &parse(&body), &parse(&answered));
            }
            let mut response = axum::response::Response::new(axum::body::Body::from(answered));
            *response.status_mut() = StatusCode::from_u16(status.as_u16()).expect("status");
            if let Some(content_type) = content_type {
                response.headers_mut().insert("content-type", content_type);
            }
            response
        }
    };
    let app = axum::Router::new().fallback(forward);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

/// A short random suffix for a table name.
fn uuid_suffix() -> String {
    RequestId::new(0, 0).to_string()[56..].to_owned()
}

/// Where a visitor is in the journey.
enum Visit {
    Waiting { place: u64 },
    Admitted { at_ms: i64 },
    Ended,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_item_or_partition_takes_more_than_a_tenth_of_a_call_per_admitted_visitor() {
    let Some(endpoint) = waiting_room_core::adapters::aws::test_endpoint("item load") else {
        return;
    };
    let visitors: usize = std::env::var("WR_ITEM_LOAD_VISITORS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(VISITORS);
    let record = Arc::new(Record::default());
    let proxy = recording_proxy(endpoint, record.clone()).await;
    let table = format!("item-load-{}", &uuid_suffix());
    let store = DynamoStore::new(&AwsConfig::local(&proxy), table);
    store.create_table().await.expect("table on moto");
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let buffer = Arc::new(MemoryBuffer::new(visitors + 1));
    let key = SigningKey::generate(KeyAlgorithm::EdDSA).expect("key");
    // The production cache settings: each shared read is cached in process.
    let room = WaitingRoom::new(
        Arc::new(store.clone()),
        clock.clone(),
        CacheSettings::default(),
    )
    .with_buffer(buffer.clone())
    .with_tokens(TokenIssuer::new(
        Arc::new(KeyRing::new(key, vec![])),
        "load",
    ));
    let event_id = event("load");
    let mut config = EventConfig::new(event_id.clone());
    config.strategy = Strategy::MaxSize { max_active: CAP };
    room.create_event(config, "test").await.expect("event");
    record.clear();
    let started = std::time::Instant::now();

    // Join, then one consumer batch gives the positions (SQS batches take up to 1,000).
    let mut ids = Vec::with_capacity(visitors);
    for _ in 0..visitors {
        ids.push(room.enqueue(&event_id).await.expect("join"));
    }
    while !buffer.is_empty() {
        let batch = buffer.next_batch(1_000).await;
        let report = room.assign_batch(&batch).await;
        assert!(report.failed.is_empty(), "{report:?}");
    }
    // Each visitor looks its position up once, then watches the shared counters (the
    // cacheable document every page polls) and claims when they reach it.
    let mut visits = Vec::with_capacity(visitors);
    for id in &ids {
        let (_, standing) = room.locate(&event_id, id).await.expect("position");
        let place = standing.place().expect("a place in line");
        visits.push(Visit::Waiting { place });
    }
    let mut passes = 0;
    while visits.iter().any(|v| !matches!(v, Visit::Ended)) {
        assert!(passes < 200, "visitors stuck in line");
        room.apply_strategies().await.expect("runner pass");
        passes += 1;
        let serving = room
            .view(&event_id)
            .await
            .expect("view")
            .counters
            .serving_counter;
        let now = clock.now_ms();
        for (id, visit) in ids.iter().zip(visits.iter_mut()) {
            match *visit {
                Visit::Waiting { place } if place <= serving => {
                    room.generate_token(&event_id, id).await.expect("token");
                    *visit = Visit::Admitted { at_ms: now };
                }
                Visit::Admitted { at_ms } if now - at_ms >= SESSION_MS => {
                    room.update_session(&event_id, id, SessionEnd::Completed, "app")
                        .await
                        .expect("session end");
                    *visit = Visit::Ended;
                }
                _ => {}
            }
        }
        clock.advance_ms(PASS_EVERY_MS);
    }

    // Per item and per partition, reads and writes per admitted visitor.
    let admitted = visitors as f64;
    let counts = record.snapshot();
    let mut by_load: Vec<(Kind, u64, &String)> = counts
        .iter()
        .map(|((target, kind), n)| (*kind, *n, target))
        .collect();
    by_load.sort_unstable();
    let mut report = format!(
        "\n{visitors} visitors, {passes} runner passes, {:.1} s on moto; calls per admitted visitor:\n",
        started.elapsed().as_secs_f64()
    );
    for kind in [Kind::Read, Kind::Write] {
        report.push_str(&format!("  most {kind:?}s:\n"));
        for (_, n, target) in by_load.iter().rev().filter(|(k, _, _)| *k == kind).take(8) {
            report.push_str(&format!("    {:>6.3}  {target}\n", *n as f64 / admitted));
        }
    }
    report.push_str("  the most loaded of each kind:\n");
    for prefix in ["item ", "partition ", "index "] {
        for kind in [Kind::Read, Kind::Write] {
            if let Some((_, n, target)) = by_load
                .iter()
                .rev()
                .find(|(k, _, t)| *k == kind && t.starts_with(prefix))
            {
                report.push_str(&format!(
                    "    {:>6.3}  {kind:?}s  {target}\n",
                    *n as f64 / admitted
                ));
            }
        }
    }
    println!("{report}");
    let over: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n as f64 / admitted > BAR)
        .map(|((target, kind), n)| format!("{target}: {:.3} {kind:?}s", *n as f64 / admitted))
        .collect();
    assert!(
        over.is_empty(),
        "over {BAR} per admitted visitor: {over:?}{report}"
    );
    // The journey itself went through: every visitor claimed and ended a session.
    let tallied = room.counters(&event_id).await.expect("counters");
    assert_eq!(
        (tallied.tokens_issued, tallied.tokens_completed),
        (visitors as u64, visitors as u64)
    );
    store.delete_table().await.expect("delete table");
}
