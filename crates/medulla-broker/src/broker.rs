//! The broker's shared state: one cheap-to-clone handle around `Arc<Shared>`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use medulla_log::LogManager;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::config::BrokerConfig;
use crate::dynamic::{self, DynamicConfigs, Scope};
use crate::groups::coordinator::Coordinator;
use crate::txn::coordinator::TxnCoordinator;

/// One listener's advertised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The listener's name.
    pub listener: String,
    /// The host clients are told to connect to.
    pub host: String,
    /// The port clients are told to connect to.
    pub port: u16,
}

/// Everything a request handler may touch. Clone freely.
#[derive(Clone)]
pub struct Broker {
    shared: Arc<Shared>,
}

struct Shared {
    config: BrokerConfig,
    log: Arc<LogManager>,
    cluster_id: String,
    /// Per listener, what Metadata tells its clients (the first is the default).
    endpoints: Vec<Endpoint>,
    shutdown: watch::Receiver<bool>,
    /// `queued.max.request.bytes` as permits (one per byte), when bounded.
    request_memory: Option<Arc<tokio::sync::Semaphore>>,
    /// Dynamic broker configs; the lock also serialises their changes.
    dynamic: Mutex<DynamicConfigs>,
    groups: Arc<Coordinator>,
    txn: Arc<TxnCoordinator>,
    audit: AuditLog,
    sasl: Arc<crate::sasl_state::SaslContext>,
    /// `None` when authorization is off (no `authorizer.class.name`).
    authorizer: Option<medulla_auth::acl::Authorizer>,
}

impl Broker {
    /// Builds the handle. `endpoints` (one per listener, at least one) are what
    /// Metadata tells clients.
    // One argument per shared subsystem, called once from `start`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: BrokerConfig,
        log: Arc<LogManager>,
        cluster_id: String,
        endpoints: Vec<Endpoint>,
        shutdown: watch::Receiver<bool>,
        dynamic: DynamicConfigs,
        groups: Arc<Coordinator>,
        txn: Arc<TxnCoordinator>,
        audit: AuditLog,
        sasl: crate::sasl_state::SaslContext,
        authorizer: Option<medulla_auth::acl::Authorizer>,
    ) -> Broker {
        let request_memory = config.queued_request_bytes_max.map(|bytes| {
            Arc::new(tokio::sync::Semaphore::new(
                bytes.min(tokio::sync::Semaphore::MAX_PERMITS),
            ))
        });
        Broker {
            shared: Arc::new(Shared {
                request_memory,
                config,
                log,
                cluster_id,
                endpoints,
                shutdown,
                dynamic: Mutex::new(dynamic),
                groups,
                txn,
                audit,
                sasl: Arc::new(sasl),
                authorizer,
            }),
        }
    }

    /// Records `event` in the audit trail (`_medulla_audit`) and returns once it is
    /// durable. An error means it could not be recorded: the operation it describes
    /// must then fail (answer with the error the caller maps it to), never proceed.
    pub async fn audit(
        &self,
        event: medulla_auth::audit::AuditEvent,
    ) -> Result<(), medulla_auth::audit::AuditError> {
        tracing::debug!(target: "medulla::audit", ?event, "audit");
        self.shared.audit.record(event).await
    }

    /// SASL mechanisms, SCRAM credentials and the failed-authentication back-off.
    pub fn sasl(&self) -> &crate::sasl_state::SaslContext {
        &self.shared.sasl
    }

    /// The authorizer and its ACLs; `None` when authorization is off.
    pub fn authorizer(&self) -> Option<&medulla_auth::acl::Authorizer> {
        self.shared.authorizer.as_ref()
    }

    /// The group coordinator (and through it, committed offsets).
    pub fn groups(&self) -> &Arc<Coordinator> {
        &self.shared.groups
    }

    /// The transaction coordinator (and producer ids).
    pub fn txn(&self) -> &Arc<TxnCoordinator> {
        &self.shared.txn
    }

    /// The dynamic broker configs in force.
    pub fn dynamic_configs(&self) -> DynamicConfigs {
        self.shared
            .dynamic
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes the dynamic configs of `scope` with `change`, validates the result against
    /// every topic, persists it and applies it (unless `validate_only`). Blocking: call
    /// it off the async workers. Errors are messages for INVALID_CONFIG.
    pub fn alter_dynamic(
        &self,
        scope: Scope,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), String>,
        validate_only: bool,
    ) -> Result<(), String> {
        let mut current = self
            .shared
            .dynamic
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut next = current.clone();
        change(next.scope_mut(scope))?;
        dynamic::check_keys(next.scope_mut(scope).keys().map(String::as_str))?;
        let effective = next.effective(&self.shared.config);
        let defaults =
            medulla_log::config::broker_log_defaults(&effective).map_err(|e| e.to_string())?;
        self.shared
            .log
            .set_broker_defaults(defaults.clone(), true)
            .map_err(|e| e.to_string())?;
        if validate_only {
            return Ok(());
        }
        next.store(&self.shared.config.data_dir)
            .map_err(|e| format!("cannot persist broker configs: {e}"))?;
        self.shared
            .log
            .set_broker_defaults(defaults, false)
            .map_err(|e| e.to_string())?;
        *current = next;
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.shared.config
    }

    /// The storage engine.
    pub fn log(&self) -> &Arc<LogManager> {
        &self.shared.log
    }

    /// `node.id`.
    pub fn node_id(&self) -> i32 {
        self.shared.config.node_id
    }

    /// The cluster id from `meta.properties`.
    pub fn cluster_id(&self) -> &str {
        &self.shared.cluster_id
    }

    /// The address clients of `listener` are told to connect to (Kafka answers with
    /// the endpoint of the listener a request came in on).
    pub fn endpoint(&self, listener: &str) -> (&str, u16) {
        let e = self
            .shared
            .endpoints
            .iter()
            .find(|e| e.listener == listener)
            .or(self.shared.endpoints.first());
        match e {
            Some(e) => (e.host.as_str(), e.port),
            None => ("", 0),
        }
    }

    /// The first listener's advertised host.
    pub fn advertised_host(&self) -> &str {
        self.shared
            .endpoints
            .first()
            .map_or("", |e| e.host.as_str())
    }

    /// The first listener's advertised port.
    pub fn advertised_port(&self) -> u16 {
        self.shared.endpoints.first().map_or(0, |e| e.port)
    }

    /// A receiver that turns `true` when the broker starts shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shared.shutdown.clone()
    }

    /// The broker-wide budget of request bytes (`queued.max.request.bytes`), if bounded.
    pub fn request_memory(&self) -> Option<&Arc<tokio::sync::Semaphore>> {
        self.shared.request_memory.as_ref()
    }
}

/// Reads `cluster.id` from `<data_dir>/meta.properties`, creating the file (with a new
/// Kafka-style 22-character base64url id) on first start. Written atomically.
pub fn load_or_create_cluster_id(data_dir: &Path, node_id: i32) -> std::io::Result<String> {
    let path = data_dir.join("meta.properties");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            for line in text.lines() {
                if let Some(id) = line.strip_prefix("cluster.id=") {
                    return Ok(id.trim().to_owned());
                }
            }
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} has no cluster.id", path.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = base64url_uuid(uuid::Uuid::new_v4());
            let text = format!(
                "#Medulla broker metadata\nversion=1\ncluster.id={id}\nnode.id={node_id}\n"
            );
            let tmp = data_dir.join("meta.properties.tmp");
            {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(text.as_bytes())?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(data_dir)?.sync_all()?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// Kafka's cluster-id form: the UUID's 16 bytes in unpadded base64url (22 chars).
fn base64url_uuid(id: uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_is_22_chars_and_stable_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_cluster_id(dir.path(), 1).unwrap();
        assert_eq!(a.len(), 22);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(load_or_create_cluster_id(dir.path(), 1).unwrap(), a);
    }
}
