//! The whole waiting room in one process: HTTP API and pages, the batch consumer and the
//! strategy runner, on the in-memory adapters. The `waiting-room` binary and the end-to-end
//! tests both start it through [`LocalRoom`], on a listener they choose.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::adapters::{MemoryBuffer, MemoryStore, SystemClock};
use crate::domain::{EventConfig, EventId};
use crate::error::Error;
use crate::http::{self, AdminAuth, ClientLimit};
use crate::ports::Clock;
use crate::service::{CacheSettings, WaitingRoom, run_memory_consumer, run_strategy_loop};
use crate::token::{KeyRing, SigningKey, TokenIssuer};

/// Visitors the in-memory buffer holds before enqueue answers 503.
const BUFFER_CAPACITY: usize = 1_000_000;

pub struct LocalSettings {
    pub admin_key: String,
    pub signing_key: SigningKey,
    pub issuer: String,
    pub events: Vec<EventId>,
    pub strategy_every: Duration,
    pub cache: CacheSettings,
    pub clock: Arc<dyn Clock>,
    /// Joins per client address; `None` for no limit.
    pub client_limit: Option<ClientLimit>,
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
            client_limit: Some(ClientLimit::default()),
        }
    }
}

/// A room wired to the memory adapters, before it serves.
pub struct LocalRoom {
    pub room: Arc<WaitingRoom>,
    pub buffer: Arc<MemoryBuffer>,
    pub store: MemoryStore,
    auth: AdminAuth,
    strategy_every: Duration,
    client_limit: Option<ClientLimit>,
}

impl LocalRoom {
    pub async fn build(settings: LocalSettings) -> Result<Self, Error> {
        let store = MemoryStore::new();
        let buffer = Arc::new(MemoryBuffer::new(BUFFER_CAPACITY));
        let keys = Arc::new(KeyRing::new(settings.signing_key, vec![]));
        let room = Arc::new(
            WaitingRoom::new(Arc::new(store.clone()), settings.clock, settings.cache)
                .with_buffer(buffer.clone())
                .with_tokens(TokenIssuer::new(keys, settings.issuer)),
        );
        for event_id in settings.events {
            room.ensure_event(EventConfig::new(event_id)).await?;
        }
        Ok(Self {
            room,
            buffer,
            store,
            auth: AdminAuth::Key(settings.admin_key.into()),
            strategy_every: settings.strategy_every,
            client_limit: settings.client_limit,
        })
    }

    /// The full router: public API, admin API and the embedded pages.
    pub fn router(&self) -> axum::Router {
        let api = match self.client_limit {
            Some(limit) => http::limited_router(self.room.clone(), self.auth.clone(), limit),
            None => http::router(self.room.clone(), self.auth.clone()),
        };
        api.merge(crate::web::routes()).route(
            "/metrics",
            axum::routing::get(|| async { crate::metrics::prometheus() }),
        )
    }

    /// Serves until `shutdown` completes, with the consumer and strategy runner alongside.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let consumer = tokio::spawn(run_memory_consumer(self.room.clone(), self.buffer.clone()));
        let runner = tokio::spawn(run_strategy_loop(self.room.clone(), self.strategy_every));
        // The peer address feeds the per-client join limit.
        let app = self
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        consumer.abort();
        runner.abort();
        result
    }
}
