//! What each API checks before it runs, as Kafka's `KafkaApis` (and its request
//! handlers) do, with their error codes.
//!
//! [`before`] runs ahead of the handler: it refuses a request outright (a group the
//! principal may not read: GROUP_AUTHORIZATION_FAILED), or takes out the items the
//! principal may not touch (topics it may not write) and returns a [`Post`] that puts
//! their errors back into the handler's response; listings (all topics, all groups)
//! are filtered afterwards. The handlers themselves know nothing of authorization.
//! Allowed administrative operations are recorded in the audit trail here, before the
//! handler changes anything; an item whose record cannot be written fails with
//! KAFKA_STORAGE_ERROR and is never handed to the handler.

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, ApiKey, BrokerId,
    ConsumerGroupHeartbeatResponse, CreatePartitionsResponse, DescribeClusterResponse,
    EndTxnResponse, FetchResponse, FindCoordinatorResponse, GroupId, HeartbeatResponse,
    InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse, ProducerId, RequestKind,
    ResponseKind, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use medulla_auth::acl::{AclOperation as Op, ResourceType as Rt};

use crate::authz::Access;
use crate::handlers::Reply;

/// Puts the refused items' errors into the handler's response.
pub type Post = Box<dyn FnOnce(&mut ResponseKind) + Send>;

/// What [`before`] decided.
pub enum Gate {
    /// Answer this without running the handler.
    Respond(ResponseKind),
    /// Close the connection (a refused acks=0 produce has no response to carry it).
    Close,
    /// Run the handler on this (possibly smaller) request, then apply the post step.
    Pass(RequestKind, Option<Post>),
}

const TOPIC_DENIED: i16 = 29; // TOPIC_AUTHORIZATION_FAILED
const GROUP_DENIED: i16 = 30; // GROUP_AUTHORIZATION_FAILED
const CLUSTER_DENIED: i16 = 31; // CLUSTER_AUTHORIZATION_FAILED
const TXN_DENIED: i16 = 53; // TRANSACTIONAL_ID_AUTHORIZATION_FAILED
/// Kafka's "authorized operations not requested" value.
const OPS_OMITTED: i32 = i32::MIN;

/// DescribeConfigs / AlterConfigs resource types.
const CONFIG_TOPIC: i8 = 2;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn topic(v: &str) -> TopicName {
    TopicName(s(v))
}

fn post(f: impl FnOnce(&mut ResponseKind) + Send + 'static) -> Option<Post> {
    Some(Box::new(f))
}

/// Applies `post` to whatever the handler produced.
pub fn after(reply: Reply, post: Option<Post>) -> Reply {
    let Some(post) = post else {
        return reply;
    };
    match reply {
        Reply::Now(mut body) => {
            post(&mut body);
            Reply::Now(body)
        }
        Reply::Later(pending) => Reply::Later(Box::pin(async move {
            let mut response = pending.await;
            post(&mut response.body);
            response
        })),
        // acks=0: a refused partition has no response to carry its error; Kafka closes
        // the connection, as for any other failed acks=0 produce.
        Reply::None | Reply::Close => Reply::Close,
    }
}

/// AlterConfigs and IncrementalAlterConfigs: one gate over the two generated message
/// types (the same fields, different types): resources the principal may not alter are
/// taken out and answered with their error.
macro_rules! alter_configs {
    ($access:expr, $r:ident, $kind:ident, $resource_response:ty) => {{
        let mut denied = Vec::new();
        let mut kept = Vec::new();
        for res in std::mem::take(&mut $r.resources) {
            match alter_config_gate(
                &$access,
                res.resource_type,
                &res.resource_name,
                $r.validate_only,
            )
            .await
            {
                Ok(()) => kept.push(res),
                Err(code) => denied.push(
                    <$resource_response>::default()
                        .with_resource_type(res.resource_type)
                        .with_resource_name(res.resource_name.clone())
                        .with_error_code(code),
                ),
            }
        }
        $r.resources = kept;
        with_extra(RequestKind::$kind($r), denied, |b, d| {
            if let ResponseKind::$kind(b) = b {
                b.responses.extend(d)
            }
        })
    }};
}

/// The checks for `body`, before its handler runs.
pub async fn before(access: Access<'_>, version: i16, body: RequestKind) -> Gate {
    if !access.enabled() && !is_change(access.api()) {
        return Gate::Pass(body, None);
    }
    match body {
        RequestKind::Produce(mut r) => {
            if let Some(id) = &r.transactional_id
                && crate::handlers::produce::has_transactional_batch(&r)
                && !access.check(Op::Write, Rt::TransactionalId, id).await
            {
                if r.acks == 0 {
                    return Gate::Close;
                }
                return Gate::Respond(ResponseKind::Produce(crate::handlers::produce::refused(
                    r, TXN_DENIED,
                )));
            }
            let mut denied = Vec::new();
            let mut kept = Vec::with_capacity(r.topic_data.len());
            for t in std::mem::take(&mut r.topic_data) {
                let refused = match topic_name(&access, version >= 13, t.topic_id, &t.name) {
                    Some(n) => !access.check(Op::Write, Rt::Topic, &n).await,
                    None => false,
                };
                match refused {
                    true => denied.push(
                        kafka_protocol::messages::produce_response::TopicProduceResponse::default()
                            .with_name(t.name.clone())
                            .with_topic_id(t.topic_id)
                            .with_partition_responses(
                                t.partition_data
                                    .iter()
                                    .map(|p| {
                                        kafka_protocol::messages::produce_response::PartitionProduceResponse::default()
                                            .with_index(p.index)
                                            .with_error_code(TOPIC_DENIED)
                                            .with_base_offset(-1)
                                    })
                                    .collect(),
                            ),
                    ),
                    false => kept.push(t),
                }
            }
            r.topic_data = kept;
            if denied.is_empty() {
                return Gate::Pass(RequestKind::Produce(r), None);
            }
            Gate::Pass(
                RequestKind::Produce(r),
                post(move |b| {
                    if let ResponseKind::Produce(b) = b {
                        b.responses.extend(denied);
                    }
                }),
            )
        }
        RequestKind::Fetch(mut r) => {
            let mut denied = Vec::new();
            let mut kept = Vec::with_capacity(r.topics.len());
            for t in std::mem::take(&mut r.topics) {
                let refused = match topic_name(&access, version >= 13, t.topic_id, &t.topic) {
                    Some(n) => !access.check(Op::Read, Rt::Topic, &n).await,
                    None => false,
                };
                match refused {
                    true => denied.push(
                        kafka_protocol::messages::fetch_response::FetchableTopicResponse::default()
                            .with_topic(t.topic.clone())
                            .with_topic_id(t.topic_id)
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        kafka_protocol::messages::fetch_response::PartitionData::default()
                                            .with_partition_index(p.partition)
                                            .with_error_code(TOPIC_DENIED)
                                            .with_high_watermark(-1)
                                            .with_records(Some(Bytes::new()))
                                    })
                                    .collect(),
                            ),
                    ),
                    false => kept.push(t),
                }
            }
            if denied.is_empty() {
                r.topics = kept;
                return Gate::Pass(RequestKind::Fetch(r), None);
            }
            if kept.is_empty() {
                // Nothing left to wait for: answer at once, as Kafka does.
                return Gate::Respond(ResponseKind::Fetch(
                    FetchResponse::default().with_responses(denied),
                ));
            }
            r.topics = kept;
            Gate::Pass(
                RequestKind::Fetch(r),
                post(move |b| {
                    if let ResponseKind::Fetch(b) = b {
                        b.responses.extend(denied);
                    }
                }),
            )
        }
        RequestKind::ListOffsets(mut r) => {
            let mut denied = Vec::new();
            let mut kept = Vec::new();
            for t in std::mem::take(&mut r.topics) {
                if access.check(Op::Describe, Rt::Topic, &t.name).await {
                    kept.push(t);
                } else {
                    use kafka_protocol::messages::list_offsets_response::*;
                    denied.push(
                        ListOffsetsTopicResponse::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        ListOffsetsPartitionResponse::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(TOPIC_DENIED)
                                            .with_timestamp(-1)
                                            .with_offset(-1)
                                    })
                                    .collect(),
                            ),
                    );
                }
            }
            r.topics = kept;
            with_extra(RequestKind::ListOffsets(r), denied, |b, d| {
                if let ResponseKind::ListOffsets(b) = b {
                    b.topics.extend(d)
                }
            })
        }
        RequestKind::Metadata(r) => metadata(access, version, r).await,
        RequestKind::DescribeCluster(r) => {
            if !access.check_cluster(Op::Describe).await {
                return Gate::Respond(ResponseKind::DescribeCluster(
                    DescribeClusterResponse::default()
                        .with_error_code(CLUSTER_DENIED)
                        .with_cluster_authorized_operations(OPS_OMITTED),
                ));
            }
            let ops = r.include_cluster_authorized_operations.then(|| {
                access.authorized_operations(Rt::Cluster, medulla_auth::acl::CLUSTER_NAME)
            });
            Gate::Pass(
                RequestKind::DescribeCluster(r),
                ops.and_then(|ops| {
                    post(move |b| {
                        if let ResponseKind::DescribeCluster(b) = b {
                            b.cluster_authorized_operations = ops;
                        }
                    })
                }),
            )
        }
        RequestKind::FindCoordinator(mut r) => {
            let (rt, code) = if r.key_type == 1 {
                (Rt::TransactionalId, TXN_DENIED)
            } else {
                (Rt::Group, GROUP_DENIED)
            };
            if version < 4 {
                if !access.check(Op::Describe, rt, &r.key).await {
                    return Gate::Respond(ResponseKind::FindCoordinator(
                        FindCoordinatorResponse::default()
                            .with_error_code(code)
                            .with_node_id(BrokerId(-1))
                            .with_port(-1),
                    ));
                }
                return Gate::Pass(RequestKind::FindCoordinator(r), None);
            }
            let mut denied = Vec::new();
            let mut kept = Vec::new();
            for k in std::mem::take(&mut r.coordinator_keys) {
                if access.check(Op::Describe, rt, &k).await {
                    kept.push(k);
                } else {
                    denied.push(
                        Coordinator::default()
                            .with_key(k)
                            .with_error_code(code)
                            .with_node_id(BrokerId(-1))
                            .with_port(-1),
                    );
                }
            }
            if kept.is_empty() && !denied.is_empty() {
                return Gate::Respond(ResponseKind::FindCoordinator(
                    FindCoordinatorResponse::default().with_coordinators(denied),
                ));
            }
            r.coordinator_keys = kept;
            with_extra(RequestKind::FindCoordinator(r), denied, |b, d| {
                if let ResponseKind::FindCoordinator(b) = b {
                    b.coordinators.extend(d)
                }
            })
        }
        RequestKind::JoinGroup(r) => {
            if !access.check(Op::Read, Rt::Group, &r.group_id).await {
                return Gate::Respond(ResponseKind::JoinGroup(
                    JoinGroupResponse::default()
                        .with_error_code(GROUP_DENIED)
                        .with_generation_id(-1)
                        .with_member_id(r.member_id.clone()),
                ));
            }
            Gate::Pass(RequestKind::JoinGroup(r), None)
        }
        RequestKind::SyncGroup(r) => {
            if !access.check(Op::Read, Rt::Group, &r.group_id).await {
                return Gate::Respond(ResponseKind::SyncGroup(
                    SyncGroupResponse::default().with_error_code(GROUP_DENIED),
                ));
            }
            Gate::Pass(RequestKind::SyncGroup(r), None)
        }
        RequestKind::Heartbeat(r) => {
            if !access.check(Op::Read, Rt::Group, &r.group_id).await {
                return Gate::Respond(ResponseKind::Heartbeat(
                    HeartbeatResponse::default().with_error_code(GROUP_DENIED),
                ));
            }
            Gate::Pass(RequestKind::Heartbeat(r), None)
        }
        RequestKind::LeaveGroup(r) => {
            if !access.check(Op::Read, Rt::Group, &r.group_id).await {
                return Gate::Respond(ResponseKind::LeaveGroup(
                    LeaveGroupResponse::default().with_error_code(GROUP_DENIED),
                ));
            }
            Gate::Pass(RequestKind::LeaveGroup(r), None)
        }
        RequestKind::ConsumerGroupHeartbeat(r) => {
            let refuse = |code: i16, message: String| {
                Gate::Respond(ResponseKind::ConsumerGroupHeartbeat(
                    ConsumerGroupHeartbeatResponse::default()
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_string(message))),
                ))
            };
            if !access.check(Op::Read, Rt::Group, &r.group_id).await {
                return refuse(GROUP_DENIED, String::new());
            }
            if let Some(names) = &r.subscribed_topic_names {
                let mut unauthorized = Vec::new();
                for n in names {
                    if !access.check(Op::Describe, Rt::Topic, n).await {
                        unauthorized.push(n.to_string());
                    }
                }
                if !unauthorized.is_empty() {
                    return refuse(
                        TOPIC_DENIED,
                        format!("Unauthorized topics: {}", unauthorized.join(", ")),
                    );
                }
            }
            Gate::Pass(RequestKind::ConsumerGroupHeartbeat(r), None)
        }
        RequestKind::DescribeGroups(mut r) => {
            let mut denied = Vec::new();
            let mut kept = Vec::new();
            for g in std::mem::take(&mut r.groups) {
                if access.check(Op::Describe, Rt::Group, &g).await {
                    kept.push(g);
                } else {
                    denied.push(
                        kafka_protocol::messages::describe_groups_response::DescribedGroup::default()
                            .with_group_id(g)
                            .with_error_code(GROUP_DENIED)
                            .with_authorized_operations(OPS_OMITTED),
                    );
                }
            }
            let include_ops = r.include_authorized_operations;
            r.groups = kept;
            let who = access.who();
            Gate::Pass(
                RequestKind::DescribeGroups(r),
                post(move |b| {
                    if let ResponseKind::DescribeGroups(b) = b {
                        if include_ops {
                            for g in &mut b.groups {
                                g.authorized_operations =
                                    who.authorized_operations(Rt::Group, &g.group_id);
                            }
                        }
                        b.groups.extend(denied);
                    }
                }),
            )
        }
        RequestKind::ConsumerGroupDescribe(mut r) => {
            let mut denied = Vec::new();
            let mut kept = Vec::new();
            for g in std::mem::take(&mut r.group_ids) {
                if access.check(Op::Describe, Rt::Group, &g).await {
                    kept.push(g);
                } else {
                    denied.push(
                        kafka_protocol::messages::consumer_group_describe_response::DescribedGroup::default()
                            .with_group_id(g)
                            .with_error_code(GROUP_DENIED)
                            .with_authorized_operations(OPS_OMITTED),
                    );
                }
            }
            let include_ops = r.include_authorized_operations;
            r.group_ids = kept;
            let who = access.who();
            Gate::Pass(
                RequestKind::ConsumerGroupDescribe(r),
                post(move |b| {
                    if let ResponseKind::ConsumerGroupDescribe(b) = b {
                        if include_ops {
                            for g in &mut b.groups {
                                g.authorized_operations =
                                    who.authorized_operations(Rt::Group, &g.group_id);
                            }
                        }
                        b.groups.extend(denied);
                    }
                }),
            )
        }
        RequestKind::ListGroups(r) => {
            if access.allowed(Op::Describe, Rt::Cluster, medulla_auth::acl::CLUSTER_NAME) {
                return Gate::Pass(RequestKind::ListGroups(r), None);
            }
            let who = access.who();
            Gate::Pass(
                RequestKind::ListGroups(r),
                post(move |b| {
                    if let ResponseKind::ListGroups(b) = b {
                        b.groups
                            .retain(|g| who.allowed(Op::Describe, Rt::Group, &g.group_id));
                    }
                }),
            )
        }
        RequestKind::DeleteGroups(mut r) => {
            let mut denied = Vec::new();
            let mut kept = Vec::new();
            for g in std::mem::take(&mut r.groups_names) {
                let code = if !access.check(Op::Delete, Rt::Group, &g).await {
                    GROUP_DENIED
                } else if let Err(code) = access
                    .record_change(Op::Delete, Rt::Group, &g, "delete group")
                    .await
                {
                    code
                } else {
                    kept.push(g);
                    continue;
                };
                denied.push(
                    kafka_protocol::messages::delete_groups_response::DeletableGroupResult::default()
                        .with_group_id(g)
                        .with_error_code(code),
                );
            }
            r.groups_names = kept;
            with_extra(RequestKind::DeleteGroups(r), denied, |b, d| {
                if let ResponseKind::DeleteGroups(b) = b {
                    b.results.extend(d)
                }
            })
        }
        RequestKind::OffsetDelete(mut r) => {
            if !access.check(Op::Delete, Rt::Group, &r.group_id).await {
                return Gate::Respond(ResponseKind::OffsetDelete(
                    OffsetDeleteResponse::default().with_error_code(GROUP_DENIED),
                ));
            }
            use kafka_protocol::messages::offset_delete_response::*;
            let mut denied = Vec::new();
            let mut kept = Vec::new();
            for t in std::mem::take(&mut r.topics) {
                let code = if !access.check(Op::Read, Rt::Topic, &t.name).await {
                    TOPIC_DENIED
                } else if let Err(code) = access
                    .record_change(
                        Op::Delete,
                        Rt::Group,
                        &r.group_id,
                        &format!("delete committed offsets of topic {}", t.name.as_str()),
                    )
                    .await
                {
                    code
                } else {
                    kept.push(t);
                    continue;
                };
                denied.push(
                    OffsetDeleteResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(code)
                                })
                                .collect(),
                        ),
                );
            }
            r.topics = kept;
            with_extra(RequestKind::OffsetDelete(r), denied, |b, d| {
                if let ResponseKind::OffsetDelete(b) = b {
                    b.topics.extend(d)
                }
            })
        }
        RequestKind::OffsetCommit(mut r) => {
            use kafka_protocol::messages::offset_commit_response::*;
            let refused = |topics: &[kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic],
                           code: i16| {
                topics
                    .iter()
                    .map(|t| {
                        OffsetCommitResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_topic_id(t.topic_id)
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        OffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect::<Vec<_>>()
            };
            if !access.check(Op::Read, Rt::Group, &r.group_id).await {
                return Gate::Respond(ResponseKind::OffsetCommit(
                    OffsetCommitResponse::default().with_topics(refused(&r.topics, GROUP_DENIED)),
                ));
            }
            let mut denied_topics = Vec::new();
            let mut kept = Vec::new();
            for t in std::mem::take(&mut r.topics) {
                if access.check(Op::Read, Rt::Topic, &t.name).await {
                    kept.push(t);
                } else {
                    denied_topics.push(t);
                }
            }
            let denied = refused(&denied_topics, TOPIC_DENIED);
            r.topics = kept;
            // A commit outside any generation is an administrative one (offset resets,
            // `medulla group reset`, standalone consumers): recorded as a change.
            if r.generation_id_or_member_epoch < 0
                && !r.topics.is_empty()
                && let Err(code) = access
                    .record_change(
                        Op::Read,
                        Rt::Group,
                        &r.group_id,
                        "commit offsets outside a generation",
                    )
                    .await
            {
                let mut all = refused(&r.topics, code);
                all.extend(denied);
                return Gate::Respond(ResponseKind::OffsetCommit(
                    OffsetCommitResponse::default().with_topics(all),
                ));
            }
            with_extra(RequestKind::OffsetCommit(r), denied, |b, d| {
                if let ResponseKind::OffsetCommit(b) = b {
                    b.topics.extend(d)
                }
            })
        }
        RequestKind::OffsetFetch(r) => offset_fetch(access, version, r).await,
        RequestKind::TxnOffsetCommit(mut r) => {
            use kafka_protocol::messages::txn_offset_commit_response::*;
            let refused = |topics: &[kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic],
                           code: i16| {
                topics
                    .iter()
                    .map(|t| {
                        TxnOffsetCommitResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        TxnOffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect::<Vec<_>>()
            };
            if !access
                .check(Op::Write, Rt::TransactionalId, &r.transactional_id)
                .await
            {
                return Gate::Respond(ResponseKind::TxnOffsetCommit(
                    TxnOffsetCommitResponse::default().with_topics(refused(&r.topics, TXN_DENIED)),
                ));
            }
            if !access.check(Op::Read, Rt::Group, &r.group_id).await {
                return Gate::Respond(ResponseKind::TxnOffsetCommit(
                    TxnOffsetCommitResponse::default()
                        .with_topics(refused(&r.topics, GROUP_DENIED)),
                ));
            }
            let mut denied_topics = Vec::new();
            let mut kept = Vec::new();
            for t in std::mem::take(&mut r.topics) {
                if access.check(Op::Read, Rt::Topic, &t.name).await {
                    kept.push(t);
                } else {
                    denied_topics.push(t);
                }
            }
            let denied = refused(&denied_topics, TOPIC_DENIED);
            r.topics = kept;
            with_extra(RequestKind::TxnOffsetCommit(r), denied, |b, d| {
                if let ResponseKind::TxnOffsetCommit(b) = b {
                    b.topics.extend(d)
                }
            })
        }
        RequestKind::CreateTopics(mut r) => {
            use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
            let cluster_create =
                access.allowed(Op::Create, Rt::Cluster, medulla_auth::acl::CLUSTER_NAME);
            let mut denied = Vec::new();
            let mut kept = Vec::new();
            for t in std::mem::take(&mut r.topics) {
                let code = if !cluster_create && !access.check(Op::Create, Rt::Topic, &t.name).await
                {
                    TOPIC_DENIED
                } else if r.validate_only {
                    kept.push(t);
                    continue;
                } else if let Err(code) = access
                    .record_change(Op::Create, Rt::Topic, &t.name, "create topic")
                    .await
                {
                    code
                } else {
                    kept.push(t);
                    continue;
                };
                denied.push(
                    CreatableTopicResult::default()
                        .with_name(t.name.clone())
                        .with_error_code(code)
                        .with_num_partitions(-1)
                        .with_replication_factor(-1)
                        .with_topic_config_error_code(code),
                );
            }
            r.topics = kept;
            let who = access.who();
            Gate::Pass(
                RequestKind::CreateTopics(r),
                post(move |b| {
                    if let ResponseKind::CreateTopics(b) = b {
                        // Kafka returns a new topic's configs only to who may describe them.
                        for t in &mut b.topics {
                            if t.error_code == 0
                                && !who.allowed(Op::DescribeConfigs, Rt::Topic, &t.name)
                            {
                                t.topic_config_error_code = TOPIC_DENIED;
                                t.configs = None;
                            }
                        }
                        b.topics.extend(denied);
                    }
                }),
            )
        }
        RequestKind::DeleteTopics(mut r) => {
            use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
            let mut denied = Vec::new();
            // v6+ name topics in `topics` (by name or id); older versions in `topic_names`.
            let mut kept_states = Vec::new();
            for t in std::mem::take(&mut r.topics) {
                let by_id = t.name.is_none() && !t.topic_id.is_nil();
                let name = match &t.name {
                    Some(n) => Some(n.to_string()),
                    None => access
                        .broker()
                        .log()
                        .topic_by_id(t.topic_id)
                        .map(|m| m.name),
                };
                let Some(name) = name else {
                    kept_states.push(t); // the handler answers UNKNOWN_TOPIC_ID
                    continue;
                };
                if by_id && !access.check(Op::Describe, Rt::Topic, &name).await {
                    // The name is not disclosed to who may not describe it.
                    denied.push(
                        DeletableTopicResult::default()
                            .with_topic_id(t.topic_id)
                            .with_error_code(TOPIC_DENIED),
                    );
                    continue;
                }
                match delete_topic_gate(&access, &name).await {
                    Ok(()) => kept_states.push(t),
                    Err(code) => denied.push(
                        DeletableTopicResult::default()
                            .with_name(t.name.clone().or(Some(topic(&name))))
                            .with_topic_id(t.topic_id)
                            .with_error_code(code),
                    ),
                }
            }
            let mut kept_names = Vec::new();
            for n in std::mem::take(&mut r.topic_names) {
                match delete_topic_gate(&access, &n).await {
                    Ok(()) => kept_names.push(n),
                    Err(code) => denied.push(
                        DeletableTopicResult::default()
                            .with_name(Some(n))
                            .with_error_code(code),
                    ),
                }
            }
            r.topics = kept_states;
            r.topic_names = kept_names;
            with_extra(RequestKind::DeleteTopics(r), denied, |b, d| {
                if let ResponseKind::DeleteTopics(b) = b {
                    b.responses.extend(d)
                }
            })
        }
        RequestKind::CreatePartitions(mut r) => {
            use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
            let mut denied = Vec::new();
            let mut kept = Vec::new();
            for t in std::mem::take(&mut r.topics) {
                let code = if !access.check(Op::Alter, Rt::Topic, &t.name).await {
                    TOPIC_DENIED
                } else if r.validate_only {
                    kept.push(t);
                    continue;
                } else if let Err(code) = access
                    .record_change(
                        Op::Alter,
                        Rt::Topic,
                        &t.name,
                        &format!("create partitions up to {}", t.count),
                    )
                    .await
                {
                    code
                } else {
                    kept.push(t);
                    continue;
                };
                denied.push(
                    CreatePartitionsTopicResult::default()
                        .with_name(t.name.clone())
                        .with_error_code(code),
                );
            }
            if kept.is_empty() && !denied.is_empty() {
                return Gate::Respond(ResponseKind::CreatePartitions(
                    CreatePartitionsResponse::default().with_results(denied),
                ));
            }
            r.topics = kept;
            with_extra(RequestKind::CreatePartitions(r), denied, |b, d| {
                if let ResponseKind::CreatePartitions(b) = b {
                    b.results.extend(d)
                }
            })
        }
        RequestKind::DeleteRecords(mut r) => {
            use kafka_protocol::messages::delete_records_response::*;
            let mut denied = Vec::new();
            let mut kept = Vec::new();
            for t in std::mem::take(&mut r.topics) {
                let code = if !access.check(Op::Delete, Rt::Topic, &t.name).await {
                    TOPIC_DENIED
                } else if let Err(code) = access
                    .record_change(Op::Delete, Rt::Topic, &t.name, "delete records")
                    .await
                {
                    code
                } else {
                    kept.push(t);
                    continue;
                };
                denied.push(
                    DeleteRecordsTopicResult::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    DeleteRecordsPartitionResult::default()
                                        .with_partition_index(p.partition_index)
                                        .with_low_watermark(-1)
                                        .with_error_code(code)
                                })
                                .collect(),
                        ),
                );
            }
            r.topics = kept;
            with_extra(RequestKind::DeleteRecords(r), denied, |b, d| {
                if let ResponseKind::DeleteRecords(b) = b {
                    b.topics.extend(d)
                }
            })
        }
        RequestKind::DescribeConfigs(mut r) => {
            use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
            let mut denied = Vec::new();
            let mut kept = Vec::new();
            for res in std::mem::take(&mut r.resources) {
                let (rt, name, code) = config_resource(res.resource_type, &res.resource_name);
                if access.check(Op::DescribeConfigs, rt, name).await {
                    kept.push(res);
                } else {
                    denied.push(
                        DescribeConfigsResult::default()
                            .with_resource_type(res.resource_type)
                            .with_resource_name(res.resource_name.clone())
                            .with_error_code(code)
                            .with_error_message(Some(s("Authorization failed."))),
                    );
                }
            }
            r.resources = kept;
            with_extra(RequestKind::DescribeConfigs(r), denied, |b, d| {
                if let ResponseKind::DescribeConfigs(b) = b {
                    b.results.extend(d)
                }
            })
        }
        RequestKind::AlterConfigs(mut r) => alter_configs!(
            access,
            r,
            AlterConfigs,
            kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse
        ),
        RequestKind::IncrementalAlterConfigs(mut r) => alter_configs!(
            access,
            r,
            IncrementalAlterConfigs,
            kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse
        ),
        RequestKind::InitProducerId(r) => {
            let code = match &r.transactional_id {
                Some(id) => {
                    (!access.check(Op::Write, Rt::TransactionalId, id).await).then_some(TXN_DENIED)
                }
                None => {
                    let ok = access
                        .allowed(Op::IdempotentWrite, Rt::Cluster, medulla_auth::acl::CLUSTER_NAME)
                        || access.allowed_any(Op::Write, Rt::Topic)
                        // Records the denial.
                        || access.check_cluster(Op::IdempotentWrite).await;
                    (!ok).then_some(CLUSTER_DENIED)
                }
            };
            match code {
                Some(code) => Gate::Respond(ResponseKind::InitProducerId(
                    InitProducerIdResponse::default()
                        .with_error_code(code)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                )),
                None => Gate::Pass(RequestKind::InitProducerId(r), None),
            }
        }
        RequestKind::AddPartitionsToTxn(r) => add_partitions_to_txn(access, version, r).await,
        RequestKind::AddOffsetsToTxn(r) => {
            let code = if !access
                .check(Op::Write, Rt::TransactionalId, &r.transactional_id)
                .await
            {
                Some(TXN_DENIED)
            } else if !access.check(Op::Read, Rt::Group, &r.group_id).await {
                Some(GROUP_DENIED)
            } else {
                None
            };
            match code {
                Some(code) => Gate::Respond(ResponseKind::AddOffsetsToTxn(
                    AddOffsetsToTxnResponse::default().with_error_code(code),
                )),
                None => Gate::Pass(RequestKind::AddOffsetsToTxn(r), None),
            }
        }
        RequestKind::EndTxn(r) => {
            if !access
                .check(Op::Write, Rt::TransactionalId, &r.transactional_id)
                .await
            {
                return Gate::Respond(ResponseKind::EndTxn(
                    EndTxnResponse::default()
                        .with_error_code(TXN_DENIED)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                ));
            }
            Gate::Pass(RequestKind::EndTxn(r), None)
        }
        RequestKind::DescribeTransactions(mut r) => {
            use kafka_protocol::messages::describe_transactions_response::TransactionState;
            let mut denied = Vec::new();
            let mut kept = Vec::new();
            for id in std::mem::take(&mut r.transactional_ids) {
                if access.check(Op::Describe, Rt::TransactionalId, &id).await {
                    kept.push(id);
                } else {
                    denied.push(
                        TransactionState::default()
                            .with_transactional_id(id)
                            .with_error_code(TXN_DENIED)
                            .with_producer_id(ProducerId(-1))
                            .with_producer_epoch(-1),
                    );
                }
            }
            r.transactional_ids = kept;
            let who = access.who();
            Gate::Pass(
                RequestKind::DescribeTransactions(r),
                post(move |b| {
                    if let ResponseKind::DescribeTransactions(b) = b {
                        // As Kafka: partitions of topics the principal may not describe
                        // are left out.
                        for t in &mut b.transaction_states {
                            t.topics
                                .retain(|d| who.allowed(Op::Describe, Rt::Topic, &d.topic));
                        }
                        b.transaction_states.extend(denied);
                    }
                }),
            )
        }
        RequestKind::ListTransactions(r) => {
            let who = access.who();
            Gate::Pass(
                RequestKind::ListTransactions(r),
                post(move |b| {
                    if let ResponseKind::ListTransactions(b) = b {
                        b.transaction_states.retain(|t| {
                            who.allowed(Op::Describe, Rt::TransactionalId, &t.transactional_id)
                        });
                    }
                }),
            )
        }
        RequestKind::DescribeProducers(mut r) => {
            use kafka_protocol::messages::describe_producers_response::*;
            let mut denied = Vec::new();
            let mut kept = Vec::new();
            for t in std::mem::take(&mut r.topics) {
                if access.check(Op::Read, Rt::Topic, &t.name).await {
                    kept.push(t);
                } else {
                    denied.push(
                        TopicResponse::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partition_indexes
                                    .iter()
                                    .map(|p| {
                                        PartitionResponse::default()
                                            .with_partition_index(*p)
                                            .with_error_code(TOPIC_DENIED)
                                    })
                                    .collect(),
                            ),
                    );
                }
            }
            r.topics = kept;
            with_extra(RequestKind::DescribeProducers(r), denied, |b, d| {
                if let ResponseKind::DescribeProducers(b) = b {
                    b.topics.extend(d)
                }
            })
        }
        RequestKind::DescribeUserScramCredentials(r) => {
            if !access.check_cluster(Op::Describe).await {
                return Gate::Respond(ResponseKind::DescribeUserScramCredentials(
                    kafka_protocol::messages::DescribeUserScramCredentialsResponse::default()
                        .with_error_code(CLUSTER_DENIED)
                        .with_error_message(Some(StrBytes::from_static_str(
                            "Cluster authorization failed.",
                        ))),
                ));
            }
            Gate::Pass(RequestKind::DescribeUserScramCredentials(r), None)
        }
        RequestKind::AlterUserScramCredentials(r) => {
            use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
            if !access.check_cluster(Op::Alter).await {
                // As Kafka: every user named gets CLUSTER_AUTHORIZATION_FAILED.
                let mut names: Vec<StrBytes> = r
                    .deletions
                    .iter()
                    .map(|d| d.name.clone())
                    .chain(r.upsertions.iter().map(|u| u.name.clone()))
                    .collect();
                names.sort();
                names.dedup();
                return Gate::Respond(ResponseKind::AlterUserScramCredentials(
                    kafka_protocol::messages::AlterUserScramCredentialsResponse::default()
                        .with_results(
                            names
                                .into_iter()
                                .map(|n| {
                                    AlterUserScramCredentialsResult::default()
                                        .with_user(n)
                                        .with_error_code(CLUSTER_DENIED)
                                })
                                .collect(),
                        ),
                ));
            }
            Gate::Pass(RequestKind::AlterUserScramCredentials(r), None)
        }
        other => Gate::Pass(other, None),
    }
}

/// The APIs whose allowed requests are recorded as changes even with authorization off.
fn is_change(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::CreatePartitions
            | ApiKey::DeleteRecords
            | ApiKey::AlterConfigs
            | ApiKey::IncrementalAlterConfigs
            | ApiKey::DeleteGroups
            | ApiKey::OffsetDelete
            | ApiKey::OffsetCommit
    )
}

/// Passes the request, adding `extra` to the response afterwards when there is any.
fn with_extra<T: Send + 'static>(
    body: RequestKind,
    extra: Vec<T>,
    add: fn(&mut ResponseKind, Vec<T>),
) -> Gate {
    if extra.is_empty() {
        return Gate::Pass(body, None);
    }
    Gate::Pass(body, post(move |b| add(b, extra)))
}

/// The topic's name: as given, or (topic-id versions) the name of the topic with that
/// id; `None` for an unknown id (the handler answers UNKNOWN_TOPIC_ID).
fn topic_name<'n>(
    access: &Access<'_>,
    by_id: bool,
    id: uuid::Uuid,
    name: &'n TopicName,
) -> Option<std::borrow::Cow<'n, str>> {
    if by_id {
        access
            .broker()
            .log()
            .topic_by_id(id)
            .map(|m| std::borrow::Cow::Owned(m.name))
    } else {
        Some(std::borrow::Cow::Borrowed(name.as_str()))
    }
}

/// Kafka's DeleteTopics rule for a named topic: Delete on it (TOPIC_AUTHORIZATION_FAILED
/// whether or not it exists); then the change is recorded.
async fn delete_topic_gate(access: &Access<'_>, name: &str) -> Result<(), i16> {
    if !access.check(Op::Delete, Rt::Topic, name).await {
        return Err(TOPIC_DENIED);
    }
    access
        .record_change(Op::Delete, Rt::Topic, name, "delete topic")
        .await
}

/// A config resource as an ACL resource, and the code its refusal carries: topics are
/// topics; brokers and broker loggers are the cluster.
fn config_resource(resource_type: i8, name: &str) -> (Rt, &str, i16) {
    if resource_type == CONFIG_TOPIC {
        (Rt::Topic, name, TOPIC_DENIED)
    } else {
        (Rt::Cluster, medulla_auth::acl::CLUSTER_NAME, CLUSTER_DENIED)
    }
}

async fn alter_config_gate(
    access: &Access<'_>,
    resource_type: i8,
    name: &str,
    validate_only: bool,
) -> Result<(), i16> {
    let (rt, resource, code) = config_resource(resource_type, name);
    if !access.check(Op::AlterConfigs, rt, resource).await {
        return Err(code);
    }
    if validate_only {
        return Ok(());
    }
    access
        .record_change(
            Op::AlterConfigs,
            rt,
            resource,
            &format!("alter configs of resource type {resource_type} {name:?}"),
        )
        .await
}

async fn metadata(
    access: Access<'_>,
    version: i16,
    mut r: kafka_protocol::messages::MetadataRequest,
) -> Gate {
    use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
    let include_topic_ops = r.include_topic_authorized_operations;
    let cluster_ops = (r.include_cluster_authorized_operations && (8..=10).contains(&version))
        .then(|| access.authorized_operations(Rt::Cluster, medulla_auth::acl::CLUSTER_NAME));
    let all_topics = match &r.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    let mut denied: Vec<MetadataResponseTopic> = Vec::new();
    if !all_topics && let Some(list) = r.topics.take() {
        let auto_create = (version < 4 || r.allow_auto_topic_creation)
            && access.broker().config().auto_create_topics;
        let cluster_create =
            auto_create && access.allowed(Op::Create, Rt::Cluster, medulla_auth::acl::CLUSTER_NAME);
        let mut kept = Vec::with_capacity(list.len());
        let mut seen = HashSet::new();
        for t in list {
            let Some(name) = t.name.clone() else {
                kept.push(t); // by id: filtered on the way out
                continue;
            };
            if !seen.insert(name.0.clone()) {
                continue;
            }
            let refused = if !access.check(Op::Describe, Rt::Topic, &name).await {
                true
            } else {
                auto_create
                    && !cluster_create
                    && access.broker().log().topic(&name).is_none()
                    && !access.check(Op::Create, Rt::Topic, &name).await
            };
            if refused {
                denied.push(
                    MetadataResponseTopic::default()
                        .with_name(Some(name))
                        .with_error_code(TOPIC_DENIED)
                        .with_topic_authorized_operations(OPS_OMITTED),
                );
            } else {
                kept.push(t);
            }
        }
        r.topics = Some(kept);
    }
    let who = access.who();
    Gate::Pass(
        kafka_protocol::messages::RequestKind::Metadata(r),
        post(move |b| {
            let ResponseKind::Metadata(b) = b else {
                return;
            };
            // Listings leave out what may not be described; named topics were refused
            // above, and a topic found by id is refused the same way.
            b.topics.retain_mut(|t| {
                let Some(name) = t.name.as_ref() else {
                    return true;
                };
                if t.error_code != 0 || who.allowed(Op::Describe, Rt::Topic, name) {
                    if include_topic_ops && t.error_code == 0 {
                        t.topic_authorized_operations = who.authorized_operations(Rt::Topic, name);
                    }
                    return true;
                }
                if all_topics {
                    return false;
                }
                *t = MetadataResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_error_code(TOPIC_DENIED)
                    .with_topic_authorized_operations(OPS_OMITTED);
                true
            });
            b.topics.extend(denied);
            if let Some(ops) = cluster_ops {
                b.cluster_authorized_operations = ops;
            }
        }),
    )
}

async fn offset_fetch(
    access: Access<'_>,
    version: i16,
    mut r: kafka_protocol::messages::OffsetFetchRequest,
) -> Gate {
    use kafka_protocol::messages::offset_fetch_response::*;
    if version < 8 {
        if !access.check(Op::Describe, Rt::Group, &r.group_id).await {
            let topics = r
                .topics
                .iter()
                .flatten()
                .map(|t| {
                    OffsetFetchResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partition_indexes
                                .iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(*p)
                                        .with_committed_offset(-1)
                                        .with_error_code(GROUP_DENIED)
                                })
                                .collect(),
                        )
                })
                .collect();
            return Gate::Respond(ResponseKind::OffsetFetch(
                kafka_protocol::messages::OffsetFetchResponse::default()
                    .with_error_code(GROUP_DENIED)
                    .with_topics(topics),
            ));
        }
        let mut denied = Vec::new();
        if let Some(topics) = r.topics.as_mut() {
            let mut kept = Vec::new();
            for t in std::mem::take(topics) {
                if access.check(Op::Describe, Rt::Topic, &t.name).await {
                    kept.push(t);
                } else {
                    denied.push(
                        OffsetFetchResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partition_indexes
                                    .iter()
                                    .map(|p| {
                                        OffsetFetchResponsePartition::default()
                                            .with_partition_index(*p)
                                            .with_committed_offset(-1)
                                            .with_error_code(TOPIC_DENIED)
                                    })
                                    .collect(),
                            ),
                    );
                }
            }
            *topics = kept;
        }
        let all = r.topics.is_none();
        let who = access.who();
        return Gate::Pass(
            RequestKind::OffsetFetch(r),
            post(move |b| {
                if let ResponseKind::OffsetFetch(b) = b {
                    if all {
                        b.topics
                            .retain(|t| who.allowed(Op::Describe, Rt::Topic, &t.name));
                    }
                    b.topics.extend(denied);
                }
            }),
        );
    }
    // v8+: several groups, each checked alone.
    let mut denied_groups = Vec::new();
    let mut denied_topics: Vec<(GroupId, Vec<OffsetFetchResponseTopics>)> = Vec::new();
    let mut all_topics_groups = Vec::new();
    let mut kept = Vec::new();
    for mut g in std::mem::take(&mut r.groups) {
        if !access.check(Op::Describe, Rt::Group, &g.group_id).await {
            denied_groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(GROUP_DENIED),
            );
            continue;
        }
        match g.topics.as_mut() {
            None => all_topics_groups.push(g.group_id.clone()),
            Some(topics) => {
                let mut ok = Vec::new();
                let mut refused = Vec::new();
                for t in std::mem::take(topics) {
                    if access.check(Op::Describe, Rt::Topic, &t.name).await {
                        ok.push(t);
                    } else {
                        refused.push(
                            OffsetFetchResponseTopics::default()
                                .with_name(t.name.clone())
                                .with_topic_id(t.topic_id)
                                .with_partitions(
                                    t.partition_indexes
                                        .iter()
                                        .map(|p| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(*p)
                                                .with_committed_offset(-1)
                                                .with_error_code(TOPIC_DENIED)
                                        })
                                        .collect(),
                                ),
                        );
                    }
                }
                *topics = ok;
                if !refused.is_empty() {
                    denied_topics.push((g.group_id.clone(), refused));
                }
            }
        }
        kept.push(g);
    }
    if kept.is_empty() && !denied_groups.is_empty() {
        return Gate::Respond(ResponseKind::OffsetFetch(
            kafka_protocol::messages::OffsetFetchResponse::default().with_groups(denied_groups),
        ));
    }
    r.groups = kept;
    let who = access.who();
    Gate::Pass(
        RequestKind::OffsetFetch(r),
        post(move |b| {
            let ResponseKind::OffsetFetch(b) = b else {
                return;
            };
            for g in &mut b.groups {
                if all_topics_groups.contains(&g.group_id) {
                    g.topics
                        .retain(|t| who.allowed(Op::Describe, Rt::Topic, &t.name));
                }
                if let Some((_, refused)) =
                    denied_topics.iter_mut().find(|(id, _)| *id == g.group_id)
                {
                    g.topics.append(refused);
                }
            }
            b.groups.extend(denied_groups);
        }),
    )
}

async fn add_partitions_to_txn(
    access: Access<'_>,
    version: i16,
    mut r: kafka_protocol::messages::AddPartitionsToTxnRequest,
) -> Gate {
    let results = |topics: &[kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic],
                   code_of: &dyn Fn(&str) -> i16| {
        topics
            .iter()
            .map(|t| {
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.name.clone())
                    .with_results_by_partition(
                        t.partitions
                            .iter()
                            .map(|p| {
                                AddPartitionsToTxnPartitionResult::default()
                                    .with_partition_index(*p)
                                    .with_partition_error_code(code_of(&t.name))
                            })
                            .collect(),
                    )
            })
            .collect::<Vec<_>>()
    };
    if version < 4 {
        if !access
            .check(
                Op::Write,
                Rt::TransactionalId,
                &r.v3_and_below_transactional_id,
            )
            .await
        {
            return Gate::Respond(ResponseKind::AddPartitionsToTxn(
                AddPartitionsToTxnResponse::default()
                    .with_results_by_topic_v3_and_below(results(&r.v3_and_below_topics, &|_| {
                        TXN_DENIED
                    })),
            ));
        }
        let mut unauthorized = HashSet::new();
        for t in &r.v3_and_below_topics {
            if !access.check(Op::Write, Rt::Topic, &t.name).await {
                unauthorized.insert(t.name.to_string());
            }
        }
        if !unauthorized.is_empty() {
            // Kafka: the refused topics fail, the others are not attempted.
            let not_attempted = ResponseError::OperationNotAttempted.code();
            return Gate::Respond(ResponseKind::AddPartitionsToTxn(
                AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results(
                    &r.v3_and_below_topics,
                    &|n| {
                        if unauthorized.contains(n) {
                            TOPIC_DENIED
                        } else {
                            not_attempted
                        }
                    },
                )),
            ));
        }
        return Gate::Pass(RequestKind::AddPartitionsToTxn(r), None);
    }
    // v4: batched, from brokers verifying (ClusterAction) — each transaction still needs
    // Write on its transactional id and topics.
    if !access.check_cluster(Op::ClusterAction).await {
        return Gate::Respond(ResponseKind::AddPartitionsToTxn(
            AddPartitionsToTxnResponse::default().with_error_code(CLUSTER_DENIED),
        ));
    }
    let mut denied = Vec::new();
    let mut kept = Vec::new();
    for t in std::mem::take(&mut r.transactions) {
        if access
            .check(Op::Write, Rt::TransactionalId, &t.transactional_id)
            .await
        {
            kept.push(t);
        } else {
            denied.push(
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(t.transactional_id.clone())
                    .with_topic_results(results(&t.topics, &|_| TXN_DENIED)),
            );
        }
    }
    r.transactions = kept;
    with_extra(RequestKind::AddPartitionsToTxn(r), denied, |b, d| {
        if let ResponseKind::AddPartitionsToTxn(b) = b {
            b.results_by_transaction.extend(d)
        }
    })
}
