//! ACLs end to end in process (issue 6): a real broker with authorization on, raw
//! requests encoded by kafka-protocol over real sockets. Every principal really
//! authenticates: the broker's first listener is SASL_PLAINTEXT with PLAIN static users,
//! and each test connection sends ApiVersions, SaslHandshake (PLAIN) and
//! SaslAuthenticate before its first request. A second, PLAINTEXT listener serves
//! `User:ANONYMOUS`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateAclsRequest, CreateAclsResponse,
    DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest, DescribeAclsResponse, FetchRequest,
    FetchResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, InitProducerIdRequest,
    InitProducerIdResponse, JoinGroupRequest, JoinGroupResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use medulla_broker::session::SecurityProtocol;
use medulla_broker::{BrokerConfig, Running};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NONE: i16 = 0;
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const INVALID_REQUEST: i16 = 42;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const SECURITY_DISABLED: i16 = 54;

// Kafka's codes.
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const TRANSACTIONAL_ID: i8 = 5;
const ANY: i8 = 1;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const ALL: i8 = 2;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// PLAIN's static users: every principal the tests act as.
const USERS: &[(&str, &str)] = &[
    ("admin", "admin-secret"),
    ("alice", "alice-secret"),
    ("bob", "bob-secret"),
];

async fn start_in(dir: &std::path::Path, extra: &[(&str, &str)]) -> Running {
    let jaas = USERS.iter().fold(
        "org.apache.kafka.common.security.plain.PlainLoginModule required".to_owned(),
        |jaas, (user, password)| format!("{jaas} user_{user}=\"{password}\""),
    ) + ";";
    let mut props = BTreeMap::from([
        ("log.dirs".to_owned(), dir.display().to_string()),
        (
            "listeners".to_owned(),
            "SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0".to_owned(),
        ),
        (
            "listener.name.sasl_plaintext.plain.sasl.jaas.config".to_owned(),
            jaas,
        ),
    ]);
    for (k, v) in extra {
        props.insert((*k).to_owned(), (*v).to_owned());
    }
    let (config, _) = BrokerConfig::from_properties(&props).unwrap();
    medulla_broker::start(config).await.unwrap()
}

/// The address of the broker's listener for `protocol`.
fn listener(broker: &Running, protocol: SecurityProtocol) -> SocketAddr {
    broker
        .listeners
        .iter()
        .find(|l| l.protocol == protocol)
        .map(|l| l.addr)
        .unwrap()
}

const SECURE: &[(&str, &str)] = &[
    (
        "authorizer.class.name",
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    ),
    ("super.users", "User:admin"),
];

async fn secure() -> (tempfile::TempDir, Running) {
    let dir = tempfile::tempdir().unwrap();
    let running = start_in(dir.path(), SECURE).await;
    for t in ["clinical.lab.results", "clinical.secret", "billing"] {
        running
            .log()
            .create_topic(t, 1, &BTreeMap::new(), false)
            .unwrap();
    }
    (dir, running)
}

fn batch() -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
        key: None,
        value: Some(Bytes::from_static(b"{\"resourceType\":\"Observation\"}")),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

fn acl(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    operation: i8,
    permission: i8,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

/// One connection, acting as the user it authenticated as (or `User:ANONYMOUS`).
struct Client {
    stream: TcpStream,
    client_id: String,
    correlation_id: i32,
}

impl Client {
    /// Authenticates as `user` (one of [`USERS`]) on the SASL_PLAINTEXT listener; the
    /// client id is the user's name too, which grants nothing.
    async fn connect(broker: &Running, user: &str) -> Client {
        Client::login(broker, user, user).await
    }

    /// Authenticates as `user` with PLAIN, sending `client_id` in every header.
    async fn login(broker: &Running, user: &str, client_id: &str) -> Client {
        let password = USERS
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(_, p)| *p)
            .unwrap();
        let mut c =
            Client::open(listener(broker, SecurityProtocol::SaslPlaintext), client_id).await;
        let versions: ApiVersionsResponse = c
            .send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
            .await;
        assert_eq!(versions.error_code, NONE);
        let handshake: SaslHandshakeResponse = c
            .send(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
            )
            .await;
        assert_eq!(handshake.error_code, NONE);
        let auth: SaslAuthenticateResponse = c
            .send(
                ApiKey::SaslAuthenticate,
                2,
                &SaslAuthenticateRequest::default()
                    .with_auth_bytes(Bytes::from(format!("\0{user}\0{password}"))),
            )
            .await;
        assert_eq!(auth.error_code, NONE, "{:?}", auth.error_message);
        c
    }

    /// `User:ANONYMOUS` on the PLAINTEXT listener, sending `client_id`.
    async fn anonymous(broker: &Running, client_id: &str) -> Client {
        Client::open(listener(broker, SecurityProtocol::Plaintext), client_id).await
    }

    async fn open(addr: SocketAddr, client_id: &str) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            client_id: client_id.to_owned(),
            correlation_id: 0,
        }
    }

    async fn send<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        self.correlation_id += 1;
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0; 4]);
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(s(&self.client_id)))
            .encode(&mut buf, api.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).await.unwrap();
        let size = self.stream.read_i32().await.unwrap();
        let mut frame = vec![0u8; size as usize];
        self.stream.read_exact(&mut frame).await.unwrap();
        let mut frame = Bytes::from(frame);
        let header =
            ResponseHeader::decode(&mut frame, api.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, self.correlation_id);
        Resp::decode(&mut frame, version).unwrap()
    }

    async fn create_acls(&mut self, creations: Vec<AclCreation>) -> Vec<i16> {
        let r: CreateAclsResponse = self
            .send(
                ApiKey::CreateAcls,
                3,
                &CreateAclsRequest::default().with_creations(creations),
            )
            .await;
        r.results.iter().map(|x| x.error_code).collect()
    }

    async fn produce(&mut self, topic: &str) -> i16 {
        let r: ProduceResponse = self
            .send(
                ApiKey::Produce,
                9,
                &ProduceRequest::default()
                    .with_acks(-1)
                    .with_timeout_ms(10_000)
                    .with_topic_data(vec![
                        TopicProduceData::default()
                            .with_name(TopicName(s(topic)))
                            .with_partition_data(vec![
                                PartitionProduceData::default()
                                    .with_index(0)
                                    .with_records(Some(batch())),
                            ]),
                    ]),
            )
            .await;
        assert_eq!(r.responses.len(), 1);
        r.responses[0].partition_responses[0].error_code
    }

    async fn fetch(&mut self, topic: &str) -> i16 {
        let r: FetchResponse = self
            .send(
                ApiKey::Fetch,
                12,
                &FetchRequest::default()
                    .with_max_wait_ms(0)
                    .with_max_bytes(1 << 20)
                    .with_topics(vec![
                        FetchTopic::default()
                            .with_topic(TopicName(s(topic)))
                            .with_partitions(vec![
                                FetchPartition::default()
                                    .with_partition(0)
                                    .with_partition_max_bytes(1 << 20),
                            ]),
                    ]),
            )
            .await;
        assert_eq!(r.responses.len(), 1);
        r.responses[0].partitions[0].error_code
    }

    /// Metadata: (name, error) of every topic in the answer, sorted.
    async fn metadata(&mut self, topics: Option<&[&str]>) -> Vec<(String, i16)> {
        let r: MetadataResponse = self
            .send(
                ApiKey::Metadata,
                12,
                &MetadataRequest::default()
                    .with_allow_auto_topic_creation(false)
                    .with_topics(topics.map(|ts| {
                        ts.iter()
                            .map(|t| {
                                MetadataRequestTopic::default().with_name(Some(TopicName(s(t))))
                            })
                            .collect()
                    })),
            )
            .await;
        let mut out: Vec<_> = r
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                    t.error_code,
                )
            })
            .filter(|(n, _)| !n.starts_with("__"))
            .collect();
        out.sort();
        out
    }
}

#[tokio::test]
async fn write_without_read_produces_but_cannot_fetch() {
    let (_dir, broker) = secure().await;
    let mut admin = Client::connect(&broker, "admin").await;
    let mut alice = Client::connect(&broker, "alice").await;
    // No ACL at all: refused (allow.everyone.if.no.acl.found defaults to false).
    assert_eq!(
        alice.produce("clinical.lab.results").await,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(
        admin
            .create_acls(vec![acl(
                TOPIC,
                "clinical.lab.results",
                LITERAL,
                "User:alice",
                WRITE,
                ALLOW
            )])
            .await,
        vec![NONE]
    );
    assert_eq!(alice.produce("clinical.lab.results").await, NONE);
    assert_eq!(
        alice.fetch("clinical.lab.results").await,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(admin.fetch("clinical.lab.results").await, NONE);
    // Metadata lists only what alice may describe (Write implies Describe)…
    assert_eq!(
        alice.metadata(None).await,
        vec![("clinical.lab.results".to_owned(), NONE)]
    );
    // …and refuses by name what she may not.
    assert_eq!(
        alice
            .metadata(Some(&["billing", "clinical.lab.results"]))
            .await,
        vec![
            ("billing".to_owned(), TOPIC_AUTHORIZATION_FAILED),
            ("clinical.lab.results".to_owned(), NONE)
        ]
    );
    // The super user sees every topic, the audit trail included.
    assert_eq!(admin.metadata(None).await.len(), 4);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn prefixed_allow_and_deny_overrides_allow() {
    let (_dir, broker) = secure().await;
    let mut admin = Client::connect(&broker, "admin").await;
    let results = admin
        .create_acls(vec![
            acl(TOPIC, "clinical.", PREFIXED, "User:*", ALL, ALLOW),
            acl(TOPIC, "clinical.secret", LITERAL, "User:alice", READ, DENY),
        ])
        .await;
    assert_eq!(results, vec![NONE, NONE]);
    let mut alice = Client::connect(&broker, "alice").await;
    let mut bob = Client::connect(&broker, "bob").await;
    assert_eq!(alice.produce("clinical.lab.results").await, NONE);
    assert_eq!(alice.fetch("clinical.lab.results").await, NONE);
    assert_eq!(alice.produce("clinical.secret").await, NONE);
    assert_eq!(
        alice.fetch("clinical.secret").await,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(bob.fetch("clinical.secret").await, NONE);
    assert_eq!(bob.fetch("billing").await, TOPIC_AUTHORIZATION_FAILED);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn removing_an_acl_applies_on_the_next_request_and_acls_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(dir.path(), SECURE).await;
    broker
        .log()
        .create_topic("clinical.lab.results", 1, &BTreeMap::new(), false)
        .unwrap();
    let mut admin = Client::connect(&broker, "admin").await;
    let mut alice = Client::connect(&broker, "alice").await;
    admin
        .create_acls(vec![
            acl(
                TOPIC,
                "clinical.lab.results",
                LITERAL,
                "User:alice",
                WRITE,
                ALLOW,
            ),
            acl(
                TOPIC,
                "clinical.lab.results",
                LITERAL,
                "User:alice",
                READ,
                ALLOW,
            ),
        ])
        .await;
    assert_eq!(alice.fetch("clinical.lab.results").await, NONE);
    let deleted: DeleteAclsResponse = admin
        .send(
            ApiKey::DeleteAcls,
            3,
            &DeleteAclsRequest::default().with_filters(vec![
                DeleteAclsFilter::default()
                    .with_resource_type_filter(TOPIC)
                    .with_resource_name_filter(Some(s("clinical.lab.results")))
                    .with_pattern_type_filter(LITERAL)
                    .with_principal_filter(Some(s("User:alice")))
                    .with_host_filter(None)
                    .with_operation(READ)
                    .with_permission_type(ANY),
            ]),
        )
        .await;
    assert_eq!(deleted.filter_results[0].error_code, NONE);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    // The same connection, the very next request.
    assert_eq!(
        alice.fetch("clinical.lab.results").await,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(alice.produce("clinical.lab.results").await, NONE);

    drop((admin, alice));
    broker.shutdown().await.unwrap();
    let broker = start_in(dir.path(), SECURE).await;
    let mut admin = Client::connect(&broker, "admin").await;
    let described: DescribeAclsResponse = admin
        .send(
            ApiKey::DescribeAcls,
            3,
            &DescribeAclsRequest::default()
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(ANY)
                .with_pattern_type_filter(ANY)
                .with_operation(ANY)
                .with_permission_type(ANY),
        )
        .await;
    assert_eq!(described.error_code, NONE);
    assert_eq!(described.resources.len(), 1);
    assert_eq!(
        described.resources[0].resource_name.as_str(),
        "clinical.lab.results"
    );
    assert_eq!(described.resources[0].acls.len(), 1);
    assert_eq!(described.resources[0].acls[0].operation, WRITE);
    let mut alice = Client::connect(&broker, "alice").await;
    assert_eq!(alice.produce("clinical.lab.results").await, NONE);
    assert_eq!(
        alice.fetch("clinical.lab.results").await,
        TOPIC_AUTHORIZATION_FAILED
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn group_acls_are_enforced() {
    let (_dir, broker) = secure().await;
    let mut admin = Client::connect(&broker, "admin").await;
    admin
        .create_acls(vec![
            acl(GROUP, "lab-readers", LITERAL, "User:alice", READ, ALLOW),
            acl(
                TOPIC,
                "clinical.lab.results",
                LITERAL,
                "User:alice",
                READ,
                ALLOW,
            ),
        ])
        .await;
    let mut alice = Client::connect(&broker, "alice").await;
    let find = |group: &str| {
        FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_key(s(group))
    };
    let r: FindCoordinatorResponse = alice.send(ApiKey::FindCoordinator, 3, &find("other")).await;
    assert_eq!(r.error_code, GROUP_AUTHORIZATION_FAILED);
    let r: FindCoordinatorResponse = alice
        .send(ApiKey::FindCoordinator, 3, &find("lab-readers"))
        .await;
    assert_eq!(r.error_code, NONE);
    let join = |group: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s("consumer"))
    };
    let r: JoinGroupResponse = alice.send(ApiKey::JoinGroup, 5, &join("other")).await;
    assert_eq!(r.error_code, GROUP_AUTHORIZATION_FAILED);
    let commit = |group: &str, topic: &str| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(0),
                    ]),
            ])
    };
    let r: OffsetCommitResponse = alice
        .send(
            ApiKey::OffsetCommit,
            8,
            &commit("other", "clinical.lab.results"),
        )
        .await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        GROUP_AUTHORIZATION_FAILED
    );
    let r: OffsetCommitResponse = alice
        .send(ApiKey::OffsetCommit, 8, &commit("lab-readers", "billing"))
        .await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        TOPIC_AUTHORIZATION_FAILED
    );
    let r: OffsetCommitResponse = alice
        .send(
            ApiKey::OffsetCommit,
            8,
            &commit("lab-readers", "clinical.lab.results"),
        )
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, NONE);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn transactional_id_and_idempotence_acls_are_enforced() {
    let (_dir, broker) = secure().await;
    let mut admin = Client::connect(&broker, "admin").await;
    let mut alice = Client::connect(&broker, "alice").await;
    let init = |id: Option<&str>| {
        InitProducerIdRequest::default()
            .with_transactional_id(id.map(|i| TransactionalId(s(i))))
            .with_transaction_timeout_ms(60_000)
    };
    let r: InitProducerIdResponse = alice
        .send(ApiKey::InitProducerId, 4, &init(Some("lab-writer")))
        .await;
    assert_eq!(r.error_code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    // Idempotence without IdempotentWrite: KIP-679's Write on any topic is enough.
    let r: InitProducerIdResponse = alice.send(ApiKey::InitProducerId, 4, &init(None)).await;
    assert_eq!(r.error_code, CLUSTER_AUTHORIZATION_FAILED);
    admin
        .create_acls(vec![
            acl(
                TRANSACTIONAL_ID,
                "lab-",
                PREFIXED,
                "User:alice",
                WRITE,
                ALLOW,
            ),
            acl(TOPIC, "clinical.", PREFIXED, "User:alice", WRITE, ALLOW),
        ])
        .await;
    let r: InitProducerIdResponse = alice
        .send(ApiKey::InitProducerId, 4, &init(Some("lab-writer")))
        .await;
    assert_eq!(r.error_code, NONE);
    let r: InitProducerIdResponse = alice.send(ApiKey::InitProducerId, 4, &init(None)).await;
    assert_eq!(r.error_code, NONE);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn acl_apis_need_cluster_rights_and_valid_bindings() {
    let (_dir, broker) = secure().await;
    let mut alice = Client::connect(&broker, "alice").await;
    assert_eq!(
        alice
            .create_acls(vec![acl(TOPIC, "x", LITERAL, "User:alice", ALL, ALLOW)])
            .await,
        vec![CLUSTER_AUTHORIZATION_FAILED]
    );
    let described: DescribeAclsResponse = alice
        .send(
            ApiKey::DescribeAcls,
            2,
            &DescribeAclsRequest::default()
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(ANY)
                .with_pattern_type_filter(ANY)
                .with_operation(ANY)
                .with_permission_type(ANY),
        )
        .await;
    assert_eq!(described.error_code, CLUSTER_AUTHORIZATION_FAILED);
    let mut admin = Client::connect(&broker, "admin").await;
    let results = admin
        .create_acls(vec![
            acl(TOPIC, "x", LITERAL, "alice", ALL, ALLOW),
            acl(ANY, "x", LITERAL, "User:alice", ALL, ALLOW),
            acl(TOPIC, "x", 2, "User:alice", ALL, ALLOW),
            acl(TOPIC, "", LITERAL, "User:alice", ALL, ALLOW),
            acl(TOPIC, "x", LITERAL, "User:alice", ALL, ALLOW).with_host(s("not-an-ip")),
            acl(TOPIC, "x", LITERAL, "User:alice", ALL, ALLOW),
        ])
        .await;
    assert_eq!(
        results,
        vec![
            INVALID_REQUEST,
            INVALID_REQUEST,
            INVALID_REQUEST,
            INVALID_REQUEST,
            INVALID_REQUEST,
            NONE
        ]
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_an_authorizer_everything_is_allowed_and_acl_apis_are_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(dir.path(), &[]).await;
    broker
        .log()
        .create_topic("t", 1, &BTreeMap::new(), false)
        .unwrap();
    let mut alice = Client::connect(&broker, "alice").await;
    assert_eq!(alice.produce("t").await, NONE);
    assert_eq!(alice.fetch("t").await, NONE);
    assert_eq!(
        alice
            .create_acls(vec![acl(TOPIC, "t", LITERAL, "User:alice", ALL, ALLOW)])
            .await,
        vec![SECURITY_DISABLED]
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_damaged_acl_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acls.json"), b"{not json").unwrap();
    let props = BTreeMap::from([
        ("log.dirs".to_owned(), dir.path().display().to_string()),
        ("listeners".to_owned(), "PLAINTEXT://127.0.0.1:0".to_owned()),
        ("authorizer.class.name".to_owned(), "medulla".to_owned()),
    ]);
    let (config, _) = BrokerConfig::from_properties(&props).unwrap();
    let err = medulla_broker::start(config)
        .await
        .err()
        .expect("start refused");
    assert!(err.to_string().contains("acls.json"), "{err}");
}

#[tokio::test]
async fn allow_everyone_opens_unprotected_topics_but_never_the_audit_topic() {
    let dir = tempfile::tempdir().unwrap();
    let mut props = SECURE.to_vec();
    props.push(("allow.everyone.if.no.acl.found", "true"));
    let broker = start_in(dir.path(), &props).await;
    // The audit topic exists from the start.
    broker
        .log()
        .create_topic("billing", 1, &BTreeMap::new(), false)
        .unwrap();
    let mut alice = Client::connect(&broker, "alice").await;
    assert_eq!(alice.fetch("billing").await, NONE);
    assert_eq!(
        alice.fetch(medulla_auth::audit::AUDIT_TOPIC).await,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(
        alice.metadata(None).await,
        vec![("billing".to_owned(), NONE)],
        "the audit topic is not even listed"
    );
    let mut admin = Client::connect(&broker, "admin").await;
    assert_eq!(admin.fetch(medulla_auth::audit::AUDIT_TOPIC).await, NONE);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn topic_administration_needs_create_and_delete() {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{
        CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    };
    let (_dir, broker) = secure().await;
    let mut admin = Client::connect(&broker, "admin").await;
    admin
        .create_acls(vec![
            acl(TOPIC, "alice.", PREFIXED, "User:alice", ALL, ALLOW),
            acl(TOPIC, "billing", LITERAL, "User:alice", READ, ALLOW),
        ])
        .await;
    let mut alice = Client::connect(&broker, "alice").await;
    let create = |names: &[&str]| {
        CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(
                names
                    .iter()
                    .map(|n| {
                        CreatableTopic::default()
                            .with_name(TopicName(s(n)))
                            .with_num_partitions(1)
                            .with_replication_factor(1)
                    })
                    .collect(),
            )
    };
    let r: CreateTopicsResponse = alice
        .send(
            ApiKey::CreateTopics,
            7,
            &create(&["alice.new", "other.new"]),
        )
        .await;
    let mut codes: Vec<_> = r
        .topics
        .iter()
        .map(|t| (t.name.to_string(), t.error_code))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![
            ("alice.new".to_owned(), NONE),
            ("other.new".to_owned(), TOPIC_AUTHORIZATION_FAILED)
        ]
    );
    assert!(broker.log().topic("other.new").is_none());
    let delete = |names: &[&str]| {
        DeleteTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topic_names(names.iter().map(|n| TopicName(s(n))).collect())
    };
    let r: DeleteTopicsResponse = alice
        .send(
            ApiKey::DeleteTopics,
            5,
            &delete(&["alice.new", "billing", "alice.missing"]),
        )
        .await;
    let mut codes: Vec<_> = r
        .responses
        .iter()
        .map(|t| (t.name.as_ref().unwrap().to_string(), t.error_code))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![
            ("alice.missing".to_owned(), 3), // UNKNOWN_TOPIC_OR_PARTITION: she may know
            ("alice.new".to_owned(), NONE),
            ("billing".to_owned(), TOPIC_AUTHORIZATION_FAILED)
        ]
    );
    assert!(broker.log().topic("billing").is_some());
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_principal_is_who_authenticated_never_the_client_id() {
    let (_dir, broker) = secure().await;
    // Alice calling herself "admin" is still alice…
    let mut alice = Client::login(&broker, "alice", "admin").await;
    assert_eq!(
        alice
            .create_acls(vec![acl(
                TOPIC,
                "billing",
                LITERAL,
                "User:alice",
                ALL,
                ALLOW
            )])
            .await,
        vec![CLUSTER_AUTHORIZATION_FAILED]
    );
    assert_eq!(alice.fetch("billing").await, TOPIC_AUTHORIZATION_FAILED);
    // …and so is an unauthenticated connection: User:ANONYMOUS, whatever its client id.
    let mut anonymous = Client::anonymous(&broker, "admin").await;
    assert_eq!(anonymous.fetch("billing").await, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(anonymous.metadata(None).await, vec![]);
    let mut admin = Client::connect(&broker, "admin").await;
    assert_eq!(
        admin
            .create_acls(vec![acl(
                TOPIC,
                "billing",
                LITERAL,
                "User:ANONYMOUS",
                READ,
                ALLOW
            )])
            .await,
        vec![NONE]
    );
    assert_eq!(anonymous.fetch("billing").await, NONE);
    assert_eq!(alice.fetch("billing").await, TOPIC_AUTHORIZATION_FAILED);
    broker.shutdown().await.unwrap();
}
