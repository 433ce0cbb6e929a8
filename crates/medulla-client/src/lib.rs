//! `medulla-client`: how Medulla's platform services (the schema registry now, FHIR
//! later) use a Kafka cluster — the embedded broker over loopback, or any real cluster.
//!
//! - [`TopicLog`] is a replicated state log over a single-partition compacted topic, as
//!   Confluent's `KafkaStore` uses `_schemas`: every instance reads the topic from offset
//!   0 and applies each record in order; writes go through an idempotent `acks=all`
//!   producer and return once this instance's reader has applied them.
//! - [`Election`] elects one leader among a service's instances through a Kafka group
//!   with a custom protocol type, speaking the same bytes as Confluent Schema Registry's
//!   `SchemaRegistryCoordinator` (protocol type `sr`, sub-protocol `v0`, JSON identity
//!   and assignment), so Medulla and Confluent instances could share a group.
//!
//! ```no_run
//! # async fn f() -> Result<(), medulla_client::ClientError> {
//! use std::time::Duration;
//! use medulla_client::{ClientConfig, LogRecord, TopicLog};
//! let cfg = ClientConfig::new("127.0.0.1:9092");
//! let log = TopicLog::open(&cfg, "_schemas", &[("cleanup.policy", "compact")],
//!     Box::new(|r: LogRecord| println!("{} {:?}", r.offset, r.key)),
//!     Duration::from_secs(30)).await?;
//! let offset = log.append(b"k".to_vec(), Some(b"v".to_vec())).await?;
//! log.close().await;
//! # let _ = offset; Ok(()) }
//! ```
//!
//! Design trade-off: the state log and the topic admin go through librdkafka (the
//! `rdkafka` crate), the client every ecosystem already trusts for idempotence, retries,
//! TLS and SASL. librdkafka cannot join a group with a protocol type other than
//! `consumer`, so the election alone speaks the group protocol itself, with messages
//! encoded by `kafka-protocol` over a plain connection ([`wire`]); it is small (five
//! request kinds) and has one seam for the security settings to come.
//!
//! Invariant: this crate knows nothing of Medulla's storage or broker; it is a Kafka
//! client of any cluster and depends on neither `medulla-log` nor `medulla-broker`.
#![deny(missing_docs)]

pub mod election;
pub mod error;
pub mod limits;
pub mod properties;
pub mod sasl;
pub mod tls;
pub mod topic_log;
pub mod wire;

pub use election::{Election, GroupTimings, Identity, Leader};
pub use error::ClientError;
pub use topic_log::{LogRecord, TopicLog};

/// Where and how to connect: bootstrap servers plus extra librdkafka properties
/// (`security.protocol`, `sasl.*`, `ssl.*`, …), applied to every client this crate
/// creates: librdkafka's and [`wire`]'s alike.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `host:port[,host:port…]`.
    pub bootstrap: String,
    /// librdkafka properties, applied after this crate's own (so they win).
    pub properties: Vec<(String, String)>,
}

impl ClientConfig {
    /// A configuration with bootstrap servers and no extra properties.
    pub fn new(bootstrap: impl Into<String>) -> ClientConfig {
        ClientConfig {
            bootstrap: bootstrap.into(),
            properties: Vec::new(),
        }
    }

    /// A librdkafka configuration: bootstrap, then `defaults`, then the user's properties.
    pub(crate) fn rdkafka(&self, defaults: &[(&str, &str)]) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.properties {
            if !MEDULLA_ONLY_PROPERTIES.contains(&k.as_str()) {
                c.set(k, v);
            }
        }
        c
    }

    /// Adds a property (it wins over earlier ones of the same key).
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// The value of a user property, if set (the last one set wins).
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Properties [`wire`] reads that librdkafka does not know (it refuses unknown keys).
/// `sasl.oauthbearer.token` is a static token for the CLI; librdkafka gets its tokens
/// from `sasl.oauthbearer.method=oidc` instead.
const MEDULLA_ONLY_PROPERTIES: &[&str] = &["sasl.oauthbearer.token"];

/// The registry shares these across request handlers: they and their futures must be
/// `Send` (and the handles `Sync`).
#[allow(dead_code)]
fn _assert_thread_safe(log: &TopicLog, cfg: &ClientConfig) {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    send_sync(log);
    send(&log.append(Vec::new(), None));
    send(&log.sync());
    send(&Election::join(cfg, "g", "sr", unreachable_identity()));
    fn election_is_send_sync(e: &Election) {
        send_sync(e);
    }
    let _ = election_is_send_sync;
}

#[allow(dead_code)]
fn unreachable_identity() -> Identity {
    Identity {
        host: String::new(),
        port: 0,
        scheme: String::new(),
        leader_eligible: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafka_gets_the_properties_it_knows_and_the_last_one_wins() {
        let cfg = ClientConfig::new("h:1")
            .with_property("security.protocol", "SASL_SSL")
            .with_property("sasl.mechanism", "OAUTHBEARER")
            .with_property("sasl.oauthbearer.token", "a.b.c")
            .with_property("security.protocol", "SSL");
        let rd = cfg.rdkafka(&[("security.protocol", "plaintext")]);
        assert_eq!(rd.get("bootstrap.servers"), Some("h:1"));
        assert_eq!(rd.get("security.protocol"), Some("SSL"));
        assert_eq!(rd.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(rd.get("sasl.oauthbearer.token"), None);
        assert_eq!(cfg.property("security.protocol"), Some("SSL"));
    }
}
