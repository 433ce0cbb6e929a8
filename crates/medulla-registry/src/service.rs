//! Running a registry: open `_schemas` and `_dek_registry_keys` through the Kafka
//! client, catch up, serve HTTP.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use medulla_client::{ClientConfig, Identity, LogRecord, TopicLog};
use tokio::sync::oneshot;

use crate::dek::{DekRegistry, DekState};
use crate::leader::Leadership;
use crate::limits::{DekLimits, Limits};
use crate::registry::{BoxFuture, Log, Registry, apply_record};
use crate::state::State;

/// What `medulla serve` configures.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// `--registry-listen`.
    pub listen: SocketAddr,
    /// The Kafka cluster the state lives in (the embedded broker by default).
    pub kafka: ClientConfig,
    /// Confluent's `kafkastore.topic`, `_schemas`.
    pub topic: String,
    /// Confluent's `dek.registry.topic`, `_dek_registry_keys`.
    pub dek_topic: String,
    pub limits: Limits,
    pub dek_limits: DekLimits,
    /// How long opening (creating the topic, reading it to its end) may take.
    pub open_timeout: Duration,
    /// `HOST:PORT` other instances reach this one on (the listen address by default;
    /// an unspecified IP becomes 127.0.0.1).
    pub advertised: Option<String>,
    /// Confluent's `leader.eligibility`.
    pub leader_eligible: bool,
    /// How long a write waits for an elected leader before 50004.
    pub leader_wait: Duration,
    /// Authentication, authorization and audit of every request (none: open, as
    /// Confluent's default).
    pub security: Option<crate::security::Security>,
    /// Serve HTTPS with these certificates (none: plain HTTP).
    pub tls: Option<Arc<medulla_auth::tls::TlsSettings>>,
}

impl RegistryConfig {
    pub fn new(listen: SocketAddr, kafka: ClientConfig) -> RegistryConfig {
        RegistryConfig {
            listen,
            kafka,
            topic: "_schemas".to_owned(),
            dek_topic: "_dek_registry_keys".to_owned(),
            limits: Limits::default(),
            dek_limits: DekLimits::default(),
            open_timeout: Duration::from_secs(60),
            advertised: None,
            leader_eligible: true,
            leader_wait: Duration::from_secs(30),
            security: None,
            tls: None,
        }
    }
}

struct KafkaLog(TopicLog);

impl Log for KafkaLog {
    fn append(&self, key: Vec<u8>, value: Option<Vec<u8>>) -> BoxFuture<'_, Result<i64, String>> {
        Box::pin(async move { self.0.append(key, value).await.map_err(|e| e.to_string()) })
    }
    fn sync(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.0.sync().await.map_err(|e| e.to_string()) })
    }
}

/// A started registry.
pub struct RunningRegistry {
    pub local_addr: SocketAddr,
    pub registry: Arc<Registry>,
    leadership: Arc<Leadership>,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningRegistry {
    /// Stops accepting, finishes requests in flight.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.leadership.stop().await;
        self.server
            .await
            .context("registry server task")?
            .context("registry server")?;
        Ok(())
    }
}

/// Opens the state (creating `_schemas` compacted with one partition when missing,
/// reading it to its end), then binds and serves. Answers nothing before the state is
/// complete.
pub async fn start(cfg: RegistryConfig) -> anyhow::Result<RunningRegistry> {
    let state = Arc::new(RwLock::new(State::new()));
    let feed = state.clone();
    let apply = Box::new(move |r: LogRecord| {
        apply_record(&feed, r.offset, r.key.as_deref(), r.value.as_deref());
    });
    let log = TopicLog::open(
        &cfg.kafka,
        &cfg.topic,
        &[("cleanup.policy", "compact")],
        apply,
        cfg.open_timeout,
    )
    .await
    .with_context(|| {
        format!(
            "cannot open the schema registry's topic {} at {}",
            cfg.topic, cfg.kafka.bootstrap
        )
    })?;
    let cluster_id = log.cluster_id().unwrap_or_default();
    let registry = Arc::new(Registry::new(
        state,
        Box::new(KafkaLog(log)),
        cfg.limits.clone(),
        cluster_id,
    ));
    let dek_state = Arc::new(RwLock::new(DekState::new()));
    let dek_feed = dek_state.clone();
    let dek_apply = Box::new(move |r: LogRecord| {
        crate::dek::apply_record(&dek_feed, r.offset, r.key.as_deref(), r.value.as_deref());
    });
    let dek_log = TopicLog::open(
        &cfg.kafka,
        &cfg.dek_topic,
        &[("cleanup.policy", "compact")],
        dek_apply,
        cfg.open_timeout,
    )
    .await
    .with_context(|| {
        format!(
            "cannot open the DEK registry's topic {} at {}",
            cfg.dek_topic, cfg.kafka.bootstrap
        )
    })?;
    let dek = Arc::new(DekRegistry::new(
        dek_state,
        Box::new(KafkaLog(dek_log)),
        cfg.dek_limits.clone(),
        cfg.limits.request_bytes_max,
    ));
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--registry-listen)", cfg.listen))?;
    let local_addr = listener.local_addr()?;
    let me = identity(&cfg, local_addr)?;
    let leadership = Leadership::start(
        cfg.kafka.clone(),
        me,
        cfg.leader_wait,
        cfg.limits.request_bytes_max,
    );
    let mut app = crate::api::router(registry.clone(), dek).layer(
        axum::middleware::from_fn_with_state(leadership.clone(), crate::leader::route_writes),
    );
    // Outermost: nothing is forwarded or run before it is authenticated and allowed.
    if let Some(security) = cfg.security.clone() {
        app = app.layer(axum::middleware::from_fn_with_state(
            security,
            crate::security::guard,
        ));
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let tls = cfg.tls.clone();
    let server = tokio::spawn(async move {
        match tls {
            Some(tls) => crate::https::serve(listener, app, tls, stopped).await,
            None => {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
            }
        }
    });
    Ok(RunningRegistry {
        local_addr,
        registry,
        leadership,
        stop,
        server,
    })
}

/// How this instance presents itself to the election.
fn identity(cfg: &RegistryConfig, local: SocketAddr) -> anyhow::Result<Identity> {
    let (host, port) = match &cfg.advertised {
        Some(a) => {
            let (h, p) = a
                .rsplit_once(':')
                .with_context(|| format!("registry advertised address {a:?} is not HOST:PORT"))?;
            let port = p
                .parse()
                .with_context(|| format!("registry advertised address {a:?}: bad port"))?;
            (h.to_owned(), port)
        }
        None if local.ip().is_unspecified() => ("127.0.0.1".to_owned(), local.port()),
        None => (local.ip().to_string(), local.port()),
    };
    Ok(Identity {
        host,
        port,
        // Forwarding between instances speaks plain HTTP only (reqwest is built without
        // TLS): several HTTPS instances elect a leader but cannot forward writes yet.
        scheme: if cfg.tls.is_some() { "https" } else { "http" }.to_owned(),
        leader_eligible: cfg.leader_eligible,
    })
}
