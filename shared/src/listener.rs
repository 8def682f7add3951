//! The public face of the local server: binds a TCP port, optionally speaks TLS (rustls, with
//! HTTP/2 offered by ALPN), and serves any axum service under the limits a server exposed to
//! the internet needs: a deadline on each request head and each request body, an idle timeout,
//! a cap on open connections, and a graceful stop that lets requests in flight finish within a
//! bounded drain time. The room's listener and the gate's listener are both this piece.
//!
//! Plain TCP speaks HTTP/1.1 only: sniffing for an HTTP/2 preface would leave a silent client
//! outside every timeout, and browsers reach HTTP/2 through TLS anyway.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::STRICT_TRANSPORT_SECURITY;
use axum::http::{HeaderValue, Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How often the certificate files are checked for a change (SIGHUP reloads at once).
const TLS_POLL: Duration = Duration::from_secs(5);

/// Pause after a failed accept (out of file descriptors, say) before the next one.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// At most one "connection limit reached" line per this long.
const LIMIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// What browsers are told to remember once they have reached the room over TLS: one year.
const HSTS: &str = "max-age=31536000";

/// Largest HTTP/1.1 read buffer, and so largest request head, per connection.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long a connection asked to close gracefully may take once it has nothing in flight.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Requests one HTTP/2 connection may have in flight at once.
const MAX_STREAMS: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("TLS certificate and key do not make a server configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{0} must be above zero")]
    Zero(&'static str),
}

/// The PEM files of a TLS certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The limits a listener holds every connection to.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// A request head (and the TLS handshake before the first one) must arrive within this.
    /// On HTTP/1.1 it also bounds the wait for the next request on a kept-alive connection.
    pub header_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// A request body must arrive in full within this, counted from its head.
    pub body_timeout: Duration,
    /// Connections open at once; past it, new ones wait in the kernel's listen backlog.
    pub max_connections: usize,
    /// On stop, how long requests in flight have to finish before their connections are cut.
    pub drain_timeout: Duration,
    pub tls: Option<TlsFiles>,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            drain_timeout: Duration::from_secs(15),
            tls: None,
        }
    }
}

impl ListenerSettings {
    fn check(&self) -> Result<(), ListenerError> {
        let durations = [
            (self.header_timeout, "the header timeout"),
            (self.idle_timeout, "the idle timeout"),
            (self.body_timeout, "the body timeout"),
            (self.drain_timeout, "the drain timeout"),
        ];
        if let Some((_, name)) = durations.iter().find(|(d, _)| d.is_zero()) {
            return Err(ListenerError::Zero(name));
        }
        if self.max_connections == 0 {
            return Err(ListenerError::Zero("the connection limit"));
        }
        Ok(())
    }
}

/// What a stop did, for the caller's own drain and its log.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    /// When the shutdown signal came: the caller's drain deadline counts from here.
    pub at: Instant,
    /// Connections still busy at the end of the drain time, and cut.
    pub cut: usize,
}

/// A bound port with its limits and TLS configuration, ready to serve.
pub struct Listener {
    tcp: TcpListener,
    settings: ListenerSettings,
    tls: Option<Arc<TlsConfig>>,
}

impl Listener {
    pub async fn bind(
        address: SocketAddr,
        settings: ListenerSettings,
    ) -> Result<Self, ListenerError> {
        let tcp = TcpListener::bind(address)
            .await
            .map_err(|source| ListenerError::Bind { address, source })?;
        Self::from_tcp(tcp, settings)
    }

    /// A listener on a socket already bound; loads the TLS files now, so that a bad pair fails
    /// at start.
    pub fn from_tcp(tcp: TcpListener, settings: ListenerSettings) -> Result<Self, ListenerError> {
        settings.check()?;
        let tls = match &settings.tls {
            Some(files) => Some(Arc::new(TlsConfig::load(files.clone())?)),
            None => None,
        };
        Ok(Self { tcp, settings, tls })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// `https` or `http`, for the addresses a server prints.
    pub fn scheme(&self) -> &'static str {
        if self.is_tls() { "https" } else { "http" }
    }

    pub fn settings(&self) -> &ListenerSettings {
        &self.settings
    }

    /// Serves `service` until `shutdown` completes; then stops accepting, lets requests in
    /// flight finish (idle connections close at once), and cuts what is still open after the
    /// drain time.
    pub async fn serve<S>(self, service: S, shutdown: impl Future<Output = ()>) -> Stopped
    where
        S: HttpService,
    {
        let Listener { tcp, settings, tls } = self;
        let settings = Arc::new(settings);
        let stop = CancellationToken::new();
        if let Some(tls) = &tls {
            tokio::spawn(tls.clone().watch(stop.clone()));
        }
        let limit = Arc::new(Semaphore::new(settings.max_connections));
        let mut connections = JoinSet::new();
        let mut limit_logged: Option<Instant> = None;
        tokio::pin!(shutdown);
        loop {
            let permit = match limit.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    if limit_logged.is_none_or(|at| at.elapsed() >= LIMIT_LOG_EVERY) {
                        tracing::warn!(
                            max_connections = settings.max_connections,
                            "connection limit reached: new connections wait in the listen backlog until one closes"
                        );
                        limit_logged = Some(Instant::now());
                    }
                    tokio::select! {
                        _ = &mut shutdown => break,
                        Some(_) = connections.join_next() => continue,
                    }
                }
            };
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(_) = connections.join_next() => continue,
                accepted = tcp.accept() => match accepted {
                    Ok((stream, peer)) => {
                        connections.spawn(connection(
                            stream,
                            peer,
                            Conn {
                                service: service.clone(),
                                settings: settings.clone(),
                                tls: tls.clone(),
                                stop: stop.clone(),
                            },
                            permit,
                        ));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(ACCEPT_RETRY).await;
                    }
                },
            }
        }
        let at = Instant::now();
        // Closing the socket refuses new connections at once rather than leaving them queued.
        drop(tcp);
        stop.cancel();
        tracing::info!(
            open = connections.len(),
            "stopped accepting; letting requests in flight finish"
        );
        let drained = tokio::time::timeout_at(at + settings.drain_timeout, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        let cut = connections.len();
        if drained.is_err() {
            tracing::warn!(cut, "drain time over: cutting the connections still busy");
            connections.shutdown().await;
        }
        Stopped { at, cut }
    }
}

/// What a listener serves: an axum `Router`, or any tower service answering as one does.
pub trait HttpService:
    tower::Service<
        Request<Body>,
        Response = Response<Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> HttpService for S where
    S: tower::Service<
            Request<Body>,
            Response = Response<Body>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// What every connection task shares.
struct Conn<S> {
    service: S,
    settings: Arc<ListenerSettings>,
    tls: Option<Arc<TlsConfig>>,
    stop: CancellationToken,
}

async fn connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    conn: Conn<S>,
    _permit: OwnedSemaphorePermit,
) where
    S: HttpService,
{
    // Small answers go out at once rather than waiting for more to send.
    let _ = stream.set_nodelay(true);
    let Some(tls) = conn.tls.clone() else {
        return drive(TokioIo::new(stream), peer, false, &conn).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
    let handshake = tokio::select! {
        handshake = tokio::time::timeout(conn.settings.header_timeout, acceptor.accept(stream)) => handshake,
        _ = conn.stop.cancelled() => return,
    };
    match handshake {
        Ok(Ok(stream)) => {
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            drive(TokioIo::new(stream), peer, h2, &conn).await;
        }
        Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// Runs HTTP/1.1 or HTTP/2 on an established connection until the peer leaves, the connection
/// stays idle too long, or the server stops.
async fn drive<S, I>(io: TokioIo<I>, peer: SocketAddr, h2: bool, conn: &Conn<S>)
where
    S: HttpService,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let tls = conn.tls.is_some();
    let service = {
        let service = conn.service.clone();
        let activity = activity.clone();
        let body_timeout = conn.settings.body_timeout;
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let busy = activity.begin();
            let (mut parts, body) = request.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            let request =
                Request::from_parts(parts, Body::new(DeadlineBody::new(body, body_timeout)));
            let service = service.clone();
            async move {
                let _busy = busy;
                let mut response = service.oneshot(request).await?;
                if tls {
                    response
                        .headers_mut()
                        .entry(STRICT_TRANSPORT_SECURITY)
                        .or_insert(HeaderValue::from_static(HSTS));
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    let settings = &conn.settings;
    if h2 {
        let http = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_STREAMS)
            .serve_connection(io, service);
        run(http, &activity, settings, &conn.stop, peer).await;
    } else {
        let http = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            .serve_connection(io, service);
        run(http, &activity, settings, &conn.stop, peer).await;
    }
}

async fn run<C, E>(
    http: C,
    activity: &Activity,
    settings: &ListenerSettings,
    stop: &CancellationToken,
    peer: SocketAddr,
) where
    C: GracefulConnection<Error = E>,
    E: std::fmt::Display,
{
    tokio::pin!(http);
    // Set once a graceful close has begun. An HTTP/2 close waits for the peer to answer a
    // ping: a peer that never does is cut once the connection has no request in flight.
    let mut closing_since: Option<Instant> = None;
    loop {
        let grace_over = async {
            match closing_since {
                Some(at) => tokio::time::sleep_until(at + CLOSE_GRACE).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = http.as_mut() => {
                if let Err(error) = done {
                    tracing::debug!(%error, %peer, "connection ended");
                }
                return;
            }
            _ = stop.cancelled(), if closing_since.is_none() => {
                http.as_mut().graceful_shutdown();
                closing_since = Some(Instant::now());
            }
            _ = activity.idle_past(settings.header_timeout, settings.idle_timeout), if closing_since.is_none() => {
                tracing::debug!(%peer, "closing an idle connection");
                http.as_mut().graceful_shutdown();
                closing_since = Some(Instant::now());
            }
            _ = grace_over => {
                if activity.in_flight.load(Ordering::SeqCst) == 0 {
                    tracing::debug!(%peer, "cutting a connection that did not close");
                    return;
                }
                closing_since = Some(Instant::now());
            }
        }
    }
}

/// Requests in flight on one connection, and since when it has had none.
///
/// Nothing here wakes the connection's task: a request's start and end only touch atomics, and
/// the idle watcher looks at them when its own timer fires (and sets a later one if the
/// connection was busy meanwhile): a timer, a lock or a wake-up per request would weigh on the
/// cached reads, whose whole cost is a few tens of thousands of instructions.
struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    served: AtomicBool,
    /// When the last request ended, in nanoseconds after `born` (0: none yet).
    idle_since_ns: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since_ns: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if !self.served.load(Ordering::Relaxed) {
            self.served.store(true, Ordering::SeqCst);
        }
        Busy(self.clone())
    }

    /// Completes once the connection has had no request in flight for `idle` (or, before its
    /// first request, for `first`: a connection must send one within the header timeout).
    async fn idle_past(&self, first: Duration, idle: Duration) {
        loop {
            let deadline = if self.in_flight.load(Ordering::SeqCst) > 0 {
                // Busy: look again one idle time from now; the request's end is recorded.
                Instant::now() + idle
            } else if self.served.load(Ordering::SeqCst) {
                let since = Duration::from_nanos(self.idle_since_ns.load(Ordering::SeqCst));
                self.born + since + idle
            } else {
                self.born + first
            };
            if deadline <= Instant::now() && self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// One request in flight; its drop marks the end.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        let since = u64::try_from(activity.born.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // Recorded before the count drops, so a watcher that sees no request in flight sees
        // this end time (or a later one).
        activity.idle_since_ns.fetch_max(since, Ordering::SeqCst);
        activity.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A request body that must arrive in full by a deadline set when its head arrived: a client
/// trickling a byte now and then cannot hold the request open.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    timeout: Duration,
    // Made on the first read: most requests have no body and never need one.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Instant::now() + timeout,
            timeout,
            sleep: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0:?}")]
struct BodyTimeout(Duration);

impl http_body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(this.timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The TLS configuration in use, swapped whole when the files change or on SIGHUP.
struct TlsConfig {
    files: TlsFiles,
    current: ArcSwap<rustls::ServerConfig>,
    stamp: Mutex<Option<(SystemTime, SystemTime)>>,
}

impl TlsConfig {
    fn load(files: TlsFiles) -> Result<Self, ListenerError> {
        let config = server_config(&files)?;
        let stamp = stamp(&files);
        Ok(Self {
            files,
            current: ArcSwap::from_pointee(config),
            stamp: Mutex::new(stamp),
        })
    }

    fn current(&self) -> Arc<rustls::ServerConfig> {
        self.current.load_full()
    }

    /// Reloads the pair on SIGHUP and when either file's modification time changes; a pair
    /// that does not load leaves the one in use in place.
    async fn watch(self: Arc<Self>, stop: CancellationToken) {
        #[cfg(unix)]
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGHUP; the certificate files are still polled");
                None
            }
        };
        loop {
            #[cfg(unix)]
            let hup = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hup = std::future::pending::<Option<()>>();
            let forced = tokio::select! {
                _ = stop.cancelled() => return,
                _ = hup => true,
                _ = tokio::time::sleep(TLS_POLL) => false,
            };
            let now = stamp(&self.files);
            let seen = self.stamp.lock().map(|seen| *seen).unwrap_or(None);
            // The stamp moves only with a pair that loaded: a renewal caught half-written is
            // tried again at the next poll.
            if (forced || seen != now)
                && self.reload()
                && let Ok(mut seen) = self.stamp.lock()
            {
                *seen = now;
            }
        }
    }

    fn reload(&self) -> bool {
        match server_config(&self.files) {
            Ok(config) => {
                self.current.store(Arc::new(config));
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(error) => {
                tracing::error!(%error, "TLS certificate not reloaded; the previous one stays in use");
                false
            }
        }
    }
}

fn stamp(files: &TlsFiles) -> Option<(SystemTime, SystemTime)> {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Some((modified(&files.cert)?, modified(&files.key)?))
}

fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, ListenerError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| ListenerError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let pem_error = |path: &Path, reason: String| ListenerError::Pem {
        path: path.to_owned(),
        reason,
    };
    let cert_pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&files.cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error(&files.cert, "no certificate in the file".into()));
    }
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| pem_error(&files.key, format!("no private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `idle_past` once; true when it has completed.
    fn done(activity: &Activity, first: Duration, idle: Duration) -> bool {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let future = activity.idle_past(first, idle);
        tokio::pin!(future);
        future.as_mut().poll(&mut cx).is_ready()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_after_the_header_timeout_before_its_first_request() {
        let activity = Activity::new();
        let (first, idle) = (Duration::from_secs(2), Duration::from_secs(5));
        tokio::time::timeout(
            first + Duration::from_millis(1),
            activity.idle_past(first, idle),
        )
        .await
        .expect("idle once the header timeout has passed with no request");
        let fresh = Activity::new();
        tokio::time::advance(first - Duration::from_millis(10)).await;
        assert!(!done(&fresh, first, idle));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_keeps_the_connection_and_the_idle_time_counts_from_its_end() {
        let activity = Arc::new(Activity::new());
        let (first, idle) = (Duration::from_secs(2), Duration::from_secs(5));
        let busy = activity.begin();
        let waiting = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_past(first, idle).await }
        });
        // A slow answer: far past both timeouts, the connection stays.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!waiting.is_finished());
        let ended = Instant::now();
        drop(busy);
        waiting.await.expect("idle watcher");
        assert_eq!(ended.elapsed(), idle);
    }
}
