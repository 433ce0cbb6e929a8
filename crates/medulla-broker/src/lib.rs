//! `medulla-broker`: the Kafka protocol server.
//!
//! [`serve`] binds the listener and runs until told to stop. Inside, [`server`] accepts
//! connections, [`connection`] frames and orders requests, [`frame`] is the pure codec
//! (no I/O; the fuzz target drives it), and `handlers` holds one module per API family,
//! each a function from a decoded request to a response over a [`Broker`] handle.
//!
//! Design trade-off: every request's side effects run in the order the connection sent
//! them, but waiting (fsync, long polls) runs concurrently, so pipelined `acks=all`
//! produce requests share fsyncs without ever being applied out of order.
//!
//! Invariant: this crate owns the only Kafka listener; it knows nothing of HTTP, FHIR or
//! schemas (beyond Confluent's 5-byte schema id prefix, checked through the
//! [`schema_validation::SchemaIdCheck`] trait a registry implements), and reaches storage
//! only through `medulla-log`.
#![deny(missing_docs)]

pub mod audit;
pub mod authz;
pub mod broker;
pub mod config;
pub mod connection;
pub mod dynamic;
pub mod error;
pub mod fds;
pub mod frame;
pub mod groups;
pub mod handlers;
mod internal_topics;
pub mod limits;
pub mod listeners;
pub mod sasl_config;
pub mod sasl_state;
pub mod schema_validation;
pub mod server;
pub mod session;
pub mod txn;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use broker::Broker;
pub use config::{BrokerConfig, ConfigError};
use medulla_log::{LogManager, LogManagerOptions, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A started broker: its bound addresses and the handle to stop it.
pub struct Running {
    /// The address the first listener is bound to.
    pub local_addr: SocketAddr,
    /// Every listener, in `listeners` order.
    pub listeners: Vec<RunningListener>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    log: Arc<LogManager>,
    groups: Arc<groups::coordinator::Coordinator>,
    broker: Broker,
}

/// A listener that is accepting connections.
#[derive(Debug, Clone)]
pub struct RunningListener {
    /// Its name (`PLAINTEXT`, `SSL`, …).
    pub name: String,
    /// Its security protocol.
    pub protocol: session::SecurityProtocol,
    /// The address it is bound to.
    pub addr: SocketAddr,
}

/// Why the broker cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be opened or is locked.
    #[error("{0}")]
    Storage(#[from] medulla_log::LogError),
    /// The listener cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The SCRAM credentials or the JWKS file cannot be read, or a SASL setting is wrong.
    #[error("SASL: {0}")]
    Sasl(String),
    /// A TLS listener's certificates or keys cannot be used.
    #[error("listener {listener}: {source}")]
    Tls {
        /// The listener's name.
        listener: String,
        /// Why.
        source: medulla_auth::tls::TlsError,
    },
    /// `acls.json` cannot be read (never started with no ACLs instead).
    #[error("{0}")]
    Acls(#[from] medulla_auth::acl::AclError),
    /// `meta.properties` cannot be read or written.
    #[error("cannot read or write {path}: {source}")]
    Meta {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Opens storage, binds the listener and starts serving in the background.
pub async fn start(config: BrokerConfig) -> Result<Running, StartError> {
    let open_files_limit = fds::raise_limit();
    tracing::info!(open_files_limit, "open-files limit");
    std::fs::create_dir_all(&config.data_dir).map_err(medulla_log::LogError::Io)?;
    let meta_error = |source| StartError::Meta {
        path: config.data_dir.display().to_string(),
        source,
    };
    // Dynamic broker configs (set through AlterConfigs) override the static ones.
    let dynamic = dynamic::DynamicConfigs::load(&config.data_dir).map_err(meta_error)?;
    let topic_defaults = medulla_log::config::broker_log_defaults(&dynamic.effective(&config))?;
    let log = LogManager::open(LogManagerOptions {
        data_dir: config.data_dir.clone(),
        fsync: config.fsync,
        broker_defaults: topic_defaults,
        clock: Arc::new(SystemClock),
        recovery_threads: config.recovery_threads,
    })?;
    log.start_cleaner(config.cleaner.clone())?;
    let group_store = Arc::new(groups::store::GroupStore::open(
        log.clone(),
        config.offsets_topic_partitions,
        config.offsets_topic_segment_bytes,
    )?);
    let coordinator = Arc::new(groups::coordinator::Coordinator::open(
        group_store,
        config.group.clone(),
        config.consumer_group.clone(),
    ));
    let (txn_store, txn_loaded) = txn::store::TxnStore::open(
        log.clone(),
        config.txn.log_partitions,
        config.txn.log_segment_bytes,
    )?;
    let producer_ids =
        txn::producer_ids::ProducerIds::open(&config.data_dir).map_err(meta_error)?;
    let txn = Arc::new(txn::coordinator::TxnCoordinator::open(
        txn_store,
        txn_loaded,
        producer_ids,
        log.clone(),
        coordinator.clone(),
        config.txn.clone(),
        Arc::new(SystemClock),
    ));
    // The audit trail exists before anything that could be audited happens.
    let audit = audit::AuditLog::open(log.clone())?;
    // Transactions a crash left prepared are completed before anyone is served.
    txn.recover().await;
    let cluster_id =
        broker::load_or_create_cluster_id(&config.data_dir, config.node_id).map_err(|source| {
            StartError::Meta {
                path: config
                    .data_dir
                    .join("meta.properties")
                    .display()
                    .to_string(),
                source,
            }
        })?;
    let mut bound = Vec::new();
    let mut endpoints = Vec::new();
    let mut running_listeners = Vec::new();
    for l in &config.listeners {
        // Certificates are read before anything binds: a bad one is a start error.
        let tls = match &l.tls {
            Some(tls) => Some(Arc::new(
                medulla_auth::tls::TlsSettings::new(tls.clone()).map_err(|source| {
                    StartError::Tls {
                        listener: l.listener.name.clone(),
                        source,
                    }
                })?,
            )),
            None => None,
        };
        let bind = l.listener.bind_addr().map_err(|e| StartError::Bind {
            addr: format!("{}:{}", l.listener.host, l.listener.port),
            source: std::io::Error::other(e),
        })?;
        let socket = TcpListener::bind(bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: bind.to_string(),
                source,
            })?;
        let local_addr = socket.local_addr().map_err(|source| StartError::Bind {
            addr: bind.to_string(),
            source,
        })?;
        let (host, port) = advertised(l.advertised.as_ref(), local_addr);
        endpoints.push(broker::Endpoint {
            listener: l.listener.name.clone(),
            host,
            port,
        });
        running_listeners.push(RunningListener {
            name: l.listener.name.clone(),
            protocol: l.protocol,
            addr: local_addr,
        });
        bound.push(server::BoundListener {
            name: Arc::from(l.listener.name.as_str()),
            protocol: l.protocol,
            socket,
            tls,
            principal_mapper: l.principal_mapper.clone(),
        });
    }
    let Some(local_addr) = running_listeners.first().map(|l| l.addr) else {
        return Err(StartError::Bind {
            addr: String::new(),
            source: std::io::Error::other("no listener configured"),
        });
    };
    let sasl = sasl_state::SaslContext::open(&config).map_err(StartError::Sasl)?;
    let authorizer = authz::open(&config)?;
    let (tx, rx) = watch::channel(false);
    let broker = Broker::new(
        config.clone(),
        log.clone(),
        cluster_id,
        endpoints,
        rx.clone(),
        dynamic,
        coordinator.clone(),
        txn.clone(),
        audit,
        sasl,
        authorizer,
    );
    let retention = tokio::spawn(retention_loop(
        log.clone(),
        config.retention_check_interval_ms,
        rx.clone(),
    ));
    let group_timers = tokio::spawn(group_timers(
        coordinator.clone(),
        Duration::from_millis(config.offsets_retention_ms),
        Duration::from_millis(config.offsets_retention_check_interval_ms),
        rx.clone(),
    ));
    let txn_timers = tokio::spawn(txn_timers(txn, rx.clone()));
    let serving = broker.clone();
    let task = tokio::spawn(async move {
        server::run(serving, bound, rx).await;
        retention.abort();
        group_timers.abort();
        txn_timers.abort();
    });
    Ok(Running {
        local_addr,
        listeners: running_listeners,
        shutdown: tx,
        task,
        log,
        groups: coordinator,
        broker,
    })
}

/// What Metadata advertises for a listener: its `advertised.listeners` entry if set,
/// else the bound address. A wildcard bind advertises the machine's host name (never
/// `localhost`).
fn advertised(advertised: Option<&config::Listener>, local: SocketAddr) -> (String, u16) {
    if let Some(a) = advertised {
        let port = if a.port == 0 { local.port() } else { a.port };
        if !a.host.is_empty() {
            return (a.host.clone(), port);
        }
    }
    if local.ip().is_unspecified() {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| local.ip().to_string());
        return (host, local.port());
    }
    (local.ip().to_string(), local.port())
}

async fn retention_loop(
    log: Arc<LogManager>,
    interval_ms: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(interval_ms));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let log = log.clone();
        match tokio::task::spawn_blocking(move || log.enforce_retention()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(segments = n, "retention deleted segments"),
            Ok(Err(e)) => tracing::error!(error = %e, "retention failed"),
            Err(e) => tracing::error!(error = %e, "retention task failed"),
        }
    }
}

/// Session and rebalance deadlines of every group, checked every
/// [`limits::GROUP_TICK_MS`]; offset expiry every `offsets.retention.check.interval.ms`.
async fn group_timers(
    coordinator: Arc<groups::coordinator::Coordinator>,
    retention: Duration,
    check_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(limits::GROUP_TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expiry = tokio::time::interval(check_every);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    expiry.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => coordinator.tick().await,
            _ = expiry.tick() => coordinator.expire_offsets(retention).await,
            _ = shutdown.changed() => return,
        }
    }
}

/// The transaction coordinator's timers: timed-out transactions
/// (`transaction.abort.timed.out.transaction.cleanup.interval.ms`), idle transactional ids
/// (`transaction.remove.expired.transaction.cleanup.interval.ms`) and idle producer ids
/// (`producer.id.expiration.check.interval.ms`).
async fn txn_timers(
    txn: Arc<txn::coordinator::TxnCoordinator>,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = |ms: u64| {
        let mut t = tokio::time::interval(Duration::from_millis(ms));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    };
    let config = txn.config().clone();
    let mut abort = every(config.abort_timed_out_interval_ms);
    let mut expire_ids = every(config.remove_expired_interval_ms);
    let mut expire_producers = every(config.producer_id_expiration_check_interval_ms);
    // The first tick of an interval is immediate: skip it, as Kafka's schedulers wait one
    // period first.
    abort.tick().await;
    expire_ids.tick().await;
    expire_producers.tick().await;
    loop {
        tokio::select! {
            _ = abort.tick() => txn.abort_timed_out().await,
            _ = expire_ids.tick() => {
                txn.expire_ids().await;
            }
            _ = expire_producers.tick() => txn.expire_producers().await,
            _ = shutdown.changed() => return,
        }
    }
}

impl Running {
    /// The broker's shared state: what the platform services of the same process use
    /// for the security model (credentials, ACLs, the audit trail).
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The storage engine, for in-process tests that reach under the protocol.
    pub fn log(&self) -> &Arc<LogManager> {
        &self.log
    }

    /// The group coordinator (the transaction coordinator ends transactional offsets
    /// through it).
    pub fn groups(&self) -> &Arc<groups::coordinator::Coordinator> {
        &self.groups
    }

    /// Stops accepting, lets in-flight requests finish, flushes and closes the log.
    pub async fn shutdown(self) -> Result<(), medulla_log::LogError> {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || log.close())
            .await
            .map_err(|e| medulla_log::LogError::Io(std::io::Error::other(e.to_string())))?
    }
}
