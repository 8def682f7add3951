//! `waiting-room`: the whole waiting room in one local process, in memory, journaled to a data
//! directory, or on DynamoDB and SQS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use waiting_room_core::adapters::durable::SIGNING_KEY_FILE;
use waiting_room_core::adapters::{AwsConfig, AwsSettings};
use waiting_room_core::domain::EventId;
use waiting_room_core::gate::{self, Gate, GateSettings};
use waiting_room_core::http::admin::generate_admin_key;
use waiting_room_core::http::{ClientLimit, ClientLimits, TrustedProxies};
use waiting_room_core::listener::{Listener, ListenerSettings, TlsFiles};
use waiting_room_core::server::{LocalRoom, LocalSettings, LocalStore};
use waiting_room_core::token::{KeyAlgorithm, SigningKey};

#[derive(Parser)]
#[command(
    name = "waiting-room",
    version,
    about = "A virtual waiting room, on AWS Lambda or in one local process"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the waiting room locally: API, visitor page, control panel, consumer and strategies.
    Serve(Box<ServeArgs>),
    /// Simulate an event on AWS: time until everyone is let in, the first limit reached,
    /// requests per service and the cost per 1,000 admitted visitors.
    Simulate(Box<waiting_room_capacity::simulate::SimulateArgs>),
    /// Write a new signing key (PKCS#8 PEM) to a file.
    Keygen {
        #[arg(long, default_value = "RS256")]
        algorithm: KeyAlgorithm,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    #[arg(long, env = "WR_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Bearer key for the admin API; generated and printed when not given.
    #[arg(long, env = "WR_ADMIN_KEY")]
    admin_key: Option<String>,
    /// Events to create at start (repeatable).
    #[arg(
        long = "event",
        env = "WR_EVENTS",
        value_delimiter = ',',
        default_value = "demo"
    )]
    events: Vec<String>,
    /// Keep the room in this directory (created if missing): positions, counters, serving
    /// moves, tokens, ended sessions, codes, the audit trail, joins not yet placed and the
    /// signing key survive a stop, a crash or `kill -9`, and a restart on the same directory
    /// goes on where the room stopped. Without it the room lives in memory only.
    #[arg(long, env = "WR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Signing key (PEM); created there if missing. Without it the key is the data
    /// directory's, or one generated per run.
    #[arg(long, env = "WR_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Algorithm of a generated key.
    #[arg(long, env = "WR_KEY_ALGORITHM", default_value = "RS256")]
    algorithm: KeyAlgorithm,
    /// The `iss` claim of issued tokens.
    #[arg(long, env = "WR_ISSUER", default_value = "waiting-room-local")]
    issuer: String,
    /// Seconds between two passes of the strategy runner.
    #[arg(long, env = "WR_STRATEGY_EVERY", default_value_t = 2)]
    strategy_every: u64,
    /// Joins (enqueue, code redemption) refilled per second per client address, and as many
    /// token claims; 0 turns the limit off (e.g. for load tests from one address).
    #[arg(long, env = "WR_JOIN_RATE", default_value_t = ClientLimit::JOINS.per_second)]
    join_rate: f64,
    /// Joins (and claims) a client address may make at once.
    #[arg(long, env = "WR_JOIN_BURST", default_value_t = ClientLimit::JOINS.burst)]
    join_burst: f64,
    /// Look-ups of a request (`/queue_num`, `/queue_pos_expiry`, `/status`) refilled per
    /// second per client address; 0 turns the limit off.
    #[arg(long, env = "WR_LOOKUP_RATE", default_value_t = ClientLimit::LOOKUPS.per_second)]
    lookup_rate: f64,
    /// Look-ups a client address may make at once.
    #[arg(long, env = "WR_LOOKUP_BURST", default_value_t = ClientLimit::LOOKUPS.burst)]
    lookup_burst: f64,
    /// A proxy in front of the room (an address or a CIDR block, repeatable): behind it the
    /// client is the rightmost `X-Forwarded-For` entry that is not a trusted proxy. Without
    /// it, the client is the connection's peer and `X-Forwarded-For` is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "WR_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,
    /// Where positions, counters and tokens live: in this process, or in DynamoDB with
    /// enqueues buffered on SQS (region, credentials and `AWS_ENDPOINT_URL` from the
    /// environment, as for any AWS SDK).
    #[arg(long, env = "WR_STORE", value_enum, default_value_t = StoreKind::Memory)]
    store: StoreKind,
    /// DynamoDB table (with `--store dynamodb`).
    #[arg(long, env = AwsSettings::TABLE_VAR, required_if_eq("store", "dynamodb"))]
    table: Option<String>,
    /// SQS queue URL (with `--store dynamodb`).
    #[arg(long, env = AwsSettings::QUEUE_URL_VAR, required_if_eq("store", "dynamodb"))]
    queue_url: Option<String>,
    /// Create the table and the queue if they are missing (for an emulator such as moto; on
    /// AWS the SAM template creates them).
    #[arg(long, env = "WR_CREATE_RESOURCES")]
    create_resources: bool,
    /// Run the gate on this address: a reverse proxy in front of `--upstream` that lets in
    /// only visitors holding a pass from the room.
    #[arg(long, env = "WR_GATE_LISTEN", requires = "upstream")]
    gate_listen: Option<SocketAddr>,
    /// The application behind the gate (`http://host:port`).
    #[arg(long, env = "WR_UPSTREAM", requires = "gate_listen")]
    upstream: Option<String>,
    /// The event whose passes open the gate (default: the first `--event`).
    #[arg(long, env = "WR_GATE_EVENT")]
    gate_event: Option<String>,
    /// Path prefixes that reach the application without a pass, e.g. `/static/` or
    /// `/healthz` (repeatable).
    #[arg(long = "gate-skip", env = "WR_GATE_SKIP", value_delimiter = ',')]
    gate_skip: Vec<String>,
    /// The gate's address as browsers reach it (default: `http://` + `--gate-listen`).
    #[arg(long, env = "WR_GATE_URL")]
    gate_url: Option<String>,
    /// The room's address as browsers reach it, for the gate's redirects to the visitor
    /// page (default: `http://` + `--listen`).
    #[arg(long, env = "WR_ROOM_URL")]
    room_url: Option<String>,
    /// A request head (and the TLS handshake) must arrive within this, or the connection is
    /// closed; on HTTP/1.1 it also bounds the wait for the next request (`10s`, `500ms`, `2m`).
    #[arg(long, env = "WR_HEADER_TIMEOUT", default_value = "10s", value_parser = duration)]
    header_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    #[arg(long, env = "WR_IDLE_TIMEOUT", default_value = "60s", value_parser = duration)]
    idle_timeout: Duration,
    /// A request body must arrive in full within this after its head.
    #[arg(long, env = "WR_BODY_TIMEOUT", default_value = "30s", value_parser = duration)]
    body_timeout: Duration,
    /// Connections open at once; past it new ones wait in the listen backlog (keep it under
    /// the process's open-file limit, `ulimit -n`).
    #[arg(long, env = "WR_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// On SIGTERM or Ctrl-C: time to finish requests in flight, place every buffered join and
    /// end the strategy pass before the process exits.
    #[arg(long, env = "WR_DRAIN_TIMEOUT", default_value = "15s", value_parser = duration)]
    drain_timeout: Duration,
    /// TLS certificate chain (PEM); with `--tls-key`, serves HTTPS with HTTP/2. Reloaded on
    /// SIGHUP and when the files change.
    #[arg(long, env = "WR_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "WR_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// A duration flag: a number with `ms`, `s` or `m` (seconds when bare), above zero.
fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 10s, 500ms or 2m"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(value),
        "s" => Duration::from_secs(value),
        "m" => Duration::from_secs(value.saturating_mul(60)),
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    if duration.is_zero() {
        return Err("must be above zero".into());
    }
    Ok(duration)
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StoreKind {
    Memory,
    Dynamodb,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // The server logs what it does; the other commands print their results and only warn.
    let default_filter = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Simulate(args) => waiting_room_capacity::simulate::run(&args).await,
        Command::Keygen { algorithm, out } => keygen(algorithm, &out),
    };
    if let Err(message) = result {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn keygen(algorithm: KeyAlgorithm, out: &std::path::Path) -> Result<(), String> {
    let key = SigningKey::generate(algorithm).map_err(|e| e.to_string())?;
    write_private(out, key.private_pem())?;
    println!("wrote {algorithm:?} key {} to {}", key.kid, out.display());
    Ok(())
}

fn write_private(path: &std::path::Path, contents: &str) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn load_key(args: &ServeArgs) -> Result<SigningKey, String> {
    let in_data_dir = args.data_dir.as_ref().map(|dir| dir.join(SIGNING_KEY_FILE));
    match args.key_file.as_ref().or(in_data_dir.as_ref()) {
        Some(path) if path.exists() => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            SigningKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
        }
        Some(path) => {
            let key = SigningKey::generate(args.algorithm).map_err(|e| e.to_string())?;
            write_private(path, key.private_pem())?;
            Ok(key)
        }
        None => SigningKey::generate(args.algorithm).map_err(|e| e.to_string()),
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    if let Some(dir) = &args.data_dir {
        if args.store == StoreKind::Dynamodb {
            return Err(
                "--data-dir keeps the room in this process: not with --store dynamodb".into(),
            );
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let signing_key = load_key(&args)?;
    // A key the operator chose is theirs to know: only a generated one is printed.
    let (admin_key, generated) = match args.admin_key.clone() {
        Some(key) if key.trim().is_empty() => return Err("--admin-key must not be empty".into()),
        Some(key) => (key, false),
        None => (generate_admin_key(), true),
    };
    let events = args
        .events
        .iter()
        .map(|e| EventId::parse(e).map_err(|e| format!("--event: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let first_event = events.first().cloned();
    let kid = signing_key.kid.clone();
    let mut settings = LocalSettings::new(admin_key.clone(), signing_key);
    settings.issuer = args.issuer.clone();
    settings.events = events;
    settings.strategy_every = Duration::from_secs(args.strategy_every.max(1));
    let limit = |per_second: f64, burst: f64| {
        (per_second > 0.0).then_some(ClientLimit {
            burst: burst.max(1.0),
            per_second,
        })
    };
    settings.client_limits = ClientLimits {
        joins: limit(args.join_rate, args.join_burst),
        lookups: limit(args.lookup_rate, args.lookup_burst),
    };
    settings.trusted_proxies = TrustedProxies::parse(&args.trusted_proxies[..])
        .map_err(|e| format!("--trusted-proxy: {e}"))?;
    settings.store = match (args.store, args.table.clone(), args.queue_url.clone()) {
        (StoreKind::Dynamodb, Some(table), Some(queue_url)) => LocalStore::Aws {
            aws: AwsConfig::from_env().await,
            resources: AwsSettings { table, queue_url },
            create_missing: args.create_resources,
        },
        (StoreKind::Dynamodb, _, _) => {
            return Err("--store dynamodb needs --table and --queue-url".into());
        }
        (StoreKind::Memory, _, _) => match &args.data_dir {
            Some(dir) => LocalStore::Durable { dir: dir.clone() },
            None => LocalStore::Memory,
        },
    };
    let local = LocalRoom::build(settings)
        .await
        .map_err(|e| e.to_string())?;
    let listener_settings = ListenerSettings {
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        body_timeout: args.body_timeout,
        max_connections: args.max_connections as usize,
        drain_timeout: args.drain_timeout,
        tls: match (args.tls_cert.clone(), args.tls_key.clone()) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        },
    };
    let listener = Listener::bind(args.listen, listener_settings.clone())
        .await
        .map_err(|e| e.to_string())?;
    let base = format!(
        "{}://{}",
        listener.scheme(),
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let event = first_event
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_default();
    println!("waiting room ready");
    println!("  visitor page   {base}/waiting-room.html?event_id={event}");
    println!("  control panel  {base}/control-panel.html");
    println!("  API            {base}  (JWKS at {base}/.well-known/jwks.json, key id {kid})");
    if generated {
        println!("  admin key      {admin_key}  (generated for this run)");
    } else {
        println!("  admin key      as given (--admin-key or WR_ADMIN_KEY)");
    }
    match (args.store, &args.table, &args.queue_url, &args.data_dir) {
        (StoreKind::Dynamodb, Some(table), Some(queue_url), _) => {
            println!("  store          DynamoDB table {table}, SQS queue {queue_url}");
        }
        (_, _, _, Some(dir)) => println!("  store          data directory {}", dir.display()),
        _ => println!(
            "  store          memory: gone when the process stops (--data-dir DIR keeps it)"
        ),
    }
    let signal = stop_signal().map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    // Ctrl-C or SIGTERM stops the room and the gate together.
    let (stop, stopped) = tokio::sync::watch::channel(());
    let gate = match (args.gate_listen, &args.upstream) {
        (Some(gate_listen), Some(upstream)) => {
            let event = match &args.gate_event {
                Some(id) => EventId::parse(id).map_err(|e| format!("--gate-event: {e}"))?,
                None => first_event
                    .clone()
                    .ok_or("--gate-listen needs an event to guard (--event)")?,
            };
            // The gate faces the same internet as the room: same timeouts, cap and TLS pair.
            let gate_listener = Listener::bind(gate_listen, listener_settings)
                .await
                .map_err(|e| format!("gate: {e}"))?;
            let gate_base = match &args.gate_url {
                Some(url) => url.trim_end_matches('/').to_owned(),
                None => format!(
                    "{}://{}",
                    gate_listener.scheme(),
                    gate_listener.local_addr().map_err(|e| e.to_string())?
                ),
            };
            let room_base = args.room_url.as_deref().unwrap_or(&base);
            let mut settings = GateSettings::new(
                event.clone(),
                upstream.clone(),
                format!("{}/waiting-room.html", room_base.trim_end_matches('/')),
            );
            settings.skip = args.gate_skip.clone();
            settings.https = gate_listener.is_tls() || gate_base.starts_with("https://");
            let gate = Gate::new(local.room.clone(), settings).map_err(|e| e.to_string())?;
            gate::point_event_at(&local.room, &event, &gate_base)
                .await
                .map_err(|e| format!("cannot point event {event} at the gate: {e}"))?;
            println!("  gate           {gate_base}  (event {event}, in front of {upstream})");
            let app = gate::router(std::sync::Arc::new(gate));
            let mut stopped = stopped;
            Some(tokio::spawn(async move {
                gate_listener
                    .serve(app, async move {
                        let _ = stopped.changed().await;
                    })
                    .await
            }))
        }
        _ => None,
    };
    tracing::info!(
        listen = %args.listen,
        tls = listener.is_tls(),
        header_timeout = ?args.header_timeout,
        idle_timeout = ?args.idle_timeout,
        body_timeout = ?args.body_timeout,
        max_connections = args.max_connections,
        drain_timeout = ?args.drain_timeout,
        "serving"
    );
    let report = local
        .serve(listener, async move {
            signal.await;
            let _ = stop.send(());
        })
        .await;
    if let Some(gate) = gate {
        gate.await.map_err(|e| format!("gate: {e}"))?;
    }
    if report.unplaced > 0 {
        return Err(format!(
            "stopped with {} joins never placed (drain time too short?)",
            report.unplaced
        ));
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (what `docker stop`, systemd and Kubernetes send).
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        #[cfg(unix)]
        let term = term.recv();
        #[cfg(not(unix))]
        let term = std::future::pending::<Option<()>>();
        let signal = tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
            _ = term => "SIGTERM",
        };
        tracing::info!(signal, "stopping");
    })
}
