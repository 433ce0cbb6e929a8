//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups, DescribeGroups,
//! DeleteGroups and OffsetDelete: requests mapped onto the group coordinator
//! (`groups/coordinator.rs`) and its answers mapped back. JoinGroup and SyncGroup wait
//! for the other members; that wait is the request's second phase, so the connection
//! keeps serving Heartbeats and commits meanwhile.

use std::net::SocketAddr;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetDeleteRequest, OffsetDeleteResponse, ResponseKind, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{Pending, Reply};
use crate::broker::Broker;
use crate::groups::classic::{Answer, JoinParams, JoinResult, State, SyncParams, SyncResult};
use crate::groups::consumer::{self, Heartbeat, Topics};

/// DescribeGroups' `authorized_operations` when not computed (no ACLs yet), as Metadata.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn opt(v: &Option<StrBytes>) -> Option<String> {
    v.as_ref().map(|x| x.to_string())
}

/// An answer now or after the rebalance moves on, turned into a [`Reply`].
fn reply<T: Send + 'static>(
    answer: Answer<T>,
    lost: impl FnOnce() -> T + Send + 'static,
    respond: impl FnOnce(T) -> ResponseKind + Send + 'static,
) -> Reply {
    match answer {
        Answer::Now(r) => Reply::Now(respond(r)),
        Answer::Wait(rx) => {
            let pending: Pending = Box::pin(async move {
                // A dropped sender means the group went away under the member.
                respond(rx.await.unwrap_or_else(|_| lost())).into()
            });
            Reply::Later(pending)
        }
    }
}

fn join_response(r: JoinResult) -> ResponseKind {
    ResponseKind::JoinGroup(
        JoinGroupResponse::default()
            .with_error_code(r.error)
            .with_generation_id(r.generation)
            .with_protocol_type(r.protocol_type.map(s))
            .with_protocol_name(r.protocol.map(s))
            .with_leader(s(r.leader))
            .with_skip_assignment(r.skip_assignment)
            .with_member_id(s(r.member_id))
            .with_members(
                r.members
                    .into_iter()
                    .map(|(id, instance, metadata)| {
                        JoinGroupResponseMember::default()
                            .with_member_id(s(id))
                            .with_group_instance_id(instance.map(s))
                            .with_metadata(metadata)
                    })
                    .collect(),
            ),
    )
}

/// JoinGroup. `client_id` is the request header's.
pub async fn join(
    broker: &Broker,
    request: JoinGroupRequest,
    version: i16,
    peer: SocketAddr,
    client_id: &str,
) -> Reply {
    let member_id = request.member_id.to_string();
    let params = JoinParams {
        member_id: member_id.clone(),
        instance_id: opt(&request.group_instance_id),
        client_id: client_id.to_owned(),
        client_host: format!("/{}", peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let answer = broker.groups().join(&request.group_id.0, params).await;
    reply(
        answer,
        move || JoinResult {
            error: ResponseError::CoordinatorNotAvailable.code(),
            generation: -1,
            member_id,
            ..Default::default()
        },
        join_response,
    )
}

fn sync_response(r: SyncResult) -> ResponseKind {
    ResponseKind::SyncGroup(
        SyncGroupResponse::default()
            .with_error_code(r.error)
            .with_protocol_type(r.protocol_type.map(s))
            .with_protocol_name(r.protocol.map(s))
            .with_assignment(r.assignment),
    )
}

/// SyncGroup.
pub async fn sync(broker: &Broker, request: SyncGroupRequest) -> Reply {
    let params = SyncParams {
        member_id: request.member_id.to_string(),
        instance_id: opt(&request.group_instance_id),
        generation: request.generation_id,
        protocol_type: opt(&request.protocol_type),
        protocol: opt(&request.protocol_name),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let answer = broker.groups().sync(&request.group_id.0, params).await;
    reply(
        answer,
        || SyncResult {
            error: ResponseError::CoordinatorNotAvailable.code(),
            ..Default::default()
        },
        sync_response,
    )
}

/// Heartbeat.
pub async fn heartbeat(broker: &Broker, request: HeartbeatRequest) -> HeartbeatResponse {
    let code = broker
        .groups()
        .heartbeat(
            &request.group_id.0,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        )
        .await;
    HeartbeatResponse::default().with_error_code(code)
}

/// LeaveGroup: one member (v0–v2) or a batch (v3+, KIP-345).
pub async fn leave(
    broker: &Broker,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), opt(&m.group_instance_id)))
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    match broker.groups().leave(&request.group_id.0, &members).await {
        Err(code) => LeaveGroupResponse::default().with_error_code(code),
        Ok(codes) if version < 3 => {
            LeaveGroupResponse::default().with_error_code(codes.first().copied().unwrap_or(0))
        }
        Ok(codes) => LeaveGroupResponse::default().with_members(
            request
                .members
                .into_iter()
                .zip(codes)
                .map(|(m, code)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(code)
                })
                .collect(),
        ),
    }
}

/// ListGroups, with KIP-518's state filter and KIP-848's type filter (case-insensitive).
pub async fn list(broker: &Broker, request: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|x| x.to_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|x| x.to_lowercase())
        .collect();
    let groups = broker
        .groups()
        .list()
        .await
        .into_iter()
        .filter(|g| states.is_empty() || states.contains(&g.state.to_lowercase()))
        .filter(|g| types.is_empty() || types.iter().any(|t| t == g.group_type))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(s(g.group_id)))
                .with_protocol_type(s(g.protocol_type))
                .with_group_state(s(g.state))
                .with_group_type(s(g.group_type))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// DescribeGroups. An unknown group is `Dead`; v6+ adds GROUP_ID_NOT_FOUND (KIP-1043).
pub async fn describe(
    broker: &Broker,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut groups = Vec::with_capacity(request.groups.len());
    for id in request.groups {
        let described = DescribedGroup::default()
            .with_group_id(id.clone())
            .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
        let described = match broker.groups().describe(&id.0).await {
            None => {
                let d = described.with_group_state(s(State::Dead.name()));
                if version >= 6 {
                    d.with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(s(format!("group {} not found", id.0))))
                } else {
                    d
                }
            }
            Some(view) => described
                .with_group_state(s(view.state.name()))
                .with_protocol_type(s(view.protocol_type))
                .with_protocol_data(s(view.protocol))
                .with_members(
                    view.members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(s(m.member_id))
                                .with_group_instance_id(m.instance_id.map(s))
                                .with_client_id(s(m.client_id))
                                .with_client_host(s(m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment)
                        })
                        .collect(),
                ),
        };
        groups.push(described);
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

/// DeleteGroups.
pub async fn delete(broker: &Broker, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in request.groups_names {
        let code = broker.groups().delete_group(&id.0).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

/// OffsetDelete (KIP-496).
pub async fn delete_offsets(broker: &Broker, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let asked: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let results = match broker
        .groups()
        .delete_offsets(&request.group_id.0, asked)
        .await
    {
        Ok(r) => r,
        Err(code) => return OffsetDeleteResponse::default().with_error_code(code),
    };
    let mut codes = results.into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().map_or(0, |(_, _, c)| c))
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}

fn to_assignment(
    a: &kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions,
) -> (uuid::Uuid, Vec<i32>) {
    (a.topic_id, a.partitions.clone())
}

/// ConsumerGroupHeartbeat (KIP-848).
pub async fn consumer_heartbeat(
    broker: &Broker,
    request: ConsumerGroupHeartbeatRequest,
    peer: SocketAddr,
    client_id: &str,
) -> ConsumerGroupHeartbeatResponse {
    use kafka_protocol::messages::consumer_group_heartbeat_response::{
        Assignment, TopicPartitions,
    };
    let topics: Topics = broker
        .log()
        .topics()
        .into_iter()
        .filter(|t| t.name != crate::groups::store::OFFSETS_TOPIC)
        .map(|t| (t.name, (t.id, t.partitions)))
        .collect();
    let owned = request.topic_partitions.as_ref().map(|tps| {
        let mut a = consumer::Assignment::new();
        for tp in tps {
            let (id, ps) = to_assignment(tp);
            a.entry(id).or_default().extend(ps);
        }
        a
    });
    let hb = Heartbeat {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: opt(&request.instance_id),
        rack_id: opt(&request.rack_id),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.0.to_string()).collect()),
        subscribed_topic_regex: opt(&request.subscribed_topic_regex),
        server_assignor: opt(&request.server_assignor),
        owned,
        client_id: client_id.to_owned(),
        client_host: format!("/{}", peer.ip()),
    };
    match broker
        .groups()
        .consumer_heartbeat(&request.group_id.0, hb, &topics)
        .await
    {
        Ok(r) => ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(s(r.member_id)))
            .with_member_epoch(r.member_epoch)
            .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
            .with_assignment(r.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(id, ps)| {
                            TopicPartitions::default()
                                .with_topic_id(id)
                                .with_partitions(ps.into_iter().collect())
                        })
                        .collect(),
                )
            })),
        Err((code, message)) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code)
            .with_error_message(Some(s(message)))
            .with_member_id(Some(request.member_id))
            .with_member_epoch(request.member_epoch),
    }
}

/// ConsumerGroupDescribe (KIP-848). A group that is not a consumer group is
/// GROUP_ID_NOT_FOUND, which tells admin clients to try DescribeGroups.
pub async fn consumer_describe(
    broker: &Broker,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    use kafka_protocol::messages::consumer_group_describe_response::{
        Assignment, DescribedGroup, Member, TopicPartitions,
    };
    let names: std::collections::HashMap<uuid::Uuid, String> = broker
        .log()
        .topics()
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let assignment = |a: consumer::Assignment| {
        Assignment::default().with_topic_partitions(
            a.into_iter()
                .map(|(id, ps)| {
                    TopicPartitions::default()
                        .with_topic_id(id)
                        .with_topic_name(kafka_protocol::messages::TopicName(s(names
                            .get(&id)
                            .cloned()
                            .unwrap_or_default())))
                        .with_partitions(ps.into_iter().collect())
                })
                .collect(),
        )
    };
    let mut groups = Vec::with_capacity(request.group_ids.len());
    for id in request.group_ids {
        let described = DescribedGroup::default()
            .with_group_id(id.clone())
            .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
        let described = match broker.groups().consumer_describe(&id.0).await {
            None => described
                .with_error_code(ResponseError::GroupIdNotFound.code())
                .with_error_message(Some(s(format!("Group {} is not a consumer group.", id.0))))
                .with_group_state(s("Dead")),
            Some(v) => described
                .with_group_state(s(v.state))
                .with_group_epoch(v.epoch)
                .with_assignment_epoch(v.assignment_epoch)
                .with_assignor_name(s(v.assignor))
                .with_members(
                    v.members
                        .into_iter()
                        .map(|m| {
                            Member::default()
                                .with_member_id(s(m.member_id))
                                .with_instance_id(m.instance_id.map(s))
                                .with_rack_id(m.rack_id.map(s))
                                .with_member_epoch(m.member_epoch)
                                .with_client_id(s(m.client_id))
                                .with_client_host(s(m.client_host))
                                .with_subscribed_topic_names(
                                    m.subscribed_topic_names
                                        .into_iter()
                                        .map(|t| kafka_protocol::messages::TopicName(s(t)))
                                        .collect(),
                                )
                                .with_subscribed_topic_regex(m.subscribed_topic_regex.map(s))
                                .with_assignment(assignment(m.assignment))
                                .with_target_assignment(assignment(m.target))
                                .with_member_type(1)
                        })
                        .collect(),
                ),
        };
        groups.push(described);
    }
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
