//! ACLs with the real binary and a real client (issue 6): `medulla serve` with
//! `authorizer.class.name` set, ACLs created through CreateAcls while `User:ANONYMOUS` is
//! a super user, then a restart without super users: the ACLs survive it, and librdkafka
//! (as `User:ANONYMOUS` on the PLAINTEXT listener) can write `clinical.lab.results` but
//! not read it (its group may be used), and sees only the topics it may describe.

mod common;

use std::time::Duration;

use common::{DEADLINE, Medulla, client_config, wait_for};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{CreateAclsRequest, CreateTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use medulla::admin::Client;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

const AUTHORIZER: &str =
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";

async fn prepare(addr: &str) {
    let mut admin = Client::connect(addr).await.unwrap();
    let topics = ["clinical.lab.results", "billing"]
        .iter()
        .map(|t| {
            CreatableTopic::default()
                .with_name(TopicName(s(t)))
                .with_num_partitions(1)
                .with_replication_factor(1)
        })
        .collect();
    let created = admin
        .send(
            CreateTopicsRequest::default()
                .with_topics(topics)
                .with_timeout_ms(10_000),
        )
        .await
        .unwrap();
    assert!(
        created.topics.iter().all(|t| t.error_code == 0),
        "{created:?}"
    );
    let write = AclCreation::default()
        .with_resource_type(2) // TOPIC
        .with_resource_name(s("clinical.lab.results"))
        .with_resource_pattern_type(3) // LITERAL
        .with_principal(s("User:ANONYMOUS"))
        .with_host(s("*"))
        .with_operation(4) // WRITE
        .with_permission_type(3); // ALLOW
    let group = AclCreation::default()
        .with_resource_type(3) // GROUP
        .with_resource_name(s("lab-readers"))
        .with_resource_pattern_type(3)
        .with_principal(s("User:ANONYMOUS"))
        .with_host(s("*"))
        .with_operation(3) // READ
        .with_permission_type(3);
    let acls = admin
        .send(CreateAclsRequest::default().with_creations(vec![write, group]))
        .await
        .unwrap();
    assert_eq!(acls.results.len(), 2);
    assert!(acls.results.iter().all(|r| r.error_code == 0), "{acls:?}");
}

#[test]
fn write_but_not_read_with_librdkafka_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let broker = Medulla::start(
        dir.path(),
        &[
            "--override",
            AUTHORIZER,
            "--override",
            "super.users=User:ANONYMOUS",
        ],
    );
    runtime.block_on(prepare(&broker.addr));
    assert!(broker.terminate().success());

    // No super user now: only the ACL decides.
    let broker = Medulla::start(dir.path(), &["--override", AUTHORIZER]);
    let producer: FutureProducer = client_config(&broker.addr)
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    let delivered = runtime.block_on(
        producer.send(
            FutureRecord::to("clinical.lab.results")
                .key("patient-1")
                .payload("{\"resourceType\":\"Observation\"}"),
            DEADLINE,
        ),
    );
    assert!(delivered.is_ok(), "{delivered:?}");

    // Metadata shows clinical.lab.results (Write implies Describe), never billing.
    let md = producer
        .client()
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let names: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
    assert!(names.contains(&"clinical.lab.results"), "{names:?}");
    assert!(!names.contains(&"billing"), "{names:?}");

    let consumer: BaseConsumer = client_config(&broker.addr)
        .set("group.id", "lab-readers")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("clinical.lab.results", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let error = wait_for(
        "a fetch refused with TOPIC_AUTHORIZATION_FAILED",
        || match consumer.poll(Duration::from_millis(200)) {
            Some(Err(e)) => Some(e),
            Some(Ok(m)) => panic!("read a record it may not read: {m:?}"),
            None => None,
        },
    );
    match error {
        KafkaError::MessageConsumption(code) => {
            assert_eq!(code, RDKafkaErrorCode::TopicAuthorizationFailed)
        }
        other => panic!("unexpected error {other:?}"),
    }
}
