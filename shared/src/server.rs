//! The whole waiting room in one process: HTTP API and pages, the batch consumer and the
//! strategy runner. By default on the in-memory adapters; with [`LocalStore::Durable`] on the
//! same, journaled to a data directory; with [`LocalStore::Aws`] on DynamoDB and SQS (AWS or an
//! emulator), through the adapters the Lambdas use. The `waiting-room`
//! binary and the end-to-end tests both start it through [`LocalRoom`], on a [`Listener`] they
//! choose.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::adapters::sqs::Received;
use crate::adapters::{
    AwsConfig, AwsSettings, DurableStore, DynamoStore, MemoryBuffer, MemoryStore, SqsBuffer,
    SystemClock,
};
use crate::domain::{EnqueueRequest, EventConfig, EventId};
use crate::error::Error;
use crate::gate::edge::EdgePasses;
use crate::http::{self, AdminAuth, ClientLimits, TrustedProxies};
use crate::listener::Listener;
use crate::ports::{BufferError, Clock, EnqueueBuffer, Store};
use crate::service::{CacheSettings, WaitingRoom, run_memory_consumer, run_strategy_loop};
use crate::token::{KeyRing, SigningKey, TokenIssuer};

/// Visitors the in-memory buffer holds before enqueue answers 503.
const BUFFER_CAPACITY: usize = 1_000_000;

/// Messages the SQS poller gathers into one batch (one queue counter move). SQS hands out at
/// most 10 per receive.
const SQS_BATCH: usize = 100;

/// Pause of the SQS poller after an empty receive. Receives are short polls: a long poll
/// would hold a single-threaded emulator (moto) for its whole wait.
const SQS_IDLE: Duration = Duration::from_millis(200);

/// Pause of the SQS poller after a failure, before it tries again.
const SQS_RETRY: Duration = Duration::from_secs(1);

/// Where the local room keeps its state.
#[derive(Debug, Clone, Default)]
pub enum LocalStore {
    /// In this process: nothing to set up, gone when it stops.
    #[default]
    Memory,
    /// In this process, every change journaled to a data directory before it is answered:
    /// a restart (or a crash) loses nothing that was accepted.
    Durable { dir: PathBuf },
    /// A DynamoDB table and an SQS queue; `create_missing` creates them first (for emulators:
    /// on AWS the SAM template owns them).
    Aws {
        aws: AwsConfig,
        resources: AwsSettings,
        create_missing: bool,
    },
}

pub struct LocalSettings {
    pub admin_key: String,
    pub signing_key: SigningKey,
    pub issuer: String,
    pub events: Vec<EventId>,
    pub strategy_every: Duration,
    pub cache: CacheSettings,
    pub clock: Arc<dyn Clock>,
    /// Joins, look-ups and claims per client.
    pub client_limits: ClientLimits,
    /// Proxies whose `X-Forwarded-For` names the client (none: the connection's peer is).
    pub trusted_proxies: TrustedProxies,
    pub store: LocalStore,
    /// Claims also carry a pass for the gate on CloudFront (see [`crate::gate::edge`]).
    pub edge_passes: Option<EdgePasses>,
}

impl LocalSettings {
    pub fn new(admin_key: String, signing_key: SigningKey) -> Self {
        Self {
            admin_key,
            signing_key,
            issuer: "waiting-room-local".into(),
            events: vec![],
            strategy_every: Duration::from_secs(2),
            cache: CacheSettings::default(),
            clock: Arc::new(SystemClock),
            client_limits: ClientLimits::default(),
            trusted_proxies: TrustedProxies::default(),
            store: LocalStore::Memory,
            edge_passes: None,
        }
    }
}

/// Where enqueued visitors wait for a position, and so which consumer runs.
#[derive(Clone)]
enum Intake {
    /// Joins go through `front` (the queue itself, or a journal in front of it) into `queue`,
    /// which the consumer drains.
    Memory {
        front: Arc<dyn EnqueueBuffer>,
        queue: Arc<MemoryBuffer>,
    },
    Sqs(SqsBuffer),
}

impl Intake {
    fn memory(queue: Arc<MemoryBuffer>) -> Self {
        Self::Memory {
            front: queue.clone(),
            queue,
        }
    }
}

/// A wired room, before it serves (a clone shares the room, its store and buffer).
#[derive(Clone)]
pub struct LocalRoom {
    pub room: Arc<WaitingRoom>,
    intake: Intake,
    auth: AdminAuth,
    strategy_every: Duration,
    client_limits: ClientLimits,
    trusted_proxies: TrustedProxies,
}

impl LocalRoom {
    pub async fn build(settings: LocalSettings) -> Result<Self, Error> {
        let (store, intake): (Arc<dyn Store>, Intake) = match settings.store {
            LocalStore::Memory => (
                Arc::new(MemoryStore::new()),
                Intake::memory(Arc::new(MemoryBuffer::new(BUFFER_CAPACITY))),
            ),
            LocalStore::Durable { dir } => {
                let (store, recovered) = DurableStore::open(&dir).await?;
                let queue = Arc::new(MemoryBuffer::new(BUFFER_CAPACITY));
                let waiting = recovered.waiting.len();
                for request in recovered.waiting {
                    queue.push(request);
                }
                tracing::info!(
                    dir = %dir.display(),
                    changes = recovered.records,
                    waiting,
                    took_ms = recovered.took.as_millis() as u64,
                    "data directory replayed"
                );
                let front = Arc::new(store.buffer(queue.clone()));
                (Arc::new(store), Intake::Memory { front, queue })
            }
            LocalStore::Aws {
                aws,
                resources,
                create_missing,
            } => {
                let store = DynamoStore::new(&aws, resources.table);
                let queue = if create_missing {
                    if store.create_table_if_missing().await? {
                        tracing::info!(table = store.table(), "created the table");
                    }
                    SqsBuffer::ensure_queue(&aws, &resources.queue_url).await?
                } else {
                    SqsBuffer::new(&aws, resources.queue_url)
                };
                (Arc::new(store), Intake::Sqs(queue))
            }
        };
        let buffer: Arc<dyn EnqueueBuffer> = match &intake {
            Intake::Memory { front, .. } => front.clone(),
            Intake::Sqs(queue) => Arc::new(queue.clone()),
        };
        let keys = Arc::new(KeyRing::new(settings.signing_key, vec![]));
        let mut room = WaitingRoom::new(store, settings.clock, settings.cache)
            .with_buffer(buffer)
            .with_tokens(TokenIssuer::new(keys, settings.issuer));
        if let Some(passes) = settings.edge_passes {
            room = room.with_edge_passes(passes);
        }
        let room = Arc::new(room);
        for event_id in settings.events {
            room.ensure_event(EventConfig::new(event_id)).await?;
        }
        Ok(Self {
            room,
            intake,
            auth: AdminAuth::Key(settings.admin_key.into()),
            strategy_every: settings.strategy_every,
            client_limits: settings.client_limits,
            trusted_proxies: settings.trusted_proxies,
        })
    }

    /// The buffer enqueued visitors wait in, when the room is in this process (tests drain
    /// it themselves instead of serving).
    pub fn memory_buffer(&self) -> Option<Arc<MemoryBuffer>> {
        match &self.intake {
            Intake::Memory { queue, .. } => Some(queue.clone()),
            Intake::Sqs(_) => None,
        }
    }

    /// The full router: public API, admin API, the embedded pages, and the process's
    /// Prometheus metrics, which take the admin key as the admin API does (they tell traffic
    /// and error rates: not for everyone).
    pub fn router(&self) -> axum::Router {
        let api = http::limited_router(self.room.clone(), self.auth.clone(), self.client_limits);
        let metrics = axum::Router::new().route(
            "/metrics",
            axum::routing::get(|| async { crate::metrics::prometheus() }),
        );
        let all = api
            .merge(crate::web::routes())
            .merge(http::admin::require_admin(metrics, self.auth.clone()));
        http::client_address::resolve(all, self.trusted_proxies.clone())
    }

    /// Serves on `listener` until `shutdown` completes, with the consumer and strategy runner
    /// alongside; then stops within the listener's drain time: requests in flight finish, the
    /// consumer places every join still buffered, the runner finishes its pass.
    pub async fn serve(
        self,
        listener: Listener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> StopReport {
        let drain = listener.settings().drain_timeout;
        let stop = CancellationToken::new();
        let consumer = match &self.intake {
            Intake::Memory { queue, .. } => tokio::spawn(run_memory_consumer(
                self.room.clone(),
                queue.clone(),
                stop.clone(),
            )),
            Intake::Sqs(queue) => {
                tokio::spawn(poll_sqs(self.room.clone(), queue.clone(), stop.clone()))
            }
        };
        let runner = tokio::spawn(run_strategy_loop(
            self.room.clone(),
            self.strategy_every,
            stop.clone(),
        ));
        let stopped = listener.serve(self.router(), shutdown).await;
        // No request can enqueue any more: what the buffer holds is all there is to place.
        stop.cancel();
        let deadline = stopped.at + drain;
        let placed = match tokio::time::timeout_at(deadline, consumer).await {
            Ok(Ok(placed)) => placed,
            Ok(Err(error)) => {
                tracing::error!(%error, "the consumer failed while draining");
                0
            }
            Err(_) => {
                tracing::error!("drain time over before the enqueue buffer was placed");
                0
            }
        };
        if tokio::time::timeout_at(deadline, runner).await.is_err() {
            tracing::warn!("drain time over during a strategy pass");
        }
        let report = StopReport {
            connections_cut: stopped.cut,
            placed_while_stopping: placed,
            unplaced: self.memory_buffer().map_or(0, |buffer| buffer.len()),
        };
        let mut lines = Vec::new();
        if let Ok(events) = self.room.events().await {
            for config in events {
                if let Ok(counters) = self.room.counters(&config.event_id).await {
                    lines.push((config.event_id, counters.queue_counter));
                }
            }
        }
        for (event_id, positions) in lines {
            tracing::info!(%event_id, positions, "positions given at stop");
        }
        if report.unplaced > 0 {
            tracing::error!(
                unplaced = report.unplaced,
                placed_while_stopping = report.placed_while_stopping,
                "stopped with joins answered 202 and never placed"
            );
        } else {
            tracing::info!(
                placed_while_stopping = report.placed_while_stopping,
                unplaced = 0,
                connections_cut = report.connections_cut,
                "stopped: every buffered join has a position"
            );
        }
        report
    }
}

/// What a stop left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopReport {
    /// Connections still busy when the drain time ran out.
    pub connections_cut: usize,
    /// Joins the consumer placed after the server stopped accepting.
    pub placed_while_stopping: u64,
    /// Joins left in the in-memory buffer (lost with the process): zero unless the drain time
    /// ran out.
    pub unplaced: usize,
}

/// What the consumer Lambda's event source mapping does on AWS, done locally: takes a batch
/// from the queue, assigns it, and deletes the messages it assigned. Failed messages stay on
/// the queue and come back after its visibility timeout; assignment is idempotent, so a
/// message deleted late (or twice delivered) still gets one position.
/// Messages stay on the queue across a stop, so on `stop` it only finishes the batch in hand.
async fn poll_sqs(room: Arc<WaitingRoom>, queue: SqsBuffer, stop: CancellationToken) -> u64 {
    loop {
        if stop.is_cancelled() {
            return 0;
        }
        let batch = match take_batch(&queue).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "cannot receive from the queue; retrying");
                pause(SQS_RETRY, &stop).await;
                continue;
            }
        };
        if batch.is_empty() {
            pause(SQS_IDLE, &stop).await;
            continue;
        }
        let requests: Vec<EnqueueRequest> = batch.iter().map(|m| m.request.clone()).collect();
        let report = room.assign_batch(&requests).await;
        let done: Vec<Received> = batch
            .into_iter()
            .enumerate()
            .filter(|(index, _)| report.failed.binary_search(index).is_err())
            .map(|(_, message)| message)
            .collect();
        if let Err(error) = queue.acknowledge(&done).await {
            tracing::warn!(%error, "cannot delete handled messages; they will be seen again");
        }
        if !report.failed.is_empty() {
            pause(SQS_RETRY, &stop).await;
        }
    }
}

/// Sleeps for `duration`, or less if `stop` comes first.
async fn pause(duration: Duration, stop: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = stop.cancelled() => {}
    }
}

/// Up to [`SQS_BATCH`] messages: receives until the queue answers with less than a full 10.
async fn take_batch(queue: &SqsBuffer) -> Result<Vec<Received>, BufferError> {
    let mut batch = Vec::new();
    while batch.len() < SQS_BATCH {
        let received = queue.receive(10, 0).await?;
        let full = received.len() == 10;
        batch.extend(received);
        if !full {
            break;
        }
    }
    Ok(batch)
}
