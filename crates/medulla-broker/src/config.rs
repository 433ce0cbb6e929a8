//! Broker configuration with Apache Kafka's key names, meanings and defaults.
//!
//! Input is a flat `server.properties`-style map (the config file merged with
//! `--override`s). Every key is one of: a Kafka broker key Medulla uses (same meaning,
//! same default, except where [`BROKER_KEYS`] says otherwise), a Kafka key Medulla
//! deliberately does not use (accepted with a warning naming why), or a Medulla key
//! under the `medulla.` prefix. Anything else is an error at start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use medulla_log::{CleanerConfig, ConfigEntry, ConfigSource, FsyncPolicy};

use crate::limits;

/// A broker key: its name, Kafka's default (or Medulla's, documented), its Kafka type
/// code for DescribeConfigs (1 BOOLEAN, 2 STRING, 3 INT, 5 LONG, 6 DOUBLE, 7 LIST, 9 PASSWORD), doc.
pub struct KeyDef {
    /// Key name.
    pub name: &'static str,
    /// Default value (`None` = null).
    pub default: Option<&'static str>,
    /// Kafka's DescribeConfigs type code.
    pub config_type: i8,
    /// One line of documentation.
    pub doc: &'static str,
}

const fn key(
    name: &'static str,
    default: Option<&'static str>,
    config_type: i8,
    doc: &'static str,
) -> KeyDef {
    KeyDef {
        name,
        default,
        config_type,
        doc,
    }
}

/// The broker keys Medulla uses.
pub const BROKER_KEYS: &[KeyDef] = &[
    key(
        "node.id",
        Some("1"),
        3,
        "The node id of this broker (Medulla is a single node; Kafka requires it, Medulla defaults it to 1).",
    ),
    key(
        "broker.id",
        None,
        3,
        "Alias of node.id kept for old configs.",
    ),
    key(
        "listeners",
        Some("PLAINTEXT://127.0.0.1:9092"),
        7,
        "Listener URIs NAME://host:port, comma-separated (names and non-zero ports unique). Medulla's default binds loopback only.",
    ),
    key(
        "advertised.listeners",
        None,
        7,
        "Listener URIs given to clients, per listener name; a listener not named here advertises its bound address (never localhost).",
    ),
    key(
        "listener.security.protocol.map",
        Some(crate::listeners::DEFAULT_PROTOCOL_MAP),
        7,
        "Listener name to security protocol map.",
    ),
    key(
        "ssl.keystore.type",
        Some("JKS"),
        2,
        "Keystore format; Medulla reads PEM only (JKS and PKCS12 are refused at start).",
    ),
    key(
        "ssl.keystore.location",
        None,
        2,
        "PEM file with the listener's certificate chain and private key; re-read when it changes.",
    ),
    key(
        "ssl.keystore.certificate.chain",
        None,
        9,
        "The certificate chain as inline PEM (with ssl.keystore.key).",
    ),
    key(
        "ssl.keystore.key",
        None,
        9,
        "The private key as inline PEM (with ssl.keystore.certificate.chain).",
    ),
    key(
        "ssl.key.password",
        None,
        9,
        "Password of an encrypted private key (encrypted keys are refused: decrypt them first).",
    ),
    key(
        "ssl.truststore.type",
        Some("JKS"),
        2,
        "Truststore format; Medulla reads PEM only.",
    ),
    key(
        "ssl.truststore.location",
        None,
        2,
        "PEM file with the CA certificates client certificates must chain to; re-read when it changes.",
    ),
    key(
        "ssl.truststore.certificates",
        None,
        9,
        "The trusted CA certificates as inline PEM.",
    ),
    key(
        "ssl.client.auth",
        Some("none"),
        2,
        "Client certificate authentication: required, requested or none.",
    ),
    key(
        "ssl.enabled.protocols",
        Some("TLSv1.2,TLSv1.3"),
        7,
        "TLS versions served (nothing older than TLSv1.2).",
    ),
    key(
        "ssl.cipher.suites",
        None,
        7,
        "Cipher suites by IANA name; empty = the defaults of rustls' ring provider.",
    ),
    key(
        "ssl.principal.mapping.rules",
        Some("DEFAULT"),
        2,
        "Rules mapping a client certificate's subject (RFC 2253) to a user name: RULE:pattern/replacement/[LU], DEFAULT.",
    ),
    key("log.dirs", None, 7, "The data directory (one directory)."),
    key(
        "log.dir",
        Some("./medulla-data"),
        2,
        "The data directory if log.dirs is not set.",
    ),
    key(
        "num.recovery.threads.per.data.dir",
        Some("2"),
        3,
        "Threads that open (and after a crash recover) the partitions at start and flush them at shutdown.",
    ),
    key(
        "num.partitions",
        Some("1"),
        3,
        "Default partition count of auto-created topics.",
    ),
    key(
        "default.replication.factor",
        Some("1"),
        3,
        "Replication factor of auto-created topics (always 1 on a single node).",
    ),
    key(
        "auto.create.topics.enable",
        Some("true"),
        1,
        "Create a topic when a client asks Metadata for an unknown one.",
    ),
    key(
        "authorizer.class.name",
        Some(""),
        2,
        "Turns authorization on when set: org.apache.kafka.metadata.authorizer.StandardAuthorizer, kafka.security.authorizer.AclAuthorizer or medulla (one authorizer, Kafka's rules).",
    ),
    key(
        "super.users",
        None,
        2,
        "Principals allowed everything, separated by ';' (User:admin;User:ops).",
    ),
    key(
        "allow.everyone.if.no.acl.found",
        Some("false"),
        1,
        "Whether a resource no ACL matches is open to everyone (never the audit topic).",
    ),
    key(
        "delete.topic.enable",
        Some("true"),
        1,
        "Allow DeleteTopics.",
    ),
    key(
        "message.max.bytes",
        Some("1048588"),
        3,
        "Largest record batch size allowed (topic default of max.message.bytes).",
    ),
    key(
        "socket.request.max.bytes",
        Some("104857600"),
        3,
        "Largest request frame accepted; a larger frame closes the connection.",
    ),
    key(
        "queued.max.request.bytes",
        Some("536870912"),
        3,
        "Bytes of request frames being read or handled, across all connections, before Medulla stops reading new ones (-1: unbounded, Kafka's default; Medulla bounds it by default). At least socket.request.max.bytes.",
    ),
    key(
        "offsets.topic.num.partitions",
        Some("50"),
        3,
        "Partitions of the internal topic __consumer_offsets (fixed once it exists).",
    ),
    key(
        "offsets.topic.segment.bytes",
        Some("104857600"),
        3,
        "Segment size of __consumer_offsets (small, so that compaction has sealed segments to clean).",
    ),
    key(
        "offsets.retention.minutes",
        Some("10080"),
        3,
        "Committed offsets of a group that has been empty this long (of a simple group: offsets not committed for this long) are deleted.",
    ),
    key(
        "offsets.retention.check.interval.ms",
        Some("600000"),
        5,
        "How often offsets are checked for expiry.",
    ),
    key(
        "offset.metadata.max.bytes",
        Some("4096"),
        3,
        "Largest metadata string an offset commit may carry.",
    ),
    key(
        "group.initial.rebalance.delay.ms",
        Some("3000"),
        3,
        "How long the first rebalance of an empty group waits for more members to join.",
    ),
    key(
        "group.min.session.timeout.ms",
        Some("6000"),
        3,
        "Smallest session timeout a group member may ask for.",
    ),
    key(
        "group.max.session.timeout.ms",
        Some("1800000"),
        3,
        "Largest session timeout a group member may ask for.",
    ),
    key(
        "group.max.size",
        Some("2147483647"),
        3,
        "Most members one consumer group may have.",
    ),
    key(
        "group.consumer.session.timeout.ms",
        Some("45000"),
        3,
        "Session timeout of consumer-protocol (KIP-848) group members.",
    ),
    key(
        "group.consumer.heartbeat.interval.ms",
        Some("5000"),
        3,
        "Heartbeat interval given to consumer-protocol (KIP-848) group members.",
    ),
    key(
        "group.consumer.assignors",
        Some("uniform,range"),
        7,
        "Server-side assignors of consumer-protocol groups, the first being the default (Kafka's class names are accepted too).",
    ),
    key(
        "group.consumer.max.size",
        Some("2147483647"),
        3,
        "Most members one consumer-protocol group may have.",
    ),
    key(
        "transaction.max.timeout.ms",
        Some("900000"),
        3,
        "Largest transaction.timeout.ms a transactional producer may ask for (InitProducerId beyond it: INVALID_TRANSACTION_TIMEOUT).",
    ),
    key(
        "transaction.state.log.num.partitions",
        Some("50"),
        3,
        "Partitions of the internal topic __transaction_state (fixed once it exists).",
    ),
    key(
        "transaction.state.log.segment.bytes",
        Some("104857600"),
        3,
        "Segment size of __transaction_state (small, so that compaction has sealed segments to clean).",
    ),
    key(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Some("10000"),
        3,
        "How often open transactions are checked against their timeout (a timed-out one is aborted and its producer fenced).",
    ),
    key(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        Some("3600000"),
        3,
        "How often idle transactional ids are checked for expiry.",
    ),
    key(
        "transactional.id.expiration.ms",
        Some("604800000"),
        3,
        "A transactional id with no transaction open and no activity for this long is forgotten.",
    ),
    key(
        "transaction.partition.verification.enable",
        Some("true"),
        1,
        "Refuse a transactional batch for a partition that is not in the producer's open transaction (KIP-890).",
    ),
    key(
        "producer.id.expiration.ms",
        Some("86400000"),
        3,
        "A producer id idle this long (no open transaction) is forgotten by every partition.",
    ),
    key(
        "producer.id.expiration.check.interval.ms",
        Some("600000"),
        3,
        "How often partitions forget idle producer ids.",
    ),
    key(
        "connections.max.idle.ms",
        Some("600000"),
        5,
        "Close connections idle for this long.",
    ),
    key(
        "max.connections",
        Some("10000"),
        3,
        "Most client connections at once (Kafka's default is unbounded; Medulla's is 10000).",
    ),
    key(
        "log.retention.check.interval.ms",
        Some("300000"),
        5,
        "How often retention is applied.",
    ),
    key(
        "log.retention.ms",
        None,
        5,
        "Default retention.ms of topics.",
    ),
    key(
        "log.retention.minutes",
        None,
        3,
        "Default retention in minutes if log.retention.ms is unset.",
    ),
    key(
        "log.retention.hours",
        Some("168"),
        3,
        "Default retention in hours if neither ms nor minutes is set.",
    ),
    key(
        "log.retention.bytes",
        Some("-1"),
        5,
        "Default retention.bytes of topics.",
    ),
    key(
        "log.segment.bytes",
        Some("1073741824"),
        3,
        "Default segment.bytes of topics.",
    ),
    key("log.roll.ms", None, 5, "Default segment.ms of topics."),
    key(
        "log.roll.hours",
        Some("168"),
        3,
        "Default segment roll time in hours if log.roll.ms is unset.",
    ),
    key("log.roll.jitter.ms", None, 5, "Default segment.jitter.ms."),
    key(
        "log.roll.jitter.hours",
        Some("0"),
        3,
        "Default segment jitter in hours.",
    ),
    key(
        "log.cleanup.policy",
        Some("delete"),
        7,
        "Default cleanup.policy of topics.",
    ),
    key(
        "log.index.interval.bytes",
        Some("4096"),
        3,
        "Default index.interval.bytes of topics.",
    ),
    key(
        "log.index.size.max.bytes",
        Some("10485760"),
        3,
        "Default segment.index.bytes of topics.",
    ),
    key(
        "log.message.timestamp.type",
        Some("CreateTime"),
        2,
        "Default message.timestamp.type of topics.",
    ),
    key(
        "log.message.timestamp.before.max.ms",
        Some("9223372036854775807"),
        5,
        "Default message.timestamp.before.max.ms.",
    ),
    key(
        "log.message.timestamp.after.max.ms",
        Some("3600000"),
        5,
        "Default message.timestamp.after.max.ms.",
    ),
    key(
        "log.segment.delete.delay.ms",
        Some("60000"),
        5,
        "Default file.delete.delay.ms.",
    ),
    key(
        "log.flush.interval.messages",
        Some("9223372036854775807"),
        5,
        "Default flush.messages (Medulla's durability is medulla.log.fsync.policy).",
    ),
    key(
        "log.flush.interval.ms",
        None,
        5,
        "Default flush.ms (Medulla's durability is medulla.log.fsync.policy).",
    ),
    key("log.preallocate", Some("false"), 1, "Default preallocate."),
    key(
        "log.cleaner.delete.retention.ms",
        Some("86400000"),
        5,
        "Default delete.retention.ms.",
    ),
    key(
        "log.cleaner.min.compaction.lag.ms",
        Some("0"),
        5,
        "Default min.compaction.lag.ms.",
    ),
    key(
        "log.cleaner.max.compaction.lag.ms",
        Some("9223372036854775807"),
        5,
        "Default max.compaction.lag.ms.",
    ),
    key(
        "log.cleaner.min.cleanable.ratio",
        Some("0.5"),
        6,
        "Default min.cleanable.dirty.ratio.",
    ),
    key(
        "log.cleaner.enable",
        Some("true"),
        1,
        "Run the log cleaner, which compacts topics whose cleanup.policy includes compact.",
    ),
    key(
        "log.cleaner.threads",
        Some("1"),
        3,
        "Log cleaner threads (0 cleans nothing).",
    ),
    key(
        "log.cleaner.io.max.bytes.per.second",
        Some("1.7976931348623157E308"),
        6,
        "Bytes per second the cleaner threads may read and write together.",
    ),
    key(
        "log.cleaner.dedupe.buffer.size",
        Some("134217728"),
        5,
        "Memory for the cleaner's key maps, shared between the threads; a pass cleans as far as its map reaches.",
    ),
    key(
        "log.cleaner.backoff.ms",
        Some("15000"),
        5,
        "How long the cleaner sleeps when no partition needs cleaning.",
    ),
    key(
        "compression.type",
        Some("producer"),
        2,
        "Default compression.type of topics.",
    ),
    key(
        "min.insync.replicas",
        Some("1"),
        3,
        "Default min.insync.replicas.",
    ),
    key(
        "unclean.leader.election.enable",
        Some("false"),
        1,
        "Default unclean.leader.election.enable.",
    ),
    // SASL (issue 6). Kafka's keys and defaults except sasl.enabled.mechanisms (GSSAPI in
    // Kafka, which Medulla does not offer).
    key(
        "sasl.enabled.mechanisms",
        Some("PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"),
        7,
        "SASL mechanisms served on SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (GSSAPI is refused). Medulla's default is PLAIN,SCRAM-SHA-256,SCRAM-SHA-512, plus OAUTHBEARER when sasl.oauthbearer.jwks.endpoint.url is set.",
    ),
    key(
        "sasl.jaas.config",
        None,
        9,
        "JAAS configuration; for PLAIN, org.apache.kafka.common.security.plain.PlainLoginModule with user_NAME=\"password\" options defines static users. listener.name.<listener>.plain.sasl.jaas.config overrides it per listener.",
    ),
    key(
        "connections.max.reauth.ms",
        Some("0"),
        5,
        "Longest SASL session before the client must re-authenticate (KIP-368); 0: no limit beyond the credential's own expiry.",
    ),
    key(
        "connection.failed.authentication.delay.ms",
        Some("100"),
        3,
        "Delay before answering a failed authentication and closing the connection; Medulla doubles it per further failure from the same address, up to 5 s.",
    ),
    key(
        "sasl.oauthbearer.jwks.endpoint.url",
        None,
        2,
        "JWKS of the keys OAUTHBEARER tokens are signed with: a file:// URL (re-read when the file changes). http(s) is not supported yet.",
    ),
    key(
        "sasl.oauthbearer.expected.audience",
        None,
        7,
        "Audiences an OAUTHBEARER token's aud claim must contain one of (unchecked when unset).",
    ),
    key(
        "sasl.oauthbearer.expected.issuer",
        None,
        2,
        "Issuer an OAUTHBEARER token's iss claim must equal (unchecked when unset).",
    ),
    key(
        "sasl.oauthbearer.sub.claim.name",
        Some("sub"),
        2,
        "Claim holding the principal name of an OAUTHBEARER token.",
    ),
    key(
        "sasl.oauthbearer.clock.skew.seconds",
        Some("30"),
        3,
        "Clock skew allowed when checking an OAUTHBEARER token's exp and nbf.",
    ),
    key(
        "medulla.log.fsync.policy",
        Some("always"),
        2,
        "When data is fsynced: always (before acks=all is answered, group commit), interval, never.",
    ),
    key(
        "medulla.log.fsync.interval.ms",
        Some("1000"),
        5,
        "Background fsync period when medulla.log.fsync.policy=interval.",
    ),
    key(
        "medulla.connection.inflight.max",
        Some("64"),
        3,
        "Requests one connection may have in flight before Medulla stops reading from it.",
    ),
];

/// Kafka broker keys Medulla accepts and deliberately does not use, with the reason
/// printed in the start-up warning.
pub const IGNORED_KAFKA_KEYS: &[(&str, &str)] = &[
    (
        "zookeeper.connect",
        "Medulla has no ZooKeeper (nor has Kafka 4)",
    ),
    (
        "zookeeper.connection.timeout.ms",
        "Medulla has no ZooKeeper",
    ),
    ("process.roles", "Medulla is one node with no KRaft quorum"),
    (
        "controller.quorum.voters",
        "Medulla is one node with no KRaft quorum",
    ),
    (
        "controller.quorum.bootstrap.servers",
        "Medulla is one node with no KRaft quorum",
    ),
    (
        "controller.listener.names",
        "Medulla is one node with no controller listener",
    ),
    (
        "inter.broker.listener.name",
        "Medulla is one node: there is no inter-broker traffic",
    ),
    (
        "ssl.protocol",
        "Medulla negotiates the versions of ssl.enabled.protocols",
    ),
    (
        "ssl.keystore.password",
        "PEM keystores have no store password (an encrypted key would use ssl.key.password)",
    ),
    (
        "ssl.truststore.password",
        "PEM truststores have no password",
    ),
    (
        "ssl.endpoint.identification.algorithm",
        "the broker does not verify client host names",
    ),
    (
        "ssl.keymanager.algorithm",
        "Medulla's TLS is rustls, not JSSE",
    ),
    (
        "ssl.trustmanager.algorithm",
        "Medulla's TLS is rustls, not JSSE",
    ),
    (
        "ssl.secure.random.implementation",
        "Medulla's TLS is rustls, not JSSE",
    ),
    ("ssl.provider", "Medulla's TLS is rustls, not JSSE"),
    (
        "num.network.threads",
        "Medulla runs on one tokio runtime sized to the machine",
    ),
    (
        "num.io.threads",
        "Medulla runs on one tokio runtime sized to the machine",
    ),
    ("num.replica.fetchers", "Medulla does not replicate"),
    (
        "socket.send.buffer.bytes",
        "Medulla leaves socket buffers to the OS",
    ),
    (
        "socket.receive.buffer.bytes",
        "Medulla leaves socket buffers to the OS",
    ),
    (
        "queued.max.requests",
        "Medulla bounds in-flight requests per connection (medulla.connection.inflight.max)",
    ),
    (
        "offsets.topic.replication.factor",
        "Medulla does not replicate",
    ),
    (
        "transaction.state.log.replication.factor",
        "Medulla does not replicate",
    ),
    (
        "transaction.state.log.min.isr",
        "Medulla does not replicate",
    ),
    (
        "transaction.state.log.load.buffer.size",
        "Medulla loads the transaction log in 1 MiB reads",
    ),
];

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key neither Kafka nor Medulla defines.
    #[error(
        "unknown configuration key {0:?} (Medulla uses Kafka's broker key names; its own keys start with \"medulla.\")"
    )]
    UnknownKey(String),
    /// A known key with a value that does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
}

/// One listener: a name and a bind address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Listener name, e.g. `PLAINTEXT`.
    pub name: String,
    /// Host as written (may be empty = all interfaces).
    pub host: String,
    /// Port (0 = pick one).
    pub port: u16,
}

/// The validated broker configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The keys as given (config file, then overrides), validated.
    pub given: BTreeMap<String, String>,
    /// `node.id`.
    pub node_id: i32,
    /// `listeners`, with each one's protocol, advertised address and TLS settings.
    pub listeners: Vec<crate::listeners::ListenerConfig>,
    /// The SASL settings of each listener, by listener name (the `sasl.*`,
    /// `connections.max.reauth.ms` and `connection.failed.authentication.delay.ms` keys,
    /// with Kafka's `listener.name.<l>.` overrides for mechanisms and PLAIN's users).
    pub sasl: BTreeMap<String, crate::sasl_config::SaslSettings>,
    /// `log.dirs` (or `log.dir`).
    pub data_dir: PathBuf,
    /// `num.partitions`.
    pub num_partitions: u32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `socket.request.max.bytes`.
    pub request_bytes_max: usize,
    /// `queued.max.request.bytes`: `None` when unbounded (-1).
    pub queued_request_bytes_max: Option<usize>,
    /// `max.connections`.
    pub connections_max: usize,
    /// `medulla.connection.inflight.max`.
    pub inflight_per_connection_max: usize,
    /// `connections.max.idle.ms`.
    pub connections_idle_max_ms: u64,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: u32,
    /// `offsets.topic.segment.bytes`.
    pub offsets_topic_segment_bytes: u64,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// The `group.*` keys.
    pub group: crate::groups::classic::GroupConfig,
    /// The `group.consumer.*` keys (KIP-848 groups).
    pub consumer_group: crate::groups::consumer::ConsumerConfig,
    /// `offsets.retention.minutes`, in milliseconds.
    pub offsets_retention_ms: u64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: u64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// The `transaction.*`, `transactional.id.*` and `producer.id.*` keys.
    pub txn: crate::txn::TxnConfig,
    /// `medulla.log.fsync.policy` with `medulla.log.fsync.interval.ms`.
    pub fsync: FsyncPolicy,
    /// `num.recovery.threads.per.data.dir`.
    pub recovery_threads: usize,
    /// The `log.cleaner.*` keys.
    pub cleaner: CleanerConfig,
    /// Topic-config defaults derived from the `log.*` keys.
    pub topic_defaults: BTreeMap<String, String>,
    /// Plaintext connections send fetched records from their segment files with
    /// sendfile(2) (true, the default). No key sets it: false is the copying path TLS
    /// connections must take, and lets tests run that path on plaintext.
    pub zero_copy: bool,
    /// The schema registry's answer to "may this schema id be used here?", for topics
    /// with `confluent.{key,value}.schema.validation` on. No key sets it: the binary
    /// does when it runs the registry. `None` refuses every record of such topics.
    pub schema_check: Option<std::sync::Arc<dyn crate::schema_validation::SchemaIdCheck>>,
    /// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`:
    /// `None` when authorization is off.
    pub authorizer: Option<medulla_auth::acl::AuthorizerConfig>,
}

impl BrokerConfig {
    /// Validates `props`. Returns the config and the warnings to log (ignored Kafka keys).
    pub fn from_properties(
        props: &BTreeMap<String, String>,
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        for (k, v) in props {
            if BROKER_KEYS.iter().any(|d| d.name == k) || crate::listeners::is_listener_key(k) {
                continue;
            }
            if crate::sasl_config::is_listener_jaas_key(k) {
                continue;
            }
            if let Some((_, why)) = IGNORED_KAFKA_KEYS.iter().find(|(name, _)| name == k) {
                warnings.push(format!("ignoring Kafka setting {k}={v}: {why}"));
                continue;
            }
            return Err(ConfigError::UnknownKey(k.clone()));
        }
        let get = |name: &str| -> Option<String> {
            props.get(name).cloned().or_else(|| {
                BROKER_KEYS
                    .iter()
                    .find(|d| d.name == name)
                    .and_then(|d| d.default.map(str::to_owned))
            })
        };
        let node_id = match props.get("node.id").or_else(|| props.get("broker.id")) {
            Some(v) => parse_num::<i32>("node.id", v, 0, i32::MAX as i64)?,
            None => 1,
        };
        let listeners = crate::listeners::parse(props, &get)?;
        let mut sasl = BTreeMap::new();
        for l in &listeners {
            let settings =
                crate::sasl_config::SaslSettings::from_properties(props, &l.listener.name)
                    .map_err(|(key, value, reason)| invalid(&key, &value, &reason))?;
            sasl.insert(l.listener.name.clone(), settings);
        }
        let data_dir = PathBuf::from(
            props
                .get("log.dirs")
                .or_else(|| props.get("log.dir"))
                .cloned()
                .unwrap_or_else(|| "./medulla-data".to_owned()),
        );
        if data_dir.as_os_str().to_string_lossy().contains(',') {
            return Err(invalid(
                "log.dirs",
                &data_dir.to_string_lossy(),
                "Medulla uses exactly one data directory",
            ));
        }
        let num_partitions = parse_num::<u32>(
            "num.partitions",
            &get("num.partitions").unwrap_or_default(),
            1,
            medulla_log::limits::PARTITIONS_PER_TOPIC_MAX as i64,
        )?;
        let rf = parse_num::<i32>(
            "default.replication.factor",
            &get("default.replication.factor").unwrap_or_default(),
            1,
            1,
        )?;
        debug_assert_eq!(rf, 1);
        let auto_create_topics = parse_bool(
            "auto.create.topics.enable",
            &get("auto.create.topics.enable").unwrap_or_default(),
        )?;
        let delete_topic_enable = parse_bool(
            "delete.topic.enable",
            &get("delete.topic.enable").unwrap_or_default(),
        )?;
        let request_bytes_max = parse_num::<usize>(
            "socket.request.max.bytes",
            &get("socket.request.max.bytes").unwrap_or_default(),
            1024,
            limits::REQUEST_BYTES_MAX as i64,
        )?;
        let queued = get("queued.max.request.bytes").unwrap_or_default();
        let queued_request_bytes_max = if queued.trim() == "-1" {
            None
        } else {
            Some(parse_num::<usize>(
                "queued.max.request.bytes",
                &queued,
                request_bytes_max as i64,
                i64::MAX,
            )?)
        };
        let connections_max = parse_num::<usize>(
            "max.connections",
            &get("max.connections").unwrap_or_default(),
            1,
            i32::MAX as i64,
        )?;
        let inflight_per_connection_max = parse_num::<usize>(
            "medulla.connection.inflight.max",
            &get("medulla.connection.inflight.max").unwrap_or_default(),
            1,
            limits::INFLIGHT_REQUESTS_PER_CONNECTION_MAX as i64,
        )?;
        let connections_idle_max_ms = parse_num::<u64>(
            "connections.max.idle.ms",
            &get("connections.max.idle.ms").unwrap_or_default(),
            1,
            i64::MAX,
        )?;
        let offsets_topic_partitions = parse_num::<u32>(
            "offsets.topic.num.partitions",
            &get("offsets.topic.num.partitions").unwrap_or_default(),
            1,
            1000,
        )?;
        let retention_check_interval_ms = parse_num::<u64>(
            "log.retention.check.interval.ms",
            &get("log.retention.check.interval.ms").unwrap_or_default(),
            1,
            i64::MAX,
        )?;
        let num = |key: &str, min: i64, max: i64| -> Result<i64, ConfigError> {
            parse_num::<i64>(key, &get(key).unwrap_or_default(), min, max)
        };
        let group_min_session = num("group.min.session.timeout.ms", 1, i32::MAX as i64)? as i32;
        let group_max_session = num("group.max.session.timeout.ms", 1, i32::MAX as i64)? as i32;
        if group_min_session > group_max_session {
            return Err(invalid(
                "group.min.session.timeout.ms",
                &group_min_session.to_string(),
                "must not exceed group.max.session.timeout.ms",
            ));
        }
        let group = crate::groups::classic::GroupConfig {
            initial_rebalance_delay: std::time::Duration::from_millis(num(
                "group.initial.rebalance.delay.ms",
                0,
                i32::MAX as i64,
            )? as u64),
            session_timeout_min_ms: group_min_session,
            session_timeout_max_ms: group_max_session,
            max_size: num("group.max.size", 1, i32::MAX as i64)? as usize,
        };
        let mut assignors = Vec::new();
        for a in get("group.consumer.assignors")
            .unwrap_or_default()
            .split(',')
        {
            let a = a.trim();
            let short = match a.rsplit('.').next().unwrap_or(a) {
                "UniformAssignor" | "uniform" => "uniform",
                "RangeAssignor" | "range" => "range",
                "" => continue,
                _ => {
                    return Err(invalid(
                        "group.consumer.assignors",
                        a,
                        "Medulla's assignors are uniform and range",
                    ));
                }
            };
            assignors.push(short.to_owned());
        }
        if assignors.is_empty() {
            return Err(invalid(
                "group.consumer.assignors",
                "",
                "at least one assignor",
            ));
        }
        let consumer_group = crate::groups::consumer::ConsumerConfig {
            session_timeout_ms: num("group.consumer.session.timeout.ms", 1, i32::MAX as i64)?
                as i32,
            heartbeat_interval_ms: num("group.consumer.heartbeat.interval.ms", 1, i32::MAX as i64)?
                as i32,
            assignors,
            max_size: num("group.consumer.max.size", 1, i32::MAX as i64)? as usize,
        };
        let offsets_topic_segment_bytes =
            // The smallest segment.bytes a topic accepts.
            num("offsets.topic.segment.bytes", 1 << 20, i32::MAX as i64)? as u64;
        let offsets_retention_ms =
            num("offsets.retention.minutes", 1, i32::MAX as i64)? as u64 * 60_000;
        let offsets_retention_check_interval_ms =
            num("offsets.retention.check.interval.ms", 1, i64::MAX)? as u64;
        let offset_metadata_max_bytes =
            // Stored as a Kafka string: at most i16::MAX bytes.
            num("offset.metadata.max.bytes", 0, i16::MAX as i64)? as usize;
        let txn = crate::txn::TxnConfig {
            max_timeout_ms: num("transaction.max.timeout.ms", 1, i32::MAX as i64)? as i32,
            log_partitions: num("transaction.state.log.num.partitions", 1, 1000)? as u32,
            // The smallest segment.bytes a topic accepts.
            log_segment_bytes: num(
                "transaction.state.log.segment.bytes",
                1 << 20,
                i32::MAX as i64,
            )? as u64,
            abort_timed_out_interval_ms: num(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                1,
                i32::MAX as i64,
            )? as u64,
            remove_expired_interval_ms: num(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                1,
                i32::MAX as i64,
            )? as u64,
            id_expiration_ms: num("transactional.id.expiration.ms", 1, i32::MAX as i64)?,
            producer_id_expiration_ms: num("producer.id.expiration.ms", 1, i32::MAX as i64)?,
            producer_id_expiration_check_interval_ms: num(
                "producer.id.expiration.check.interval.ms",
                1,
                i32::MAX as i64,
            )? as u64,
            partition_verification: parse_bool(
                "transaction.partition.verification.enable",
                &get("transaction.partition.verification.enable").unwrap_or_default(),
            )?,
        };
        let fsync_interval_ms = parse_num::<u64>(
            "medulla.log.fsync.interval.ms",
            &get("medulla.log.fsync.interval.ms").unwrap_or_default(),
            1,
            i64::MAX,
        )?;
        let policy = get("medulla.log.fsync.policy").unwrap_or_default();
        let fsync = match policy.as_str() {
            "always" => FsyncPolicy::Always,
            "interval" => FsyncPolicy::Interval {
                interval_ms: fsync_interval_ms,
            },
            "never" => FsyncPolicy::Never,
            _ => {
                return Err(invalid(
                    "medulla.log.fsync.policy",
                    &policy,
                    "one of always, interval, never",
                ));
            }
        };
        let recovery_threads = parse_num::<usize>(
            "num.recovery.threads.per.data.dir",
            &get("num.recovery.threads.per.data.dir").unwrap_or_default(),
            1,
            medulla_log::limits::RECOVERY_THREADS_MAX as i64,
        )?;
        let cleaner = CleanerConfig {
            enable: parse_bool(
                "log.cleaner.enable",
                &get("log.cleaner.enable").unwrap_or_default(),
            )?,
            threads: parse_num::<u32>(
                "log.cleaner.threads",
                &get("log.cleaner.threads").unwrap_or_default(),
                0,
                medulla_log::limits::CLEANER_THREADS_MAX as i64,
            )?,
            io_max_bytes_per_second: {
                let key = "log.cleaner.io.max.bytes.per.second";
                let value = get(key).unwrap_or_default();
                value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|rate| *rate > 0.0)
                    .ok_or_else(|| invalid(key, &value, "expected a positive number"))?
            },
            dedupe_buffer_bytes: parse_num::<u64>(
                "log.cleaner.dedupe.buffer.size",
                &get("log.cleaner.dedupe.buffer.size").unwrap_or_default(),
                0,
                i64::MAX,
            )?,
            backoff_ms: parse_num::<u64>(
                "log.cleaner.backoff.ms",
                &get("log.cleaner.backoff.ms").unwrap_or_default(),
                0,
                i64::MAX,
            )?,
        };
        cleaner.validate().map_err(|reason| {
            invalid(
                "log.cleaner.dedupe.buffer.size",
                &cleaner.dedupe_buffer_bytes.to_string(),
                &reason,
            )
        })?;
        let topic_defaults = medulla_log::config::broker_log_defaults(props).map_err(|e| {
            ConfigError::InvalidValue {
                key: "log.*".to_owned(),
                value: String::new(),
                reason: e.to_string(),
            }
        })?;
        // Validate the derived topic defaults the way a topic would use them.
        medulla_log::TopicConfig::resolve(&topic_defaults, &BTreeMap::new()).map_err(|e| {
            ConfigError::InvalidValue {
                key: "log.*".to_owned(),
                value: String::new(),
                reason: e.to_string(),
            }
        })?;
        Ok((
            BrokerConfig {
                given: props.clone(),
                node_id,
                listeners,
                sasl,
                data_dir,
                num_partitions,
                auto_create_topics,
                delete_topic_enable,
                request_bytes_max,
                queued_request_bytes_max,
                connections_max,
                inflight_per_connection_max,
                connections_idle_max_ms,
                offsets_topic_partitions,
                offsets_topic_segment_bytes,
                retention_check_interval_ms,
                group,
                consumer_group,
                offsets_retention_ms,
                offsets_retention_check_interval_ms,
                offset_metadata_max_bytes,
                txn,
                fsync,
                recovery_threads,
                cleaner,
                topic_defaults,
                zero_copy: true,
                schema_check: None,
                authorizer: crate::authz::parse_config(props)?,
            },
            warnings,
        ))
    }

    /// Every broker key with its value and source, for DescribeConfigs on the broker.
    pub fn describe(&self) -> Vec<ConfigEntry> {
        BROKER_KEYS
            .iter()
            .map(|d| {
                let (mut value, source) = match self.given.get(d.name) {
                    Some(v) => (Some(v.clone()), ConfigSource::StaticBroker),
                    None => (d.default.map(str::to_owned), ConfigSource::Default),
                };
                // PASSWORD values (keys, key passwords) are never described, as in Kafka.
                if d.config_type == 9 {
                    value = None;
                }
                let mut synonyms = Vec::new();
                if source == ConfigSource::StaticBroker {
                    synonyms.push((d.name.to_owned(), value.clone(), ConfigSource::StaticBroker));
                }
                if d.default.is_some() {
                    synonyms.push((
                        d.name.to_owned(),
                        d.default.map(str::to_owned),
                        ConfigSource::Default,
                    ));
                }
                ConfigEntry {
                    name: d.name.to_owned(),
                    value,
                    source,
                    config_type: d.config_type,
                    synonyms,
                    documentation: d.doc,
                }
            })
            .collect()
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

fn parse_num<T: TryFrom<i64>>(
    key: &str,
    value: &str,
    min: i64,
    max: i64,
) -> Result<T, ConfigError> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "expected an integer"))?;
    if n < min || n > max {
        return Err(invalid(
            key,
            value,
            &format!("must be between {min} and {max}"),
        ));
    }
    T::try_from(n).map_err(|_| invalid(key, value, "out of range"))
}

impl Listener {
    /// The socket address to bind (an empty host binds every interface, as Kafka does).
    pub fn bind_addr(&self) -> Result<SocketAddr, String> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            self.host.as_str()
        };
        std::net::ToSocketAddrs::to_socket_addrs(&(host, self.port))
            .map_err(|e| format!("cannot resolve listener host {host:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("listener host {host:?} resolves to nothing"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_key_is_an_error_and_ignored_kafka_key_a_warning() {
        let err = BrokerConfig::from_properties(&props(&[("no.such.key", "1")])).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey(k) if k == "no.such.key"));
        let (_, warnings) =
            BrokerConfig::from_properties(&props(&[("zookeeper.connect", "zk:2181")])).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("zookeeper.connect"));
    }

    #[test]
    fn listeners_parse_and_defaults_hold() {
        let (c, _) =
            BrokerConfig::from_properties(&props(&[("listeners", "PLAINTEXT://127.0.0.1:19092")]))
                .unwrap();
        assert_eq!(
            c.listeners[0].listener,
            Listener {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 19092
            }
        );
        assert_eq!(c.num_partitions, 1);
        assert!(c.auto_create_topics);
        assert_eq!(c.fsync, FsyncPolicy::Always);
        assert_eq!(c.request_bytes_max, 104_857_600);
        assert_eq!(c.cleaner, CleanerConfig::default());
        assert_eq!(c.recovery_threads, medulla_log::DEFAULT_RECOVERY_THREADS);
        // An SSL listener needs its keystore.
        let err =
            BrokerConfig::from_properties(&props(&[("listeners", "PLAINTEXT://a:1,SSL://b:2")]))
                .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }));
        assert!(err.to_string().contains("keystore"), "{err}");
        let (c, _) = BrokerConfig::from_properties(&props(&[
            ("listeners", "PLAINTEXT://a:1,SSL://b:2"),
            ("ssl.keystore.type", "PEM"),
            ("listener.name.ssl.ssl.keystore.location", "/k.pem"),
        ]))
        .unwrap();
        assert_eq!(c.listeners.len(), 2);
    }

    #[test]
    fn bad_values_are_named() {
        for (k, v) in [
            ("num.partitions", "0"),
            ("auto.create.topics.enable", "yes"),
            ("medulla.log.fsync.policy", "sometimes"),
            ("default.replication.factor", "3"),
            ("log.cleaner.threads", "-1"),
            ("log.cleaner.io.max.bytes.per.second", "0"),
            ("log.cleaner.dedupe.buffer.size", "1024"),
            ("transaction.max.timeout.ms", "0"),
            ("transaction.state.log.segment.bytes", "1024"),
            ("transaction.state.log.num.partitions", "0"),
            ("transactional.id.expiration.ms", "0"),
            ("transaction.partition.verification.enable", "maybe"),
            ("producer.id.expiration.check.interval.ms", "-1"),
            ("num.recovery.threads.per.data.dir", "0"),
            // Below socket.request.max.bytes (100 MiB): a largest frame could never be read.
            ("queued.max.request.bytes", "1048576"),
            ("queued.max.request.bytes", "-2"),
        ] {
            let err = BrokerConfig::from_properties(&props(&[(k, v)])).unwrap_err();
            assert!(err.to_string().contains(k), "{err}");
        }
    }

    #[test]
    fn transaction_keys_default_to_kafkas_values() {
        let (c, _) = BrokerConfig::from_properties(&props(&[])).unwrap();
        assert_eq!(c.queued_request_bytes_max, Some(512 << 20));
        let (unbounded, _) =
            BrokerConfig::from_properties(&props(&[("queued.max.request.bytes", "-1")])).unwrap();
        assert_eq!(unbounded.queued_request_bytes_max, None);
        let d = crate::txn::TxnConfig::default();
        assert_eq!(c.txn.max_timeout_ms, d.max_timeout_ms);
        assert_eq!(c.txn.log_partitions, d.log_partitions);
        assert_eq!(c.txn.log_segment_bytes, d.log_segment_bytes);
        assert_eq!(
            c.txn.abort_timed_out_interval_ms,
            d.abort_timed_out_interval_ms
        );
        assert_eq!(
            c.txn.remove_expired_interval_ms,
            d.remove_expired_interval_ms
        );
        assert_eq!(c.txn.id_expiration_ms, d.id_expiration_ms);
        assert_eq!(c.txn.producer_id_expiration_ms, d.producer_id_expiration_ms);
        assert_eq!(
            c.txn.producer_id_expiration_check_interval_ms,
            d.producer_id_expiration_check_interval_ms
        );
        assert!(c.txn.partition_verification);
        let (c, _) = BrokerConfig::from_properties(&props(&[
            ("transaction.max.timeout.ms", "5000"),
            ("transaction.partition.verification.enable", "false"),
        ]))
        .unwrap();
        assert_eq!(c.txn.max_timeout_ms, 5000);
        assert!(!c.txn.partition_verification);
    }
}
