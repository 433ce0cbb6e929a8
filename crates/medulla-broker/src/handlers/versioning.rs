//! Fitting a response to the version it will be encoded at.
//!
//! Handlers fill every field they know; the codec refuses to encode a non-default value
//! in a field the target version does not have. This one function resets such fields to
//! their defaults, per API, from the version ranges in Kafka's message specs, so that
//! knowledge lives in one place rather than in an `if version >= n` in every handler.

use kafka_protocol::messages::ResponseKind;

/// Resets every field `version` of the response does not carry.
pub fn fit(response: &mut ResponseKind, version: i16) {
    match response {
        ResponseKind::Produce(r) => {
            for t in &mut r.responses {
                if version >= 13 {
                    t.name = Default::default();
                } else {
                    t.topic_id = uuid::Uuid::nil();
                }
                for p in &mut t.partition_responses {
                    if version < 5 {
                        p.log_start_offset = -1;
                    }
                    if version < 8 {
                        p.record_errors.clear();
                        p.error_message = None;
                    }
                    if version < 10 {
                        p.current_leader = Default::default();
                    }
                }
            }
            if version < 10 {
                r.node_endpoints.clear();
            }
        }
        ResponseKind::Fetch(r) => {
            if version < 7 {
                r.error_code = 0;
                r.session_id = 0;
            }
            if version < 16 {
                r.node_endpoints.clear();
            }
            for t in &mut r.responses {
                if version >= 13 {
                    t.topic = Default::default();
                } else {
                    t.topic_id = uuid::Uuid::nil();
                }
                for p in &mut t.partitions {
                    if version < 5 {
                        p.log_start_offset = -1;
                    }
                    if version < 11 {
                        p.preferred_read_replica = kafka_protocol::messages::BrokerId(-1);
                    }
                    if version < 12 {
                        p.diverging_epoch = Default::default();
                        p.current_leader = Default::default();
                        p.snapshot_id = Default::default();
                    }
                }
            }
        }
        ResponseKind::ListOffsets(r) if version < 4 => {
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.leader_epoch = -1;
            }
        }
        ResponseKind::Metadata(r) => {
            if version < 1 {
                r.controller_id = kafka_protocol::messages::BrokerId(-1);
                for t in &mut r.topics {
                    t.is_internal = false;
                }
                for b in &mut r.brokers {
                    b.rack = None;
                }
            }
            if version < 2 {
                r.cluster_id = None;
            }
            if !(8..=10).contains(&version) {
                r.cluster_authorized_operations = i32::MIN;
            }
            if version < 13 {
                r.error_code = 0;
            }
            for t in &mut r.topics {
                if version < 8 {
                    t.topic_authorized_operations = i32::MIN;
                }
                if version < 10 {
                    t.topic_id = uuid::Uuid::nil();
                }
                for p in &mut t.partitions {
                    if version < 5 {
                        p.offline_replicas.clear();
                    }
                    if version < 7 {
                        p.leader_epoch = -1;
                    }
                }
            }
        }
        ResponseKind::CreateTopics(r) => {
            for t in &mut r.topics {
                if version < 5 {
                    t.num_partitions = -1;
                    t.replication_factor = -1;
                    t.configs = None;
                    t.topic_config_error_code = 0;
                }
                if version < 7 {
                    t.topic_id = uuid::Uuid::nil();
                }
            }
        }
        ResponseKind::DeleteTopics(r) => {
            for t in &mut r.responses {
                if version < 5 {
                    t.error_message = None;
                }
                if version < 6 {
                    t.topic_id = uuid::Uuid::nil();
                }
            }
        }
        ResponseKind::DescribeConfigs(r) if version < 3 => {
            for c in r.results.iter_mut().flat_map(|x| x.configs.iter_mut()) {
                c.config_type = 0;
                c.documentation = None;
            }
        }
        ResponseKind::DescribeCluster(r) => {
            if version < 1 {
                r.endpoint_type = 1;
            }
            if version < 2 {
                for b in &mut r.brokers {
                    b.is_fenced = false;
                }
            }
        }
        ResponseKind::JoinGroup(r) => {
            if version < 7 {
                // Not carried before v7; the protocol name is not nullable before it.
                r.protocol_type = None;
                r.protocol_name.get_or_insert_with(Default::default);
            }
            if version < 9 {
                r.skip_assignment = false;
            }
            if version < 5 {
                for m in &mut r.members {
                    m.group_instance_id = None;
                }
            }
        }
        ResponseKind::SyncGroup(r) if version < 5 => {
            r.protocol_type = None;
            r.protocol_name = None;
        }
        ResponseKind::DescribeGroups(r) => {
            for g in &mut r.groups {
                if version < 3 {
                    g.authorized_operations = i32::MIN;
                }
                if version < 6 {
                    g.error_message = None;
                }
                if version < 4 {
                    for m in &mut g.members {
                        m.group_instance_id = None;
                    }
                }
            }
        }
        ResponseKind::AddPartitionsToTxn(r) => {
            if version < 4 {
                r.error_code = 0;
                r.results_by_transaction.clear();
            } else {
                r.results_by_topic_v3_and_below.clear();
            }
        }
        ResponseKind::InitProducerId(r) if version < 6 => {
            r.ongoing_txn_producer_id = kafka_protocol::messages::ProducerId(-1);
            r.ongoing_txn_producer_epoch = -1;
        }
        _ => {}
    }
}
