//! Confluent's broker-side schema validation topic configs against a real `medulla serve`
//! (issue 5). The binary runs no schema registry yet, so a topic with validation on must
//! refuse every record (fail closed); the configs themselves behave like every other
//! topic config through CreateTopics, AlterConfigs, IncrementalAlterConfigs,
//! DescribeConfigs and `medulla topic`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Medulla, cli, client_config, topic_name};
use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource as LegacyResource, AlterableConfig as LegacyConfig,
};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, CreateTopicsRequest, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

const VALUE_VALIDATION: &str = "confluent.value.schema.validation";
const KEY_VALIDATION: &str = "confluent.key.schema.validation";
const VALUE_STRATEGY: &str = "confluent.value.subject.name.strategy";
const KEY_STRATEGY: &str = "confluent.key.subject.name.strategy";
const TOPIC_NAME_STRATEGY: &str = "io.confluent.kafka.serializers.subject.TopicNameStrategy";
const RECORD_NAME_STRATEGY: &str = "io.confluent.kafka.serializers.subject.RecordNameStrategy";
const TOPIC_RECORD_NAME_STRATEGY: &str =
    "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy";
const INVALID_CONFIG: i16 = 40;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Confluent's wire format: magic 0, a 4-byte big-endian schema id, the payload.
fn framed(id: i32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[tokio::test]
async fn validated_topic_without_a_registry_refuses_rdkafka_records_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let topic = topic_name("validated");
    let plain = topic_name("plain");
    let (ok, _, err) = cli(&[
        "topic",
        "create",
        &topic,
        "--config",
        &format!("{VALUE_VALIDATION}=true"),
        "--bootstrap",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["topic", "create", &plain, "--bootstrap", &broker.addr]);
    assert!(ok, "{err}");

    let producer: FutureProducer = client_config(&broker.addr)
        .set("acks", "all")
        .set("compression.codec", "zstd")
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    let value = framed(1, b"{\"resourceType\":\"Patient\"}");
    for (key, value) in [
        (Some(&b"patient-1"[..]), Some(&value[..])),
        (None, Some(&b"not framed"[..])),
        // Even a tombstone: with no registry nothing is accepted.
        (Some(&b"patient-1"[..]), None),
    ] {
        let mut record = FutureRecord::<[u8], [u8]>::to(&topic);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        let delivery = producer.send(record, Duration::from_secs(20)).await;
        match delivery {
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord), _)) => {}
            other => panic!("expected INVALID_RECORD, got {other:?}"),
        }
    }
    // The same record goes to a topic without validation.
    let delivery = producer
        .send(
            FutureRecord::to(&plain).key("patient-1").payload(&value),
            Duration::from_secs(20),
        )
        .await;
    assert!(delivery.is_ok(), "{delivery:?}");

    let mut c = medulla::admin::Client::connect(&broker.addr).await.unwrap();
    assert_eq!(
        c.list_offsets(&topic, &[0], -1).await.unwrap(),
        BTreeMap::from([(0, 0)]),
        "nothing appended to the validated topic"
    );
    assert_eq!(
        c.list_offsets(&plain, &[0], -1).await.unwrap(),
        BTreeMap::from([(0, 1)])
    );
    assert!(
        broker.stderr().contains("no schema registry is configured"),
        "the refusal is logged"
    );
}

fn admin(addr: &str) -> AdminClient<DefaultClientContext> {
    client_config(addr).create().expect("admin client")
}

/// The schema validation entries of `topic`'s DescribeConfigs: name → (value, default).
async fn described(
    a: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> BTreeMap<String, (Option<String>, bool)> {
    let r = a
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .unwrap();
    let c = r.into_iter().next().unwrap().expect("describe ok");
    c.entries
        .iter()
        .filter(|e| e.name.starts_with("confluent."))
        .map(|e| (e.name.clone(), (e.value.clone(), e.is_default)))
        .collect()
}

#[tokio::test]
async fn schema_validation_configs_round_trip_and_bad_values_are_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let topic = topic_name("configs");
    let a = admin(&broker.addr);
    let created = a
        .create_topics(
            &[
                NewTopic::new(&topic, 1, rdkafka::admin::TopicReplication::Fixed(1))
                    .set(KEY_VALIDATION, "TRUE")
                    .set(KEY_STRATEGY, RECORD_NAME_STRATEGY),
            ],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(created, vec![Ok(topic.clone())]);
    let owned = |v: &str| Some(v.to_owned());
    assert_eq!(
        described(&a, &topic).await,
        BTreeMap::from([
            (KEY_VALIDATION.to_owned(), (owned("true"), false)),
            (
                KEY_STRATEGY.to_owned(),
                (owned(RECORD_NAME_STRATEGY), false)
            ),
            (VALUE_VALIDATION.to_owned(), (owned("false"), true)),
            (
                VALUE_STRATEGY.to_owned(),
                (owned(TOPIC_NAME_STRATEGY), true)
            ),
        ])
    );

    // AlterConfigs replaces the whole override set, as in Kafka.
    let altered = a
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic(&topic))
                .set(VALUE_VALIDATION, "true")
                .set(VALUE_STRATEGY, TOPIC_RECORD_NAME_STRATEGY)],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    assert_eq!(
        described(&a, &topic).await,
        BTreeMap::from([
            (KEY_VALIDATION.to_owned(), (owned("false"), true)),
            (KEY_STRATEGY.to_owned(), (owned(TOPIC_NAME_STRATEGY), true)),
            (VALUE_VALIDATION.to_owned(), (owned("true"), false)),
            (
                VALUE_STRATEGY.to_owned(),
                (owned(TOPIC_RECORD_NAME_STRATEGY), false)
            ),
        ])
    );
    let (ok, out, err) = cli(&["topic", "describe", &topic, "--bootstrap", &broker.addr]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("config {VALUE_VALIDATION}=true")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "config {VALUE_STRATEGY}={TOPIC_RECORD_NAME_STRATEGY}"
        )),
        "{out}"
    );

    // Bad values are INVALID_CONFIG everywhere, and change nothing. (Our own protocol
    // client: rust-rdkafka 0.39's alter_configs drops per-resource error codes.)
    let mut c = medulla::admin::Client::connect(&broker.addr).await.unwrap();
    let other = topic_name("bad");
    for (key, value) in [
        (VALUE_VALIDATION, "yes"),
        (KEY_STRATEGY, "TopicNameStrategy"),
        (
            VALUE_STRATEGY,
            "io.confluent.kafka.serializers.subject.NoSuchStrategy",
        ),
    ] {
        let r = c
            .send(
                CreateTopicsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(vec![
                        CreatableTopic::default()
                            .with_name(TopicName(s(&other)))
                            .with_num_partitions(1)
                            .with_replication_factor(1)
                            .with_configs(vec![
                                CreatableTopicConfig::default()
                                    .with_name(s(key))
                                    .with_value(Some(s(value))),
                            ]),
                    ]),
            )
            .await
            .unwrap();
        assert_eq!(
            r.topics[0].error_code, INVALID_CONFIG,
            "create {key}={value}"
        );
        let message = r.topics[0].error_message.as_deref().unwrap_or_default();
        assert!(message.contains(key), "{message}");

        let r = c
            .send(
                IncrementalAlterConfigsRequest::default().with_resources(vec![
                    AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s(&topic))
                        .with_configs(vec![
                            AlterableConfig::default()
                                .with_name(s(key))
                                .with_config_operation(0)
                                .with_value(Some(s(value))),
                        ]),
                ]),
            )
            .await
            .unwrap();
        assert_eq!(
            r.responses[0].error_code, INVALID_CONFIG,
            "incremental {key}={value}"
        );

        let r = c
            .send(AlterConfigsRequest::default().with_resources(vec![
                LegacyResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(&topic))
                    .with_configs(vec![
                        LegacyConfig::default()
                            .with_name(s(key))
                            .with_value(Some(s(value))),
                    ]),
            ]))
            .await
            .unwrap();
        assert_eq!(
            r.responses[0].error_code, INVALID_CONFIG,
            "alter {key}={value}"
        );
    }
    let (ok, _, err) = cli(&[
        "topic",
        "alter",
        &topic,
        "--config",
        &format!("{KEY_VALIDATION}=maybe"),
        "--bootstrap",
        &broker.addr,
    ]);
    assert!(!ok && err.contains("INVALID_CONFIG"), "{err}");
    assert_eq!(
        described(&a, &topic).await[VALUE_STRATEGY],
        (owned(TOPIC_RECORD_NAME_STRATEGY), false),
        "refused changes left the configs alone"
    );

    // IncrementalAlterConfigs SET and DELETE, like every other topic config.
    let r = c
        .send(
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(&topic))
                    .with_configs(vec![
                        AlterableConfig::default()
                            .with_name(s(VALUE_VALIDATION))
                            .with_config_operation(1),
                        AlterableConfig::default()
                            .with_name(s(KEY_VALIDATION))
                            .with_config_operation(0)
                            .with_value(Some(s("true"))),
                    ]),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(r.responses[0].error_code, 0, "{r:?}");
    let now = described(&a, &topic).await;
    assert_eq!(now[VALUE_VALIDATION], (owned("false"), true));
    assert_eq!(now[KEY_VALIDATION], (owned("true"), false));
}
