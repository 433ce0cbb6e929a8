//! The group coordinator through the wire protocol: Kafka's error codes for stale,
//! unknown and fenced members, oversized metadata and unknown groups; nothing committed is
//! lost to a refused request; groups and offsets survive a SIGKILL; sessions expire.
//! Real clients run the full rebalancing scenarios in `interop/groups/`.

mod common;

use common::{Medulla, commit_simple, join_group, sync_request, wait_for};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use medulla::admin::Client;

fn gid(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_owned()))
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

const TOPIC: &str = "sweep";

async fn broker_with_topic(dir: &std::path::Path, extra: &[&str]) -> (Medulla, Client) {
    let mut args = vec!["--override", "group.initial.rebalance.delay.ms=0"];
    args.extend_from_slice(extra);
    let broker = Medulla::start(dir, &args);
    let mut c = Client::connect(&broker.addr).await.unwrap();
    create_topic(&mut c).await;
    (broker, c)
}

async fn create_topic(c: &mut Client) {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    let r = c
        .send(
            CreateTopicsRequest::default()
                .with_topics(vec![
                    CreatableTopic::default()
                        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                        .with_num_partitions(2)
                        .with_replication_factor(1),
                ])
                .with_timeout_ms(5000),
        )
        .await
        .unwrap();
    assert!(r.topics[0].error_code == 0 || r.topics[0].error_code == 36);
}

/// An OffsetCommit of `offset` (with `metadata`) for partition 0, as `member` of
/// `generation`; returns the partition's error code.
async fn commit(
    c: &mut Client,
    group: &str,
    (member, instance, generation): (&StrBytes, Option<&str>, i32),
    offset: i64,
    metadata: &str,
    version: i16,
) -> i16 {
    let r = OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(member.clone())
        .with_group_instance_id(instance.map(|i| StrBytes::from_string(i.to_owned())))
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_committed_offset(offset)
                        .with_committed_metadata(Some(StrBytes::from_string(metadata.to_owned()))),
                ]),
        ]);
    c.send_at(r, version).await.unwrap().topics[0].partitions[0].error_code
}

/// The committed offset and metadata of partition 0.
async fn committed(c: &mut Client, group: &str) -> (i64, String) {
    let r = c
        .send_at(
            OffsetFetchRequest::default()
                .with_group_id(gid(group))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                        .with_partition_indexes(vec![0]),
                ])),
            7,
        )
        .await
        .unwrap();
    let p = &r.topics[0].partitions[0];
    (
        p.committed_offset,
        p.metadata.as_deref().unwrap_or("").to_owned(),
    )
}

async fn heartbeat(
    c: &mut Client,
    group: &str,
    member: &StrBytes,
    instance: Option<&str>,
    generation: i32,
) -> i16 {
    c.send_at(
        HeartbeatRequest::default()
            .with_group_id(gid(group))
            .with_member_id(member.clone())
            .with_group_instance_id(instance.map(|i| StrBytes::from_string(i.to_owned())))
            .with_generation_id(generation),
        4,
    )
    .await
    .unwrap()
    .error_code
}

async fn describe(c: &mut Client, group: &str) -> describe_groups_response::DescribedGroup {
    c.send_at(
        DescribeGroupsRequest::default().with_groups(vec![gid(group)]),
        5,
    )
    .await
    .unwrap()
    .groups
    .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_commits_get_kafkas_codes_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, mut c) = broker_with_topic(dir.path(), &[]).await;
    let group = "ward-alerts";
    let j = join_group(&mut c, group, 9).await.unwrap();
    assert_eq!(j.error_code, 0);
    let sync = c.send_at(sync_request(group, &j, b"p0"), 5).await.unwrap();
    assert_eq!(sync.error_code, 0);
    let me = (&j.member_id, None, j.generation_id);
    assert_eq!(commit(&mut c, group, me, 42, "bed-12", 9).await, 0);

    let stale = (&j.member_id, None, j.generation_id - 1);
    assert_eq!(
        commit(&mut c, group, stale, 7, "", 9).await,
        code(ResponseError::IllegalGeneration)
    );
    let stranger = StrBytes::from_static_str("stranger");
    assert_eq!(
        commit(&mut c, group, (&stranger, None, j.generation_id), 7, "", 9).await,
        code(ResponseError::UnknownMemberId)
    );
    let nobody = StrBytes::default();
    assert_eq!(
        commit(&mut c, group, (&nobody, None, -1), 7, "", 9).await,
        code(ResponseError::UnknownMemberId),
        "an active group refuses commits without a generation"
    );
    let huge = "x".repeat(4097);
    assert_eq!(
        commit(&mut c, group, me, 7, &huge, 9).await,
        code(ResponseError::OffsetMetadataTooLarge)
    );
    assert_eq!(
        committed(&mut c, group).await,
        (42, "bed-12".to_owned()),
        "the refused commits changed nothing"
    );

    // Unknown groups.
    assert_eq!(
        commit(&mut c, "no-such-group", (&j.member_id, None, 1), 7, "", 9).await,
        code(ResponseError::GroupIdNotFound)
    );
    assert_eq!(
        commit(&mut c, "no-such-group", (&j.member_id, None, 1), 7, "", 8).await,
        code(ResponseError::IllegalGeneration),
        "before v9 Kafka answers ILLEGAL_GENERATION"
    );
    assert_eq!(
        heartbeat(&mut c, "no-such-group", &j.member_id, None, 1).await,
        code(ResponseError::UnknownMemberId)
    );
    let deleted = c
        .send_at(
            DeleteGroupsRequest::default().with_groups_names(vec![
                gid("no-such-group"),
                gid(group),
                gid(""),
            ]),
            2,
        )
        .await
        .unwrap();
    let codes: Vec<i16> = deleted.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![
            code(ResponseError::GroupIdNotFound),
            code(ResponseError::NonEmptyGroup),
            code(ResponseError::InvalidGroupId)
        ]
    );
    let od = c
        .send_at(
            OffsetDeleteRequest::default()
                .with_group_id(gid("no-such-group"))
                .with_topics(vec![
                    OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                        .with_partitions(vec![OffsetDeleteRequestPartition::default()]),
                ]),
            0,
        )
        .await
        .unwrap();
    assert_eq!(od.error_code, code(ResponseError::GroupIdNotFound));
    // A JoinGroup without a group id.
    let bad = join_group(&mut c, "", 9).await.unwrap();
    assert_eq!(bad.error_code, code(ResponseError::InvalidGroupId));
    assert_eq!(committed(&mut c, group).await, (42, "bed-12".to_owned()));
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_that_restarts_fences_its_old_incarnation() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    let dir = tempfile::tempdir().unwrap();
    let (_broker, mut c) = broker_with_topic(dir.path(), &[]).await;
    let group = "pharmacy";
    let join = |instance: &str| {
        JoinGroupRequest::default()
            .with_group_id(gid(group))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_group_instance_id(Some(StrBytes::from_string(instance.to_owned())))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(bytes::Bytes::from_static(b"meta")),
            ])
    };
    let first = c.send_at(join("dispenser-1"), 9).await.unwrap();
    assert_eq!((first.error_code, first.generation_id), (0, 1));
    let s = c
        .send_at(sync_request(group, &first, b"p0,p1"), 5)
        .await
        .unwrap();
    assert_eq!(s.error_code, 0);
    let old = first.member_id.clone();
    let old_me = (&old, Some("dispenser-1"), 1);
    assert_eq!(commit(&mut c, group, old_me, 5, "", 9).await, 0);

    // The process restarts and rejoins with its instance id: same generation, no rebalance.
    let again = c.send_at(join("dispenser-1"), 9).await.unwrap();
    assert_eq!((again.error_code, again.generation_id), (0, 1));
    assert_ne!(again.member_id, old);
    assert!(
        again.skip_assignment,
        "the leader keeps the current assignment"
    );
    let s = c
        .send_at(sync_request(group, &again, b"ignored"), 5)
        .await
        .unwrap();
    assert_eq!(
        &s.assignment[..],
        b"p0,p1",
        "its partitions back, unchanged"
    );

    assert_eq!(
        heartbeat(&mut c, group, &old, Some("dispenser-1"), 1).await,
        code(ResponseError::FencedInstanceId)
    );
    assert_eq!(
        commit(&mut c, group, old_me, 6, "", 9).await,
        code(ResponseError::FencedInstanceId)
    );
    assert_eq!(committed(&mut c, group).await.0, 5);
    assert_eq!(
        heartbeat(&mut c, group, &again.member_id, Some("dispenser-1"), 1).await,
        0
    );
    let d = describe(&mut c, group).await;
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(
        d.members[0].group_instance_id.as_deref(),
        Some("dispenser-1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_offsets_survive_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, mut c) = broker_with_topic(dir.path(), &[]).await;
    let group = "lab-results";
    let j = join_group(&mut c, group, 9).await.unwrap();
    let s = c
        .send_at(sync_request(group, &j, b"both"), 5)
        .await
        .unwrap();
    assert_eq!(s.error_code, 0);
    let me = (&j.member_id, None, j.generation_id);
    assert_eq!(commit(&mut c, group, me, 1234, "meta ✓", 9).await, 0);
    commit_simple(&mut c, "standalone").await;
    let addr = broker.addr.clone();
    broker.kill9();

    let broker = Medulla::start_on(dir.path(), &addr, &[]);
    let mut c = Client::connect(&broker.addr).await.unwrap();
    assert_eq!(committed(&mut c, group).await, (1234, "meta ✓".to_owned()));
    // The member carries on where it was: same id, same generation, same assignment.
    assert_eq!(
        heartbeat(&mut c, group, &j.member_id, None, j.generation_id).await,
        0
    );
    let d = describe(&mut c, group).await;
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(d.protocol_data.as_str(), "range");
    assert_eq!(&d.members[0].member_assignment[..], b"both");
    let listed = c.send_at(ListGroupsRequest::default(), 4).await.unwrap();
    let mut names: Vec<&str> = listed.groups.iter().map(|g| g.group_id.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["lab-results", "standalone"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_member_expires_and_the_group_can_then_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    // Short sessions so the test does not wait Kafka's 6-second minimum.
    let (_broker, mut c) = broker_with_topic(
        dir.path(),
        &["--override", "group.min.session.timeout.ms=500"],
    )
    .await;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    let group = "telemetry";
    let request = |member: StrBytes| {
        JoinGroupRequest::default()
            .with_group_id(gid(group))
            .with_session_timeout_ms(500)
            .with_rebalance_timeout_ms(500)
            .with_member_id(member)
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(bytes::Bytes::new()),
            ])
    };
    let first = c.send_at(request(StrBytes::default()), 9).await.unwrap();
    assert_eq!(first.error_code, code(ResponseError::MemberIdRequired));
    let j = c.send_at(request(first.member_id), 9).await.unwrap();
    assert_eq!(j.error_code, 0);
    let s = c.send_at(sync_request(group, &j, b""), 5).await.unwrap();
    assert_eq!(s.error_code, 0);
    let me = (&j.member_id, None, j.generation_id);
    assert_eq!(commit(&mut c, group, me, 9, "", 9).await, 0);
    // No more heartbeats: the member expires and the group empties.
    let rt = tokio::runtime::Handle::current();
    let addr = _broker.addr.clone();
    tokio::task::spawn_blocking(move || {
        wait_for("the member's session to expire", || {
            let state = rt.block_on(async {
                let mut c = Client::connect(&addr).await.unwrap();
                describe(&mut c, group).await.group_state.to_string()
            });
            (state == "Empty").then_some(())
        })
    })
    .await
    .unwrap();
    assert_eq!(
        heartbeat(&mut c, group, &j.member_id, None, j.generation_id).await,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        committed(&mut c, group).await.0,
        9,
        "offsets outlive members"
    );
    let deleted = c
        .send_at(
            DeleteGroupsRequest::default().with_groups_names(vec![gid(group)]),
            2,
        )
        .await
        .unwrap();
    assert_eq!(deleted.results[0].error_code, 0);
    assert_eq!(
        committed(&mut c, group).await.0,
        -1,
        "deleted with the group"
    );
    let d = c
        .send_at(
            DescribeGroupsRequest::default().with_groups(vec![gid(group)]),
            6,
        )
        .await
        .unwrap();
    assert_eq!(d.groups[0].error_code, code(ResponseError::GroupIdNotFound));
}
