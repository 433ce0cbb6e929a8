//! FindCoordinator, OffsetCommit, TxnOffsetCommit and OffsetFetch: this node
//! coordinates every group and every transactional id. A commit is checked against the
//! group's membership (generation, member id, static instance) by the coordinator, then
//! stored durably in `__consumer_offsets`; a transactional one stays pending until its
//! transaction ends.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::groups::store::Committed;
use crate::session::Session;

/// A topic of an OffsetCommit: per partition, `Some(code)` when refused up front.
type PlannedTopic = (TopicName, uuid::Uuid, Vec<(i32, Option<i16>)>);

/// A topic of an OffsetFetch answer: per partition, its commit if any and an error code.
type FetchedTopic = (TopicName, Vec<(i32, Option<Committed>, i16)>);

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// The error for one coordinator key, if any.
fn coordinator_error(key_type: i8, key: &str) -> Option<(i16, &'static str)> {
    match key_type {
        KEY_TYPE_GROUP if key.is_empty() => Some((
            ResponseError::InvalidGroupId.code(),
            "the group id is empty",
        )),
        // This node coordinates every group and every transactional id.
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => None,
        _ => Some((
            ResponseError::InvalidRequest.code(),
            "unknown coordinator key type",
        )),
    }
}

/// Answers FindCoordinator: this node, for every group.
pub fn find_coordinator(
    broker: &Broker,
    session: &Session,
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    // The endpoint of the listener the request came in on, as Kafka answers.
    let (host, port) = broker.endpoint(&session.listener);
    let host = s(host);
    let port = i32::from(port);
    let node = BrokerId(broker.node_id());
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key.clone());
                match coordinator_error(request.key_type, key) {
                    Some((code, message)) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(code)
                        .with_error_message(Some(s(message))),
                    None => c.with_node_id(node).with_host(host.clone()).with_port(port),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match coordinator_error(request.key_type, &request.key) {
        Some((code, message)) => FindCoordinatorResponse::default()
            .with_error_code(code)
            .with_error_message((version >= 1).then(|| s(message)))
            .with_node_id(BrokerId(-1))
            .with_port(-1),
        None => FindCoordinatorResponse::default()
            .with_node_id(node)
            .with_host(host)
            .with_port(port),
    }
}

/// What OffsetCommit and TxnOffsetCommit decide about one partition before the group
/// sees it: UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE, or the offset to store.
fn commit_verdict(
    topic: Option<&medulla_log::TopicMeta>,
    partition: i32,
    (offset, leader_epoch): (i64, i32),
    metadata: Option<&str>,
    metadata_max: usize,
    now_ms: i64,
) -> Result<Committed, i16> {
    if !topic.is_some_and(|m| partition >= 0 && (partition as u32) < m.partitions) {
        return Err(ResponseError::UnknownTopicOrPartition.code());
    }
    let metadata = metadata.unwrap_or("");
    if metadata.len() > metadata_max {
        return Err(ResponseError::OffsetMetadataTooLarge.code());
    }
    Ok(Committed {
        offset,
        leader_epoch,
        metadata: metadata.to_owned(),
        commit_timestamp_ms: now_ms,
    })
}

/// Answers OffsetCommit.
pub async fn offset_commit(
    broker: &Broker,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let metadata_max = broker.config().offset_metadata_max_bytes;
    let now_ms = crate::groups::classic::Now::system().wall_ms;
    // Per partition: Some(code) when refused up front, None when it goes to the store.
    let mut plan: Vec<PlannedTopic> = Vec::with_capacity(request.topics.len());
    let mut commits = Vec::new();
    for t in request.topics {
        let topic = broker.log().topic(&t.name.0);
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let verdict = commit_verdict(
                topic.as_ref(),
                p.partition_index,
                (p.committed_offset, p.committed_leader_epoch),
                p.committed_metadata.as_deref(),
                metadata_max,
                now_ms,
            );
            let code = match verdict {
                Ok(committed) => {
                    commits.push((t.name.0.to_string(), p.partition_index, committed));
                    None
                }
                Err(code) => Some(code),
            };
            parts.push((p.partition_index, code));
        }
        plan.push((t.name, t.topic_id, parts));
    }
    let store_code = if group.is_empty() {
        ResponseError::InvalidGroupId.code()
    } else {
        let member = (
            request.member_id.as_str(),
            request.group_instance_id.as_deref(),
            request.generation_id_or_member_epoch,
        );
        match broker
            .groups()
            .commit(&group, member, version, commits)
            .await
        {
            Ok(()) => 0,
            Err(code) => code,
        }
    };
    let topics = plan
        .into_iter()
        .map(|(name, id, parts)| {
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_topic_id(id)
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(index, code)| {
                            // A group-level refusal wins over a partition's own error,
                            // as in Kafka, which validates the member first.
                            let code = match (store_code, code) {
                                (0, Some(c)) => c,
                                (s, _) => s,
                            };
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Answers TxnOffsetCommit (v0–v4). As Kafka's `handleTxnOffsetCommitRequest`:
/// partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION and never reach the
/// coordinator; the rest are validated against the group (a refusal is every such
/// partition's code), then each is OFFSET_METADATA_TOO_LARGE or written, pending until
/// the producer's transaction ends.
pub async fn txn_offset_commit(
    broker: &Broker,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let metadata_max = broker.config().offset_metadata_max_bytes;
    let now_ms = crate::groups::classic::Now::system().wall_ms;
    // Per partition: Some(code) when refused up front, None when it goes to the store.
    let mut plan = Vec::with_capacity(request.topics.len());
    let mut commits = Vec::new();
    let mut known = 0usize;
    for t in request.topics {
        let topic = broker.log().topic(&t.name.0);
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let exists = topic.as_ref().is_some_and(|m| {
                p.partition_index >= 0 && (p.partition_index as u32) < m.partitions
            });
            if exists {
                known += 1;
            }
            let verdict = commit_verdict(
                topic.as_ref(),
                p.partition_index,
                (p.committed_offset, p.committed_leader_epoch),
                p.committed_metadata.as_deref(),
                metadata_max,
                now_ms,
            );
            let code = match verdict {
                Ok(committed) => {
                    commits.push((t.name.0.to_string(), p.partition_index, committed));
                    None
                }
                Err(code) => Some(code),
            };
            parts.push((p.partition_index, exists, code));
        }
        plan.push((t.name, parts));
    }
    let group_code = if known == 0 {
        0
    } else {
        let member = (
            request.member_id.as_str(),
            request.group_instance_id.as_deref(),
            request.generation_id,
        );
        let producer = (request.producer_id.0, request.producer_epoch);
        // Kafka 3.6+ verification: the group must be in the producer's open transaction.
        match broker
            .txn()
            .begin_group_commit(&request.transactional_id.0, producer.0, producer.1, &group)
            .await
        {
            Err(code) => code,
            Ok(_permit) => match broker
                .groups()
                .commit_transactional(&group, producer, member, commits)
                .await
            {
                Ok(()) => 0,
                Err(code) => code,
            },
        }
    };
    let topics = plan
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(index, exists, code)| {
                    let code = match (exists, group_code, code) {
                        (false, _, Some(c)) | (true, 0, Some(c)) => c,
                        (true, g, _) => g,
                        (false, _, None) => 0,
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The committed offsets of `group` for the partitions asked (all when `None`). With
/// `require_stable` (OffsetFetch v7+), a partition an open transaction holds an offset
/// for is UNSTABLE_OFFSET_COMMIT, as in Kafka (the client retries until it is decided).
fn fetch_group(
    broker: &Broker,
    group: &str,
    topics: Option<Vec<(TopicName, Vec<i32>)>>,
    require_stable: bool,
) -> Vec<FetchedTopic> {
    let store = broker.groups().store();
    let unstable = |topic: &str, p: i32| require_stable && store.has_pending(group, topic, p);
    // Kafka answers no offset (-1) with the error.
    let unstable_code = ResponseError::UnstableOffsetCommit.code();
    match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(name, parts)| {
                let found = parts
                    .into_iter()
                    .map(|p| {
                        if unstable(&name.0, p) {
                            (p, None, unstable_code)
                        } else {
                            (p, store.get(group, &name.0, p), 0)
                        }
                    })
                    .collect();
                (name, found)
            })
            .collect(),
        None => {
            let mut by_topic: std::collections::BTreeMap<
                String,
                Vec<(i32, Option<Committed>, i16)>,
            > = Default::default();
            for (t, p, c) in store.all(group) {
                let entry = if unstable(&t, p) {
                    (p, None, unstable_code)
                } else {
                    (p, Some(c), 0)
                };
                by_topic.entry(t).or_default().push(entry);
            }
            by_topic
                .into_iter()
                .map(|(t, parts)| (TopicName(s(t)), parts))
                .collect()
        }
    }
}

/// Answers OffsetFetch (one group in v1–v7, several in v8+).
pub fn offset_fetch(
    broker: &Broker,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let epoch = |c: &Option<Committed>| {
        if version >= 5 {
            c.as_ref().map_or(-1, |c| c.leader_epoch)
        } else {
            -1
        }
    };
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                let wanted = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                let topics = fetch_group(broker, &g.group_id.0, wanted, request.require_stable)
                    .into_iter()
                    .map(|(name, parts)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(name)
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(p, c, code)| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_error_code(code)
                                            .with_committed_offset(
                                                c.as_ref().map_or(-1, |c| c.offset),
                                            )
                                            .with_committed_leader_epoch(epoch(&c))
                                            .with_metadata(Some(s(c
                                                .map(|c| c.metadata)
                                                .unwrap_or_default())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    let require_stable = version >= 7 && request.require_stable;
    let topics = fetch_group(broker, &request.group_id.0, wanted, require_stable)
        .into_iter()
        .map(|(name, parts)| {
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, c, code)| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(code)
                                .with_committed_offset(c.as_ref().map_or(-1, |c| c.offset))
                                .with_committed_leader_epoch(epoch(&c))
                                .with_metadata(Some(s(c.map(|c| c.metadata).unwrap_or_default())))
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
