//! Metadata (with topic auto-creation) and DescribeCluster.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use medulla_log::{LogError, TopicMeta};

use crate::broker::Broker;
use crate::error::kafka_code;
use crate::handlers::blocking;
use crate::session::Session;

/// Kafka's own internal topics (clients such as the Java admin hide them from listings,
/// regex subscriptions skip them) and Medulla's audit trail; any other name, even one
/// starting with `__`, is a user topic.
const INTERNAL_TOPICS: &[&str] = &[
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
    medulla_auth::audit::AUDIT_TOPIC,
];

/// Kafka's "authorized operations not requested" value.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Answers Metadata. Unknown topics are created when the request and
/// `auto.create.topics.enable` both allow it.
pub async fn handle(
    broker: &Broker,
    session: &Session,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let log = broker.log();
    // v0: an empty list means every topic; v1+: null means every topic.
    let requested = match request.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    let topics = match requested {
        None => log
            .topics()
            .iter()
            .map(|t| topic_entry(broker, t))
            .collect(),
        Some(list) => {
            // Kafka answers each topic once however often it is named: without this a small
            // request naming a big topic 100,000 times would build a huge response.
            let mut seen_names = std::collections::HashSet::new();
            let mut seen_ids = std::collections::HashSet::new();
            let list: Vec<_> = list
                .into_iter()
                .filter(|t| match &t.name {
                    Some(n) => seen_names.insert(n.0.clone()),
                    None => seen_ids.insert(t.topic_id),
                })
                .collect();
            let mut out = Vec::with_capacity(list.len());
            for t in list {
                let entry = match t.name {
                    Some(name) => match log.topic(&name) {
                        Some(meta) => topic_entry(broker, &meta),
                        None if allow_auto_create && broker.config().auto_create_topics => {
                            auto_create(broker, name).await
                        }
                        None => error_entry(
                            Some(name),
                            uuid::Uuid::nil(),
                            ResponseError::UnknownTopicOrPartition.code(),
                        ),
                    },
                    None => match log.topic_by_id(t.topic_id) {
                        Some(meta) => topic_entry(broker, &meta),
                        None => error_entry(None, t.topic_id, ResponseError::UnknownTopicId.code()),
                    },
                };
                out.push(entry);
            }
            out
        }
    };
    // The endpoint of the listener the request came in on, as Kafka answers.
    let (host, port) = broker.endpoint(&session.listener);
    MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(broker.node_id()))
                .with_host(StrBytes::from_string(host.to_owned()))
                .with_port(i32::from(port)),
        ])
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id().to_owned())))
        .with_controller_id(BrokerId(broker.node_id()))
        .with_topics(topics)
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

async fn auto_create(broker: &Broker, name: TopicName) -> MetadataResponseTopic {
    let log = broker.log().clone();
    let partitions = broker.config().num_partitions;
    let topic = name.0.to_string();
    if let Err(message) = crate::fds::check_room(u64::from(partitions)) {
        tracing::warn!(topic, "not auto-creating: {message}");
        return error_entry(
            Some(name),
            uuid::Uuid::nil(),
            ResponseError::PolicyViolation.code(),
        );
    }
    match blocking(move || log.create_topic(&topic, partitions, &BTreeMap::new(), false)).await {
        Ok(meta) => {
            tracing::info!(topic = %meta.name, "topic auto-created by a Metadata request");
            topic_entry(broker, &meta)
        }
        // Another connection created it between our lookup and our create.
        Err(LogError::TopicAlreadyExists(_)) => match broker.log().topic(&name) {
            Some(meta) => topic_entry(broker, &meta),
            None => error_entry(
                Some(name),
                uuid::Uuid::nil(),
                ResponseError::LeaderNotAvailable.code(),
            ),
        },
        Err(e) => error_entry(Some(name), uuid::Uuid::nil(), kafka_code(&e)),
    }
}

fn topic_entry(broker: &Broker, meta: &TopicMeta) -> MetadataResponseTopic {
    let node = BrokerId(broker.node_id());
    let partitions = (0..meta.partitions as i32)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(meta.name.clone()))))
        .with_topic_id(meta.id)
        .with_is_internal(INTERNAL_TOPICS.contains(&meta.name.as_str()))
        .with_partitions(partitions)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

fn error_entry(name: Option<TopicName>, id: uuid::Uuid, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name)
        .with_topic_id(id)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

/// Answers DescribeCluster: this one broker.
pub fn describe_cluster(
    broker: &Broker,
    session: &Session,
    request: &DescribeClusterRequest,
) -> DescribeClusterResponse {
    // endpoint_type 1 = brokers, 2 = controllers (v1+); this node is both.
    if request.endpoint_type != 1 && request.endpoint_type != 2 {
        return DescribeClusterResponse::default()
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_endpoint_type(request.endpoint_type)
            .with_cluster_id(StrBytes::from_string(broker.cluster_id().to_owned()));
    }
    let (host, port) = broker.endpoint(&session.listener);
    DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(StrBytes::from_string(broker.cluster_id().to_owned()))
        .with_controller_id(BrokerId(broker.node_id()))
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(broker.node_id()))
                .with_host(StrBytes::from_string(host.to_owned()))
                .with_port(i32::from(port)),
        ])
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}
