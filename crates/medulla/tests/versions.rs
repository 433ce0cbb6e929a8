//! Every API version the broker advertises answers a well-formed request with a response
//! that decodes at that version. This is what "advertising exactly what is implemented"
//! means mechanically; the client suites check the semantics.

mod common;

use common::{Medulla, commit_simple as commit, join_group as join, sync_request};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use medulla::admin::Client;
use medulla_broker::handlers::api_versions::SUPPORTED;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_version_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(
        dir.path(),
        &[
            "--override",
            "num.partitions=2",
            "--override",
            "group.initial.rebalance.delay.ms=0",
            // Authorization on, so the ACL APIs answer (the CLI's principal,
            // User:ANONYMOUS, may do everything).
            "--override",
            "authorizer.class.name=medulla",
            "--override",
            "super.users=User:ANONYMOUS",
        ],
    );
    let mut c = Client::connect(&broker.addr).await.unwrap();
    // A topic for the requests that name one (auto-created by Metadata).
    let md = c
        .send(MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("sweep"))),
        ])))
        .await
        .unwrap();
    assert_eq!(md.topics[0].error_code, 0);
    let topic_id = md.topics[0].topic_id;

    // The advertised table is exactly SUPPORTED.
    let advertised = c.send_at(ApiVersionsRequest::default(), 3).await.unwrap();
    let mut got: Vec<(i16, i16, i16)> = advertised
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    let mut want: Vec<(i16, i16, i16)> = SUPPORTED
        .iter()
        .map(|(k, lo, hi)| (*k as i16, *lo, *hi))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    for (api, lo, hi) in SUPPORTED {
        for v in *lo..=*hi {
            let ok: Result<(), String> = match api {
                ApiKey::Produce => c
                    .send_at(
                        ProduceRequest::default().with_acks(1).with_timeout_ms(1000),
                        v,
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                ApiKey::Fetch => {
                    let t = kafka_protocol::messages::fetch_request::FetchTopic::default()
                        .with_topic(name("sweep"))
                        .with_topic_id(topic_id)
                        .with_partitions(vec![
                            kafka_protocol::messages::fetch_request::FetchPartition::default()
                                .with_partition_max_bytes(1024),
                        ]);
                    c.send_at(
                        FetchRequest::default()
                            .with_max_wait_ms(0)
                            .with_max_bytes(1024)
                            .with_topics(vec![t])
                            .with_session_epoch(-1),
                        v,
                    )
                    .await
                    .map(|r| {
                        assert_eq!(r.error_code, 0, "Fetch v{v}");
                        assert_eq!(r.responses[0].partitions[0].error_code, 0, "Fetch v{v}");
                    })
                    .map_err(|e| e.to_string())
                }
                ApiKey::ListOffsets => c
                    .send_at(
                        ListOffsetsRequest::default()
                            .with_replica_id(BrokerId(-1))
                            .with_topics(vec![
                                ListOffsetsTopic::default()
                                    .with_name(name("sweep"))
                                    .with_partitions(vec![
                                        ListOffsetsPartition::default().with_timestamp(-1),
                                    ]),
                            ]),
                        v,
                    )
                    .await
                    .map(|r| {
                        assert_eq!(r.topics[0].partitions[0].error_code, 0, "ListOffsets v{v}")
                    })
                    .map_err(|e| e.to_string()),
                ApiKey::Metadata => c
                    .send_at(
                        MetadataRequest::default().with_topics(Some(vec![
                            MetadataRequestTopic::default().with_name(Some(name("sweep"))),
                        ])),
                        v,
                    )
                    .await
                    .map(|r| assert_eq!(r.topics.len(), 1, "Metadata v{v}"))
                    .map_err(|e| e.to_string()),
                ApiKey::ApiVersions => c
                    .send_at(ApiVersionsRequest::default(), v)
                    .await
                    .map(|r| assert_eq!(r.error_code, 0))
                    .map_err(|e| e.to_string()),
                ApiKey::CreateTopics => c
                    .send_at(CreateTopicsRequest::default(), v)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                ApiKey::DeleteTopics => c
                    .send_at(DeleteTopicsRequest::default(), v)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                ApiKey::DeleteRecords => c
                    .send_at(DeleteRecordsRequest::default(), v)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                ApiKey::DescribeConfigs => c
                    .send_at(DescribeConfigsRequest::default(), v)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                ApiKey::AlterConfigs => c
                    .send_at(AlterConfigsRequest::default(), v)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                ApiKey::CreatePartitions => c
                    .send_at(CreatePartitionsRequest::default(), v)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                ApiKey::IncrementalAlterConfigs => c
                    .send_at(IncrementalAlterConfigsRequest::default(), v)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                ApiKey::DescribeCluster => c
                    .send_at(DescribeClusterRequest::default().with_endpoint_type(1), v)
                    .await
                    .map(|r| assert_eq!(r.brokers.len(), 1))
                    .map_err(|e| e.to_string()),
                ApiKey::FindCoordinator => {
                    let group = StrBytes::from_static_str("sweep-group");
                    let r = if v >= 4 {
                        FindCoordinatorRequest::default().with_coordinator_keys(vec![group])
                    } else {
                        FindCoordinatorRequest::default().with_key(group)
                    };
                    c.send_at(r, v)
                        .await
                        .map(|r| {
                            let node = if v >= 4 {
                                r.coordinators[0].node_id
                            } else {
                                r.node_id
                            };
                            assert_eq!(node.0, 1, "FindCoordinator v{v}");
                        })
                        .map_err(|e| e.to_string())
                }
                ApiKey::OffsetCommit => {
                    use kafka_protocol::messages::offset_commit_request::{
                        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
                    };
                    let r = OffsetCommitRequest::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("sweep-group")))
                        .with_generation_id_or_member_epoch(-1)
                        .with_topics(vec![
                            OffsetCommitRequestTopic::default()
                                .with_name(name("sweep"))
                                .with_partitions(vec![
                                    OffsetCommitRequestPartition::default()
                                        .with_committed_offset(i64::from(v)),
                                ]),
                        ]);
                    c.send_at(r, v)
                        .await
                        .map(|r| {
                            assert_eq!(r.topics[0].partitions[0].error_code, 0, "OffsetCommit v{v}")
                        })
                        .map_err(|e| e.to_string())
                }
                ApiKey::OffsetFetch => {
                    use kafka_protocol::messages::offset_fetch_request::{
                        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
                    };
                    let group = GroupId(StrBytes::from_static_str("sweep-group"));
                    let r = if v >= 8 {
                        OffsetFetchRequest::default().with_groups(vec![
                            OffsetFetchRequestGroup::default()
                                .with_group_id(group)
                                .with_topics(Some(vec![
                                    OffsetFetchRequestTopics::default()
                                        .with_name(name("sweep"))
                                        .with_partition_indexes(vec![0]),
                                ])),
                        ])
                    } else {
                        OffsetFetchRequest::default()
                            .with_group_id(group)
                            .with_topics(Some(vec![
                                OffsetFetchRequestTopic::default()
                                    .with_name(name("sweep"))
                                    .with_partition_indexes(vec![0]),
                            ]))
                    };
                    c.send_at(r, v)
                        .await
                        .map(|r| {
                            // The OffsetCommit sweep (sorted before it in SUPPORTED) left v9.
                            let offset = if v >= 8 {
                                r.groups[0].topics[0].partitions[0].committed_offset
                            } else {
                                r.topics[0].partitions[0].committed_offset
                            };
                            assert_eq!(offset, 9, "OffsetFetch v{v}");
                        })
                        .map_err(|e| e.to_string())
                }
                ApiKey::JoinGroup => {
                    let group = format!("sweep-join-{v}");
                    join(&mut c, &group, v)
                        .await
                        .map(|r| {
                            assert_eq!((r.error_code, r.generation_id), (0, 1), "JoinGroup v{v}");
                            assert_eq!(r.leader, r.member_id);
                            assert_eq!(r.members.len(), 1);
                            assert_eq!(r.protocol_name.as_deref(), Some("range"));
                        })
                        .map_err(|e| e.to_string())
                }
                ApiKey::SyncGroup => {
                    let group = format!("sweep-sync-{v}");
                    let j = join(&mut c, &group, 5).await.unwrap();
                    c.send_at(sync_request(&group, &j, b"mine"), v)
                        .await
                        .map(|r| {
                            assert_eq!(r.error_code, 0, "SyncGroup v{v}");
                            assert_eq!(&r.assignment[..], b"mine");
                        })
                        .map_err(|e| e.to_string())
                }
                ApiKey::Heartbeat => {
                    let group = format!("sweep-heartbeat-{v}");
                    let j = join(&mut c, &group, 5).await.unwrap();
                    c.send_at(sync_request(&group, &j, b""), 3).await.unwrap();
                    let r = HeartbeatRequest::default()
                        .with_group_id(GroupId(StrBytes::from_string(group)))
                        .with_generation_id(j.generation_id)
                        .with_member_id(j.member_id.clone());
                    c.send_at(r, v)
                        .await
                        .map(|r| assert_eq!(r.error_code, 0, "Heartbeat v{v}"))
                        .map_err(|e| e.to_string())
                }
                ApiKey::LeaveGroup => {
                    use kafka_protocol::messages::leave_group_request::MemberIdentity;
                    let group = format!("sweep-leave-{v}");
                    let j = join(&mut c, &group, 5).await.unwrap();
                    let r = LeaveGroupRequest::default()
                        .with_group_id(GroupId(StrBytes::from_string(group)));
                    let r = if v >= 3 {
                        r.with_members(vec![
                            MemberIdentity::default().with_member_id(j.member_id.clone()),
                        ])
                    } else {
                        r.with_member_id(j.member_id.clone())
                    };
                    c.send_at(r, v)
                        .await
                        .map(|r| {
                            assert_eq!(r.error_code, 0, "LeaveGroup v{v}");
                            if v >= 3 {
                                assert_eq!(r.members[0].error_code, 0);
                            }
                        })
                        .map_err(|e| e.to_string())
                }
                ApiKey::DescribeGroups => {
                    let r = DescribeGroupsRequest::default().with_groups(vec![
                        GroupId(StrBytes::from_static_str("sweep-join-9")),
                        GroupId(StrBytes::from_static_str("sweep-nobody")),
                    ]);
                    c.send_at(r, v)
                        .await
                        .map(|r| {
                            let (known, unknown) = (&r.groups[0], &r.groups[1]);
                            assert_eq!(known.error_code, 0, "DescribeGroups v{v}");
                            assert_eq!(known.group_state.as_str(), "CompletingRebalance");
                            assert_eq!(known.protocol_type.as_str(), "consumer");
                            assert_eq!(known.members.len(), 1);
                            assert_eq!(unknown.group_state.as_str(), "Dead");
                            let want = if v >= 6 { 69 } else { 0 };
                            assert_eq!(unknown.error_code, want, "GROUP_ID_NOT_FOUND from v6");
                        })
                        .map_err(|e| e.to_string())
                }
                ApiKey::ListGroups => c
                    .send_at(ListGroupsRequest::default(), v)
                    .await
                    .map(|r| {
                        let g = r
                            .groups
                            .iter()
                            .find(|g| g.group_id.as_str() == "sweep-join-9")
                            .expect("ListGroups lists the joined group");
                        assert_eq!(g.protocol_type.as_str(), "consumer");
                        if v >= 4 {
                            assert_eq!(g.group_state.as_str(), "CompletingRebalance");
                        }
                    })
                    .map_err(|e| e.to_string()),
                ApiKey::DeleteGroups => {
                    let group = format!("sweep-delete-{v}");
                    commit(&mut c, &group).await;
                    let r = DeleteGroupsRequest::default()
                        .with_groups_names(vec![GroupId(StrBytes::from_string(group))]);
                    c.send_at(r, v)
                        .await
                        .map(|r| assert_eq!(r.results[0].error_code, 0, "DeleteGroups v{v}"))
                        .map_err(|e| e.to_string())
                }
                ApiKey::OffsetDelete => {
                    use kafka_protocol::messages::offset_delete_request::{
                        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
                    };
                    let group = format!("sweep-offset-delete-{v}");
                    commit(&mut c, &group).await;
                    let r = OffsetDeleteRequest::default()
                        .with_group_id(GroupId(StrBytes::from_string(group)))
                        .with_topics(vec![
                            OffsetDeleteRequestTopic::default()
                                .with_name(name("sweep"))
                                .with_partitions(vec![OffsetDeleteRequestPartition::default()]),
                        ]);
                    c.send_at(r, v)
                        .await
                        .map(|r| {
                            assert_eq!(r.error_code, 0, "OffsetDelete v{v}");
                            assert_eq!(r.topics[0].partitions[0].error_code, 0);
                        })
                        .map_err(|e| e.to_string())
                }
                ApiKey::ConsumerGroupHeartbeat => {
                    let member = if v >= 1 {
                        StrBytes::from_string(uuid::Uuid::new_v4().to_string())
                    } else {
                        StrBytes::default()
                    };
                    let r = ConsumerGroupHeartbeatRequest::default()
                        .with_group_id(GroupId(StrBytes::from_string(format!("sweep-cg-{v}"))))
                        .with_member_id(member)
                        .with_member_epoch(0)
                        .with_rebalance_timeout_ms(10_000)
                        .with_subscribed_topic_names(Some(vec![name("sweep")]))
                        .with_topic_partitions(Some(vec![]));
                    c.send_at(r, v)
                        .await
                        .map(|r| {
                            assert_eq!(
                                r.error_code, 0,
                                "ConsumerGroupHeartbeat v{v}: {:?}",
                                r.error_message
                            );
                            assert!(r.member_epoch >= 1);
                            assert!(!r.member_id.unwrap_or_default().is_empty());
                            let a = r.assignment.expect("an assignment on joining");
                            assert_eq!(a.topic_partitions[0].topic_id, topic_id);
                            assert_eq!(a.topic_partitions[0].partitions, vec![0, 1]);
                        })
                        .map_err(|e| e.to_string())
                }
                ApiKey::ConsumerGroupDescribe => {
                    let r = ConsumerGroupDescribeRequest::default().with_group_ids(vec![
                        GroupId(StrBytes::from_static_str("sweep-cg-1")),
                        GroupId(StrBytes::from_static_str("sweep-join-9")),
                    ]);
                    c.send_at(r, v)
                        .await
                        .map(|r| {
                            let (cg, classic) = (&r.groups[0], &r.groups[1]);
                            assert_eq!(cg.error_code, 0, "ConsumerGroupDescribe v{v}");
                            assert_eq!(cg.group_state.as_str(), "Stable");
                            assert_eq!(cg.assignor_name.as_str(), "uniform");
                            assert_eq!(cg.members.len(), 1);
                            assert_eq!(
                                cg.members[0].assignment.topic_partitions[0]
                                    .topic_name
                                    .0
                                    .as_str(),
                                "sweep"
                            );
                            assert_eq!(
                                classic.error_code, 69,
                                "a classic group is GROUP_ID_NOT_FOUND"
                            );
                        })
                        .map_err(|e| e.to_string())
                }
                ApiKey::InitProducerId
                | ApiKey::AddPartitionsToTxn
                | ApiKey::AddOffsetsToTxn
                | ApiKey::EndTxn
                | ApiKey::DescribeTransactions
                | ApiKey::ListTransactions => sweep_transactions(&mut c, *api, v).await,
                ApiKey::TxnOffsetCommit => {
                    use kafka_protocol::messages::txn_offset_commit_request::{
                        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
                    };
                    // The group must be in the producer's open transaction (verification).
                    let id = TransactionalId(StrBytes::from_string(format!("sweep-txo-{v}")));
                    let group = GroupId(StrBytes::from_string(format!("sweep-txn-{v}")));
                    let (pid, epoch) = init_txn(&mut c, &id).await;
                    let added = c
                        .send_at(
                            AddOffsetsToTxnRequest::default()
                                .with_transactional_id(id.clone())
                                .with_producer_id(pid)
                                .with_producer_epoch(epoch)
                                .with_group_id(group.clone()),
                            3,
                        )
                        .await
                        .unwrap();
                    assert_eq!(added.error_code, 0);
                    let r = TxnOffsetCommitRequest::default()
                        .with_transactional_id(id)
                        .with_group_id(group)
                        .with_producer_id(pid)
                        .with_producer_epoch(epoch)
                        .with_topics(vec![
                            TxnOffsetCommitRequestTopic::default()
                                .with_name(name("sweep"))
                                .with_partitions(vec![
                                    TxnOffsetCommitRequestPartition::default()
                                        .with_committed_offset(i64::from(v)),
                                    TxnOffsetCommitRequestPartition::default()
                                        .with_partition_index(7),
                                ]),
                        ]);
                    c.send_at(r, v)
                        .await
                        .map(|r| {
                            let codes: Vec<i16> = r.topics[0]
                                .partitions
                                .iter()
                                .map(|p| p.error_code)
                                .collect();
                            assert_eq!(codes, vec![0, 3], "TxnOffsetCommit v{v}");
                        })
                        .map_err(|e| e.to_string())
                }
                ApiKey::DescribeProducers => {
                    use kafka_protocol::messages::describe_producers_request::TopicRequest;
                    let r = DescribeProducersRequest::default().with_topics(vec![
                        TopicRequest::default()
                            .with_name(name("sweep"))
                            .with_partition_indexes(vec![0, 7]),
                    ]);
                    c.send_at(r, v)
                        .await
                        .map(|r| {
                            let parts = &r.topics[0].partitions;
                            assert_eq!(parts[0].error_code, 0, "DescribeProducers v{v}");
                            assert_eq!(parts[1].error_code, 3, "an unknown partition");
                        })
                        .map_err(|e| e.to_string())
                }
                // SASL on a PLAINTEXT listener: Kafka's ILLEGAL_SASL_STATE (the SASL
                // listener itself is tested in tests/sasl.rs).
                ApiKey::SaslHandshake => c
                    .send_at(
                        kafka_protocol::messages::SaslHandshakeRequest::default()
                            .with_mechanism(StrBytes::from_static_str("PLAIN")),
                        v,
                    )
                    .await
                    .map(|r| assert_eq!(r.error_code, 34, "SaslHandshake v{v}"))
                    .map_err(|e| e.to_string()),
                ApiKey::SaslAuthenticate => c
                    .send_at(
                        kafka_protocol::messages::SaslAuthenticateRequest::default(),
                        v,
                    )
                    .await
                    .map(|r| assert_eq!(r.error_code, 34, "SaslAuthenticate v{v}"))
                    .map_err(|e| e.to_string()),
                ApiKey::AlterUserScramCredentials => {
                    use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
                    let r = kafka_protocol::messages::AlterUserScramCredentialsRequest::default()
                        .with_upsertions(vec![
                            ScramCredentialUpsertion::default()
                                .with_name(StrBytes::from_static_str("sweep-user"))
                                .with_mechanism(1)
                                .with_iterations(4096)
                                .with_salt(bytes::Bytes::from_static(b"salt"))
                                .with_salted_password(bytes::Bytes::from(vec![7u8; 32])),
                        ]);
                    c.send_at(r, v)
                        .await
                        .map(|r| assert_eq!(r.results[0].error_code, 0, "{r:?}"))
                        .map_err(|e| e.to_string())
                }
                ApiKey::DescribeUserScramCredentials => c
                    .send_at(
                        kafka_protocol::messages::DescribeUserScramCredentialsRequest::default(),
                        v,
                    )
                    .await
                    .map(|r| assert_eq!(r.error_code, 0, "{r:?}"))
                    .map_err(|e| e.to_string()),
                ApiKey::CreateAcls => {
                    use kafka_protocol::messages::create_acls_request::AclCreation;
                    let r = CreateAclsRequest::default().with_creations(vec![
                        AclCreation::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_string(format!("acl-v{v}")))
                            .with_resource_pattern_type(4)
                            .with_principal(StrBytes::from_static_str("User:alice"))
                            .with_host(StrBytes::from_static_str("*"))
                            .with_operation(3)
                            .with_permission_type(3),
                    ]);
                    c.send_at(r, v)
                        .await
                        .map(|r| assert_eq!(r.results[0].error_code, 0, "CreateAcls v{v}"))
                        .map_err(|e| e.to_string())
                }
                ApiKey::DescribeAcls => {
                    let r = DescribeAclsRequest::default()
                        .with_resource_type_filter(2)
                        .with_resource_name_filter(None)
                        .with_pattern_type_filter(1)
                        .with_principal_filter(Some(StrBytes::from_static_str("User:alice")))
                        .with_host_filter(None)
                        .with_operation(1)
                        .with_permission_type(1);
                    c.send_at(r, v)
                        .await
                        .map(|r| {
                            assert_eq!(r.error_code, 0, "DescribeAcls v{v}");
                            assert!(!r.resources.is_empty(), "DescribeAcls v{v}");
                        })
                        .map_err(|e| e.to_string())
                }
                ApiKey::DeleteAcls => {
                    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
                    let r = DeleteAclsRequest::default().with_filters(vec![
                        DeleteAclsFilter::default()
                            .with_resource_type_filter(2)
                            .with_resource_name_filter(Some(StrBytes::from_string(format!(
                                "acl-v{v}"
                            ))))
                            .with_pattern_type_filter(4)
                            .with_principal_filter(None)
                            .with_host_filter(None)
                            .with_operation(1)
                            .with_permission_type(1),
                    ]);
                    c.send_at(r, v)
                        .await
                        .map(|r| {
                            let f = &r.filter_results[0];
                            assert_eq!(f.error_code, 0, "DeleteAcls v{v}");
                            assert_eq!(f.matching_acls.len(), 1, "DeleteAcls v{v}");
                        })
                        .map_err(|e| e.to_string())
                }
                other => Err(format!(
                    "{other:?} is advertised but this test does not cover it"
                )),
            };
            if let Err(e) = ok {
                panic!("{api:?} v{v}: {e}\nbroker log:\n{}", broker.stderr());
            }
        }
    }
}

/// The transaction coordinator's APIs at version `v` (in `SUPPORTED` order: the
/// transaction EndTxn commits is the one DescribeTransactions and ListTransactions find).
async fn sweep_transactions(c: &mut Client, api: ApiKey, v: i16) -> Result<(), String> {
    match api {
        ApiKey::InitProducerId => {
            let r = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_string(format!(
                    "sweep-init-{v}"
                )))))
                .with_transaction_timeout_ms(60_000);
            c.send_at(r, v)
                .await
                .map(|r| {
                    assert_eq!(r.error_code, 0, "InitProducerId v{v}");
                    assert_eq!(r.producer_epoch, 0);
                    assert!(r.producer_id.0 >= 0);
                })
                .map_err(|e| e.to_string())
        }
        ApiKey::AddPartitionsToTxn => {
            use kafka_protocol::messages::add_partitions_to_txn_request::{
                AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
            };
            let id = TransactionalId(StrBytes::from_string(format!("sweep-apt-{v}")));
            let (pid, epoch) = init_txn(c, &id).await;
            let topics = vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(name("sweep"))
                    .with_partitions(vec![0]),
            ];
            let r = if v >= 4 {
                AddPartitionsToTxnRequest::default().with_transactions(vec![
                    AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(id)
                        .with_producer_id(pid)
                        .with_producer_epoch(epoch)
                        .with_topics(topics),
                ])
            } else {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(id)
                    .with_v3_and_below_producer_id(pid)
                    .with_v3_and_below_producer_epoch(epoch)
                    .with_v3_and_below_topics(topics)
            };
            c.send_at(r, v)
                .await
                .map(|r| {
                    let topic = if v >= 4 {
                        assert_eq!(r.error_code, 0);
                        r.results_by_transaction[0].topic_results[0].clone()
                    } else {
                        r.results_by_topic_v3_and_below[0].clone()
                    };
                    assert_eq!(
                        topic.results_by_partition[0].partition_error_code, 0,
                        "AddPartitionsToTxn v{v}"
                    );
                })
                .map_err(|e| e.to_string())
        }
        ApiKey::AddOffsetsToTxn => {
            let id = TransactionalId(StrBytes::from_string(format!("sweep-aot-{v}")));
            let (pid, epoch) = init_txn(c, &id).await;
            let r = AddOffsetsToTxnRequest::default()
                .with_transactional_id(id)
                .with_producer_id(pid)
                .with_producer_epoch(epoch)
                .with_group_id(GroupId(StrBytes::from_static_str("sweep-txn-group")));
            c.send_at(r, v)
                .await
                .map(|r| assert_eq!(r.error_code, 0, "AddOffsetsToTxn v{v}"))
                .map_err(|e| e.to_string())
        }
        ApiKey::EndTxn => {
            let id = TransactionalId(StrBytes::from_string(format!("sweep-end-{v}")));
            let (pid, epoch) = init_txn(c, &id).await;
            let added = c
                .send_at(
                    AddOffsetsToTxnRequest::default()
                        .with_transactional_id(id.clone())
                        .with_producer_id(pid)
                        .with_producer_epoch(epoch)
                        .with_group_id(GroupId(StrBytes::from_static_str("sweep-txn-group"))),
                    3,
                )
                .await
                .unwrap();
            assert_eq!(added.error_code, 0);
            let r = EndTxnRequest::default()
                .with_transactional_id(id)
                .with_producer_id(pid)
                .with_producer_epoch(epoch)
                .with_committed(true);
            c.send_at(r, v)
                .await
                .map(|r| assert_eq!(r.error_code, 0, "EndTxn v{v}"))
                .map_err(|e| e.to_string())
        }
        ApiKey::DescribeTransactions => {
            let r = DescribeTransactionsRequest::default().with_transactional_ids(vec![
                TransactionalId(StrBytes::from_static_str("sweep-end-0")),
                TransactionalId(StrBytes::from_static_str("sweep-never")),
            ]);
            c.send_at(r, v)
                .await
                .map(|r| {
                    let (done, unknown) = (&r.transaction_states[0], &r.transaction_states[1]);
                    assert_eq!(done.error_code, 0);
                    assert_eq!(done.transaction_state.as_str(), "CompleteCommit");
                    assert_eq!(unknown.error_code, 105, "TRANSACTIONAL_ID_NOT_FOUND");
                })
                .map_err(|e| e.to_string())
        }
        ApiKey::ListTransactions => {
            let r = ListTransactionsRequest::default()
                .with_state_filters(vec![StrBytes::from_static_str("CompleteCommit")]);
            c.send_at(r, v)
                .await
                .map(|r| {
                    assert_eq!(r.error_code, 0);
                    assert!(
                        r.transaction_states
                            .iter()
                            .any(|t| t.transactional_id.0.as_str() == "sweep-end-0"),
                        "ListTransactions v{v}"
                    );
                })
                .map_err(|e| e.to_string())
        }
        other => unreachable!("{other:?} is not a transaction API"),
    }
}

/// A transactional id's producer id and epoch (InitProducerId v4).
async fn init_txn(c: &mut Client, id: &TransactionalId) -> (ProducerId, i16) {
    let r = c
        .send_at(
            InitProducerIdRequest::default()
                .with_transactional_id(Some(id.clone()))
                .with_transaction_timeout_ms(60_000),
            4,
        )
        .await
        .unwrap();
    assert_eq!(r.error_code, 0);
    (r.producer_id, r.producer_epoch)
}
